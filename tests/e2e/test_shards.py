"""How the e2e tests split into shards (part of the fast suite: nothing here places a call)."""

from __future__ import annotations

from pathlib import Path

import pytest

from .shards import MODULE_SECONDS, Shard, assign

MODULES = sorted(path.name for path in Path(__file__).parent.glob("test_*.py"))


def test_every_module_with_a_figure_exists() -> None:
    """A module renamed or removed would leave its figure behind, and the new name would count as unknown."""
    assert set(MODULE_SECONDS) <= set(MODULES)


def test_each_module_goes_to_one_shard_the_longest_alone_when_it_outweighs_the_rest() -> None:
    shard_of = assign(MODULES, 2)
    assert set(shard_of) == set(MODULES) and set(shard_of.values()) == {1, 2}
    assert assign(reversed(MODULES), 2) == shard_of  # the order of collection does not matter
    loads = [sum(MODULE_SECONDS.get(m, 0) for m, shard in shard_of.items() if shard == k) for k in (1, 2)]
    assert abs(loads[0] - loads[1]) <= max(MODULE_SECONDS.values())
    assert assign(["a.py", "b.py", "c.py"], 1) == {"a.py": 1, "b.py": 1, "c.py": 1}


def test_a_shard_takes_its_own_even_part_of_a_port_range() -> None:
    assert [Shard(k, 2).share(31000, 31999) for k in (1, 2)] == [(31000, 31499), (31500, 31999)]
    assert Shard(1, 1).share(31000, 31999) == (31000, 31999)
    assert [Shard(k, 3).share(31000, 31999)[0] % 2 for k in (1, 2, 3)] == [0, 0, 0]


@pytest.mark.parametrize("text", ["0/2", "3/2", "1", "1/0", "a/b", ""])
def test_a_shard_is_k_of_n(text: str) -> None:
    with pytest.raises(ValueError, match="expected K/N"):
        Shard.parse(text)
    assert Shard.parse(" 2/3 ") == Shard(2, 3)
