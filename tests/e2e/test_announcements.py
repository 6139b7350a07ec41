"""Supervisors' announcements on a real call: SIPp -> Asterisk 22 -> `ivr serve`.

Three announcements are posted in the IVR's store, as of its faked clock: one for Belo Horizonte, one for
everyone that expires before the calls, one for Ipatinga that a supervisor ends with `ivr announce end`.
Then a caller of Belo Horizonte (Transportes Serra Azul) and one of Ipatinga (Hospital Vale do Aço) call at
once and listen up to the first menu: the first hears the Belo Horizonte one played to its end on Asterisk
(its node visit says so, and lasts as long as its audio), the second hears nothing, and neither hears the
expired or the ended one.
"""

from __future__ import annotations

import asyncio
import subprocess
from collections.abc import AsyncIterator
from datetime import timedelta

import pytest
import pytest_asyncio

from ivr.engine.ports import Scope
from ivr.store.announcements import StoreAnnouncements
from ivr.store.db import Store
from ivr.store.seed import KNOWN_CALLER

from .conftest import E2EAsterisk
from .ivr_process import IvrProcess
from .scripts import Journeys, answered_call, visit_of
from .store import StoreReader

pytestmark = [pytest.mark.e2e, pytest.mark.asyncio(loop_scope="module")]

IPATINGA_CALLER = "3138210000"  # Hospital Vale do Aço: its one circuit is in Ipatinga
EXPIRES_IN_S = 2.0  # the `all` announcement expires this long after it is posted, before anyone calls
CLOCK_SLACK_S = 1.5  # the IVR's faked clock as seen from here is right to a second or so


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def board(ivr: IvrProcess) -> AsyncIterator[StoreAnnouncements]:
    """The IVR's store, as a supervisor posts in it, reading the IVR's (faked) clock."""
    store = Store(ivr.database_url)
    voice = ivr.settings.voice
    yield StoreAnnouncements(
        store,
        clock=ivr.clock,
        prompts_dir=ivr.settings.prompts_dir,
        voice=voice.espeak_voice,
        words_per_minute=voice.words_per_minute,
    )
    await store.aclose()


async def test_an_announcement_is_heard_in_its_city_only_and_not_once_expired_or_ended(
    asterisk: E2EAsterisk, ivr: IvrProcess, stored: StoreReader, board: StoreAnnouncements
) -> None:
    now = ivr.clock()
    city = await board.post(
        "Aviso: manutenção emergencial na rede de Belo Horizonte até as dezoito horas.",
        Scope.parse("city:Belo Horizonte"),
        now + timedelta(minutes=30),
        by="e2e",
    )
    expiring = await board.post(
        "Aviso para todos: este aviso já expirou.", Scope.parse("all"), now + timedelta(seconds=EXPIRES_IN_S), by="e2e"
    )
    ended = await board.post(
        "Aviso: manutenção na rede de Ipatinga.", Scope.parse("city:Ipatinga"), now + timedelta(minutes=30), by="e2e"
    )
    ending = await asyncio.to_thread(
        subprocess.run,
        ivr.on_its_clock("announce", "end", str(ended.id), "--url", ivr.database_url),
        capture_output=True, text=True, timeout=30, env=ivr.environment(),
    )  # fmt: skip
    assert ending.returncode == 0, ending.stderr
    assert ending.stdout.startswith(f"announcement {ended.id} ended: callers hear it no more")
    while ivr.clock() < expiring.until + timedelta(seconds=CLOCK_SLACK_S):
        await asyncio.sleep(0.2)

    journeys = Journeys(ivr)
    before = stored.protocols()
    # Each caller listens up to the end of the first menu's prompt, then hangs up; the Belo Horizonte
    # caller waits out the announcement too (the walk that times the script knows no announcement).
    calls = [
        await journeys.script(KNOWN_CALLER, city.duration_s, end="hangup"),
        await journeys.script(IPATINGA_CALLER, end="hangup"),
    ]
    await asyncio.gather(*(answered_call(asterisk, call, timeout_s=call.steps_s + 30) for call in calls))

    [in_city] = await stored.ended_calls(before, 1, caller=KNOWN_CALLER)
    [elsewhere] = await stored.ended_calls(before, 1, caller=IPATINGA_CALLER)
    assert visit_of(in_city, "announcements")[2] == f"announced {city.id}"
    assert visit_of(elsewhere, "announcements")[2] == "none"
    for call in (in_city, elsewhere):
        assert call.path.index("announce_protocol") < call.path.index("announcements") < call.path.index("main_menu")
    assert _seconds_at(stored, in_city.protocol, "announcements") >= 0.9 * city.duration_s  # played to its end
    assert _seconds_at(stored, elsewhere.protocol, "announcements") < 1.0  # nothing in force: no time


def _seconds_at(stored: StoreReader, protocol: str, node: str) -> float:
    return next(seconds for name, _, seconds in stored.timeline(protocol) if name == node)

