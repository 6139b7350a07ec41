"""Imported by every Python process of `./dev test`'s dated runs (it is on their PYTHONPATH), which run
under libfaketime with the monotonic clock left real.

libfaketime 0.9.10 (Debian 12) mistranslates a `clock_nanosleep` on an absolute CLOCK_MONOTONIC deadline
when the monotonic clock is not faked (its issue 426), and that is how Python 3.11's `time.sleep` waits:
every call fails with EINVAL (subprocess time-outs use it too). A relative `select` wait is untouched.
"""

import select
import time


def _sleep(seconds: float) -> None:
    if seconds < 0:
        raise ValueError("sleep length must be non-negative")
    select.select([], [], [], seconds)  # retried with the time left when a signal interrupts it (PEP 475)


time.sleep = _sleep
