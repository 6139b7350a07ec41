"""The other verbs, each through a real call walk with a scripted caller."""

import dataclasses
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from ivr.config import load_settings
from ivr.engine.channel import QueueOutcome, TransferOutcome
from ivr.engine.context import Outcome
from ivr.engine.interpreter import run_call
from ivr.engine.operations import Arg, OperationContext, OperationResult, OperationSpec
from ivr.engine.ports import Heard, Recognition
from ivr.engine.scripted import ScriptedChannel
from ivr.engine.state import PATH_TOLD_CHARS, CallState
from ivr.flows.loader import FlowLoadError

from .fakes import caller, flow, registry, run, services

SP = ZoneInfo("America/Sao_Paulo")
VALID_CNPJ = "11222333000181"


def wrap(nodes: str, start: str = "first") -> str:
    """A flow around some nodes, with the usual endings."""
    return f"""
flow: t
start: {start}
nodes:
{nodes}
  person:
    queue: {{name: technical, no_agents: bye, timeout: bye}}
  done:
    queue: {{name: billing, no_agents: bye, timeout: bye}}
  bye:
    hangup: goodbye
"""


COLLECT = wrap("""
  first:
    collect:
      prompt: type_cnpj
      into: cnpj
      min_digits: 14
      max_digits: 14
      validator: cnpj
      invalid: {retries: 1, prompt: cnpj_invalid}
      no_input: {retries: 1, prompt: didnt_hear}
      then: person
    next: done
""")


async def test_collect_keeps_valid_digits_and_masks_them_in_events() -> None:
    result, chan, svc = await run(COLLECT, [VALID_CNPJ])
    assert result.target == "billing"
    assert result.variables["cnpj"] == VALID_CNPJ
    visit = svc.events.visits[0]
    assert (visit.input, visit.outcome) == ("11.***.***/****-81", "collected")
    assert VALID_CNPJ not in repr(svc.events.visits)


async def test_collect_asks_again_after_an_invalid_value_then_gives_up_to_then() -> None:
    result, chan, _ = await run(COLLECT, ["11222333000182", "11222333000100#"])
    assert result.target == "technical"
    assert chan.heard == ["type_cnpj", "cnpj_invalid", "type_cnpj"]
    assert "cnpj" not in result.variables


async def test_collect_stops_at_the_terminator_and_keeps_keys_typed_during_the_prompt() -> None:
    text = COLLECT.replace("min_digits: 14", "min_digits: 1").replace("validator: cnpj", "validator: none")
    result, chan, _ = await run(text, ["barge:4", "21#"])
    assert result.variables["cnpj"] == "421"
    assert chan.heard == ["type_cnpj"]


async def test_collect_protocol_validator_tells_ticket_from_call_protocol() -> None:
    text = wrap("""
  first:
    collect: {prompt: type_ticket_number, into: number, min_digits: 9, max_digits: 12, validator: protocol,
              then: person}
    next: done
""")
    result, _, _ = await run(text, ["800001028#"])
    assert (result.variables["number"], result.variables["number_kind"]) == ("800001028", "ticket")
    result, _, _ = await run(text, ["202600000014"])
    assert result.variables["number_kind"] == "call_protocol"


async def test_collect_takes_a_hash_after_a_full_length_entry_as_its_end_not_the_next_answer() -> None:
    text = COLLECT.replace("next: done", "next: after") + """
  after:
    menu: {prompt: main_menu, options: {"1": {go: done}, "0": {go: person}}, then: person}
"""
    result, chan, _ = await run(text, [VALID_CNPJ, "#", "1"])
    assert result.target == "billing"
    assert "invalid_option" not in chan.heard
    # A key other than "#" is the next answer, typed ahead.
    result, _, _ = await run(text, [VALID_CNPJ, "barge:1"])
    assert result.target == "billing"


PERSON = COLLECT.replace("then: person", "then: bye\n      person: person")


async def test_star_in_a_data_prompt_leaves_to_a_person_and_is_announced_once() -> None:
    result, chan, svc = await run(PERSON, ["11*"])
    assert result.target == "technical"
    assert chan.heard == ["type_cnpj", "data/star_for_person"]
    assert svc.events.visits[0].outcome == "person"
    twice = PERSON.replace("next: done", "next: again").replace("  person:\n    queue", "  again:\n    collect:"
        " {prompt: type_customer_code, into: code, then: bye, person: person}\n    next: done\n  person:\n    queue")
    result, chan, _ = await run(twice, [VALID_CNPJ, "*"])
    assert result.target == "technical"
    assert chan.heard == ["type_cnpj", "data/star_for_person", "type_customer_code"]


async def test_zero_is_a_digit_in_a_data_prompt() -> None:
    text = PERSON.replace("min_digits: 14", "min_digits: 1").replace("validator: cnpj", "validator: none")
    result, _, _ = await run(text, ["0#"])
    assert (result.target, result.variables["cnpj"]) == ("billing", "0")


def _collect(validator: str, max_digits: int) -> str:
    return wrap(f"""
  first:
    collect: {{prompt: type_month, into: value, min_digits: 1, max_digits: {max_digits}, validator: {validator},
              invalid: {{retries: 1, prompt: number_invalid}}, then: bye, person: person}}
    next: done
""")


@pytest.mark.parametrize(
    ("keyed", "kept"),
    [("10", "2026-10"), ("11", "2026-11"), ("12", "2025-12"), ("1#", "2026-01"), ("01", "2026-01")],
)
async def test_a_month_is_the_latest_of_that_name_never_a_future_one(keyed: str, kept: str) -> None:
    result, _, _ = await run(_collect("month", 2), [keyed])  # the fake clock says 25 November 2026
    assert result.variables["value"] == kept


async def test_a_month_that_does_not_exist_is_asked_again() -> None:
    result, chan, _ = await run(_collect("month", 2), ["13", "00"])
    assert result.path[-1] == "bye"
    assert chan.heard.count("number_invalid") == 1


async def test_a_due_day_must_be_one_the_carrier_offers() -> None:
    offered = load_settings().billing.due_days
    wrong = next(day for day in range(1, 29) if day not in offered)
    result, chan, _ = await run(_collect("due_day", 2), [f"{wrong}#", f"{offered[0]}#"])
    assert result.variables["value"] == str(offered[0])
    assert chan.heard.count("number_invalid") == 1


@pytest.mark.parametrize(
    ("keyed", "kept"),
    [("31999998888", "31999998888"), ("3133334444#", "3133334444"), ("08001234567", None), ("30033336#", None),
     ("0031999998888", None), ("11123456789", None)],
)
async def test_a_number_to_call_back_is_a_brazilian_landline_or_mobile(keyed: str, kept: str | None) -> None:
    result, _, svc = await run(_collect("phone", 11), [keyed, "silence"])
    assert result.variables.get("value") == kept
    if kept:
        assert kept not in repr(svc.events.visits)  # masked


async def test_collect_by_speech_keeps_the_transcript() -> None:
    text = wrap("""
  first:
    collect: {prompt: tell_us, into: words, speech: true, then: person}
    next: done
""")
    result, _, _ = await run(text, ["say:meu link caiu"])
    assert result.variables["words"] == "meu link caiu"


LOOKUP = wrap("""
  first:
    lookup:
      operation: customer_by_caller_id
      into: who
      found: known
      not_found: unknown
      error: person
  known:
    branch:
      when:
        - {if: "call.identified and who.name.startswith('Padaria')", go: done}
      else: person
  unknown:
    set: {greeting: "cliente {{ call.caller_id or 'anônimo' }}"}
    next: person
""")


async def test_an_identifying_lookup_sets_the_customer_and_its_results() -> None:
    result, _, _ = await run(LOOKUP)
    assert result.customer_id == 7
    assert result.variables["who"]["name"] == "Padaria Pão Quente"
    assert result.target == "billing"


async def test_operations_see_the_caller_id_normalised_once() -> None:
    result, _, _ = await run(LOOKUP, number="+55 (31) 3333-4444")
    assert result.customer_id == 7


async def test_a_lookup_that_finds_nothing_takes_not_found() -> None:
    result, _, svc = await run(LOOKUP, number=None)
    assert result.customer_id is None
    assert result.path == ["first", "unknown", "person"]
    assert result.variables["greeting"] == "cliente anônimo"
    assert svc.events.visits[0].outcome == "not_found"


async def test_an_action_records_the_ticket_it_opened_and_branches_on_failure() -> None:
    text = wrap("""
  first:
    action: {operation: open_ticket, args: {kind: complaint, description: "{{ call.caller_id }}"}, into: t,
             error: person}
    next: say_it
  say_it:
    say: {before: ticket_opened, protocol: "{{ t.ticket_number }}"}
    next: done
""")
    result, chan, _ = await run(text)
    assert [(t.type, t.number) for t in result.tickets] == [("complaint", "800000014")]
    assert chan.heard[:2] == ["ticket_opened", "digit/8"]


async def test_a_flow_calling_an_unregistered_operation_fails_over() -> None:
    text = wrap("""
  first:
    lookup: {operation: no_such_thing, found: done, not_found: done, error: done}
""")
    result, _, svc = await run(text)
    assert result.outcome is Outcome.FAILED
    assert "no_such_thing" in result.reason
    assert svc.calls.ended[0][1] == "failed"


HOURS = wrap("""
  first:
    hours:
      schedule: {weekdays: "08:00-12:00, 13:00-18:00", sat: "09:00-13:00"}
      open: done
      closed: person
      holiday: bye
""")


@pytest.mark.parametrize(
    ("moment", "path_end"),
    [
        (datetime(2026, 11, 25, 10, 0, tzinfo=SP), "done"),  # Wednesday morning
        (datetime(2026, 11, 25, 12, 30, tzinfo=SP), "person"),  # lunch break
        (datetime(2026, 11, 28, 12, 59, tzinfo=SP), "done"),  # Saturday
        (datetime(2026, 11, 29, 10, 0, tzinfo=SP), "person"),  # Sunday: not in the schedule
        (datetime(2026, 11, 20, 10, 0, tzinfo=SP), "bye"),  # Consciência Negra, a national holiday
        (datetime(2026, 11, 25, 13, 30, tzinfo=ZoneInfo("UTC")), "done"),  # 10:30 in São Paulo
    ],
)
async def test_hours_follow_the_schedule_holidays_and_timezone(moment: datetime, path_end: str) -> None:
    result, _, _ = await run(HOURS, svc=services(now=moment))
    assert result.path[1] == path_end


def test_hours_refuse_a_span_that_ends_before_it_starts() -> None:
    with pytest.raises(FlowLoadError, match="ends before it starts"):
        flow(HOURS.replace("08:00-12:00", "12:00-08:00"))


QUEUE = wrap("""
  first:
    set: {journey: billing}
    next: q
  q:
    queue: {name: billing, no_agents: bye, timeout: person, context: {journey: "{{ journey }}"}}
""")


@pytest.mark.parametrize(
    ("outcome", "expected"),
    [
        (QueueOutcome.ANSWERED, ["first", "q"]),
        (QueueOutcome.NO_AGENTS, ["first", "q", "bye"]),
        (QueueOutcome.TIMEOUT, ["first", "q", "person"]),
    ],
)
async def test_queue_outcomes_lead_where_the_flow_says(outcome: QueueOutcome, expected: list[str]) -> None:
    result, _, _ = await run(QUEUE, queue_outcomes={"billing": outcome})
    assert result.path == expected


async def test_the_agent_gets_the_call_context() -> None:
    seen: dict[str, str] = {}

    class Recording(ScriptedChannel):
        async def queue(self, queue, *, context, timeout_s):  # type: ignore[no-untyped-def]
            seen.update(context)
            return QueueOutcome.ANSWERED

    result = await run_call(flow(QUEUE), Recording(caller()), services(), settings=load_settings())
    assert seen["protocol"] == result.protocol
    assert seen["caller_id"] == "3133334444"
    assert seen["path"] == "first>q"
    assert seen["journey"] == "billing"


def test_an_agent_is_told_the_latest_nodes_of_a_long_walk_in_whole_names() -> None:
    state = CallState(protocol="202600000017", caller_id="3133334444", dialled="30033336", listening=False)
    state.path.extend(f"menu_{n}" for n in range(500))  # max_call_steps: ~4,400 characters in all
    told = state.queue_context()["path"]
    assert told.startswith("...>") and told.endswith(">menu_498>menu_499")
    assert len(told) <= PATH_TOLD_CHARS + len("...>")
    assert all(name.startswith("menu_") for name in told.removeprefix("...>").split(">"))
    state.path[:] = ["greet", "main_menu"]
    assert state.queue_context()["path"] == "greet>main_menu"


async def test_transfer_ends_the_call_or_takes_failed() -> None:
    text = wrap("""
  first:
    transfer: {number: "+553131958012", failed: person}
""")
    result, chan, _ = await run(text)
    assert result.summary == "transfer:+553131958012"
    assert [e.detail for e in chan.events if e.kind == "transfer"] == ["+553131958012: answered"]
    result, _, _ = await run(text, transfer_outcome=TransferOutcome.BUSY)
    assert result.target == "technical"


async def test_record_with_transcription_keeps_the_callers_words() -> None:
    text = wrap("""
  first:
    record: {prompt: tell_us, into: words, transcribe: true}
    next: done
""")
    result, chan, _ = await run(text, ["barge:1", "say:o técnico não apareceu"])
    assert result.variables["words"] == "o técnico não apareceu"
    assert "ignored" in [e.detail for e in chan.events if e.kind == "keys"][0]  # recording prompt not interruptible


@pytest.mark.parametrize("keep", [False, True])
async def test_a_transcribed_recording_is_deleted_once_heard_unless_the_flow_keeps_it(
    keep: bool, tmp_path: Path
) -> None:
    recorded = tmp_path / "said.wav"

    class Speaks(ScriptedChannel):
        async def listen(self, *, max_seconds: float, silence_seconds: float, beep: bool = False) -> Heard:
            recorded.write_bytes(b"RIFF")  # what RECORD FILE left
            return Heard(audio=recorded, duration_s=4.0)

    class Transcribes:
        listens = True

        async def recognise(self, heard: Heard, *, phrase_hints: Sequence[str] = ()) -> Recognition:
            return Recognition(transcript="o técnico não apareceu", confidence=0.9)

    text = wrap(f"""
  first:
    record: {{prompt: tell_us, into: words, transcribe: true, keep: {str(keep).lower()}}}
    next: done
""")
    svc = dataclasses.replace(services(), recognizer=Transcribes())
    result = await run_call(flow(text), Speaks(caller(), [], hears_words=False), svc, settings=load_settings())
    assert result.variables["words"] == "o técnico não apareceu"
    assert recorded.exists() is keep
    assert result.variables["words_audio"] == (str(recorded) if keep else "")


async def test_the_calls_record_keeps_a_cnpj_and_the_callers_words_masked_as_the_node_visits_do() -> None:
    text = wrap("""
  first:
    collect: {prompt: type_cnpj, into: cnpj, validator: cnpj, then: person}
    next: words
  words:
    record: {prompt: tell_us, into: words, transcribe: true}
    next: person
""")
    result, _, svc = await run(text, ["11222333000181", "say:meu nome é Ana Souza"])
    assert (result.variables["cnpj"], result.variables["words"]) == ("11222333000181", "meu nome é Ana Souza")
    ((_, _, recorded),) = svc.calls.ended  # type: ignore[attr-defined]
    inputs = {v.node: v.input for v in svc.events.visits}  # type: ignore[attr-defined]
    assert (recorded["cnpj"], recorded["words"]) == (inputs["first"], inputs["words"])
    assert "11222333000181" not in str(recorded) and "Ana" not in str(recorded)


async def test_the_protocol_announcement_cannot_be_interrupted() -> None:
    text = wrap("""
  first:
    say: {before: your_protocol_is, protocol: "{{ call.protocol }}"}
    next: m
  m:
    menu: {prompt: main_menu, options: {"1": {go: done}, "0": {go: person}}, then: person}
""")
    result, chan, _ = await run(text, ["barge:1", "0"])
    assert result.target == "technical"  # the 1 was lost; the 0 after the menu prompt counted
    assert chan.heard[0] == "your_protocol_is" and chan.heard[-1] == "main_menu"
    assert len(chan.heard) > 10  # the whole number was said


def test_a_protocol_announcement_marked_interruptible_is_refused() -> None:
    with pytest.raises(FlowLoadError, match="never interruptible"):
        flow(wrap("""
  first:
    say: {protocol: "{{ call.protocol }}", interruptible: true}
    next: done
"""))


async def test_say_money_and_dates_in_portuguese() -> None:
    text = wrap("""
  first:
    set: {amount: "1234.50", due: "2026-12-01"}
    next: s1
  s1:
    say: {money: "{{ amount }}"}
    next: s2
  s2:
    say: {date: "{{ due }}"}
    next: done
""")
    _, chan, _ = await run(text)
    assert chan.heard == [
        "num/mil", "num/200", "word/e", "num/30", "word/e", "num/4", "money/reais", "word/e", "num/50",
        "money/centavos", "date/first", "word/de", "month/12",
    ]  # fmt: skip


async def test_templates_cannot_reach_python() -> None:
    text = wrap("""
  first:
    set: {leak: "{{ call.__class__.__mro__ }}"}
    next: done
""")
    result, _, _ = await run(text)
    assert result.outcome is Outcome.FAILED
    assert "unsafe" in result.reason and "leak" not in result.variables


async def test_subflow_runs_another_flow_and_comes_back() -> None:
    sub = flow("""
flow: ask
start: q
nodes:
  q:
    collect: {prompt: type_customer_code, into: code, then: out}
    next: out
  out:
    return:
""")
    main = flow(wrap("""
  first:
    subflow: ask
    next: done
"""))
    result = await run_call(
        main, ScriptedChannel(caller(), ["100200#"]), services(), flows={"ask": sub}, settings=load_settings()
    )
    assert result.path == ["first", "ask/q", "ask/out", "done"]
    assert result.variables["code"] == "100200"
    assert result.target == "billing"


async def test_goto_and_hangup() -> None:
    text = wrap("""
  first:
    goto: bye
""")
    result, chan, _ = await run(text)
    assert result.outcome is Outcome.ENDED
    assert chan.heard == ["goodbye"] and chan.hung_up


async def test_notify_sends_through_the_operation_of_its_channel_and_template() -> None:
    sent: list[dict[str, object]] = []

    async def send_document(ctx: OperationContext, kind: str, month: str = "") -> OperationResult:
        sent.append({"kind": kind, "month": month})
        return OperationResult.found() if month == "2026-10" else OperationResult.not_found()

    operations = registry()
    operations.register(
        OperationSpec("send_document", "", (Arg("kind", str), Arg("month", str, required=False)), ()), send_document
    )
    text = wrap("""
  first:
    notify: {via: email, template: boleto, args: {month: "{{ month }}"}, error: person}
    next: done
""")
    for month, path_end in (("2026-10", "done"), ("2025-01", "person")):
        result, _, _ = await run(text.replace("{{ month }}", month), svc=services(operations=operations))
        assert result.path[-1] == path_end
    assert sent == [{"kind": "boleto", "month": "2026-10"}, {"kind": "boleto", "month": "2025-01"}]


def test_notify_refuses_a_message_its_channel_cannot_carry() -> None:
    with pytest.raises(FlowLoadError, match="there is no 'boleto' message by whatsapp"):
        flow(wrap("""
  first:
    notify: {via: whatsapp, template: boleto, error: done}
    next: done
"""))
