"""The rendered Asterisk configuration says what the SAC needs, for any settings."""

from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import Any

import pytest

from ivr.asterisk import conf
from ivr.config import ConfigError, Settings, load_settings

SECRET = "test-secret-not-real"
AGI_KEY = "agi-key-not-real-0123"


def _render(settings: Settings | None = None) -> dict[str, str]:
    settings = settings or load_settings()
    return conf.render(
        settings, conf.Layout.shipped(), SECRET, AGI_KEY, "/var/lib/asterisk/moh/sac", "/usr/lib/x/modules"
    )


def test_every_file_renders_and_nothing_names_localhost() -> None:
    files = _render()
    for name in ("asterisk.conf", "pjsip.conf", "extensions.conf", "queues.conf", "manager.conf",
                 "musiconhold.conf", "modules.conf", "logger.conf", "rtp.conf", "cdr.conf"):  # fmt: skip
        assert name in files
    assert not any("localhost" in text for text in files.values())


def test_sip_listens_on_loopback_and_tells_the_carrier_from_testers() -> None:
    settings = load_settings()
    pjsip = _render(settings)["pjsip.conf"]
    assert f"bind = 127.0.0.1:{settings.sip.port}" in pjsip
    assert "allow = alaw,ulaw" in pjsip  # A-law first on the trunk
    assert "dtmf_mode = rfc4733" in pjsip
    assert f"match = {settings.sip.sbc_address}" in pjsip and f"match = {settings.sip.tester_address}" in pjsip


def test_the_same_address_for_carrier_and_testers_is_refused() -> None:
    settings = load_settings()
    clash = settings.model_copy(update={"sip": settings.sip.model_copy(update={"sbc_address": "127.0.0.1"})})
    with pytest.raises(ConfigError, match="sbc_address"):
        _render(clash)


def test_agents_phones_are_rung_at_their_address_and_told_apart_by_it() -> None:
    settings = load_settings(sip={"agents": [{"name": "ana", "address": "127.0.0.3", "port": 5071}]})
    pjsip = _render(settings)["pjsip.conf"]
    assert "contact = sip:ana@127.0.0.3:5071" in pjsip and "match = 127.0.0.3" in pjsip
    assert "[agent-ana](endpoint-defaults)\ncontext = sac-agent" in pjsip  # it dials nothing by itself
    for clash in ("127.0.0.1", settings.sip.sbc_address):  # the test callers', the carrier's
        shared = load_settings(sip={"agents": [{"name": "ana", "address": clash}]})
        with pytest.raises(ConfigError, match=r"sip.agents\[ana\].address"):
            _render(shared)


def test_every_form_of_the_sac_number_goes_to_the_ivr_with_a_fallback() -> None:
    settings = load_settings()
    dialplan = _render(settings)["extensions.conf"]
    forms = ("30033336", "+5530033336", "5530033336", "030033336", "_0XX30033336")
    with_area_code = ("3130033336", "+553130033336", "553130033336", "03130033336", "_0XX3130033336")
    for form in (*forms, *with_area_code):
        assert f"exten => {form},1,Goto(sac-ivr,${{EXTEN}},1)" in dialplan
    # The key (ivr/agi/admission.py) and the call's linkedid (ivr/agi/channel.py: the IVR need not ask for it).
    assert f"AGI(agi://127.0.0.1:{settings.agi.port}/sac?key={AGI_KEY}&linkedid=${{CHANNEL(linkedid)}})" in dialplan
    assert "TIMEOUT(absolute)" in dialplan
    assert '"${AGISTATUS}" = "FAILURE" | "${IVR_DONE}" = ""' in dialplan
    # The negotiation line as the trunk dials it: national form, from the E.164 setting.
    assert "exten => 3131958012,1,Dial(PJSIP/${EXTEN}@carrier" in dialplan


def test_a_called_back_customer_pressing_the_queue_key_stays_in_line_at_their_place() -> None:
    dialplan = _render()["extensions.conf"]
    key = dialplan.split("[sac-queue-key]")[1].split("\n[")[0]
    rules = [line for line in key.splitlines() if line.startswith(("exten", " same"))]
    # before the fallback
    assert rules[0] == 'exten => 1,1,GotoIf($["${IVR_CALLBACK_QUEUE}" != ""]?sac-callback,queue,1)'
    callback = dialplan.split("[sac-callback]")[1].split("\n[")[0]
    assert "exten => queue,1,Queue(${IVR_CALLBACK_QUEUE},,,,900,,,,${QUEUEPOSITION})" in callback


def test_caller_id_is_filtered_to_printable_characters_before_the_ivr() -> None:
    dialplan = _render()["extensions.conf"]
    printable = r"\x20-\x7e\x80-\xff"  # FILTER ranges (func_strings.c): no control characters
    number = f"Set(CALLERID(num)=${{FILTER({printable},${{CALLERID(num)}})}})"
    name = f"Set(CALLERID(name)=${{FILTER({printable},${{CALLERID(name)}})}})"
    assert dialplan.index(number) < dialplan.index("AGI(agi://")
    assert dialplan.index(name) < dialplan.index("AGI(agi://")


def test_queues_never_hold_callers_without_agents() -> None:
    queues = _render()["queues.conf"]
    for queue in ("technical", "billing", "commercial"):
        assert f"[{queue}](sac-queue)" in queues
    assert "joinempty = paused,penalty,invalid,unavailable" in queues
    assert "leavewhenempty = paused,penalty,invalid,unavailable" in queues


def test_ami_is_loopback_only_with_the_secret_from_settings() -> None:
    manager = _render()["manager.conf"]
    assert "bindaddr = 127.0.0.1" in manager
    assert "deny = 0.0.0.0/0.0.0.0" in manager and "permit = 127.0.0.1/255.255.255.255" in manager
    assert f"secret = {SECRET}" in manager
    assert "channelvars = IVR_PROTOCOL" in manager


def test_an_empty_ami_secret_is_refused() -> None:
    with pytest.raises(ConfigError, match="IVR_AMI__SECRET"):
        conf.render(load_settings(), conf.Layout.shipped(), "", AGI_KEY, "/moh", "/modules")


def test_modules_are_loaded_explicitly() -> None:
    modules = _render()["modules.conf"]
    assert "autoload = no" in modules
    for module in "chan_pjsip res_agi app_read app_queue app_dial codec_alaw cdr_custom".split():
        assert f"load = {module}.so" in modules


def test_the_shipped_log_leaves_out_the_dialplan_steps_which_carry_the_secret_and_callers_data() -> None:
    # verbose(3) is "Executing [...] AGI(..., agi://...?key=<secret>...)", "Set(..., CALLERID(num)=<number>)"...
    logs = [line for line in _render()["logger.conf"].splitlines() if "=>" in line and not line.startswith(";")]
    assert logs == ["messages.log => notice,warning,error,verbose(2)", "console => notice,warning,error"]


def test_write_leaves_only_our_files(tmp_path: Path) -> None:
    etc = tmp_path / "etc"
    (etc / "manager.d").mkdir(parents=True)
    (etc / "sip.conf").write_text("; stock sample\n")
    conf.write(etc, {"pjsip.conf": "; ours\n"})
    assert sorted(p.name for p in etc.iterdir()) == ["pjsip.conf"]
    assert (etc / "pjsip.conf").read_text() == "; ours\n"


def test_manager_conf_is_0600_from_before_its_secret_is_written(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    modes: dict[str, int] = {}
    fdopen = os.fdopen

    def watched(fd: int, *args: Any, **kwargs: Any) -> Any:  # the mode the file has before anything is written
        modes[os.readlink(f"/proc/self/fd/{fd}").rsplit("/", 1)[1]] = stat.S_IMODE(os.fstat(fd).st_mode)
        return fdopen(fd, *args, **kwargs)

    monkeypatch.setattr(os, "fdopen", watched)
    umask = os.umask(0o022)
    try:
        conf.write(tmp_path, {"manager.conf": f"secret = {SECRET}\n", "pjsip.conf": "; ours\n"})
    finally:
        os.umask(umask)
    assert modes == {".manager.conf.tmp": 0o600, ".pjsip.conf.tmp": 0o640}
    assert stat.S_IMODE((tmp_path / "manager.conf").stat().st_mode) == 0o600
    assert stat.S_IMODE((tmp_path / "pjsip.conf").stat().st_mode) == 0o640


def test_private_instances_get_their_own_directories() -> None:
    layout = conf.Layout.private("e2e-1")
    assert all(d.startswith("/srv/sac-ivr/e2e-1/") for d in layout.all())
    with pytest.raises(ValueError, match="instance name"):
        conf.Layout.private("../etc")


@pytest.mark.parametrize(
    ("section", "field", "value", "message"),
    [
        ("sip", "host", "localhost", "sip.host: expected an IP address"),
        ("ami", "username", "sac;ivr", "ami.username: must not contain"),
    ],
)
def test_values_that_would_corrupt_the_configuration_are_refused(
    section: str, field: str, value: str, message: str
) -> None:
    settings = load_settings()
    part = getattr(settings, section).model_copy(update={field: value})
    with pytest.raises(ConfigError, match=message):
        _render(settings.model_copy(update={section: part}))


def test_a_secret_with_a_comment_sign_is_refused() -> None:
    with pytest.raises(ConfigError, match="ami.secret"):
        conf.render(load_settings(), conf.Layout.shipped(), "abc;def", AGI_KEY, "/moh", "/modules")
