"""The operations flows may call by name (`lookup:` / `action:` nodes): each declared once, all run
through one registry.

An operation is a method declared with `@operation(...)` on the class that states its contract (an
abstract interface such as `integrations.backend.Backend`, or the one class that answers it):

    @operation("The caller's tickets opened since a date.", results=("count",), requires=Requirement.IDENTIFIED)
    async def tickets_since(self, ctx: OperationContext, day: Annotated[str, "YYYY-MM-DD"]) -> OperationResult:

Its name is the method's, its arguments the method's parameters after ``ctx`` (type, required when
without a default, description in `Annotated`); the decorator adds the result fields it returns on
FOUND (and which of them are personal data, kept masked in the call's records), what it requires of the
caller, and whether it identifies the caller or opens something. A class that implements the interface
overrides the method without repeating any of it.

The registry binds every declared method of an object (`register_all`) and refuses one whose parameters
are not the declared arguments. Before a handler runs, it turns enum arguments into their members (an
unknown value is an ``error``) and refuses a caller the operation requires to be identified or confirmed
(``not_found``), so handlers never check that again; `ivr flow check` reads the same declarations
(`OperationRegistry.declared`). Handlers receive an `OperationContext` carrying who the caller is: an
operation never returns another customer's data, whatever the flow passes as arguments.
"""

from __future__ import annotations

import asyncio
import inspect
from abc import ABC
from collections.abc import Awaitable, Callable, Iterator, Mapping
from dataclasses import dataclass, field, replace
from enum import Enum
from typing import Annotated, Any, TypeVar, get_args, get_origin, get_type_hints


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

    @property
    def identified_customer(self) -> int:
        """`customer_id`, in an operation that requires an identified caller (the registry checked)."""
        if self.customer_id is None:
            raise LookupError("caller not identified: the operation must declare that it requires it")
        return self.customer_id


class Requirement(str, Enum):
    """What an operation requires of the caller; the registry refuses anyone else (``not_found``)."""

    IDENTIFIED = "identified"  # an account is known on the call (by caller ID or keyed data)
    CONFIRMED = "confirmed"  # ...and confirmed by a second factor (`integrations.accounts`)


#: Why the registry refused a caller, as the result's message says.
REFUSALS = {Requirement.IDENTIFIED: "caller not identified", Requirement.CONFIRMED: "account not confirmed"}
#: The argument types a flow can write; an enum's values are the words a flow writes.
PLAIN_TYPES = (str, int, float, bool)


@dataclass(frozen=True, slots=True)
class Arg:
    name: str
    type: type  # one of PLAIN_TYPES, or an Enum whose values are str
    required: bool = True
    description: str = ""


@dataclass(frozen=True, slots=True)
class OperationSpec:
    """The contract of one operation: what `ivr flow check` verifies and the registry enforces."""

    name: str
    description: str
    args: tuple[Arg, ...]
    results: tuple[str, ...]  # names of the fields in `OperationResult.data` on FOUND
    requires: Requirement | None = None
    # On FOUND, `data` carries `customer_id` and `confirmed`: the engine records who the caller is, and
    # later operations see it in `OperationContext`.
    identifies: bool = False
    # It opens something for the caller (a ticket, a request, a call back, a lead): `ivr flow check` refuses
    # a flow that can reach it when the caller said nothing (silence never consents).
    opens: bool = False
    # Results that are personal data (a number to call): a flow may use them, the call's records keep them
    # masked (`ivr.engine.gateway`), as a node visit shows what the caller keyed.
    personal: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        undeclared = sorted(set(self.personal) - set(self.results))
        if undeclared:
            raise TypeError(f"operation {self.name}: personal result(s) {undeclared} are not among its results")


Handler = Callable[..., Awaitable[OperationResult]]
H = TypeVar("H", bound=Handler)
_SPEC = "__operation_spec__"  # where `@operation` keeps the spec on the method


def operation(
    description: str,
    *,
    results: tuple[str, ...] = (),
    requires: Requirement | None = None,
    identifies: bool = False,
    opens: bool = False,
    personal: tuple[str, ...] = (),
) -> Callable[[H], H]:
    """Declare the decorated method, ``async def name(self, ctx, <arguments>)``, an operation flows may
    call (see the module's docstring)."""

    def declare(method: H) -> H:
        spec = OperationSpec(
            method.__name__, description, _arguments(method), results, requires, identifies, opens, personal
        )
        setattr(method, _SPEC, spec)
        return method

    return declare


def _arguments(method: Handler) -> tuple[Arg, ...]:
    hints = get_type_hints(method, include_extras=True)
    args = []
    for parameter in list(inspect.signature(method).parameters.values())[2:]:  # after self and ctx
        kind, description = hints[parameter.name], ""
        if get_origin(kind) is Annotated:
            kind, description = get_args(kind)[:2]
        if kind not in PLAIN_TYPES and not (isinstance(kind, type) and issubclass(kind, Enum)):
            words = "text, a number, true/false or an Enum"
            raise TypeError(f"operation {method.__name__}: argument {parameter.name!r} must be {words}, not {kind!r}")
        args.append(Arg(parameter.name, kind, parameter.default is inspect.Parameter.empty, description))
    return tuple(args)


def declarations(cls: type) -> list[OperationSpec]:
    """The operations `cls` answers: its `@operation` methods and those of the classes it derives from.
    An operation is declared once: a class that overrides a declared method does not declare it again."""
    found: dict[str, tuple[str, OperationSpec]] = {}
    for owner in reversed(cls.__mro__):
        for name, member in vars(owner).items():
            spec = getattr(member, _SPEC, None)
            if spec is None:
                continue
            if name in found:
                raise TypeError(f"operation {name!r} is declared by {found[name][0]} and again by {owner.__name__}")
            found[name] = (owner.__name__, spec)
    return [spec for _, spec in found.values()]


class Operations(ABC):  # noqa: B024 (no abstract method of its own: ABC makes its subclasses' binding)
    """A class answering declared operations. What it lacks of an interface it implements is refused when
    it is built (an abstract method); the two methods below are how the registry runs its operations."""

    def confirmed(self, ctx: OperationContext) -> bool:
        """Whether the caller's account is confirmed, for this class's operations that require it. The
        engine's word here; a back-end that identifies callers also checks the factors it saw."""
        return ctx.account_confirmed

    def deadline_s(self, spec: OperationSpec) -> float | None:
        """This class's own bound on one call of `spec`, within the registry's (None: only the registry's)."""
        return None


class UnknownOperation(KeyError):
    pass


class BackendError(Exception):
    """A back-end failed in a way the caller should hear as "not available now" (adapters map their
    own errors into this with ``raise BackendError(...) from exc``)."""


def _engine_says(ctx: OperationContext) -> bool:
    return ctx.account_confirmed


@dataclass(frozen=True, slots=True)
class _Bound:
    """An operation as the registry runs it."""

    spec: OperationSpec
    handler: Handler
    confirmed: Callable[[OperationContext], bool]
    deadline_s: float | None

    def refusal(self, ctx: OperationContext) -> OperationResult | None:
        """The result refusing this caller, before the handler runs; None when they may call it."""
        requires = self.spec.requires
        if requires is None:
            return None
        if ctx.customer_id is None or (requires is Requirement.CONFIRMED and not self.confirmed(ctx)):
            return OperationResult.not_found(REFUSALS[requires])
        return None

    def typed(self, args: Mapping[str, Any]) -> dict[str, Any]:
        """`args` with enum arguments as their members; ValueError names an unknown value."""
        typed = dict(args)
        for arg in self.spec.args:
            if arg.name in typed and issubclass(arg.type, Enum):
                try:
                    typed[arg.name] = arg.type(typed[arg.name])
                except ValueError:
                    known = ", ".join(str(member.value) for member in arg.type)
                    raise ValueError(f"unknown {arg.name} {typed[arg.name]!r} (expected {known})") from None
        return typed


class OperationRegistry:
    def __init__(self, default_timeout_s: float = 3.0) -> None:
        self._bound: dict[str, _Bound] = {}
        self.default_timeout_s = default_timeout_s
        self._closers: list[Callable[[], Awaitable[None]]] = []

    @classmethod
    def declared(cls, *classes: type[Operations]) -> OperationRegistry:
        """The operations of `classes` without anything to answer them: what `ivr flow check` reads."""
        registry = cls()
        for owner in classes:
            for spec in declarations(owner):
                registry.register(spec, _declared_only)
        return registry

    def on_close(self, closer: Callable[[], Awaitable[None]]) -> None:
        """Run `closer` at `aclose()`: an adapter holding connections (an HTTP session) releases them."""
        self._closers.append(closer)

    async def aclose(self) -> None:
        """Release the adapters' connections, last registered first."""
        closers, self._closers = self._closers[::-1], []
        for closer in closers:
            await closer()

    def register_all(self, implementation: Operations) -> None:
        """Every operation `implementation` declares or implements, answered by its methods."""
        for spec in declarations(type(implementation)):
            handler = getattr(implementation, spec.name)
            _check_parameters(type(implementation), spec, handler)
            self.register(
                spec, handler, confirmed=implementation.confirmed, deadline_s=implementation.deadline_s(spec)
            )

    def register(
        self,
        spec: OperationSpec,
        handler: Handler,
        *,
        confirmed: Callable[[OperationContext], bool] = _engine_says,
        deadline_s: float | None = None,
    ) -> None:
        """One operation, answered by ``handler(ctx, **args)`` (what `register_all` does for each method)."""
        if spec.name in self._bound:
            raise ValueError(f"operation {spec.name!r} registered twice")
        self._bound[spec.name] = _Bound(spec, handler, confirmed, deadline_s)

    def with_handlers(self, handlers: Mapping[str, Handler]) -> OperationRegistry:
        """The same operations, those named answered by other handlers (a flow test's failing back-end);
        the requirements still hold."""
        changed = OperationRegistry(self.default_timeout_s)
        for name, bound in self._bound.items():
            changed._bound[name] = replace(bound, handler=handlers[name]) if name in handlers else bound
        return changed

    def get(self, name: str) -> OperationSpec | None:
        bound = self._bound.get(name)
        return bound.spec if bound else None

    def __iter__(self) -> Iterator[OperationSpec]:
        return iter(sorted((bound.spec for bound in self._bound.values()), key=lambda s: s.name))

    async def call(
        self, name: str, args: Mapping[str, Any], ctx: OperationContext, *, timeout_s: float | None = None
    ) -> OperationResult:
        """Run an operation for a caller it accepts; failures and time-outs become results the flow
        branches on."""
        bound = self._bound.get(name)
        if bound is None:
            raise UnknownOperation(name)
        try:
            typed = bound.typed(args)
        except ValueError as exc:
            return OperationResult(OperationStatus.ERROR, {}, f"{name}: {exc}")
        refusal = bound.refusal(ctx)
        if refusal is not None:
            return refusal
        limit = timeout_s or self.default_timeout_s
        if bound.deadline_s is not None:
            limit = min(limit, bound.deadline_s)
        try:
            async with asyncio.timeout(limit):  # in the caller's task: asyncio.wait_for made a task of its own
                return await bound.handler(ctx, **typed)
        except TimeoutError:
            return OperationResult(OperationStatus.TIMEOUT, {}, f"{name} timed out")
        except (BackendError, ConnectionError, OSError) as exc:
            return OperationResult(OperationStatus.ERROR, {}, f"{name} failed: {exc}")


async def _declared_only(ctx: OperationContext, **args: Any) -> OperationResult:
    raise BackendError("declared only, for `ivr flow check`: calls use integrations.catalog.build_operations")


def _check_parameters(owner: type, spec: OperationSpec, handler: Handler) -> None:
    """Refuse a method whose parameters after ``ctx`` are not the operation's declared arguments."""
    parameters = list(inspect.signature(handler).parameters.values())[1:]
    takes = {p.name: p.default is inspect.Parameter.empty for p in parameters}
    if takes != {arg.name: arg.required for arg in spec.args}:
        declared = ", ".join(arg.name + ("" if arg.required else "=") for arg in spec.args)
        given = ", ".join(name + ("" if required else "=") for name, required in takes.items())
        raise TypeError(f"{owner.__name__}.{spec.name}({given}) does not take the arguments declared ({declared})")
