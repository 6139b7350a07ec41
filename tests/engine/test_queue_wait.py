"""The wait a caller is told before joining a queue: the estimate, and how it sounds in pt-BR."""

import asyncio
import dataclasses

import pytest

from ivr.config import REPO_ROOT, QueueWaitSettings, load_settings
from ivr.engine.channel import QueueOutcome
from ivr.engine.interpreter import run_call
from ivr.engine.ports import QueueLoad, Services
from ivr.engine.queue_wait import announcement_ids, estimate, said_minutes
from ivr.engine.scripted import ScriptedChannel, ScriptError, StatedQueues, parse_queue_load
from ivr.voice.catalogue import Catalogue

from .fakes import caller, flow, run, services
from .test_verbs import wrap

CATALOGUE = Catalogue.load(REPO_ROOT / "prompts" / "pt_BR")


def heard(load: QueueLoad) -> str:
    return CATALOGUE.render_text(announcement_ids(estimate(load)))


@pytest.mark.parametrize(
    ("load", "position", "seconds"),
    [
        # Every agent busy: the free-up rate is agents per conversation.
        (QueueLoad(waiting=0, agents=2, talk_s=300), 1, 150.0),
        (QueueLoad(waiting=3, agents=2, talk_s=300), 4, 600.0),
        # A free agent takes the first caller at once: the rest wait for the busy ones.
        (QueueLoad(waiting=3, agents=2, available=1, talk_s=300), 4, 450.0),
        # No recent conversation: the recent average wait is the honest figure; nothing at all, no figure.
        (QueueLoad(waiting=1, agents=1, hold_s=95), 2, 95.0),
        (QueueLoad(waiting=1, agents=1), 2, None),
    ],
)
def test_the_estimate(load: QueueLoad, position: int, seconds: float | None) -> None:
    wait = estimate(load)
    assert (wait.position, wait.seconds, wait.agent_free) == (position, seconds, False)


def test_a_free_agent_for_the_caller_means_no_wait() -> None:
    assert estimate(QueueLoad(waiting=1, agents=3, available=2, talk_s=300)).agent_free
    assert not estimate(QueueLoad(waiting=2, agents=3, available=2, talk_s=300)).agent_free


@pytest.mark.parametrize(
    ("seconds", "minutes"),
    [(0, 0), (59, 0), (60, 1), (89, 1), (90, 2), (539, 9), (570, 10), (12 * 60, 10), (13 * 60, 15), (3600, 60),
     (3601, None)],  # fmt: skip
)
def test_minutes_are_rounded_as_a_person_would(seconds: float, minutes: int | None) -> None:
    assert said_minutes(seconds) == minutes


@pytest.mark.parametrize(
    ("load", "text"),
    [
        (QueueLoad(waiting=0, agents=1, talk_s=50), "O tempo estimado de espera é de menos de um minuto."),
        (QueueLoad(waiting=1, agents=2, talk_s=60), "O tempo estimado de espera é de cerca de um minuto"),
        (QueueLoad(waiting=3, agents=1, talk_s=120), "O tempo estimado de espera é de cerca de oito minutos"),
        (QueueLoad(waiting=9, agents=2, talk_s=300), "O tempo estimado de espera é de cerca de vinte e cinco minutos"),
        (QueueLoad(waiting=21, agents=1, talk_s=300), "O tempo estimado de espera é de mais de uma hora."),
        # Nothing recent to go by: no figure (the queue still says the caller's place as they join).
        (QueueLoad(waiting=1, agents=1), ""),
    ],
)
def test_what_the_caller_hears(load: QueueLoad, text: str) -> None:
    assert heard(load) == text


def test_never_zero_minutes() -> None:
    for seconds in range(0, 4000, 7):
        text = CATALOGUE.render_text(announcement_ids(estimate(QueueLoad(waiting=0, agents=1, hold_s=seconds))))
        assert "zero" not in text


# --- the `queue` verb: what it says and where it goes, before joining and while waiting -------------------

WAITING = wrap("""
  first:
    queue: {name: technical, no_agents: bye, timeout: person, callback: offered}
  offered:
    hangup: goodbye
""")


def stated(**loads: QueueLoad) -> Services:
    return dataclasses.replace(services(), queues=StatedQueues(loads))


async def call(inputs: list[str], svc: Services, **channel: object) -> tuple[list[str], str, str]:
    result, chan, _ = await run(WAITING, inputs, svc=svc, **channel)
    queued = [e.detail for e in chan.events if e.kind == "queue"]
    return result.path, CATALOGUE.render_text(chan.heard), ",".join(queued)


async def test_nobody_logged_in_goes_to_no_agents_without_joining() -> None:
    path, said, queued = await call([], stated(technical=QueueLoad(waiting=0, agents=0)))
    assert (path, queued) == (["first", "bye"], "")


async def test_under_the_threshold_the_key_is_told_and_the_caller_joins() -> None:
    path, said, queued = await call([], stated(technical=QueueLoad(waiting=2, agents=2, talk_s=300)))
    assert said.startswith("O tempo estimado de espera é de cerca de oito minutos. Se preferir")
    assert "fila" not in said  # the place in line is the queue's to say, as the caller joins
    assert "digite 1 a qualquer momento da espera" in said and "longa" not in said
    assert (path, queued) == (["first"], "technical: answered")


async def test_over_the_threshold_the_call_back_is_offered_first() -> None:
    load = QueueLoad(waiting=30, agents=2, talk_s=300)
    path, said, queued = await call(["1"], stated(technical=load))
    assert "A espera está longa" in said
    assert (path, queued) == (["first", "offered"], "")
    # Silence does not consent: the caller joins, and the key still works while waiting.
    path, _, queued = await call(
        ["silence"], stated(technical=load), queue_outcomes={"technical": QueueOutcome.CALLBACK}
    )
    assert (path, queued) == (["first", "offered"], "technical: callback")


async def test_a_free_agent_means_nothing_to_say() -> None:
    path, said, queued = await call([], stated(technical=QueueLoad(waiting=0, agents=2, available=1, talk_s=300)))
    assert (said, queued) == ("", "technical: answered")


async def test_a_state_not_known_in_time_joins_untold() -> None:
    class Slow:
        async def load(self, queue: str) -> QueueLoad | None:
            await asyncio.sleep(30)
            return None

    svc = dataclasses.replace(services(), queues=Slow())
    settings = load_settings().model_copy(update={"queue_wait": QueueWaitSettings(state_timeout_s=0.05)})
    chan = ScriptedChannel(caller(), [])
    result = await run_call(flow(WAITING), chan, svc, settings=settings)
    assert (result.path, chan.heard) == (["first"], [])
    path, said, queued = await call([], stated())  # AMI down: nothing known
    assert (path, said, queued) == (["first"], "", "technical: answered")


async def test_without_a_call_back_target_nothing_is_offered() -> None:
    text = WAITING.replace(", callback: offered", "")
    result, chan, _ = await run(text, [], svc=stated(technical=QueueLoad(waiting=30, agents=1, talk_s=300)))
    said = CATALOGUE.render_text(chan.heard)
    assert said.startswith("O tempo estimado de espera é de mais de uma hora") and "digite" not in said
    assert result.path == ["first"]


def test_a_stated_queue_for_the_simulator() -> None:
    assert parse_queue_load("waiting=3, agents=2,talk_s=240") == QueueLoad(waiting=3, agents=2, talk_s=240)
    with pytest.raises(ScriptError, match="names: waiting, agents"):
        parse_queue_load("waiting=3,agentes=2")
    with pytest.raises(ScriptError, match="waiting= and agents= are needed"):
        parse_queue_load("waiting=3")
