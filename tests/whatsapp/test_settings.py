"""The `whatsapp` settings section: the token from the environment, and clear messages for bad values."""

from __future__ import annotations

import pytest

from ivr.app import _senders
from ivr.clock import system_clock
from ivr.config import ConfigError, load_settings
from ivr.store.models import OutboxChannel


def test_the_environment_configures_the_sender_and_the_token_stays_secret(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("IVR_WHATSAPP__PHONE_NUMBER_ID", "123456789012345")
    monkeypatch.setenv("IVR_WHATSAPP__TOKEN", "from-the-environment")
    settings = load_settings()
    conf = settings.whatsapp
    assert conf.configured and conf.token.get_secret_value() == "from-the-environment"
    assert "from-the-environment" not in repr(settings)
    assert OutboxChannel.WHATSAPP in _senders(settings, clock=system_clock)


def test_without_a_token_whatsapp_messages_wait_in_the_outbox(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("IVR_WHATSAPP__PHONE_NUMBER_ID", "123456789012345")
    monkeypatch.delenv("IVR_WHATSAPP__TOKEN", raising=False)
    assert OutboxChannel.WHATSAPP not in _senders(load_settings(), clock=system_clock)


@pytest.mark.parametrize(
    ("variable", "value", "expected"),
    [
        ("IVR_WHATSAPP__API_VERSION", "21", "a Graph API version like v21.0"),
        ("IVR_WHATSAPP__PHONE_NUMBER_ID", "+55 31 3003-3336", "the numeric phone number id"),
        ("IVR_WHATSAPP__BASE_URL", "graph.facebook.com", "an http:// or https:// URL"),
    ],
)
def test_a_bad_value_names_the_variable_and_what_was_expected(
    monkeypatch: pytest.MonkeyPatch, variable: str, value: str, expected: str
) -> None:
    monkeypatch.setenv(variable, value)
    with pytest.raises(ConfigError, match=variable) as raised:
        load_settings()
    assert expected in str(raised.value)
