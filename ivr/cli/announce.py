"""`ivr announce add|list|end`: what supervisors want callers to hear right after the protocol, without
editing a flow (ivr.store.announcements). `add` builds the audio at once; the flows' `announce` nodes play
it to the callers in its scope until it expires or is ended."""

from __future__ import annotations

import argparse
import getpass
import sys
from datetime import datetime
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ivr.config import Settings
    from ivr.engine.ports import Announcement
    from ivr.store.announcements import StoreAnnouncements
    from ivr.store.db import Store

#: Exit status of a refused announcement (bad input: nothing was kept).
REFUSED = 2


def register(sub: Any) -> None:
    parser = sub.add_parser("announce", help="announcements callers hear after the protocol: add, list, end")
    commands = parser.add_subparsers(dest="announce_command", required=True, metavar="ACTION")
    add = commands.add_parser(
        "add",
        help="post an announcement: its audio is built at once and callers in its scope hear it until it expires",
    )
    add.add_argument("--text", required=True, help="what callers hear, in Portuguese (at most 400 characters, 30 s)")
    add.add_argument(
        "--scope", required=True, help="who hears it: all, city:<city> (city:Belo Horizonte) or circuit:<designation>"
    )
    add.add_argument(
        "--until", required=True, help="when it stops: a local date and time (2026-12-06 18:00) or a duration (2h, 90m)"
    )
    add.add_argument("--by", default=None, help="who posts it (default: the login name)")
    add.set_defaults(handler=_add)
    listing = commands.add_parser("list", help="the announcements in force and to come, oldest first")
    listing.add_argument("--all", action="store_true", help="the ended and expired ones too")
    listing.set_defaults(handler=_list)
    end = commands.add_parser("end", help="end an announcement now: callers hear it no more")
    end.add_argument("id", type=int, metavar="ID")
    end.set_defaults(handler=_end)
    for action in commands.choices.values():
        action.add_argument("--url", help="database URL (default: IVR_DATABASE_URL or the settings)")


async def _add(args: argparse.Namespace) -> int:
    from ivr.clock import moment_from, system_clock
    from ivr.engine.ports import AnnouncementRefused, Scope
    from ivr.voice.build import BuildError

    conf, store, board = await _open(args.url)
    try:
        now = system_clock()
        try:
            until = moment_from(args.until, now, conf.timezone)
        except ValueError as exc:
            return _refused(f"--until {exc}")
        if until <= now:
            return _refused(f"--until {_local(until, conf)} is already past (now {_local(now, conf)})")
        try:
            posted = await board.post(args.text, Scope.parse(args.scope), until, by=args.by or getpass.getuser())
        except AnnouncementRefused as exc:
            return _refused(str(exc))
        except BuildError as exc:
            print(f"ivr announce add: the audio cannot be built, nothing kept: {exc}", file=sys.stderr)
            return 1
    finally:
        await store.aclose()
    print(f"announcement {posted.id}: {_line(posted, conf)}")
    return 0


async def _list(args: argparse.Namespace) -> int:
    conf, store, board = await _open(args.url)
    try:
        listed = await board.listed(everything=args.all)
    finally:
        await store.aclose()
    for item in listed:
        state = f"{item.state} (from {_local(item.starts_at, conf)})" if item.state == "scheduled" else item.state
        print(f"#{item.announcement.id} {state}: {_line(item.announcement, conf)}, by {item.created_by}")
    if not listed:
        print("no announcements" if args.all else "no announcements in force")
    return 0


async def _end(args: argparse.Namespace) -> int:
    from ivr.engine.ports import AnnouncementRefused

    conf, store, board = await _open(args.url)
    try:
        ended = await board.end(args.id)
    except AnnouncementRefused as exc:
        print(f"ivr announce end: {exc}", file=sys.stderr)
        return 1
    finally:
        await store.aclose()
    print(f"announcement {ended.id} ended: callers hear it no more ({ended.scope}: \"{ended.text}\")")
    return 0


def _refused(why: str) -> int:
    print(f"ivr announce add: {why}; nothing was kept", file=sys.stderr)
    return REFUSED


def _line(announcement: Announcement, conf: Settings) -> str:
    return (
        f"{announcement.scope} until {_local(announcement.until, conf)}, {announcement.duration_s:.1f} s of audio: "
        f"\"{announcement.text}\""
    )


def _local(moment: datetime, conf: Settings) -> str:
    from zoneinfo import ZoneInfo

    return f"{moment.astimezone(ZoneInfo(conf.timezone)):%Y-%m-%d %H:%M}"


async def _open(url: str | None) -> tuple[Settings, Store, StoreAnnouncements]:
    from ivr.clock import system_clock
    from ivr.config import settings
    from ivr.store.announcements import StoreAnnouncements
    from ivr.store.db import open_store
    from ivr.store.migrate import upgrade

    conf = settings()
    store = open_store(conf, url)
    await upgrade(store)  # a supervisor may post before the first `ivr serve` of this release
    board = StoreAnnouncements(
        store,
        clock=system_clock,
        prompts_dir=conf.prompts_dir,
        voice=conf.voice.espeak_voice,
        words_per_minute=conf.voice.words_per_minute,
    )
    return conf, store, board
