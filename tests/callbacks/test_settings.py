"""The dialer's settings: defaults that work, and mistakes refused when loaded, not at the first call back."""

from __future__ import annotations

import pytest

from ivr.config import ConfigError, load_settings


def test_defaults_dial_three_times_ten_minutes_apart_and_technical_around_the_clock() -> None:
    conf = load_settings().callbacks
    assert (conf.enabled, conf.max_attempts, conf.spacing_s) == (True, 3, 600.0)
    assert conf.lease_s > 2 * conf.ring_s
    assert "technical" not in conf.hours and conf.hours["billing"] == {"weekdays": "08:00-18:00"}


@pytest.mark.parametrize(
    ("override", "says"),
    [
        ({"hours": {"billing": {"weekday": "08:00-18:00"}}}, "billing.weekday"),
        ({"hours": {"billing": {"sat": "8h-12h"}}}, "billing.sat"),
        ({"ring_s": 60.0, "lease_s": 100.0}, "must exceed twice ring_s"),
        ({"max_attempts": 0}, "callbacks.max_attempts"),
    ],
)
def test_mistakes_are_refused_when_loaded(override: dict[str, object], says: str) -> None:
    with pytest.raises(ConfigError, match=says):
        load_settings(callbacks=override)
