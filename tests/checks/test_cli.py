"""The supervisor's commands: exit statuses, what they print, and publish telling a running server."""

from __future__ import annotations

import asyncio
import shutil
import signal
import sys
from pathlib import Path

import pytest

from ivr.cli import main
from ivr.config import REPO_ROOT
from ivr.flows.library import signal_server

FIXTURES = REPO_ROOT / "tests" / "data" / "flows"

# A stand-in for `ivr serve` when "serve" is in its argv: says it is ready, then reports the SIGHUP it
# gets; SIGUSR1 makes it say it is alive (Python runs pending handlers by signal number, HUP first).
FAKE_SERVE = """
import signal, sys, time
signal.signal(signal.SIGHUP, lambda *_: (print("reload", flush=True), sys.exit(0)))
signal.signal(signal.SIGUSR1, lambda *_: print("alive", flush=True))
print("ready", flush=True)
for _ in range(300):
    time.sleep(0.1)
"""


@pytest.mark.usefixtures("configured")
def test_check_exit_status(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    assert main(["flow", "check", str(FIXTURES / "good" / "minimal.yaml")]) == 0
    assert capsys.readouterr().out == "0 errors, 0 warnings in 1 flow\n"

    assert main(["flow", "check", str(FIXTURES / "bad" / "spin_loop.yaml")]) == 1
    out = capsys.readouterr().out
    assert f"{FIXTURES / 'bad' / 'spin_loop.yaml'}:22:3: error: the nodes check → wait → check" in out
    assert out.endswith("1 error, 0 warnings in 1 flow\n")

    assert main(["flow", "check", str(FIXTURES / "bad" / "menu_no_retries.yaml")]) == 0  # warnings only
    assert "0 errors, 2 warnings" in capsys.readouterr().out

    assert main(["flow", "check", str(tmp_path / "nothing.yaml")]) == 2
    assert "no such file or directory" in capsys.readouterr().err
    assert main(["flow", "check", str(tmp_path)]) == 2
    assert "no flow files" in capsys.readouterr().err


def test_the_shipped_flows_pass_with_the_real_catalogue_and_operations(capsys: pytest.CaptureFixture[str]) -> None:
    """What `ivr flow publish` would refuse must never be what the repository ships."""
    assert main(["flow", "check"]) == 0  # the default: the configured flows directory
    assert capsys.readouterr().out.startswith("0 errors")


async def start_fake_serve(name: str = "serve") -> asyncio.subprocess.Process:
    proc = await asyncio.create_subprocess_exec(sys.executable, "-c", FAKE_SERVE, name, stdout=asyncio.subprocess.PIPE)
    assert proc.stdout is not None
    assert await asyncio.wait_for(proc.stdout.readline(), 10) == b"ready\n"
    return proc


async def test_publish_refuses_a_broken_set_then_publishes_and_tells_serve(
    configured: Path, flows_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["flow", "publish", str(flows_dir), "--who", "ana"]) == 0
    out = capsys.readouterr().out
    assert "published" in out and "no ivr serve is running here" in out
    first = (configured / "published" / "CURRENT").read_text().strip()

    shutil.copy(FIXTURES / "bad" / "unknown_target.yaml", flows_dir)
    assert main(["flow", "publish", str(flows_dir)]) == 1
    refused = capsys.readouterr()
    assert "unknown_target.yaml:15:11: error" in refused.out
    assert f"refused: fix the errors above; the published version stays {first}" in refused.err
    assert (configured / "published" / "CURRENT").read_text().strip() == first

    (flows_dir / "unknown_target.yaml").unlink()
    (flows_dir / "minimal.yaml").write_text(
        (flows_dir / "minimal.yaml").read_text().replace("then: agent", "then: goodbye")
    )
    proc = await start_fake_serve()
    try:
        (configured / "ivr-serve.pid").write_text(f"{proc.pid}\n")
        assert main(["flow", "publish", str(flows_dir)]) == 0
        assert f"asked ivr serve (pid {proc.pid}) to reload" in capsys.readouterr().out
        assert proc.stdout is not None
        assert await asyncio.wait_for(proc.stdout.readline(), 10) == b"reload\n"
    finally:
        if proc.returncode is None:
            proc.kill()
        await proc.wait()
    assert (configured / "published" / "CURRENT").read_text().strip() != first


async def test_signal_server_leaves_other_processes_alone(tmp_path: Path) -> None:
    pid_file = tmp_path / "ivr-serve.pid"
    assert "no ivr serve is running" in signal_server(pid_file)
    other = await start_fake_serve("something-else")
    try:
        pid_file.write_text(f"{other.pid}\n")
        assert "is not ivr serve (stale pid file)" in signal_server(pid_file)
        other.send_signal(signal.SIGUSR1)
        assert other.stdout is not None
        assert await asyncio.wait_for(other.stdout.readline(), 10) == b"alive\n"  # no SIGHUP came first
    finally:
        other.kill()
        await other.wait()
    assert "is not running (stale pid file)" in signal_server(pid_file)
    pid_file.write_text("garbage\n")
    assert "does not hold a process id" in signal_server(pid_file)
