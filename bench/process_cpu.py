"""A process's CPU time, read to the nanosecond (both benches' CPU columns)."""

from __future__ import annotations

import time


def process_cpu_s(pid: int) -> float:
    """User + system CPU time of the whole process `pid` (its ended threads too): the kernel's CPU clock of
    the process, whose id clock_getcpuclockid(3) makes so. ``/proc/<pid>/stat`` counts 10 ms ticks: at 100
    calls of the FastAGI bench, an eighth of the wire's reading. OSError once the process has gone."""
    return time.clock_gettime(((~pid) << 3) | 2)  # CPUCLOCK_SCHED of the process
