"""The e2e IVR's faketime wrapper, killed, leaves nothing that stops a later one (part of the fast suite)."""

from __future__ import annotations

import os
import signal
import subprocess
import time

from .ivr_process import SHARED_MEMORY, _faketime, forget_wrapper


def test_a_killed_wrappers_shared_memory_and_semaphore_are_removed() -> None:
    wrapper = subprocess.Popen([_faketime(), "-f", "+0", "sleep", "30"], start_new_session=True)
    made = [SHARED_MEMORY / f"faketime_shm_{wrapper.pid}", SHARED_MEMORY / f"sem.faketime_sem_{wrapper.pid}"]
    try:
        deadline = time.monotonic() + 10
        while not all(path.exists() for path in made) and time.monotonic() < deadline:
            time.sleep(0.02)
        assert all(path.exists() for path in made), "the wrapper made no shared memory or semaphore"
    finally:
        os.killpg(wrapper.pid, signal.SIGKILL)
        wrapper.wait(timeout=10)
    assert all(path.exists() for path in made)  # killed, it cleaned nothing up
    forget_wrapper(wrapper.pid)
    assert not any(path.exists() for path in made)
