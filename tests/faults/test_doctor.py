"""`ivr doctor` against real peers on 127.0.0.1: every check ok when they are healthy, and a plain FAIL or
warn naming the fix when one is broken."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiosmtpd.smtp import AuthResult, LoginPassword

from integrations.catalog import declared_registry
from ivr.cli import main
from ivr.clock import system_clock
from ivr.config import Settings, load_settings
from ivr.doctor import (
    Status,
    check_ami,
    check_carrier_api,
    check_database,
    check_fastagi,
    check_flows,
    check_prompts,
    check_screen_pop,
    check_smtp,
    check_speech,
    check_whatsapp,
    diagnose,
    failed,
    render,
)
from ivr.flows.library import FlowLibrary
from ivr.voice.build import build_prompts
from ivr.voice.catalogue import Catalogue
from tests.ami.fake_ami import FakeAmi
from tests.email.conftest import self_signed_tls
from tests.http.carrier_fake import TOKEN, CarrierFake, Fault
from tests.screenpop.conftest import SECRET, Receiver
from tests.speech.fake_speech import FakeSpeech

from .conftest import SmtpServer, free_port, seeded_sqlite

T = 2.0  # each check's bound in these tests
FLOW = """flow: mini
start: hi
nodes:
  hi:
    play: hello
    next: agent
  agent:
    queue: {name: technical, no_agents: bye, timeout: bye}
  bye:
    hangup: hello
"""


@pytest.fixture
async def fastagi() -> AsyncIterator[int]:
    """Something listening where `ivr serve` would (the doctor only connects)."""
    server = await asyncio.start_server(lambda reader, writer: writer.close(), "127.0.0.1", 0)
    yield server.sockets[0].getsockname()[1]
    server.close()
    await server.wait_closed()


@pytest.fixture
async def graph() -> AsyncIterator[str]:
    """The Graph API's record of the business number (GET /{version}/{phone number id}); its base URL."""

    async def number(request: web.Request) -> web.Response:
        if request.headers.get("Authorization") != "Bearer wa-token":
            return web.json_response({"error": {"code": 190, "message": "Invalid OAuth access token"}}, status=401)
        return web.json_response({"display_phone_number": "+55 11 3003-3336", "verified_name": "American Tower Fibra",
                                  "id": request.match_info["number_id"]})  # fmt: skip

    app = web.Application()
    app.router.add_get("/v21.0/{number_id}", number)
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    yield f"http://127.0.0.1:{runner.addresses[0][1]}"
    await runner.cleanup()


@pytest.fixture
def built(tmp_path: Path) -> tuple[Path, Path]:
    """A one-prompt catalogue with its audio built, and a flow directory published from it."""
    prompts, flows = tmp_path / "prompts", tmp_path / "flows"
    prompts.mkdir()
    flows.mkdir()
    (prompts / "p.yaml").write_text("hello: Olá.\n", encoding="utf-8")
    (flows / "mini.yaml").write_text(FLOW, encoding="utf-8")
    catalogue = Catalogue.load(prompts)
    build_prompts(catalogue, prompts, workers=1)
    library = FlowLibrary(tmp_path / "published", catalogue=catalogue, registry=declared_registry(), clock=system_clock)
    assert library.publish(flows).ok
    return prompts, flows


@pytest.fixture
async def healthy(
    tmp_path: Path,
    built: tuple[Path, Path],
    ami: tuple[FakeAmi, int],
    fastagi: int,
    carrier: CarrierFake,
    smtp: SmtpServer,
    speech: FakeSpeech,
    graph: str,
) -> dict[str, Any]:
    """Settings (as load_settings overrides) pointing at healthy peers."""
    prompts, flows = built
    (tmp_path / "recordings").mkdir()  # none kept yet (a file's age is the kernel's, not the test's clock)
    return {
        "database_url": await seeded_sqlite(tmp_path),
        "var_dir": tmp_path,
        "prompts_dir": prompts,
        "flows_dir": flows,
        "ami": {"port": ami[1], "secret": "ami-s3cret"},
        "agi": {"port": fastagi},
        "backend": "http",
        "carrier_api": {"base_url": carrier.base_url, "token": TOKEN},
        "email": {"host": "127.0.0.1", "port": smtp.port, "security": "none"},
        "speech": {"endpoint": speech.endpoint, "insecure": True},
        "whatsapp": {"base_url": graph, "api_version": "v21.0", "phone_number_id": "123456", "token": "wa-token"},
        "asterisk": {"recordings_dir": tmp_path / "recordings"},
    }


def with_(base: dict[str, Any], **changes: Any) -> Settings:
    return load_settings(**{**base, **changes})


async def test_every_check_is_ok_when_every_peer_is_healthy(healthy: dict[str, Any]) -> None:
    findings = await diagnose(load_settings(**healthy), timeout_s=T)
    assert [(f.check, f.status) for f in findings] == [
        (name, Status.OK)
        for name in (
            "settings", "database", "ami", "fastagi", "carrier_api", "smtp", "whatsapp", "speech", "screen_pop",
            "prompts", "flows", "recordings",
        )
    ], render(findings)
    assert not failed(findings)
    text = render(findings)
    assert "3 call(s) in progress" in text and "schema at head" in text and "+55 11 3003-3336" in text


async def test_the_command_exits_non_zero_and_names_what_failed(
    healthy: dict[str, Any], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    down = free_port()
    config = tmp_path / "ivr.yaml"
    keys = ("database_url", "prompts_dir", "flows_dir")
    lines = [f"{key}: {healthy[key]}" for key in keys] + [
        f"var_dir: {tmp_path}",
        f"agi: {{port: {down}}}",
        f"ami: {{port: {healthy['ami']['port']}, secret: ami-s3cret}}",
    ]
    config.write_text("\n".join(lines) + "\n", encoding="utf-8")
    monkeypatch.setenv("IVR_CONFIG", str(config))
    assert await asyncio.to_thread(main, ["doctor", "--timeout", str(T)]) == 1  # the peers run in this loop
    out = capsys.readouterr().out
    assert f"FAIL fastagi      nothing listens on 127.0.0.1:{down}" in out and "start `ivr serve`" in out
    assert "ok   database" in out and "ok   ami" in out and f"loaded from {config}" in out


@pytest.mark.parametrize(
    ("setting", "expected"),
    [
        ("ami:\n  prot: 5039\n", "{config}: ami.prot: no such setting (a typo?)"),
        ("ami:\n  port: [5039\n", "{config}: not valid YAML"),
        ("carrier_api: {base_url: carrier.example}\n", "{config}: carrier_api.base_url: Value error, expected an http"),
    ],
    ids=["typo", "not YAML", "bad value"],
)
def test_a_broken_configuration_file_is_named_with_what_was_expected(
    setting: str, expected: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    config = tmp_path / "ivr.yaml"
    config.write_text(setting, encoding="utf-8")
    monkeypatch.setenv("IVR_CONFIG", str(config))
    assert main(["doctor"]) == 1
    out = capsys.readouterr().out
    assert out.startswith("FAIL settings") and expected.format(config=config) in out


def test_a_bad_environment_value_names_the_variable(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("IVR_AMI__PORT", "cinco mil")
    assert main(["doctor"]) == 1
    assert "environment variable IVR_AMI__PORT: Input should be a valid integer" in capsys.readouterr().out


# --- one broken peer at a time ----------------------------------------------------------------------


async def test_database_missing_or_not_migrated(healthy: dict[str, Any], tmp_path: Path) -> None:
    missing = await check_database(with_(healthy, database_url=f"sqlite+aiosqlite:///{tmp_path / 'none.sqlite3'}"), T)
    assert missing.status is Status.FAIL and "no database file" in missing.detail and "ivr db upgrade" in missing.detail
    (tmp_path / "empty.sqlite3").touch()  # an empty file is an empty SQLite database: no schema
    empty_url = f"sqlite+aiosqlite:///{tmp_path / 'empty.sqlite3'}"
    bare = await check_database(with_(healthy, database_url=empty_url), T)
    assert bare.status is Status.FAIL and "schema at nothing" in bare.detail and "ivr db upgrade" in bare.detail


async def test_an_unseeded_store_is_a_warning_with_the_builtin_backend(healthy: dict[str, Any], tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'unseeded.sqlite3'}"
    assert await asyncio.to_thread(main, ["db", "upgrade", "--url", url]) == 0
    finding = await check_database(with_(healthy, database_url=url, backend="builtin"), T)
    assert finding.status is Status.WARN and "ivr db seed" in finding.detail


async def test_postgres_down_is_a_fail_naming_the_url_without_password(healthy: dict[str, Any]) -> None:
    url = f"postgresql+asyncpg://ivr:secret-pw@127.0.0.1:{free_port()}/ivr"
    finding = await check_database(with_(healthy, database_url=url), T)
    assert finding.status is Status.FAIL and "IVR_DATABASE_URL" in finding.detail
    assert "secret-pw" not in finding.detail


async def test_ami_wrong_secret_or_nobody_there(healthy: dict[str, Any]) -> None:
    refused = await check_ami(with_(healthy, ami={**healthy["ami"], "secret": "wrong"}), T)
    assert refused.status is Status.FAIL and "refused" in refused.detail and "manager.conf" in refused.detail
    absent = await check_ami(with_(healthy, ami={"port": free_port(), "secret": "x"}), T)
    assert absent.status is Status.FAIL and "is Asterisk running?" in absent.detail


async def test_ami_that_logs_in_but_never_answers(healthy: dict[str, Any], ami: tuple[FakeAmi, int]) -> None:
    ami[0].responders.pop("corestatus")  # a hung Asterisk: the login works, actions go unanswered
    finding = await check_ami(with_(healthy), T)
    assert finding.status is Status.FAIL and "CoreStatus: no reply" in finding.detail


async def test_fastagi_not_listening(healthy: dict[str, Any]) -> None:
    finding = await check_fastagi(with_(healthy, agi={"port": free_port()}), T)
    assert finding.status is Status.FAIL and "start `ivr serve`" in finding.detail


@pytest.mark.parametrize(
    ("fault", "expected"),
    [(Fault.ERROR_500, "HTTP 500"), (Fault.WRONG_SCHEMA, "does not speak carrier_api.openapi.yaml")],
)
async def test_carrier_api_that_errs_or_breaks_the_contract(
    healthy: dict[str, Any], carrier: CarrierFake, fault: Fault, expected: str
) -> None:
    carrier.misbehave("GET /customers", fault)
    finding = await check_carrier_api(with_(healthy), T)
    assert finding.status is Status.FAIL and expected in finding.detail


async def test_carrier_api_wrong_token_or_down(healthy: dict[str, Any]) -> None:
    wrong = await check_carrier_api(with_(healthy, carrier_api={**healthy["carrier_api"], "token": "nope"}), T)
    assert wrong.status is Status.FAIL and "HTTP 401" in wrong.detail and "IVR_CARRIER_API__TOKEN" in wrong.detail
    base = f"http://127.0.0.1:{free_port()}/v1"
    down = await check_carrier_api(with_(healthy, carrier_api={"base_url": base}), T)
    assert down.status is Status.FAIL and f"is {base} up and reachable?" in down.detail


async def test_smtp_down_or_not_configured(healthy: dict[str, Any]) -> None:
    down = await check_smtp(with_(healthy, email={"host": "127.0.0.1", "port": free_port(), "security": "none"}), T)
    assert down.status is Status.FAIL and "email.host" in down.detail
    unset = await check_smtp(with_(healthy, email={}), T)
    assert unset.status is Status.WARN and "IVR_EMAIL__HOST" in unset.detail


async def test_smtp_starttls_and_login(healthy: dict[str, Any], tmp_path: Path) -> None:
    context, cert = self_signed_tls(tmp_path)

    def authenticate(server: Any, session: Any, envelope: Any, mechanism: str, data: Any) -> AuthResult:
        return AuthResult(success=isinstance(data, LoginPassword) and data.password == b"right", handled=False)

    relay = SmtpServer(tls_context=context, require_starttls=True, auth_required=True, authenticator=authenticate)
    await relay.start()
    try:
        email = {"host": "127.0.0.1", "port": relay.port, "security": "starttls", "ca_file": cert}
        email["username"] = "sac@example.com"
        ok = await check_smtp(with_(healthy, email={**email, "password": "right"}), T)
        assert ok.status is Status.OK and "STARTTLS, login as s" in ok.detail, ok.detail
        refused = await check_smtp(with_(healthy, email={**email, "password": "wrong"}), T)
        assert refused.status is Status.FAIL and "IVR_EMAIL__PASSWORD" in refused.detail
        untrusted = await check_smtp(with_(healthy, email={**email, "password": "right", "ca_file": None}), T)
        assert untrusted.status is Status.FAIL and "CERTIFICATE_VERIFY_FAILED" in untrusted.detail
    finally:
        await relay.stop()


async def test_whatsapp_down_wrong_token_or_not_configured(healthy: dict[str, Any]) -> None:
    whatsapp = healthy["whatsapp"]
    refused = await check_whatsapp(with_(healthy, whatsapp={**whatsapp, "token": "old"}), T)
    assert refused.status is Status.FAIL and "renew IVR_WHATSAPP__TOKEN" in refused.detail
    down = await check_whatsapp(with_(healthy, whatsapp={**whatsapp, "base_url": f"http://127.0.0.1:{free_port()}"}), T)
    assert down.status is Status.FAIL and "check whatsapp.base_url" in down.detail
    unset = await check_whatsapp(with_(healthy, whatsapp={}), T)
    assert unset.status is Status.WARN and "IVR_WHATSAPP__TOKEN" in unset.detail


async def test_speech_endpoint_down(healthy: dict[str, Any]) -> None:
    endpoint = f"127.0.0.1:{free_port()}"
    finding = await check_speech(with_(healthy, speech={"endpoint": endpoint, "insecure": True}), T)
    assert finding.status is Status.FAIL and f"gRPC channel to {endpoint} not ready" in finding.detail


async def test_prompts_missing_or_changed(healthy: dict[str, Any], built: tuple[Path, Path]) -> None:
    prompts, _ = built
    (prompts / "p.yaml").write_text("hello: Olá, bom dia.\n", encoding="utf-8")
    changed = await check_prompts(with_(healthy), T)
    assert changed.status is Status.WARN and "changed since" in changed.detail and "ivr prompts build" in changed.detail
    (prompts / "p.yaml").write_text("hello: Olá, bom dia.\nbye: Tchau.\n", encoding="utf-8")
    missing = await check_prompts(with_(healthy), T)
    assert missing.status is Status.FAIL and "1 of 2 prompts have no audio (e.g. bye)" in missing.detail


async def test_flows_unpublished_changes_or_nothing_published(
    healthy: dict[str, Any], built: tuple[Path, Path], tmp_path: Path
) -> None:
    _, flows = built
    (flows / "mini.yaml").write_text(FLOW.replace("next: agent", "next: agent  # changed"), encoding="utf-8")
    changed = await check_flows(with_(healthy), T)
    assert changed.status is Status.WARN and "changes not published" in changed.detail
    fresh = await check_flows(with_(healthy, var_dir=tmp_path / "elsewhere"), T)
    assert fresh.status is Status.WARN and "nothing published yet" in fresh.detail
    (flows / "mini.yaml").write_text(FLOW.replace("queue:", "hangup: hello\n    no_queue:"), encoding="utf-8")
    broken = await check_flows(with_(healthy, var_dir=tmp_path / "elsewhere"), T)
    assert broken.status is Status.FAIL and "fails its checks" in broken.detail


async def test_the_screen_pop_receiver_answers_refuses_the_secret_or_is_down(healthy: dict[str, Any]) -> None:
    desk = Receiver(system_clock)  # a desktop checking signatures and timestamps against its own clock
    await desk.start()
    try:
        pops = {"url": desk.url, "secret": SECRET}
        ok = await check_screen_pop(with_(healthy, screen_pop=pops), T)
        assert ok.status is Status.OK and desk.url in ok.detail
        assert [r.pop for r in desk.shown] == [{"event": "ping"}] and desk.refused == []
        wrong = await check_screen_pop(with_(healthy, screen_pop={**pops, "secret": "another-secret-entirely"}), T)
        assert wrong.status is Status.FAIL and "HTTP 401" in wrong.detail and "IVR_SCREEN_POP__SECRET" in wrong.detail
        assert desk.refused == ["bad signature"]
    finally:
        await desk.stop()
    down = await check_screen_pop(with_(healthy, screen_pop={"url": desk.url, "secret": SECRET}), T)
    assert down.status is Status.FAIL and "check screen_pop.url" in down.detail
    off = await check_screen_pop(with_(healthy, screen_pop={}), T)
    assert off.status is Status.OK and "off" in off.detail
