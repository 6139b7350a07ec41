"""``ivr asterisk provision|up|down|status|cli|run`` and ``ivr call``: the local Asterisk 22 and
scripted calls into it (``ivr call`` then says what the IVR stored about the call)."""

from __future__ import annotations

import argparse
import sys
import time
from typing import Any

from ivr import phone


def register(sub: Any) -> None:
    group = sub.add_parser("asterisk", help="the local Asterisk 22 (chrooted Debian-unstable root)")
    commands = group.add_subparsers(dest="asterisk_command", required=True, metavar="ACTION")
    for name, handler, help_text in (
        ("provision", _provision, "build or reuse the root, install our configuration and prompts"),
        ("up", _up, "start Asterisk in the background"),
        ("down", _down, "stop Asterisk"),
        ("status", _status, "is Asterisk running (exit 0) or not (exit 1)"),
        ("run", _run, "provision, start Asterisk and `ivr serve` in the foreground; Ctrl-C stops both"),
    ):
        commands.add_parser(name, help=help_text).set_defaults(handler=handler)
    cli = commands.add_parser("cli", help='run one Asterisk CLI command, e.g. "pjsip show endpoints"')
    cli.add_argument("command", help="the CLI command, quoted")
    cli.set_defaults(handler=_cli)

    call = sub.add_parser("call", help="place a scripted SIPp call into the local Asterisk")
    call.add_argument("--keys", default="", help="key groups sent one after the other, e.g. 1,2 or 1122#,0")
    call.add_argument("--caller", default="3133334444", help="caller ID number (default %(default)s)")
    call.add_argument("--withheld", action="store_true", help="withhold the caller ID")
    call.add_argument("--number", help="number dialled (default: the SAC number)")
    call.add_argument("--speech", help="audio file spoken after the keys (any format sox reads)")
    call.add_argument(
        "--first", type=float,
        help="seconds before the first keys (default: the greeting and protocol announcement, as built, plus a margin)",
    )  # fmt: skip
    call.add_argument("--gap", type=float, default=3.0, help="seconds between key groups (%(default)s)")
    call.add_argument("--hold", type=float, default=10.0, help="seconds on the line at the end (%(default)s)")
    call.add_argument("--wait-bye", action="store_true", help="stay until Asterisk hangs up instead of --hold")
    call.add_argument("--timeout", type=float, default=120.0, help="hard bound on the call (default %(default)s)")
    call.set_defaults(handler=_call)


def _fail(message: str) -> int:
    print(f"ivr asterisk: {message}", file=sys.stderr)
    return 1


def _provision(args: argparse.Namespace) -> int:
    from ivr.asterisk.root import RootError, provision
    from ivr.config import settings
    from ivr.voice.build import BuildError
    from ivr.voice.catalogue import CatalogueError

    started = time.monotonic()
    try:
        done = provision(settings())
    except RootError as exc:
        return _fail(str(exc))
    print(f"{done.version} in {done.root} ({time.monotonic() - started:.1f} s)")
    print(f"configuration: {done.root / done.layout.etc.lstrip('/')}")
    if not done.prompts:
        return _fail("no prompt audio installed: run `ivr prompts build`, then provision again")
    try:
        missing = _prompts_without_audio()
    except (BuildError, CatalogueError) as exc:
        return _fail(str(exc))
    if missing:
        # Asterisk would fail the STREAM FILE of each: the call drops to the fallback queue.
        more = f" and {len(missing) - 5} more" if len(missing) > 5 else ""
        return _fail(f"{len(missing)} prompt(s) of the catalogue have no built audio ({', '.join(missing[:5])}"
                     f"{more}): run `ivr prompts build`, then provision again")  # fmt: skip
    print(f"prompts: {done.prompts} files")
    if _shipped_instance().pid() is not None:
        print("Asterisk is running: `ivr asterisk cli \"core reload\"` applies the new configuration")
    return 0


def _prompts_without_audio() -> list[str]:
    from ivr.config import settings
    from ivr.voice.build import AUDIO_SUBDIR, read_manifest
    from ivr.voice.catalogue import Catalogue

    conf = settings()
    built = read_manifest(conf.prompts_dir / AUDIO_SUBDIR)
    return [prompt_id for prompt_id in Catalogue.load(conf.prompts_dir).ids() if prompt_id not in built]


def _shipped_instance() -> Any:
    from ivr.asterisk.conf import Layout
    from ivr.asterisk.instance import Instance
    from ivr.config import settings

    return Instance(settings().asterisk_root, Layout.shipped())


def _up(args: argparse.Namespace) -> int:
    from ivr.asterisk.instance import AsteriskError
    from ivr.config import settings

    instance = _shipped_instance()
    started = time.monotonic()
    try:
        pid = instance.start()
    except AsteriskError as exc:
        return _fail(str(exc))
    s = settings()
    print(f"Asterisk up in {time.monotonic() - started:.1f} s (pid {pid})")
    print(f"  SIP      udp:{s.sip.host}:{s.sip.port}   AMI {s.ami.host}:{s.ami.port}")
    print(f"  FastAGI  calls go to agi://{s.agi.host}:{s.agi.port}/sac (start it with `ivr serve`)")
    return 0


def _down(args: argparse.Namespace) -> int:
    from ivr.asterisk.instance import AsteriskError

    try:
        was_running = _shipped_instance().stop()
    except AsteriskError as exc:
        return _fail(str(exc))
    print("Asterisk stopped" if was_running else "Asterisk was not running")
    return 0


def _status(args: argparse.Namespace) -> int:
    status = _shipped_instance().status()
    if status.running:
        print(f"Asterisk running (pid {status.pid})\n{status.uptime}")
    else:
        print("Asterisk not running")
    for mount in status.host_mounts:
        print(f"warning: {mount} is mounted on the host; `ivr asterisk down` removes it", file=sys.stderr)
    return 0 if status.running else 1


def _cli(args: argparse.Namespace) -> int:
    from ivr.asterisk.instance import AsteriskError

    instance = _shipped_instance()
    if instance.pid() is None:
        return _fail("Asterisk is not running: `ivr asterisk up` first")
    try:
        print(instance.command(args.command), end="")
    except AsteriskError as exc:
        return _fail(str(exc))
    return 0


async def _run(args: argparse.Namespace) -> int:
    from pydantic import SecretStr

    from ivr import app
    from ivr.asterisk.instance import AsteriskError
    from ivr.asterisk.root import ami_secret
    from ivr.config import settings

    if _provision(args) != 0:
        return 1
    if not await _has_customers():
        print("warning: the database has no customer accounts, so no caller will be recognised; "
              "`ivr db seed` adds the demo accounts (`./dev up` does)", file=sys.stderr)  # fmt: skip
    instance = _shipped_instance()
    try:
        instance.start()
    except AsteriskError as exc:
        return _fail(str(exc))
    try:
        s = settings()
        # The IVR's AMI client logs in with the secret provisioning wrote into manager.conf.
        s = s.model_copy(update={"ami": s.ami.model_copy(update={"secret": SecretStr(ami_secret(s))})})
        number = phone.normalise(s.page.sac_number)
        print(f"Asterisk is up. Call sip:{number}@{s.sip.host}:{s.sip.port} from a softphone on "
              f"{s.sip.tester_address} (no registration needed),")
        print("or place a scripted call from another terminal: ivr call --keys 1,2")
        print("Ctrl-C stops the IVR and Asterisk.")
        return await app.serve(s)
    finally:
        instance.stop()


async def _has_customers() -> bool:
    """Whether the configured store holds any account (migrated first, as `ivr serve` does it anyway)."""
    from sqlalchemy import func, select

    from ivr.config import settings
    from ivr.store.db import open_store
    from ivr.store.migrate import upgrade
    from ivr.store.models import Customer

    store = open_store(settings())
    try:
        await upgrade(store)
        count = await store.read(lambda session: session.scalar(select(func.count()).select_from(Customer)))
    finally:
        await store.aclose()
    return bool(count)


async def _call(args: argparse.Namespace) -> int:
    import tempfile
    from pathlib import Path

    from ivr.asterisk import sipp
    from ivr.asterisk.timing import first_keys_s
    from ivr.clock import system_clock
    from ivr.config import settings
    from ivr.flows.loader import FlowLoadError
    from ivr.voice.build import MissingAudio

    s = settings()
    if _shipped_instance().pid() is None:
        return _fail("Asterisk is not running: `ivr asterisk up` (or `ivr asterisk run`) first")
    try:
        # Keys during the protocol announcement are lost (it cannot be interrupted): wait it out.
        first = args.first if args.first is not None else first_keys_s(s, system_clock())
    except (FlowLoadError, MissingAudio) as exc:
        return _fail(f"cannot time the first keys ({exc}); give --first SECONDS")
    steps: list[sipp.Step] = [sipp.Pause(first)]
    try:
        for index, group in enumerate(k for k in args.keys.split(",") if k):
            if index:
                steps.append(sipp.Pause(args.gap))
            steps.append(sipp.Keys(group.strip()))
        with tempfile.TemporaryDirectory(prefix="sac-call-") as tmp:
            if args.speech:
                steps.append(sipp.prepare_speech(Path(args.speech), Path(tmp) / "speech"))
            if not args.wait_bye:
                steps.append(sipp.Pause(args.hold))
            number = args.number or phone.normalise(s.page.sac_number) or ""
            script = sipp.CallScript(
                number=number,
                caller=None if args.withheld else args.caller,
                steps=tuple(steps),
                end="wait_bye" if args.wait_bye else "hangup",
            )
            print(f"calling {number} at {s.sip.host}:{s.sip.port} from {script.caller or 'a withheld number'}...")
            placed = system_clock()
            result = await sipp.place_call(
                script, s.sip.host, s.sip.port, local_ip=s.sip.tester_address, timeout_s=args.timeout
            )
    except (ValueError, sipp.SippError) as exc:
        return _fail(str(exc))
    print(result.summary())
    for line in result.received:
        print(f"  <- {line}")
    if result.answered:
        found = await _stored_call(script.caller, placed)
        print(found or "the IVR stored no call from this number since it was placed: is `ivr serve` running "
              "on this database (IVR_DATABASE_URL)?")  # fmt: skip
    return 0 if result.ok else 1


async def _stored_call(caller: str | None, placed: Any) -> str | None:
    """What the store says about the call just placed, rendered for the terminal."""
    from ivr.asterisk.report import find_call
    from ivr.config import settings
    from ivr.store.db import open_store

    store = open_store(settings())
    try:
        report = await find_call(store, caller, placed)
    finally:
        await store.aclose()
    return report.render() if report else None
