"""One timer for a run of bounded steps taken one at a time (a call's AGI exchanges, its node visits).

``asyncio.timeout`` round each step schedules a timer and cancels it again; on uvloop that is a libuv timer
started, stopped and closed per step: ~10% of the IVR's CPU when it bounded each AGI exchange. Here a step
only notes when it must end; the one timer is moved only to an earlier moment, and when it fires before
the step's end it is set again for it (a few times a call). Past a step's end, `on_due` is called once.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Callable


class LazyDeadline:
    """The end of the step in flight, kept by one timer that moves lazily."""

    def __init__(self, on_due: Callable[[], None]) -> None:
        self._on_due = on_due
        self._loop = asyncio.get_running_loop()
        self._ends = math.inf  # the step in flight must end by then (loop time); inf: none in flight
        self._timer: asyncio.TimerHandle | None = None

    def start(self, timeout: float) -> None:
        """A step begins that must end within `timeout` seconds."""
        self._ends = self._loop.time() + timeout
        if self._timer is None or self._timer.when() > self._ends:
            self._set(self._ends)

    def end(self) -> None:
        """The step ended (in time or not)."""
        self._ends = math.inf

    def stop(self) -> None:
        """No more steps: the timer goes."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _set(self, when: float) -> None:
        self.stop()
        self._timer = self._loop.call_at(when, self._fired)

    def _fired(self) -> None:
        self._timer = None
        if self._ends == math.inf:
            return  # the step it was set for ended; the next one sets it again
        if self._loop.time() < self._ends:
            self._set(self._ends)  # set for an earlier step: on to this one's end
            return
        self._ends = math.inf  # due once
        self._on_due()


class StepLimit:
    """``async with limit(seconds):`` round one step of the current task at a time, as ``asyncio.timeout``
    would bound it (past its end the task is cancelled and the block raises TimeoutError), on one
    `LazyDeadline` for every step. `expired` says whether the last step's block ran past its limit."""

    def __init__(self) -> None:
        self._deadline = LazyDeadline(self._due)
        self._task: asyncio.Task[object] | None = None
        self._cancelling = 0
        self._seconds: float | None = None
        self.expired = False

    def __call__(self, seconds: float | None) -> StepLimit:
        """The next step's limit; None: the step has none."""
        self._seconds = seconds
        return self

    async def __aenter__(self) -> None:
        task = asyncio.current_task()
        if task is None:
            raise RuntimeError("StepLimit is used inside a task")
        self._task, self._cancelling, self.expired = task, task.cancelling(), False
        if self._seconds is not None:
            self._deadline.start(self._seconds)

    async def __aexit__(self, exc_type: type[BaseException] | None, exc: BaseException | None, _tb: object) -> None:
        self._deadline.end()
        # As asyncio.Timeout: the cancellation this limit asked for becomes TimeoutError; one asked by anyone
        # else (a hang-up's TaskGroup, a drain) goes on as a cancellation.
        if self.expired and self._task is not None and self._task.uncancel() <= self._cancelling:
            if exc_type is asyncio.CancelledError:
                raise TimeoutError from exc

    def stop(self) -> None:
        self._deadline.stop()

    def _due(self) -> None:
        self.expired = True
        if self._task is not None:
            self._task.cancel()
