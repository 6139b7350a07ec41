"""Start, stop and query one Asterisk running chrooted in the root.

Asterisk runs in a private mount namespace (``unshare --mount``) where /proc, /dev and /dev/pts are
bound into the root: the mounts exist only as long as that Asterisk does, so a crash or a failed start
never leaves a stale mount on the host. ``down`` also removes any host-side mounts found under the
root (from a manual ``chroot`` session, say), so the root can always be deleted afterwards.
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from ivr.asterisk.conf import Layout

log = logging.getLogger(__name__)

BIND_MOUNTS = ("proc", "dev", "dev/pts")
# Mount the kernel interfaces into the root ($1), then become Asterisk with our asterisk.conf ($2).
_JAIL = (
    'for m in {mounts}; do mount --bind "/$m" "$1/$m" || exit 111; done; '
    'root="$1"; shift; exec chroot "$root" /usr/sbin/asterisk "$@"'
).format(mounts=" ".join(BIND_MOUNTS))


class AsteriskError(RuntimeError):
    """Asterisk did not start, stop or answer; the message includes the tail of its log."""


@dataclass(frozen=True)
class Status:
    running: bool
    pid: int | None
    uptime: str
    host_mounts: tuple[str, ...]  # mounts under the root in the host's namespace (should be none)


class Instance:
    """One Asterisk process: a root plus the layout its asterisk.conf names."""

    def __init__(self, root: Path, layout: Layout) -> None:
        self.root = root
        self.layout = layout

    @property
    def conf_file(self) -> str:
        return f"{self.layout.etc}/asterisk.conf"

    def host_path(self, inside: str) -> Path:
        return self.root / inside.lstrip("/")

    @property
    def messages_log(self) -> Path:
        return self.host_path(f"{self.layout.log}/messages.log")

    def pid(self) -> int | None:
        """The running Asterisk's pid, or None (a pid file left by a dead process does not count)."""
        try:
            pid = int(self.host_path(f"{self.layout.run}/asterisk.pid").read_text().strip())
        except (FileNotFoundError, ValueError):
            return None
        try:
            comm = Path(f"/proc/{pid}/comm").read_text().strip()
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        except (FileNotFoundError, ProcessLookupError):
            return None
        return pid if comm == "asterisk" and self.conf_file.encode() in cmdline else None

    def start(self, timeout_s: float = 30.0) -> int:
        """Start Asterisk in the background and return once it is fully booted."""
        if os.geteuid() != 0:
            raise AsteriskError("starting Asterisk in its root needs root (mount namespace, bind mounts, chroot)")
        if not self.host_path(self.conf_file).is_file():
            # Asterisk would fall back to its built-in defaults: the stock /etc/asterisk and its ports.
            raise AsteriskError(f"{self.host_path(self.conf_file)} is missing: run `ivr asterisk provision`")
        if (pid := self.pid()) is not None:
            raise AsteriskError(f"Asterisk is already running (pid {pid}); `ivr asterisk down` first")
        self.host_path(f"{self.layout.run}/asterisk.pid").unlink(missing_ok=True)
        self.host_path(f"{self.layout.run}/asterisk.ctl").unlink(missing_ok=True)
        started = time.monotonic()
        launcher = subprocess.run(
            ["unshare", "--mount", "--propagation", "private", "--", "sh", "-c", _JAIL, "jail",
             str(self.root), "-C", self.conf_file, "-n"],
            capture_output=True, text=True, timeout=timeout_s,
        )  # fmt: skip
        if launcher.returncode != 0:
            raise AsteriskError(
                f"cannot start Asterisk in {self.root} (exit {launcher.returncode}): "
                f"{launcher.stderr.strip()[-500:]}{self._log_tail()}"
            )
        # The launcher returns once Asterisk has daemonised; wait for it to finish booting.
        remaining = timeout_s - (time.monotonic() - started)
        try:
            self._wait_booted(max(remaining, 1.0))
            # Asterisk boots even when its SIP port is taken; without a transport it takes no calls.
            if "No objects found" in self.command("pjsip show transports"):
                raise AsteriskError(f"Asterisk started without its SIP transport (port in use?){self._log_tail()}")
        except AsteriskError:
            self.stop()  # a half-started Asterisk must not linger
            raise
        pid = self.pid()
        if pid is None:
            raise AsteriskError(f"Asterisk stopped right after booting{self._log_tail()}")
        log.info("Asterisk up in %.1f s (pid %d)", time.monotonic() - started, pid)
        return pid

    def _wait_booted(self, timeout_s: float) -> None:
        launched = time.monotonic()
        ctl = self.host_path(f"{self.layout.run}/asterisk.ctl")
        while (elapsed := time.monotonic() - launched) < timeout_s:  # bounded by the start timeout
            if ctl.exists():
                try:
                    self.command("core waitfullybooted", timeout_s=max(timeout_s - elapsed, 0.5))
                    return
                except AsteriskError:
                    pass  # the socket is there but not answering yet
            if elapsed > 2.0 and self.pid() is None:
                break  # no process two seconds after the launch: it died while starting
            time.sleep(0.05)
        raise AsteriskError(f"Asterisk did not finish booting within {timeout_s:.0f} s{self._log_tail()}")

    def command(self, cli: str, timeout_s: float = 10.0) -> str:
        """Run one CLI command in the running Asterisk (``asterisk -rx``) and return its output."""
        try:
            done = subprocess.run(
                ["chroot", str(self.root), "/usr/sbin/asterisk", "-C", self.conf_file, "-rx", cli],
                capture_output=True, text=True, timeout=timeout_s,
            )  # fmt: skip
        except subprocess.TimeoutExpired as exc:
            raise AsteriskError(f"`{cli}` got no answer within {timeout_s:.0f} s") from exc
        if done.returncode != 0 or "Unable to connect to remote asterisk" in done.stdout + done.stderr:
            raise AsteriskError(f"`{cli}` failed: {(done.stderr or done.stdout).strip()[-300:]}")
        return done.stdout

    def stop(self, timeout_s: float = 15.0) -> bool:
        """Stop Asterisk (gracefully, then by signal) and remove host mounts; False if it was not running."""
        pid = self.pid()
        if pid is not None:
            try:
                self.command("core stop now", timeout_s=timeout_s / 3)
            except AsteriskError as exc:
                log.warning("%s; sending SIGTERM", exc)
                _signal(pid, signal.SIGTERM)
            if not _wait_gone(pid, timeout_s / 3):
                log.warning("Asterisk (pid %d) ignored the stop; sending SIGKILL", pid)
                _signal(pid, signal.SIGKILL)
                if not _wait_gone(pid, timeout_s / 3):
                    raise AsteriskError(f"Asterisk (pid {pid}) does not die")
        self.host_path(f"{self.layout.run}/asterisk.pid").unlink(missing_ok=True)
        self.unmount_host()
        return pid is not None

    def host_mounts(self) -> tuple[str, ...]:
        root = str(self.root.resolve())
        with open("/proc/self/mounts", encoding="utf-8") as mounts:
            points = [line.split()[1].replace("\\040", " ") for line in mounts]
        return tuple(p for p in points if p == root or p.startswith(root + "/"))

    def unmount_host(self) -> None:
        for point in sorted(self.host_mounts(), key=len, reverse=True):  # innermost first
            subprocess.run(["umount", "--lazy", point], check=True, timeout=10)

    def status(self) -> Status:
        pid = self.pid()
        uptime = ""
        if pid is not None:
            uptime = self.command("core show uptime").strip()
        return Status(running=pid is not None, pid=pid, uptime=uptime, host_mounts=self.host_mounts())

    def _log_tail(self, lines: int = 15) -> str:
        try:
            text = self.messages_log.read_text(encoding="utf-8", errors="replace")
        except FileNotFoundError:
            return ""
        tail = "\n".join(text.splitlines()[-lines:])
        return f"\n--- last lines of {self.messages_log} ---\n{tail}"


def _signal(pid: int, sig: signal.Signals) -> None:
    try:
        os.kill(pid, sig)
    except ProcessLookupError:
        pass  # already gone: what we wanted


def _wait_gone(pid: int, timeout_s: float) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if not Path(f"/proc/{pid}").exists():
            return True
        time.sleep(0.05)
    return not Path(f"/proc/{pid}").exists()
