"""Supervisors' announcements (`ivr announce add|list|end`) and what callers hear of them (the engine's
`Announcements` port, played by the `announce` verb right after the protocol).

An announcement's words become audio at once, with the prompts' own build (`ivr.voice.build`), so its
length is known before it is kept: too long, and nothing is kept. A unit that finds one in force whose
audio it has not built (another unit posted it) builds it before playing it, so every unit sharing the
store plays it, and copies it to where its Asterisk plays prompts from (`sounds_dir`). A caller's scope
is read from the store's accounts: the cities and designations of the identified customer's circuits; a
caller not identified is only in `all`.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from datetime import datetime
from functools import partial
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Row, bindparam, select, update
from sqlalchemy.orm import Session

from ivr.clock import Clock
from ivr.engine.ports import Announcement, AnnouncementRefused, Scope, ScopeKind
from ivr.store.db import Store, StoreUnavailable
from ivr.store.models import Circuit, PostedAnnouncement
from ivr.store.pointread import point_read
from ivr.voice.build import (
    ANNOUNCE_NAMESPACE,
    BuildError,
    ManifestEntry,
    announcement_name,
    build_announcement,
    install_announcement,
    remove_announcement,
)

log = logging.getLogger(__name__)

MAX_CHARS = 400  # about 30 s spoken at the prompts' pace
MAX_SECONDS = 30.0  # of audio: callers are on their way to the first menu


@dataclass(frozen=True, slots=True)
class Listed:
    """An announcement as `ivr announce list` shows it."""

    announcement: Announcement
    state: str  # in force, scheduled, ended, expired
    starts_at: datetime
    created_by: str
    created_at: datetime
    ended_at: datetime | None


class StoreAnnouncements:
    """`ivr.engine.ports.Announcements` over the store, and what supervisors do with it."""

    def __init__(
        self,
        store: Store,
        *,
        clock: Clock,
        prompts_dir: Path,
        sounds_dir: Path | None = None,
        voice: str = "pt-br",
        words_per_minute: int = 150,
    ) -> None:
        self._store = store
        self._clock = clock
        self._prompts_dir = prompts_dir
        self._sounds_dir = sounds_dir  # the copy of the prompts Asterisk plays (None: it plays prompts_dir's)
        self._voice = voice
        self._words_per_minute = words_per_minute

    # --- the call (engine port) ------------------------------------------------------------------------

    async def in_force(self, customer_id: int | None, now: datetime) -> list[Announcement]:
        try:
            rows, cities, circuits = await self._store.lookup(partial(_in_force, customer_id=customer_id, now=now))
        except StoreUnavailable as exc:
            log.warning("announcements unknown, none played: %s", exc)
            return []
        heard: list[Announcement] = []
        for row in rows:
            announcement = _announcement(row)
            # Another scope's, or the same words posted for two scopes this caller is in: not (again).
            again = announcement.prompt_id in {a.prompt_id for a in heard}
            if again or not announcement.scope.covers(cities, circuits):
                continue
            try:  # built already, unless another unit posted it
                await asyncio.to_thread(self._ready, row.audio, row.text)
            except (BuildError, OSError) as exc:
                log.error("announcement %d not played: its audio cannot be built: %s", row.id, exc)
                continue
            heard.append(announcement)
        return heard

    # --- supervisors -----------------------------------------------------------------------------------

    async def post(
        self, text: str, scope: Scope, until: datetime, *, by: str, starts_at: datetime | None = None
    ) -> Announcement:
        words = " ".join(text.split())
        if not any(ch.isalpha() for ch in words):
            raise AnnouncementRefused("the text is empty: write what callers should hear")
        if len(words) > MAX_CHARS:
            raise AnnouncementRefused(f"the text has {len(words)} characters, at most {MAX_CHARS}: shorten it")
        start = starts_at or self._clock()
        if until <= start:
            raise AnnouncementRefused(f"until {until:%Y-%m-%d %H:%M} is not after its start, {start:%Y-%m-%d %H:%M}")
        scope = await self._store.read(partial(_known_scope, scope=scope))
        same = await self._store.read(partial(_same, words=words, scope=scope, moment=start))
        if same is not None:
            raise AnnouncementRefused(
                f"announcement {same.id} already says this to {scope} until {same.until:%Y-%m-%d %H:%M %Z}"
            )
        name = announcement_name(words, voice=self._voice, words_per_minute=self._words_per_minute)
        entry = await asyncio.to_thread(self._build, name, words)
        if entry.duration_s > MAX_SECONDS:
            remove_announcement(name, self._prompts_dir)
            raise AnnouncementRefused(
                f"the text lasts {entry.duration_s:.1f} s spoken, at most {MAX_SECONDS:g} s: shorten it"
            )
        row = PostedAnnouncement(
            text=words,
            scope_kind=scope.kind,
            scope_value=scope.value,
            starts_at=start,
            until=until,
            audio=name,
            duration_s=entry.duration_s,
            created_by=by[:120],
            created_at=self._clock(),
        )
        posted = await self._store.write(partial(_insert, row=row))
        log.info("announcement %d posted by %s for %s until %s", posted.id, by, scope, until.isoformat())
        return posted

    async def end(self, announcement_id: int) -> Announcement:
        now = self._clock()
        ended = await self._store.write(partial(_end, announcement_id=announcement_id, now=now))
        if ended is None:
            raise AnnouncementRefused(f"no announcement {announcement_id} in force (ended, expired or never posted)")
        log.info("announcement %d ended", announcement_id)
        return ended

    async def listed(self, *, everything: bool = False) -> list[Listed]:
        """Those in force or to come, oldest first; with `everything`, the ended and expired ones too."""
        now = self._clock()
        rows = await self._store.read(partial(_listed, now=now, everything=everything))
        return [
            Listed(_announcement(row), _state(row, now), row.starts_at, row.created_by, row.created_at, row.ended_at)
            for row in rows
        ]

    def _build(self, name: str, text: str) -> ManifestEntry:  # in a worker thread
        return build_announcement(
            name, text, self._prompts_dir, voice=self._voice, words_per_minute=self._words_per_minute
        )

    def _ready(self, name: str, text: str) -> None:  # in a worker thread
        self._build(name, text)
        if self._sounds_dir is not None:
            install_announcement(name, self._prompts_dir, self._sounds_dir)


def _announcement(row: PostedAnnouncement | Row[*tuple[Any, ...]]) -> Announcement:
    return Announcement(
        id=row.id,
        text=row.text,
        scope=Scope(row.scope_kind, row.scope_value),
        until=row.until,
        prompt_id=f"{ANNOUNCE_NAMESPACE}/{row.audio}",
        duration_s=row.duration_s,
    )


def _state(row: PostedAnnouncement, now: datetime) -> str:
    if row.ended_at is not None:
        return "ended"
    if row.until <= now:
        return "expired"
    return "in force" if row.starts_at <= now else "scheduled"


# Built once (every call runs them): building a statement costs about as much CPU as running it. What a
# caller hears of an announcement (`_announcement`), as plain rows: an ORM object costs more than the read.
_IN_FORCE = (
    select(
        PostedAnnouncement.id,
        PostedAnnouncement.text,
        PostedAnnouncement.scope_kind,
        PostedAnnouncement.scope_value,
        PostedAnnouncement.until,
        PostedAnnouncement.audio,
        PostedAnnouncement.duration_s,
    )
    .where(
        PostedAnnouncement.ended_at.is_(None),
        PostedAnnouncement.starts_at <= bindparam("now"),
        PostedAnnouncement.until > bindparam("now"),
    )
    .order_by(PostedAnnouncement.starts_at, PostedAnnouncement.id)
)
_CUSTOMER_SCOPES = select(Circuit.city, Circuit.designation).where(Circuit.customer_id == bindparam("customer_id"))


def _in_force(
    conn: Connection, *, customer_id: int | None, now: datetime
) -> tuple[list[Row[*tuple[Any, ...]]], set[str], set[str]]:
    rows = point_read(conn, _IN_FORCE, {"now": now})
    cities: set[str] = set()
    circuits: set[str] = set()
    if customer_id is not None and any(row.scope_kind is not ScopeKind.ALL for row in rows):
        for city, designation in point_read(conn, _CUSTOMER_SCOPES, {"customer_id": customer_id}):
            cities.add(city)
            circuits.add(designation)
    return rows, cities, circuits


def _known_scope(session: Session, *, scope: Scope) -> Scope:
    """`scope` with the city or circuit spelt as the accounts spell it; refused when no account has it.
    A store holding no circuits (the carrier's systems hold the accounts) takes the name as written."""
    if scope.kind is ScopeKind.ALL:
        return scope
    column = Circuit.city if scope.kind is ScopeKind.CITY else Circuit.designation
    names = sorted(set(session.scalars(select(column))))
    if not names:
        return scope
    spelt = next((name for name in names if name.casefold() == scope.value.casefold()), None)
    if spelt is not None:
        return Scope(scope.kind, spelt)
    if scope.kind is ScopeKind.CIRCUIT:
        raise AnnouncementRefused(f"scope {scope}: no circuit is designated {scope.value!r}")
    raise AnnouncementRefused(f"scope {scope}: no customer has a circuit there (cities: {', '.join(names)})")


def _same(session: Session, *, words: str, scope: Scope, moment: datetime) -> PostedAnnouncement | None:
    return session.scalars(
        select(PostedAnnouncement).where(
            PostedAnnouncement.text == words,
            PostedAnnouncement.scope_kind == scope.kind,
            PostedAnnouncement.scope_value == scope.value,
            PostedAnnouncement.ended_at.is_(None),
            PostedAnnouncement.until > moment,
        )
    ).first()


def _insert(session: Session, *, row: PostedAnnouncement) -> Announcement:
    session.add(row)
    session.flush()
    return _announcement(row)


def _end(session: Session, *, announcement_id: int, now: datetime) -> Announcement | None:
    ended = session.execute(
        update(PostedAnnouncement)
        .where(
            PostedAnnouncement.id == announcement_id,
            PostedAnnouncement.ended_at.is_(None),
            PostedAnnouncement.until > now,
        )
        .values(ended_at=now)
        .execution_options(synchronize_session=False)
    )
    if ended.rowcount != 1:  # type: ignore[attr-defined]
        return None
    return _announcement(session.get_one(PostedAnnouncement, announcement_id))


def _listed(session: Session, *, now: datetime, everything: bool) -> list[PostedAnnouncement]:
    query = select(PostedAnnouncement).order_by(PostedAnnouncement.starts_at, PostedAnnouncement.id)
    if not everything:
        query = query.where(PostedAnnouncement.ended_at.is_(None), PostedAnnouncement.until > now)
    rows = list(session.scalars(query))
    session.expunge_all()
    return rows
