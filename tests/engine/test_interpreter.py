"""The walk as a whole: protocol first, events per node, hang-ups anywhere, and the bounds."""

import asyncio
from collections.abc import Sequence

import pytest

from ivr.config import load_settings
from ivr.engine.channel import CallerHangup, ChannelError
from ivr.engine.context import Outcome
from ivr.engine.interpreter import CallResult, run_call
from ivr.engine.operations import OperationContext, OperationResult, OperationSpec
from ivr.engine.ports import CallInfo, Services
from ivr.engine.scripted import ScriptedChannel
from ivr.engine.verbs.play import Play

from .fakes import caller, flow, registry, run, services

JOURNEY = """
flow: j
start: greet
nodes:
  greet:
    play: welcome
    next: announce
  announce:
    say: {before: your_protocol_is, protocol: "{{ call.protocol }}"}
    next: who
  who:
    lookup: {operation: customer_by_caller_id, into: me, found: menu, not_found: menu, error: menu}
  menu:
    menu:
      prompt: main_menu
      options: {"1": {go: ask}, "0": {go: person}}
      then: person
  ask:
    collect: {prompt: type_customer_code, into: code, max_digits: 6, then: person}
    next: open
  open:
    action: {operation: open_ticket, args: {kind: complaint}, into: t, error: person}
    next: person
  person:
    queue: {name: technical, no_agents: bye, timeout: bye}
  bye:
    hangup: goodbye
"""
FULL_PATH = ["greet", "announce", "who", "menu", "ask", "open", "person"]


async def test_a_call_gets_its_protocol_first_and_one_event_per_node() -> None:
    result, chan, svc = await run(JOURNEY, ["1", "123456"])
    assert result.path == FULL_PATH
    assert result.summary == "queue:technical"
    assert svc.calls.started == [(result.protocol, "j")]
    assert [v.node for v in svc.events.visits] == FULL_PATH
    assert {v.call_protocol for v in svc.events.visits} == {result.protocol}
    assert [v.outcome for v in svc.events.visits] == [
        "announce", "who", "found", "1", "collected", "found", "answered:technical"
    ]  # fmt: skip
    assert result.variables["code"] == "123456"  # the flow used it ...
    # ... the store keeps it as the node visit shows it: a customer code is personal data.
    assert svc.calls.ended == [(result.protocol, "queue:technical", {**result.variables, "code": "<6 chars>"})]


CALL_BACK = """
flow: cb
start: ask
nodes:
  ask:
    action: {operation: call_me_back, into: asked, error: bye}
    next: check
  check:
    branch:
      when:
        - {if: "asked.callback_number == '31987654321'", go: bye}
      else: wrong
  wrong:
    play: welcome
    next: bye
  bye:
    hangup: goodbye
"""


async def test_an_operations_personal_results_serve_the_flow_and_are_recorded_masked() -> None:
    async def call_me_back(ctx: OperationContext) -> OperationResult:
        return OperationResult.found(ticket_number="800000021", callback_number="31987654321", alias="Ana Maria")

    operations = registry()
    results = ("ticket_number", "callback_number", "alias")
    spec = OperationSpec("call_me_back", "", (), results, personal=("callback_number", "alias"))
    operations.register(spec, call_me_back)
    result, _, svc = await run(CALL_BACK, svc=services(operations=operations))
    assert result.path == ["ask", "check", "bye"]  # the flow read the number itself
    [(_, _, recorded)] = svc.calls.ended
    assert recorded["asked"] == {
        "ticket_number": "800000021", "callback_number": "31*******21", "alias": "<9 chars>", "status": "found"
    }  # fmt: skip


COPIES = """
flow: copies
start: number
nodes:
  number:
    set: {callback_phone: "{{ call.caller_id }}", note: "ligar para {{ call.caller_id }} amanhã", team: billing}
    next: code
  code:
    collect: {prompt: type_customer_code, into: code, max_digits: 6, then: bye}
    next: copy
  copy:
    set: {code_again: "{{ code }}", code: "replaced"}
    next: bye
  bye:
    hangup: goodbye
"""


async def test_a_set_that_copies_something_personal_is_recorded_masked() -> None:
    result, _, svc = await run(COPIES, ["123456"])
    assert (result.variables["note"], result.variables["code_again"]) == ("ligar para 3133334444 amanhã", "123456")
    [(_, _, recorded)] = svc.calls.ended
    assert recorded == {
        "callback_phone": "31******44",
        "note": "ligar para 31******44 amanhã",
        "team": "billing",
        "code_again": "<6 chars>",
        "code": "replaced",  # set over a value kept masked: the new value, not the old mask
    }


def test_a_personal_result_must_be_one_of_the_operations_results() -> None:
    with pytest.raises(TypeError, match=r"call_me_back: personal result\(s\) \['phone'\] are not among its results"):
        OperationSpec("call_me_back", "", (), ("ticket_number",), personal=("phone",))


async def test_each_visit_keeps_the_prompts_played_there_with_spelled_digits_masked() -> None:
    result, chan, svc = await run(JOURNEY, ["1", "123456"])
    prompts = {v.node: v.prompts for v in svc.events.visits}
    assert prompts["greet"] == ("welcome",)
    said = prompts["announce"]  # the protocol: the year as a number, then its digits (none kept)
    assert said[0] == "your_protocol_is" and "digit/*" in said
    assert not any(p.startswith("digit/") and p != "digit/*" for p in said)
    assert [p for p in said if p.startswith("digit/")] == ["digit/*"] * sum(p.startswith("digit/") for p in chan.heard)
    assert prompts["who"] == () and prompts["menu"][0] == "main_menu" and prompts["ask"][0] == "type_customer_code"


class Queued(ScriptedChannel):
    """Keeps the context the call gave the agent when it joined a queue."""

    context: dict[str, str] = {}

    async def queue(self, queue, *, context, timeout_s):  # type: ignore[no-untyped-def]
        self.context = dict(context)
        return await super().queue(queue, context=context, timeout_s=timeout_s)


async def test_the_agent_is_told_what_the_caller_keyed_masked_where_it_is_personal() -> None:
    chan = Queued(caller(), ["1", "123456"])
    await run_call(flow(JOURNEY), chan, services(), settings=load_settings())
    assert chan.context["keyed"] == "menu=1 ask=<6 chars>"  # the customer code itself is not told
    assert chan.context["path"] == ">".join(FULL_PATH)


class Watch:
    """A `CallWatch` writing down what it is told, and how many visits were recorded by then."""

    def __init__(self, svc: Services) -> None:
        self.svc = svc
        self.told: list[tuple[str, ...]] = []

    def call_started(self, protocol: str, call: CallInfo, flow: str) -> None:
        self.told.append(("started", protocol, flow))

    def node_entered(self, protocol: str, flow: str, node: str) -> None:
        self.told.append((node, str(len(self.svc.events.visits))))  # type: ignore[attr-defined]

    def call_ended(self, protocol: str) -> None:
        self.told.append(("ended", protocol))


async def test_the_live_watch_is_told_each_node_as_it_is_entered() -> None:
    svc = services()
    svc.watch = watch = Watch(svc)
    result, _, _ = await run(JOURNEY, ["1", "123456"], svc=svc)
    assert watch.told == [
        ("started", result.protocol, "j"),
        *((node, str(i)) for i, node in enumerate(FULL_PATH)),  # before the node runs, not once it ends
        ("ended", result.protocol),
    ]


@pytest.mark.parametrize("keys_before_hangup", [1, 2])
async def test_a_hangup_anywhere_keeps_what_was_gathered(keys_before_hangup: int) -> None:
    inputs = ["1", "123456"][:keys_before_hangup] + ["hangup"]
    result, chan, svc = await run(JOURNEY, inputs, queue_outcomes={})
    assert result.outcome is Outcome.HANGUP
    assert result.variables["me"]["name"] == "Padaria Pão Quente"  # gathered before the hang-up
    assert svc.calls.ended[0][1] == "hangup"
    assert svc.events.visits[-1].outcome == "hangup"
    if keys_before_hangup == 2:
        assert result.variables["code"] == "123456"


class HangsUpAt(ScriptedChannel):
    """A caller who leaves at the n-th thing the IVR does, whatever it is."""

    def __init__(self, at: int, inputs: Sequence[str]) -> None:
        super().__init__(caller(), inputs)
        self.left = at

    def _tick(self) -> None:
        self.left -= 1
        if self.left < 0:
            raise CallerHangup()

    async def play(self, prompt_ids, *, interruptible=True):  # type: ignore[no-untyped-def]
        self._tick()
        return await super().play(prompt_ids, interruptible=interruptible)

    async def read_digits(self, **kw):  # type: ignore[no-untyped-def]
        self._tick()
        return await super().read_digits(**kw)

    async def queue(self, queue, *, context, timeout_s):  # type: ignore[no-untyped-def]
        self._tick()
        return await super().queue(queue, context=context, timeout_s=timeout_s)


@pytest.mark.parametrize("at", range(7))
async def test_every_channel_operation_may_be_the_hangup(at: int) -> None:
    svc = services()
    result = await run_call(flow(JOURNEY), HangsUpAt(at, ["1", "123456"]), svc, settings=load_settings())
    assert result.outcome is Outcome.HANGUP
    assert len(svc.calls.ended) == 1 and svc.calls.ended[0][1] == "hangup"
    assert len(svc.events.visits) == len(result.path)  # the node in progress is recorded too


async def test_a_hangup_while_answering_ends_quietly() -> None:
    result, _, svc = await run(JOURNEY, ["hangup"])
    assert result.outcome is Outcome.HANGUP and result.path == []
    assert svc.calls.started == []


LOOPING = """
flow: loop
start: a
nodes:
  a:
    goto: b
  b:
    set: {n: "{{ (n or 0) | int + 1 }}"}
    next: a
"""


async def test_the_step_limit_stops_a_looping_flow() -> None:
    result = await run_call(
        flow(LOOPING), ScriptedChannel(caller()), services(), settings=load_settings(max_call_steps=21)
    )
    assert result.outcome is Outcome.FAILED
    assert len(result.path) == 21
    assert result.variables["n"] == "10"
    assert "more than 21 steps" in result.reason


async def test_a_node_past_its_time_limit_fails_the_call_over(monkeypatch: pytest.MonkeyPatch) -> None:
    stuck = asyncio.Event()

    class Stuck(ScriptedChannel):
        async def play(self, prompt_ids, *, interruptible=True):  # type: ignore[no-untyped-def]
            stuck.set()
            await asyncio.Event().wait()

    monkeypatch.setattr(Play, "time_limit_s", lambda self: 0.05)
    svc = services()
    result = await run_call(flow(JOURNEY), Stuck(caller()), svc, settings=load_settings())
    assert stuck.is_set()
    assert result.outcome is Outcome.FAILED and "greet" in result.reason
    assert svc.events.visits[0].outcome == "timeout"


async def test_a_command_that_times_out_is_named_not_taken_for_the_nodes_limit() -> None:
    class CommandTimeout(ChannelError, TimeoutError):  # as the AGI wire's AgiTimeout is
        pass

    class Late(ScriptedChannel):
        async def play(self, prompt_ids, *, interruptible=True):  # type: ignore[no-untyped-def]
            raise CommandTimeout("STREAM FILE: no answer within 35.4 s (prompt main_menu lasts 30.4 s)")

    svc = services()
    result = await run_call(flow(JOURNEY), Late(caller()), svc, settings=load_settings())
    assert result.outcome is Outcome.FAILED
    assert result.reason == "STREAM FILE: no answer within 35.4 s (prompt main_menu lasts 30.4 s)"


async def test_a_channel_error_fails_the_call_over() -> None:
    class Broken(ScriptedChannel):
        async def play(self, prompt_ids, *, interruptible=True):  # type: ignore[no-untyped-def]
            raise ChannelError("510 invalid command")

    result = await run_call(flow(JOURNEY), Broken(caller()), services(), settings=load_settings())
    assert (result.outcome, result.reason) == (Outcome.FAILED, "510 invalid command")


async def test_cancelling_a_call_cancels_its_work_and_still_records_the_end() -> None:
    started = asyncio.Event()

    class Waits(ScriptedChannel):
        async def play(self, prompt_ids, *, interruptible=True):  # type: ignore[no-untyped-def]
            started.set()
            await asyncio.Event().wait()

    svc = services()
    task = asyncio.create_task(run_call(flow(JOURNEY), Waits(caller()), svc, settings=load_settings()))
    await started.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert svc.calls.ended[0][1] == "failed"


async def test_what_the_call_opened_is_summarised_once_when_it_ends_even_by_a_hang_up() -> None:
    result, _, svc = await run(JOURNEY, ["1", "123456", "hangup"])
    [summary] = svc.summaries.sent
    assert (summary.protocol, summary.tickets) == (result.protocol, tuple(result.tickets))
    assert (summary.customer_id, summary.caller_id, summary.to_caller_by_whatsapp) == (7, "3133334444", False)
    assert result.summary_sent_by == ("email",)


async def test_a_call_that_opened_nothing_sends_no_summary() -> None:
    result, _, svc = await run(JOURNEY, ["0"])
    assert svc.summaries.sent == [] and result.summary_sent_by == ()


async def test_a_caller_who_accepted_it_by_whatsapp_gets_the_summary_on_the_number_calling() -> None:
    text = JOURNEY.replace(
        "    next: person\n  person:",
        "    next: accept\n  accept:\n    set: {summary_to_caller: whatsapp}\n    next: person\n  person:",
    )
    _, _, svc = await run(text, ["1", "123456"], number="31999990000")
    [summary] = svc.summaries.sent
    assert (summary.customer_id, summary.to_caller_by_whatsapp) == (None, True)


# --- what a node says happens next, and the walk that follows it ---------------------------------------

MAIN = """
flow: main
start: first
nodes:
  first:
    subflow: ask
    next: done
  done:
    queue: {name: billing, no_agents: bye, timeout: bye}
  bye:
    hangup: goodbye
"""
ASK = """
flow: ask
start: q
nodes:
  q:
    collect: {prompt: type_customer_code, into: code, max_digits: 6, then: out}
    next: deeper
  deeper:
    subflow: greet
    next: out
  out:
    return:
"""
GREET = """
flow: greet
start: hello
nodes:
  hello:
    play: welcome
    next: back
  back:
    return:
"""


async def walk(
    main: str, subflows: Sequence[str], inputs: Sequence[str] = (), *, max_steps: int = 100
) -> tuple[CallResult, ScriptedChannel, Services]:
    """A call through `main`, which may run the flows in `subflows`."""
    svc, channel = services(), ScriptedChannel(caller(), list(inputs))
    loaded = {f.name: f for f in map(flow, subflows)}
    settings = load_settings(max_call_steps=max_steps)
    result = await run_call(flow(main), channel, svc, flows=loaded, settings=settings)
    return result, channel, svc


async def test_a_subflow_that_returns_goes_on_at_the_node_after_it_even_nested() -> None:
    result, chan, svc = await walk(MAIN, [ASK, GREET], ["123456"])
    assert result.path == ["first", "ask/q", "ask/deeper", "greet/hello", "greet/back", "ask/out", "done"]
    assert (result.outcome, result.target, result.variables["code"]) == (Outcome.QUEUE, "billing", "123456")
    assert chan.heard == ["type_customer_code", "welcome"]
    # A subflow's node is recorded once its subflow is back, with the node the call went on to.
    assert [(v.flow, v.node, v.outcome) for v in svc.events.visits] == [
        ("ask", "q", "collected"),
        ("greet", "hello", "back"),
        ("greet", "back", "end"),
        ("ask", "deeper", "out"),
        ("ask", "out", "end"),
        ("main", "first", "done"),
        ("main", "done", "answered:billing"),
    ]
    # Each prompt once, at the node that played it: not again at the node that ran its subflow.
    assert [p for v in svc.events.visits for p in v.prompts] == chan.heard


async def test_a_subflow_that_ends_the_call_ends_it_for_the_flow_that_ran_it() -> None:
    to_a_person = ASK.replace("subflow: greet\n    next: out", "queue: {name: technical, no_agents: out, timeout: out}")
    result, _, svc = await walk(MAIN, [to_a_person], ["123456"])
    assert (result.outcome, result.target) == (Outcome.QUEUE, "technical")
    assert result.path == ["first", "ask/q", "ask/deeper"]  # never back at `done`
    assert svc.calls.ended == [(result.protocol, "queue:technical", {**result.variables, "code": "<6 chars>"})]
    last_two = [(v.node, v.outcome) for v in svc.events.visits][-2:]
    assert last_two == [("deeper", "answered:technical"), ("first", "answered:technical")]


async def test_a_return_in_the_calls_own_flow_ends_the_call_politely() -> None:
    alone = GREET.replace("flow: greet", "flow: alone")
    result, chan, svc = await walk(alone, [])
    assert (result.outcome, result.summary) == (Outcome.ENDED, "ended")
    assert chan.heard == ["welcome"] and chan.hung_up
    assert svc.events.visits[-1].outcome == "end"


async def test_the_step_limit_counts_the_nodes_of_subflows_too() -> None:
    result, _, svc = await walk(MAIN, [LOOPING.replace("flow: loop", "flow: ask")], max_steps=15)
    assert result.outcome is Outcome.FAILED and "more than 15 steps" in result.reason
    assert result.path == ["first", *["ask/a", "ask/b"] * 7]
    # Every node visited has its event, the subflow's own node last, as the step that failed.
    assert len(svc.events.visits) == 15 and svc.events.visits[-1].node == "first"
    assert svc.events.visits[-1].outcome == "error"


@pytest.mark.parametrize(
    ("subflows", "reason"),
    [
        ([MAIN.replace("flow: main", "flow: ask")], "subflows nested deeper than 5 (does 'ask' call itself?)"),
        ([], "flow 'ask' is not loaded"),
    ],
)
async def test_a_subflow_that_cannot_run_fails_the_call_over(subflows: list[str], reason: str) -> None:
    result, _, _ = await walk(MAIN, subflows)
    assert (result.outcome, result.reason) == (Outcome.FAILED, reason)


async def test_a_template_that_fails_names_the_flow_and_node() -> None:
    broken = GREET.replace("    play: welcome\n", "    set: {x: \"{{ call.protocol + 1 }}\"}\n")
    result, _, _ = await walk(MAIN, [ASK, broken], ["123456"])
    assert result.outcome is Outcome.FAILED
    assert result.reason.startswith("flow 'greet', node 'hello': template '{{ call.protocol + 1 }}' failed")
