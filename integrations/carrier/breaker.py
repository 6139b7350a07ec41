"""A circuit breaker for the carrier's systems: stop calling a back-end that keeps failing.

    closed ──(N consecutive failed requests)──> open ──(cool-down passed)──> half-open
      ^                                           ^                              │
      └────────────(the probe succeeds)───────────┼──────(the probe fails)───────┘

While open, requests fail at once (`BreakerOpen`): a caller hears "not available now" in
milliseconds instead of waiting for time-outs. After the cool-down one request (the probe) goes
through; its outcome closes the breaker or opens it for another cool-down. The breaker recovers by
itself: no operator action is needed when the back-end comes back.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from enum import Enum

from ivr.engine.operations import BackendError


class BreakerState(str, Enum):
    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half_open"  # a probe request is in flight


class BreakerOpen(BackendError):
    """The back-end failed too often lately; not called until the cool-down has passed."""


class CircuitBreaker:
    def __init__(self, failures: int, reset_s: float, *, clock: Callable[[], float] = time.monotonic) -> None:
        self._threshold = failures
        self._reset_s = reset_s
        self._clock = clock
        self._failures = 0
        self._opened_at: float | None = None
        self._probing = False

    @property
    def state(self) -> BreakerState:
        if self._opened_at is None:
            return BreakerState.CLOSED
        return BreakerState.HALF_OPEN if self._probing else BreakerState.OPEN

    def allow(self, what: str) -> None:
        """Let a request through, or raise `BreakerOpen`. Every allowed request must end in exactly one
        of `succeeded`, `failed` or `abandoned`."""
        if self._opened_at is None:
            return
        wait = self._opened_at + self._reset_s - self._clock()
        if self._probing or wait > 0:
            raise BreakerOpen(
                f"{what}: not called, the carrier API failed {self._threshold} times in a row"
                f" (next try in {max(wait, 0):.1f} s)"
            )
        self._probing = True

    def succeeded(self) -> None:
        self._failures, self._opened_at, self._probing = 0, None, False

    def failed(self) -> None:
        self._failures += 1
        if self._probing or self._failures >= self._threshold:
            self._opened_at, self._probing = self._clock(), False

    def abandoned(self) -> None:
        """The request was cancelled before its outcome was known: a probe counts as failed (it did not
        answer in time); an ordinary request counts as nothing."""
        if self._probing:
            self.failed()
