"""The settings object: sources, refusals, and what units sharing one database get."""

from __future__ import annotations

from pathlib import Path

import pytest

from ivr.config import ConfigError, load_settings


def test_units_sharing_a_database_get_disjoint_fallback_ranges() -> None:
    ranges = [load_settings(unit_id=unit).unit_fallback_range for unit in range(10)]
    first, last = load_settings().protocol_fallback_range
    assert ranges[0][0] == first and ranges[-1][1] == last
    for (_, end), (start, _) in zip(ranges, ranges[1:]):
        assert start == end + 1


def test_a_unit_id_out_of_range_is_refused_naming_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("IVR_UNIT_ID", "12")
    with pytest.raises(ConfigError, match="IVR_UNIT_ID: Input should be less than or equal to 9"):
        load_settings()


def test_the_config_file_is_read_and_the_environment_wins(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    config = tmp_path / "ivr.yaml"
    config.write_text("unit_id: 3\nami: {port: 6000}\n", encoding="utf-8")
    monkeypatch.setenv("IVR_CONFIG", str(config))
    monkeypatch.setenv("IVR_AMI__PORT", "6001")
    loaded = load_settings()
    assert loaded.unit_id == 3 and loaded.ami.port == 6001
