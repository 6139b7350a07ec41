"""The operations flows may call by name (`lookup:` / `action:` nodes), declared in one registry.

Each operation states its arguments and the result fields it returns, so `ivr flow check` can verify
a flow's calls without running them. Handlers receive an `OperationContext` carrying who the caller
is (the identified customer): an operation never returns another customer's data, whatever the
flow passes as arguments.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from enum import Enum
from typing import Any, NamedTuple


class OperationStatus(str, Enum):
    FOUND = "found"  # success; for actions, "done"
    NOT_FOUND = "not_found"
    ERROR = "error"
    TIMEOUT = "timeout"


@dataclass(frozen=True, slots=True)
class OperationResult:
    status: OperationStatus
    data: Mapping[str, Any] = field(default_factory=dict)
    message: str = ""  # for logs; never spoken

    @classmethod
    def found(cls, **data: Any) -> OperationResult:
        return cls(OperationStatus.FOUND, data)

    @classmethod
    def not_found(cls, message: str = "") -> OperationResult:
        return cls(OperationStatus.NOT_FOUND, {}, message)


@dataclass(frozen=True, slots=True)
class OperationContext:
    call_protocol: str
    caller_id: str | None  # normalised national number, or None when withheld
    customer_id: int | None  # the identified (confirmed or caller-ID-matched) account, if any
    account_confirmed: bool  # caller ID plus one confirmation, or CNPJ plus customer code


@dataclass(frozen=True, slots=True)
class Arg:
    name: str
    type: type  # str, int, float, bool
    required: bool = True
    description: str = ""


Handler = Callable[..., Awaitable[OperationResult]]


@dataclass(frozen=True, slots=True)
class OperationSpec:
    name: str
    description: str
    args: tuple[Arg, ...]
    results: tuple[str, ...]  # names of the fields in `OperationResult.data` on FOUND
    handler: Handler  # called as handler(ctx, **args)
    # On FOUND, `data` carries `customer_id` and `confirmed`: the engine records who the caller is, and
    # later operations see it in `OperationContext`.
    identifies: bool = False
    # It opens something for the caller (a ticket, a request, a call back, a lead): `ivr flow check` refuses
    # a flow that can reach it when the caller said nothing (silence never consents).
    opens: bool = False


class Declaration(NamedTuple):
    """How an adapter module declares an operation: an `OperationSpec` without its handler."""

    name: str
    description: str
    args: tuple[Arg, ...]
    results: tuple[str, ...]
    identifies: bool = False
    opens: bool = False


def bind(declarations: Iterable[Declaration], handler_for: Callable[[str], Handler]) -> Iterator[OperationSpec]:
    """The specs of `declarations`, each answered by ``handler_for(name)``."""
    for d in declarations:
        yield OperationSpec(d.name, d.description, d.args, d.results, handler_for(d.name), d.identifies, d.opens)


class UnknownOperation(KeyError):
    pass


class BackendError(Exception):
    """A back-end failed in a way the caller should hear as "not available now" (adapters map their
    own errors into this with ``raise BackendError(...) from exc``)."""


class OperationRegistry:
    def __init__(self, default_timeout_s: float = 3.0) -> None:
        self._specs: dict[str, OperationSpec] = {}
        self.default_timeout_s = default_timeout_s
        self._closers: list[Callable[[], Awaitable[None]]] = []

    def on_close(self, closer: Callable[[], Awaitable[None]]) -> None:
        """Run `closer` at `aclose()`: an adapter holding connections (an HTTP session) releases them."""
        self._closers.append(closer)

    async def aclose(self) -> None:
        """Release the adapters' connections, last registered first."""
        closers, self._closers = self._closers[::-1], []
        for closer in closers:
            await closer()

    def register(self, spec: OperationSpec) -> None:
        if spec.name in self._specs:
            raise ValueError(f"operation {spec.name!r} registered twice")
        self._specs[spec.name] = spec

    def get(self, name: str) -> OperationSpec | None:
        return self._specs.get(name)

    def __iter__(self) -> Iterator[OperationSpec]:
        return iter(sorted(self._specs.values(), key=lambda s: s.name))

    async def call(
        self, name: str, args: Mapping[str, Any], ctx: OperationContext, *, timeout_s: float | None = None
    ) -> OperationResult:
        """Run an operation; failures and time-outs become results the flow branches on."""
        spec = self._specs.get(name)
        if spec is None:
            raise UnknownOperation(name)
        try:
            return await asyncio.wait_for(spec.handler(ctx, **args), timeout_s or self.default_timeout_s)
        except TimeoutError:
            return OperationResult(OperationStatus.TIMEOUT, {}, f"{name} timed out")
        except (BackendError, ConnectionError, OSError) as exc:
            return OperationResult(OperationStatus.ERROR, {}, f"{name} failed: {exc}")
