"""The one door to the carrier's systems: aiohttp requests with time bounds, retries, a breaker, a cache
and the contract's validation, every failure mapped into `BackendError`.

    BackendError (ivr.engine.operations; the flow's ``error`` branch)
     ├── CarrierUnavailable   no connection, reset, no answer within the attempt's bound, HTTP 5xx/429
     │    └── BreakerOpen     not even tried: too many failures in a row (http_breaker)
     ├── CarrierRefused       HTTP 4xx other than 404: a request the back-end will not take
     │    └── NotFound        HTTP 404: operations turn it into ``not_found`` where that is an answer
     └── BadResponse          not JSON, too large, or not the contract's schema (http_contract)

Reads (GET) are retried on `CarrierUnavailable` with exponential backoff and full jitter; writes (POST)
are never retried and carry an ``Idempotency-Key`` so that a repeat cannot open a second ticket. The
overall bound on an operation is its caller's (`http_backend` wraps each operation in a deadline);
each attempt has its own shorter bound so a slow answer leaves time for another try. Messages name
the method and path, never query values (they carry phone numbers and CNPJs).
"""

from __future__ import annotations

import asyncio
import json
import random
import time
from collections.abc import Callable, Mapping
from typing import Any

import aiohttp

from integrations.carrier.breaker import BreakerOpen, CircuitBreaker
from integrations.carrier.cache import TtlCache
from integrations.carrier.contract import BadResponse, check
from ivr.config import CarrierApiSettings
from ivr.engine.operations import BackendError

#: Statuses worth another try: the back-end is overloaded or restarting, not refusing the request.
TRANSIENT_STATUSES = frozenset({429, 500, 502, 503, 504})


class CarrierUnavailable(BackendError):
    """The carrier API could not be reached or did not answer usefully in time."""


class CarrierRefused(BackendError):
    """The carrier API refused the request (HTTP 4xx)."""

    def __init__(self, message: str, status: int) -> None:
        super().__init__(message)
        self.status = status


class NotFound(CarrierRefused):
    """HTTP 404."""


__all__ = ["BadResponse", "BreakerOpen", "CarrierClient", "CarrierRefused", "CarrierUnavailable", "NotFound"]


class CarrierClient:
    def __init__(
        self,
        conf: CarrierApiSettings,
        *,
        monotonic: Callable[[], float] = time.monotonic,
        rng: random.Random | None = None,
    ) -> None:
        self._conf = conf
        self._base = conf.base_url.rstrip("/")
        self._rng = rng or random.Random()
        self.breaker = CircuitBreaker(conf.breaker_failures, conf.breaker_reset_s, clock=monotonic)
        self.cache = TtlCache(conf.cache_ttl_s, conf.cache_entries, clock=monotonic)
        self._http: aiohttp.ClientSession | None = None

    async def read(
        self, path: str, schema: str, params: Mapping[str, str] | None = None, *, cached: bool = False
    ) -> Any:
        """GET `path` and return its body, valid against `schema`; retried while the back-end is
        unavailable. `cached`: may come from (and goes to) the TTL cache."""
        query = dict(params or {})
        key = _cache_key(path, query)
        if cached and (hit := self.cache.get(key)) is not None:
            return hit
        body = await self._get(path, query, schema)
        if cached:
            self.cache.put(key, body)
        return body

    async def read_pdf(self, path: str) -> bytes:
        """GET a PDF document at `path` (never cached: documents are fetched once, for the outbox)."""
        raw = await self._get(path, {}, accept="application/pdf")
        if not raw.startswith(b"%PDF-"):
            raise BadResponse(f"carrier API GET {path}: the answer is not a PDF")
        return raw

    async def _get(
        self, path: str, query: Mapping[str, str], schema: str | None = None, *, accept: str = "application/json"
    ) -> Any:
        headers = {"Accept": accept}
        for attempt in range(self._conf.read_retries):
            try:
                return await self._attempt("GET", path, schema, params=query, headers=headers)
            except CarrierUnavailable:  # not BreakerOpen: with the breaker open, retrying is pointless
                await asyncio.sleep(self._backoff(attempt))
        return await self._attempt("GET", path, schema, params=query, headers=headers)

    def remember(self, path: str, body: Any, params: Mapping[str, str] | None = None) -> None:
        """Put a body obtained otherwise (e.g. a search's records) in the cache for `path`."""
        self.cache.put(_cache_key(path, params or {}), body)

    async def write(self, path: str, schema: str, body: Mapping[str, Any], *, idempotency_key: str) -> Any:
        """POST `body` once; the answer is valid against `schema`."""
        return await self._attempt("POST", path, schema, json_body=body, headers={"Idempotency-Key": idempotency_key})

    async def aclose(self) -> None:
        if self._http is not None:
            await self._http.close()
            self._http = None

    # --- one request -------------------------------------------------------------------------------

    async def _attempt(
        self,
        method: str,
        path: str,
        schema: str | None,
        *,
        params: Mapping[str, str] | None = None,
        json_body: Mapping[str, Any] | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> Any:
        what = f"carrier API {method} {path}"
        self.breaker.allow(what)
        try:
            status, raw = await self._exchange(method, path, what, params, json_body, headers)
        except CarrierUnavailable:
            self.breaker.failed()
            raise
        except BaseException:  # cancelled (the operation's deadline, a hang-up) or a body too large
            self.breaker.abandoned()
            raise
        if status in TRANSIENT_STATUSES:
            self.breaker.failed()
            raise CarrierUnavailable(f"{what}: HTTP {status}{_problem(raw)}")
        self.breaker.succeeded()
        if status == 404:
            raise NotFound(f"{what}: HTTP 404{_problem(raw)}", status)
        if status >= 400 or status < 200:
            raise CarrierRefused(f"{what}: HTTP {status}{_problem(raw)}", status)
        if schema is None:  # a document, not JSON
            return raw
        try:
            body = json.loads(raw)
        except ValueError as exc:  # includes UnicodeDecodeError
            raise BadResponse(f"{what}: the answer is not JSON ({exc})") from exc
        check(schema, body, what)
        return body

    async def _exchange(
        self,
        method: str,
        path: str,
        what: str,
        params: Mapping[str, str] | None,
        json_body: Mapping[str, Any] | None,
        headers: Mapping[str, str] | None,
    ) -> tuple[int, bytes]:
        """One request and its whole answer, within the attempt's bound."""
        try:
            async with asyncio.timeout(self._conf.attempt_timeout_s):
                async with self._session().request(
                    method, self._base + path, params=params, json=json_body, headers=headers
                ) as response:
                    return response.status, await self._body(response, what)
        except TimeoutError as exc:
            raise CarrierUnavailable(f"{what}: no answer within {self._conf.attempt_timeout_s:g} s") from exc
        except aiohttp.ClientError as exc:
            raise CarrierUnavailable(f"{what}: {type(exc).__name__}: {exc}") from exc

    async def _body(self, response: aiohttp.ClientResponse, what: str) -> bytes:
        limit = self._conf.max_response_bytes
        chunks: list[bytes] = []
        size = 0
        async for chunk in response.content.iter_chunked(64 * 1024):
            size += len(chunk)
            if size > limit:
                raise BadResponse(f"{what}: the answer is larger than {limit} bytes")
            chunks.append(chunk)
        return b"".join(chunks)

    def _session(self) -> aiohttp.ClientSession:
        """Created on first use, inside the running loop (aiohttp requires it)."""
        if self._http is None:
            headers = {"Accept": "application/json", "User-Agent": "sac-ivr"}
            token = self._conf.token.get_secret_value()
            if token:
                headers["Authorization"] = f"Bearer {token}"
            self._http = aiohttp.ClientSession(
                headers=headers,
                timeout=aiohttp.ClientTimeout(total=None, sock_connect=self._conf.connect_timeout_s),
            )
        return self._http

    def _backoff(self, attempt: int) -> float:
        """Full jitter: anywhere up to first × 2^attempt (capped), so retrying IVRs do not march in step."""
        return self._rng.uniform(0, min(self._conf.backoff_max_s, self._conf.backoff_first_s * 2**attempt))


def _cache_key(path: str, query: Mapping[str, str]) -> tuple[str, tuple[tuple[str, str], ...]]:
    return path, tuple(sorted(query.items()))


def _problem(raw: bytes) -> str:
    """The RFC 9457 title and detail of an error body, when it has them."""
    try:
        problem = json.loads(raw)
    except ValueError:
        return ""
    if not isinstance(problem, dict):
        return ""
    text = ": ".join(str(problem[k])[:160] for k in ("title", "detail") if problem.get(k))
    return f" ({text})" if text else ""
