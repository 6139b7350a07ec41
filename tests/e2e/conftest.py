"""End-to-end harness: one real Asterisk 22 for the whole session, SIPp callers, FastAGI and AMI.

The session's Asterisk is a private instance on free loopback ports (its own etc/run/log/spool
directories in the shared root, RECORD FILE's directory among them), so it runs beside a developer's
`ivr asterisk up` and beside other sessions (the shards of `--e2e-shard`, tests/e2e/shards.py) without
touching them; the root's shared files (prompts, sounds) are left alone while another session is up. It
fails the tests, never skips them, when it cannot start. Everything it starts it stops.

Fixtures:
  asterisk        session: E2EAsterisk (settings, instance, call(script) -> CallResult)
  sessions        session: a lock file every e2e session holds shared; a `solo` test holds it alone
  agi             FastAgiStub listening on the instance's FastAGI port (next_session())
  ami             Ami logged in to the instance (action(), wait_event())
  queue_agent     a queue member (Local channel that answers) in the fallback queue while the test runs
                  (BRIEF_AGENT_INTERFACE: one who answers and hangs up first)
  ivr             module: the real IVR (`ivr serve` subprocess, IvrProcess) on a demo-seeded store; a
                  module using it must not use `agi` (both listen on the instance's FastAGI port)
  stored          StoreReader over that IVR's store
  record_timing   record_timing(name, seconds): listed with the test durations at the end
"""

from __future__ import annotations

import fcntl
import os
import secrets
import shutil
import socket
import tempfile
import time
from collections.abc import AsyncIterator, Callable, Iterator, Mapping
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

import pytest
from pydantic import SecretStr

from ivr.asterisk import root as asterisk_root
from ivr.asterisk import sipp
from ivr.asterisk.conf import Layout
from ivr.asterisk.instance import Instance
from ivr.config import AgentPhone, Settings, load_settings
from ivr.voice.build import build_prompts
from ivr.voice.catalogue import Catalogue

from . import fastagi
from .ami import Ami
from .ivr_process import IvrProcess
from .shards import WHOLE, Shard
from .store import StoreReader

#: Agents' SIP phones (SIPp answering, each on a loopback address of its own): queue member PJSIP/agent-<name>.
AGENT_PHONES = {"ana": "127.0.0.3", "bia": "127.0.0.4"}
AGENT_INTERFACE = "Local/agent@sac-test-agent/n"
BRIEF_AGENT_INTERFACE = "Local/brief@sac-test-agent/n"
RINGING_AGENT_INTERFACE = "Local/ringing@sac-test-agent/n"
# Stand-ins for agents' phones: one answers at once and stays on the line (bounded), one answers and hangs
# up first a second later, one rings without answering (the caller keeps waiting).
WAITING_CALLER = "Local/waiting@sac-test-agent/n"
TEST_EXTENSIONS = """\
[sac-test-agent]
exten => agent,1,Answer()
 same => n,Wait(60)
 same => n,Hangup()
exten => brief,1,Answer()
 same => n,Wait(1)
 same => n,Hangup()
exten => ringing,1,Wait(30)
 same => n,Hangup()
; A caller already waiting in the technical queue (placed with AMI Originate).
exten => waiting,1,Answer()
 same => n,Queue(technical,,,,90)
 same => n,Hangup()
"""

#: The harness's own AMI user (manager_local.conf, which the shipped manager.conf includes when present): it
#: hangs up channels and watches every event, which the IVR's least-privilege user may not.
HARNESS_AMI_USER = "sac-e2e-harness"
HARNESS_AMI_SECRET = secrets.token_urlsafe(16)


def harness_manager(settings: Settings) -> str:
    host = settings.ami.host
    return (
        f"[{HARNESS_AMI_USER}]\nsecret = {HARNESS_AMI_SECRET}\ndeny = 0.0.0.0/0.0.0.0\n"
        f"permit = {host}/255.255.255.255\nread = all\nwrite = all\n"
    )


#: Where Layout.private puts the instances, in the root.
INSTANCES = "srv/sac-ivr"

_timings: list[tuple[str, float]] = []
RecordTiming = Callable[[str, float], None]


#: The tests' own log of every dialplan step (verbose 3: what a prompt played, a queue told), which the
#: shipped messages.log leaves out (asterisk_conf/logger.conf).
TRACE_LOG = "trace.log"


@dataclass
class E2EAsterisk:
    settings: Settings
    instance: Instance

    def trace(self) -> list[str]:
        """Asterisk's `TRACE_LOG` so far, a line each."""
        log = self.instance.host_path(f"{self.instance.layout.log}/{TRACE_LOG}")
        return log.read_text(errors="replace").splitlines()

    async def call(
        self, script: sipp.CallScript, timeout_s: float = 20.0, from_carrier: bool = False
    ) -> sipp.CallResult:
        """A SIPp call into Asterisk, as a local tester or (``from_carrier``) through the carrier's SBC."""
        sip = self.settings.sip
        local_ip = sip.sbc_address if from_carrier else sip.tester_address
        return await sipp.place_call(script, sip.host, sip.port, local_ip=local_ip, timeout_s=timeout_s)

    async def answer_on_trunk(self, timeout_s: float = 20.0) -> sipp.CallResult:
        """The far end of the carrier trunk (the SBC's address and port) answering one call."""
        sip = self.settings.sip
        return await sipp.answer_call(sip.sbc_address, sip.sbc_port, timeout_s=timeout_s)

    async def answer_as_agent(self, name: str, timeout_s: float = 20.0) -> sipp.CallResult:
        """Agent `name`'s SIP phone (SIPp on its own address) answering one call and holding it until
        Asterisk hangs up."""
        (phone,) = [agent for agent in self.settings.sip.agents if agent.name == name]
        return await sipp.answer_call(phone.address, phone.port, timeout_s=timeout_s)


def free_port(kind: socket.SocketKind) -> int:
    with socket.socket(socket.AF_INET, kind) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def e2e_settings(layout: Layout | None = None, shard: Shard = WHOLE) -> Settings:
    """The settings with free loopback ports for a private Asterisk (also bench/capacity_calls.py's); with
    `layout`, RECORD FILE writes in that instance's spool (a test counting the files left sees its own
    calls' only), and a `shard` takes its share of the RTP port range."""
    base = load_settings()
    tcp = socket.SOCK_STREAM
    # SIP ports held from sipp's pool for the session: outside the kernel's ephemeral range, where a port
    # left unbound until an agent's SIPp answers could be taken by any process meanwhile.
    sip_port = sipp.SIP_PORTS.take
    agents = [AgentPhone(name=name, address=address, port=sip_port()) for name, address in AGENT_PHONES.items()]
    rtp_start, rtp_end = shard.share(base.sip.rtp_start, base.sip.rtp_end)
    recordings = f"{layout.spool}/sac-recordings" if layout else base.asterisk.recordings_dir_in_asterisk
    return base.model_copy(
        update={
            "sip": base.sip.model_copy(
                update={"port": sip_port(), "sbc_port": sip_port(), "agents": agents,
                        "rtp_start": rtp_start, "rtp_end": rtp_end}
            ),  # fmt: skip
            "ami": base.ami.model_copy(
                update={"port": free_port(tcp), "secret": SecretStr(secrets.token_urlsafe(16))}
            ),
            "agi": base.agi.model_copy(
                update={"port": free_port(tcp), "secret": SecretStr(secrets.token_urlsafe(16))}
            ),
            "asterisk": base.asterisk.model_copy(update={"recordings_dir_in_asterisk": recordings}),
        }
    )


def reap_stale_instances(root: Path) -> None:
    """Stop and remove instances left by test sessions that died (their pid is in the name)."""
    for path in sorted((root / INSTANCES).glob("e2e-*")):
        owner = path.name.split("-")[1]
        if owner.isdigit() and not Path(f"/proc/{owner}").exists():
            discard(Instance(root, Layout.private(path.name)))


def discard(instance: Instance) -> None:
    """Stop the instance and remove its directories."""
    instance.stop()
    if (directory := instance.host_path(instance.layout.etc).parent).exists():
        shutil.rmtree(directory)


@contextmanager
def root_lock(root: Path, purpose: str, operation: int) -> Iterator[TextIO]:
    """A lock file of the e2e sessions sharing `root` (beside it: debootstrap must find no root yet), held
    with `operation` (fcntl.LOCK_SH or LOCK_EX) until the block ends."""
    path = root.with_name(f"{root.name}.e2e-{purpose}.lock")
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a") as lock:
        fcntl.flock(lock, operation)
        yield lock  # closing the file releases the lock


def provision(settings: Settings, layout: Layout, extra: dict[str, str]) -> None:
    """Our configuration in `layout`, and the root's shared files (prompts, hold music) unless another
    session's Asterisk is up: that session put them in place, and replacing them would take prompts away
    from under its calls."""
    if any((settings.asterisk_root / INSTANCES).glob("e2e-*")):  # live ones only, once reaped
        asterisk_root.install_config(settings, layout, extra)
        settings.recordings_path.mkdir()
    else:
        asterisk_root.provision(settings, layout, extra=extra)


@pytest.fixture(scope="session")
def sessions() -> Iterator[TextIO]:
    """Held shared by each e2e session while it runs, so that a `solo` test can wait for the others to end."""
    with root_lock(load_settings().asterisk_root, "sessions", fcntl.LOCK_SH) as lock:
        yield lock


@pytest.fixture(autouse=True)
def _solo(request: pytest.FixtureRequest) -> None:
    """A `solo` test waits until no other e2e session runs, and keeps it so until its own session ends (the
    shards run it last)."""
    if request.node.get_closest_marker("solo"):
        started = time.monotonic()
        fcntl.flock(request.getfixturevalue("sessions"), fcntl.LOCK_EX)
        _timings.append(("  solo: waited for the other sessions", time.monotonic() - started))


@pytest.fixture(scope="session")
def asterisk(pytestconfig: pytest.Config, sessions: TextIO) -> Iterator[E2EAsterisk]:
    """The session's Asterisk. Sessions pick their ports, provision and start their Asterisk in turn: one's
    Asterisk has bound its ports before the next picks its own, and the root's shared files are written
    by one at a time."""
    layout = Layout.private(f"e2e-{os.getpid()}-{secrets.token_hex(3)}")
    root = load_settings().asterisk_root
    instance = Instance(root, layout)
    with root_lock(root, "start", fcntl.LOCK_EX):
        started = time.monotonic()
        try:
            reap_stale_instances(root)
            settings = e2e_settings(layout, pytestconfig.getoption("e2e_shard"))
            voice = settings.voice
            built = build_prompts(  # incremental: only prompts whose text changed are synthesised again
                Catalogue.load(settings.prompts_dir), settings.prompts_dir,
                voice=voice.espeak_voice, words_per_minute=voice.words_per_minute, workers=voice.build_workers,
            )  # fmt: skip
            _timings.append((f"prompts build ({len(built.built)} built)", built.seconds))
            extra = {
                "extensions_local.conf": TEST_EXTENSIONS,
                "manager_local.conf": harness_manager(settings),
                "logger_local.conf": f"{TRACE_LOG} => verbose(3)\n",
            }
            provision(settings, layout, extra)
            instance.start()
        except Exception as exc:  # noqa: BLE001 - any reason is reported, and the session fails, never skips
            discard(instance)  # another session must not take it for one up, whose files are in place
            pytest.fail(f"cannot provision/start Asterisk for the e2e tests: {exc}", pytrace=False)
        _timings.append(("Asterisk provision + start", time.monotonic() - started))
    try:
        yield E2EAsterisk(settings, instance)
    finally:
        discard(instance)


@pytest.fixture
async def agi(asterisk: E2EAsterisk) -> AsyncIterator[fastagi.FastAgiStub]:
    async with fastagi.serve(asterisk.settings.agi.host, asterisk.settings.agi.port) as stub:
        yield stub


@asynccontextmanager
async def ami_session(asterisk: E2EAsterisk) -> AsyncIterator[Ami]:
    """An AMI connection to the instance, logged in as the harness's user, closed at the end."""
    s = asterisk.settings.ami
    client = await Ami.connect(s.host, s.port, HARNESS_AMI_USER, HARNESS_AMI_SECRET)
    try:
        yield client
    finally:
        await client.close()


@asynccontextmanager
async def queue_member(
    ami: Ami, queue: str, interface: str = AGENT_INTERFACE, *, state_interface: str | None = None
) -> AsyncIterator[str]:
    """`interface` logged in to `queue` (AMI QueueAdd) until the block ends; its availability follows the
    device `state_interface` when given (the queue sees a Local channel stand-in as "not in use" throughout)."""
    state = {"StateInterface": state_interface} if state_interface else {}
    added = await ami.action("QueueAdd", Queue=queue, Interface=interface, MemberName="e2e agent", **state)
    assert added.get("Response") == "Success", added
    try:
        yield interface
    finally:
        await ami.action("QueueRemove", Queue=queue, Interface=interface)


@pytest.fixture
async def ami(asterisk: E2EAsterisk) -> AsyncIterator[Ami]:
    async with ami_session(asterisk) as client:
        yield client


@pytest.fixture
async def queue_agent(asterisk: E2EAsterisk, ami: Ami) -> AsyncIterator[str]:
    async with queue_member(ami, asterisk.settings.asterisk.fallback_queue) as interface:
        yield interface


@pytest.fixture(scope="module")
def ivr(asterisk: E2EAsterisk) -> Iterator[IvrProcess]:
    with serve_ivr(asterisk) as process:
        yield process


@contextmanager
def serve_ivr(
    asterisk: E2EAsterisk, env: Mapping[str, str] | None = None, database: Path | None = None
) -> Iterator[IvrProcess]:
    """`ivr serve` (with extra IVR_ settings `env`) for the e2e Asterisk; stopped cleanly at the end. With
    `database` (another unit's), a second unit on the same store: nothing is seeded again."""
    directory = Path(tempfile.mkdtemp(prefix="sac-e2e-ivr-"))
    process = IvrProcess(asterisk.settings, directory, env, database=database)
    try:
        try:
            if database is None:
                process.seed()
            _timings.append(("ivr serve start (publishes the flows)", process.start()))
        except Exception as exc:  # noqa: BLE001 - any reason is reported, and the tests fail, never skip
            pytest.fail(f"cannot start the IVR for the e2e tests: {exc}", pytrace=False)
        yield process
        status = process.stop()  # SIGTERM: it drains its calls (none should be left) and exits
        assert status == 0, f"`ivr serve` exited with {status} on SIGTERM (calls cut by the drain)"
    finally:
        process.kill()  # nothing left to kill once it has stopped
        shutil.rmtree(directory)


@pytest.fixture(scope="module")
def stored(ivr: IvrProcess) -> StoreReader:
    return StoreReader(ivr.database)


@pytest.fixture
def record_timing() -> RecordTiming:
    """Report a measured duration in the session's "e2e timings" summary."""
    return lambda name, seconds: _timings.append((name, seconds))


@pytest.fixture(autouse=True)
def _timed(request: pytest.FixtureRequest) -> Iterator[None]:
    started = time.monotonic()
    yield
    _timings.append((request.node.name, time.monotonic() - started))


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if _timings:
        terminalreporter.section("e2e timings")
        for name, seconds in _timings:
            terminalreporter.write_line(f"{seconds:6.2f} s  {name}")
