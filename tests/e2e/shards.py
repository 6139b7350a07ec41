"""The e2e tests split into shards that run at once (`pytest -m e2e --e2e-shard K/N`; `./dev test` runs two),
each session with an Asterisk, IVR and browser of its own: the calls mostly wait on the phone, so N shards
take about 1/N of the time.

A shard takes whole modules: their tests share module fixtures (an IVR, calls placed at once for several
tests) and may rely on running in order. Modules go to the shard with the least work so far, longest first,
by MODULE_SECONDS: the same collection gives every session the same split, so each test runs in exactly one.

A `solo` test (twenty calls at once) needs most of the machine: it waits until the other shards are done
(tests/e2e/conftest.py), so a shard runs its solo tests last, and their time adds to whichever shard has them.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

#: Seconds each module takes, its solo tests left out (a two-shard run's `--durations`, setup and teardown
#: included): for balance only, so a stale figure costs time, never a test. A module missing here counts as
#: DEFAULT_SECONDS.
MODULE_SECONDS = {
    "test_calls.py": 271,  # and 64 s solo
    "test_callbacks.py": 133,
    "test_callback_faults.py": 112,
    "test_journeys.py": 98,
    "test_real_callers.py": 93,
    "test_console.py": 74,
    "test_announcements.py": 58,
    "test_ami_events.py": 39,
    "test_queue_wait.py": 33,
    "test_plumbing.py": 12,
}
DEFAULT_SECONDS = 60


@dataclass(frozen=True)
class Shard:
    index: int  # 1 to count
    count: int

    @classmethod
    def parse(cls, text: str) -> Shard:
        match = re.fullmatch(r"(\d+)/(\d+)", text.strip())
        if not match or not 1 <= int(match.group(1)) <= int(match.group(2)):
            raise ValueError(f"--e2e-shard {text!r}: expected K/N with 1 <= K <= N, such as 1/2")
        return cls(int(match.group(1)), int(match.group(2)))

    def __str__(self) -> str:
        return f"{self.index}/{self.count}"

    def share(self, first: int, last: int) -> tuple[int, int]:
        """This shard's part of the even-sized range first..last (an RTP port range: even starts)."""
        size = (last - first + 1) // self.count // 2 * 2
        start = first + (self.index - 1) * size
        return start, start + size - 1


WHOLE = Shard(1, 1)


def assign(modules: Iterable[str], count: int) -> dict[str, int]:
    """Module file name -> shard index (1 to count): longest first to the least loaded shard, ties by name."""
    loads = [0] * count
    shard_of: dict[str, int] = {}
    for module in sorted(set(modules), key=lambda name: (-MODULE_SECONDS.get(name, DEFAULT_SECONDS), name)):
        lightest = loads.index(min(loads))
        shard_of[module] = lightest + 1
        loads[lightest] += MODULE_SECONDS.get(module, DEFAULT_SECONDS)
    return shard_of
