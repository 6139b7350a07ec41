"""Supervisors' announcements in the store: who hears them, when, and what is refused (SQLite and
PostgreSQL). Their audio is really built (espeak-ng and sox), in a directory of the test's own."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import select

from ivr.clock import ManualClock
from ivr.engine.ports import AnnouncementRefused, Scope
from ivr.store.announcements import StoreAnnouncements
from ivr.store.db import Store
from ivr.store.models import Customer
from ivr.voice.build import AUDIO_SUBDIR, announcement_entry

from .conftest import NOW

OUTAGE = "Atenção: manutenção emergencial em Belo Horizonte até as dezoito horas."
EVERYONE = "Nosso atendimento por e-mail está temporariamente indisponível."


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(NOW)


@pytest.fixture
def board(seeded: Store, clock: ManualClock, tmp_path: Path) -> StoreAnnouncements:
    return StoreAnnouncements(seeded, clock=clock, prompts_dir=tmp_path / "prompts")


async def customer(store: Store, code: str) -> int:
    return await store.read(lambda s: s.scalars(select(Customer.id).where(Customer.code == code)).one())


async def texts(board: StoreAnnouncements, customer_id: int | None, clock: ManualClock) -> list[str]:
    return [a.text for a in await board.in_force(customer_id, clock())]


async def test_a_city_hears_its_announcement_until_it_expires(
    board: StoreAnnouncements, seeded: Store, clock: ManualClock, tmp_path: Path
) -> None:
    serra_azul = await customer(seeded, "100200")  # circuits in Belo Horizonte and Contagem
    hospital = await customer(seeded, "100300")  # Ipatinga
    posted = await board.post(OUTAGE, Scope.parse("city:belo horizonte"), NOW + timedelta(hours=2), by="marta")
    await board.post(EVERYONE, Scope.parse("all"), NOW + timedelta(hours=1), by="marta")

    assert str(posted.scope) == "city:Belo Horizonte"  # spelt as the accounts spell it
    assert 1.0 < posted.duration_s < 30.0
    assert announcement_entry(tmp_path / "prompts" / AUDIO_SUBDIR, posted.prompt_id).text == OUTAGE
    assert await texts(board, serra_azul, clock) == [OUTAGE, EVERYONE]
    assert await texts(board, hospital, clock) == [EVERYONE]
    assert await texts(board, None, clock) == [EVERYONE]  # not identified: only `all`

    clock.set(NOW + timedelta(hours=1, minutes=30))
    assert await texts(board, serra_azul, clock) == [OUTAGE]
    clock.set(NOW + timedelta(hours=2))
    assert await texts(board, serra_azul, clock) == []
    assert [item.state for item in await board.listed(everything=True)] == ["expired", "expired"]


async def test_circuit_scope_and_the_same_words_once(
    board: StoreAnnouncements, seeded: Store, clock: ManualClock
) -> None:
    serra_azul = await customer(seeded, "100200")
    until = NOW + timedelta(hours=1)
    await board.post(OUTAGE, Scope.parse("circuit:ctg-fo-10022"), until, by="marta")
    await board.post(OUTAGE, Scope.parse("city:Contagem"), until, by="joão")
    assert await texts(board, serra_azul, clock) == [OUTAGE]  # in both scopes, heard once
    assert await texts(board, await customer(seeded, "100500"), clock) == []


async def test_an_ended_announcement_is_heard_no_more(board: StoreAnnouncements, clock: ManualClock) -> None:
    posted = await board.post(EVERYONE, Scope.parse("all"), NOW + timedelta(hours=1), by="marta")
    await board.end(posted.id)
    assert await texts(board, None, clock) == []
    with pytest.raises(AnnouncementRefused, match=f"no announcement {posted.id} in force"):
        await board.end(posted.id)
    assert [item.state for item in await board.listed(everything=True)] == ["ended"]
    assert await board.listed() == []


async def test_a_unit_builds_the_audio_it_lacks_and_gives_it_to_its_asterisk(
    board: StoreAnnouncements, seeded: Store, clock: ManualClock, tmp_path: Path
) -> None:
    posted = await board.post(EVERYONE, Scope.parse("all"), NOW + timedelta(hours=1), by="marta")
    sounds = tmp_path / "asterisk" / "sounds" / "sac" / "pt_BR"
    other_unit = StoreAnnouncements(seeded, clock=clock, prompts_dir=tmp_path / "other", sounds_dir=sounds)
    [heard] = await other_unit.in_force(None, NOW)
    assert heard.prompt_id == posted.prompt_id
    built = (tmp_path / "other" / AUDIO_SUBDIR / f"{posted.prompt_id}.alaw").read_bytes()
    assert len(built) > 8000 and (sounds / f"{posted.prompt_id}.alaw").read_bytes() == built
    assert (sounds / f"{posted.prompt_id}.ulaw").is_file()


@pytest.mark.parametrize(
    ("text", "scope", "hours", "why"),
    [
        ("  ", "all", 1, "the text is empty"),
        ("palavras " * 50, "all", 1, "at most 400"),
        (OUTAGE, "city:Belo Horizonte", 0, "is not after its start"),
        (OUTAGE, "city:Belo Horizone", 1, "no customer has a circuit there (cities: Belo Horizonte, Contagem"),
        (OUTAGE, "circuit:XYZ-1", 1, "no circuit is designated 'XYZ-1'"),
    ],
)
async def test_refused_and_nothing_kept(board: StoreAnnouncements, text: str, scope: str, hours: int, why: str) -> None:
    with pytest.raises(AnnouncementRefused, match=why.replace("(", r"\(")):
        await board.post(text, Scope.parse(scope), NOW + timedelta(hours=hours), by="marta")
    assert await board.listed(everything=True) == []


async def test_the_same_words_to_the_same_callers_are_refused(board: StoreAnnouncements) -> None:
    first = await board.post(OUTAGE, Scope.parse("all"), NOW + timedelta(hours=1), by="marta")
    with pytest.raises(AnnouncementRefused, match=f"announcement {first.id} already says this to all"):
        await board.post(f"  {OUTAGE} ", Scope.parse("all"), NOW + timedelta(hours=3), by="joão")


@pytest.mark.parametrize(
    ("text", "why"),
    [("everyone", "write all, city:<city>"), ("all:x", "all takes nothing"), ("city:", "city needs a name")],
)
def test_malformed_scopes(text: str, why: str) -> None:
    with pytest.raises(AnnouncementRefused, match=why):
        Scope.parse(text)


async def test_words_too_long_to_say_are_refused_and_their_audio_removed(
    board: StoreAnnouncements, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setattr("ivr.store.announcements.MAX_SECONDS", 1.0)  # the real bound (30 s) takes ~400 chars
    with pytest.raises(AnnouncementRefused, match=r"the text lasts \d+\.\d s spoken, at most 1 s: shorten it"):
        await board.post(OUTAGE, Scope.parse("all"), NOW + timedelta(hours=1), by="marta")
    assert await board.listed(everything=True) == []
    assert not any((tmp_path / "prompts" / AUDIO_SUBDIR / "announce").iterdir())
