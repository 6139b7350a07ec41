"""The settings object: sources, refusals, and what units sharing one database get."""

from __future__ import annotations

import json
import re
from itertools import pairwise
from pathlib import Path

import pytest

from ivr.config import ConfigError, load_settings


def test_units_sharing_a_database_get_disjoint_fallback_ranges() -> None:
    ranges = [load_settings(unit_id=unit).unit_fallback_range for unit in range(10)]
    first, last = load_settings().protocol_fallback_range
    assert ranges[0][0] == first and ranges[-1][1] == last
    for (_, end), (start, _) in pairwise(ranges):
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


@pytest.mark.parametrize(
    ("section", "values", "named"),
    [
        ("carrier_api", {"base_url": "http://api.operadora.com.br/v1", "token": "t"}, "carrier_api.base_url"),
        ("whatsapp", {"base_url": "http://10.0.0.7", "token": "t"}, "whatsapp.base_url"),
        ("email", {"host": "smtp.operadora.com.br", "security": "none", "password": "p"}, "email.security"),
        ("speech", {"endpoint": "speech.googleapis.com:443", "insecure": True}, "speech.insecure"),
        ("ami", {"host": "192.0.2.10"}, "ami.host"),
    ],
)
def test_a_credential_in_plaintext_off_loopback_is_refused_naming_the_setting(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, section: str, values: dict[str, object], named: str
) -> None:
    config = tmp_path / "ivr.yaml"
    config.write_text(json.dumps({section: values}), encoding="utf-8")  # JSON is YAML
    monkeypatch.setenv("IVR_CONFIG", str(config))
    with pytest.raises(ConfigError, match=f"{re.escape(named)}.* in plaintext to "):
        load_settings()


@pytest.mark.parametrize("host", ["127.0.0.1", "127.0.0.2", "::1", "localhost"])
def test_plaintext_to_loopback_stays_allowed_for_local_servers(host: str) -> None:
    url_host = f"[{host}]" if ":" in host else host
    loaded = load_settings(
        carrier_api={"base_url": f"http://{url_host}:8480/v1", "token": "t"},
        whatsapp={"base_url": f"http://{url_host}:9", "token": "t"},
        email={"host": host, "security": "none", "password": "p"},
        speech={"endpoint": f"{url_host}:50051", "insecure": True},
        ami={"host": host},
    )
    assert loaded.email.host == host


def test_without_a_credential_or_with_tls_any_host_is_allowed() -> None:
    load_settings(
        carrier_api={"base_url": "https://api.operadora.com.br/v1", "token": "t"},
        email={"host": "smtp.operadora.com.br", "security": "none"},  # no password: no AUTH to expose
    )


@pytest.mark.parametrize("field", ["username", "secret"])
def test_an_ami_login_value_with_a_line_break_is_refused_naming_it(
    monkeypatch: pytest.MonkeyPatch, field: str
) -> None:
    monkeypatch.setenv(f"IVR_AMI__{field.upper()}", "x\r\nAction: Originate")
    with pytest.raises(ConfigError, match=f"ami.{field} holds a line break"):
        load_settings()
