"""Impact before publishing (``ivr flow impact``): the recorded calls of the last days, replayed against the
published release and against the draft, and what the draft would change: calls that would end
differently, and nodes that would gain or lose visits.

A call is replayed from its node visits, in order: the key a menu took (also when the caller said the
option), what a question collected, silences, a person asked for (``*``), words recorded; queues and
transfers answer as they did. Both sides run the same replay on demo services (`ServicesFactory`: a
fresh store seeded as of the run, so nothing is sent and no real ticket is opened), each call at its own
moment, so the comparison is fair even where the replay is not the call itself.

Stand-ins, the honest limits (flows/README.md, "Impact before publishing"):

- Personal data is stored masked (a CNPJ, a phone, a customer code, words): a masked entry is replayed as
  the demo account's value of the same kind and length (`StandIn`), so the caller "typed a valid value";
  a wrong entry as zeros of its length; one with no stand-in makes the call not replayed, and says why.
- A caller identified before keying anything (by caller ID) is played by the demo account's number; any
  other keeps their own number, which the demo store does not know. What the data says (an invoice
  overdue, an outage, a ticket in progress) is the demo account's, not the caller's.
- A question's retries are counted from the published release's node of that name.
"""

from __future__ import annotations

import dataclasses
import re
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from ivr.clock import ManualClock
from ivr.config import Settings
from ivr.engine.channel import QueueOutcome, TransferOutcome
from ivr.engine.flow import Flow
from ivr.engine.interpreter import CallResult, run_call
from ivr.engine.ports import CallInfo
from ivr.engine.scripted import ScriptedChannel, ScriptError, StatedQueues, parse_item
from ivr.engine.verbs.collect import Collect
from ivr.engine.verbs.menu import Menu
from ivr.flows.checks import Report
from ivr.flows.flowtest import ServicesFactory

#: What a caller who recorded or spoke free words says in a replay (their words are not kept).
SPOKEN_STAND_IN = "palavras do cliente"
_CNPJ_MASK = re.compile(r"\d{2}\.\*{3}\.\*{3}/\*{4}-\w{2}|\*{3}")
_LENGTH_MASK = re.compile(r"<(\d+) chars>")
_PHONE_MASK = re.compile(r"\d{2}\*+\d{2}")
_MONTH = re.compile(r"\d{4}-(\d{2})")
_QUEUE_OUTCOMES = frozenset(o.value for o in QueueOutcome)
_TRANSFER_OUTCOMES = frozenset(o.value for o in TransferOutcome)


class ImpactRefused(ValueError):
    """No impact can be computed: the message says why; `report` holds the checker's, when it refused."""

    def __init__(self, message: str, report: Report | None = None) -> None:
        super().__init__(message)
        self.report = report


class NotReplayable(ValueError):
    """A recorded call the replay cannot play; the message is the reason, the same for alike calls."""


@dataclass(frozen=True, slots=True)
class RecordedVisit:
    flow: str
    node: str
    verb: str
    input: str  # masked by the verb where personal
    outcome: str


@dataclass(frozen=True, slots=True)
class RecordedCall:
    protocol: str
    flow: str
    started_at: datetime
    caller_id: str | None
    identified: bool
    outcome: str  # as stored: queue:<name>, transfer:<number>, hangup, ended, failed
    visits: tuple[RecordedVisit, ...]


@dataclass(frozen=True, slots=True)
class StandIn:
    """The demo account that plays a caller whose data is masked."""

    caller_id: str  # a number the demo store knows (it identifies the account)
    cnpj: str
    by_length: Mapping[int, str]  # the account's keyable values by length: CNPJ root, code, phones, circuits


@dataclass(frozen=True, slots=True)
class Replay:
    caller_id: str | None
    inputs: tuple[str, ...]
    queues: Mapping[str, QueueOutcome]
    transfer: TransferOutcome


def replay_of(call: RecordedCall, release: Mapping[str, Flow], stand_in: StandIn) -> Replay:
    """The caller's side of `call`, rebuilt from its visits; raises `NotReplayable`."""
    if not call.visits:
        raise NotReplayable("no node visits stored")
    inputs: list[str] = []
    queues: dict[str, QueueOutcome] = {}
    transfer = TransferOutcome.ANSWERED
    caller_id = call.caller_id
    for visit in call.visits:
        if visit.verb == "lookup" and visit.outcome == "found" and call.identified and not inputs:
            caller_id = stand_in.caller_id  # identified before keying anything: by the number calling
        elif visit.verb == "queue" and visit.outcome.partition(":")[0] in _QUEUE_OUTCOMES:
            outcome, _, name = visit.outcome.partition(":")
            queues[name] = QueueOutcome(outcome)  # the last time it reached that queue
        elif visit.verb == "transfer" and visit.outcome in _TRANSFER_OUTCOMES:
            transfer = TransferOutcome(visit.outcome)
        else:
            inputs += _answers(visit, release, stand_in)
    return Replay(caller_id, tuple(inputs), queues, transfer)


def _keys(visit: RecordedVisit, value: str) -> str:
    """The keys that give `value` again: a month is kept as YYYY-MM but keyed as its two digits."""
    if month := _MONTH.fullmatch(value):
        value = month[1]
    try:
        return parse_item(f"{value}#")
    except ScriptError:
        raise NotReplayable(f"what {visit.flow}/{visit.node} kept cannot be keyed again ({visit.verb})") from None


def _answers(visit: RecordedVisit, release: Mapping[str, Flow], stand_in: StandIn) -> list[str]:
    """What the caller did at one node, as script items (`ivr.engine.scripted`)."""
    node = release.get(visit.flow)
    verb = node.nodes[visit.node].verb if node is not None and visit.node in node.nodes else None
    outcome = visit.outcome
    if visit.verb == "menu":
        menu = verb if isinstance(verb, Menu) else None
        if outcome == "no_input":
            return ["silence"] * (menu.no_input.retries + 1 if menu else 1)
        if outcome == "no_match":
            keyed = visit.input if re.fullmatch(r"[0-9*#]+", visit.input) else f"say:{visit.input}"
            return [keyed] * (menu.no_match.retries + 1 if menu else 1)
        if outcome == "back":
            return ["#"]
        return [outcome] if re.fullmatch(r"[0-9*#]", outcome) else []  # the option chosen, by key or by voice
    if visit.verb == "collect":
        collect = verb if isinstance(verb, Collect) else None
        if outcome == "person":
            return ["*"]
        if outcome == "no_input":
            return ["silence"] * (collect.no_input.retries + 1 if collect else 1)
        if outcome == "invalid":
            wrong = "0" * _masked_length(visit.input) if _is_masked(visit.input) else visit.input
            return [_keys(visit, wrong)] * (collect.invalid.retries + 1 if collect else 1)
        if outcome == "collected":
            if collect and collect.speech and collect.validator == "none":
                return [f"say:{SPOKEN_STAND_IN}"]
            return [_keys(visit, _unmasked(visit, stand_in))]
        return []
    if visit.verb == "record":
        return [f"say:{SPOKEN_STAND_IN}"] if outcome == "recorded" else ["silence"]
    return []


def _is_masked(value: str) -> bool:
    return any(p.fullmatch(value) for p in (_CNPJ_MASK, _LENGTH_MASK, _PHONE_MASK))


def _masked_length(value: str) -> int:
    if _CNPJ_MASK.fullmatch(value):
        return 14
    length = _LENGTH_MASK.fullmatch(value)
    return int(length[1]) if length else len(value)


def _unmasked(visit: RecordedVisit, stand_in: StandIn) -> str:
    """The value collected, or the stand-in's of the same kind and length when it is stored masked."""
    value = visit.input
    if not _is_masked(value):
        return value
    if _CNPJ_MASK.fullmatch(value):
        return stand_in.cnpj
    length = _masked_length(value)
    if length not in stand_in.by_length:
        raise NotReplayable(
            f"input masked at {visit.flow}/{visit.node} ({value}): the demo account has no value of that length"
        )
    return stand_in.by_length[length]


@dataclass(frozen=True, slots=True)
class ChangedCall:
    protocol: str
    before: str  # the ending replayed on the release
    after: str  # on the draft


@dataclass(frozen=True, slots=True)
class EndingChange:
    before: str
    after: str
    calls: int


@dataclass(frozen=True, slots=True)
class NodeShift:
    node: str  # flow/node
    before: int  # visits replayed on the release
    after: int  # on the draft

    @property
    def change(self) -> int:
        return self.after - self.before


@dataclass(frozen=True, slots=True)
class Skipped:
    reason: str
    calls: int
    example: str  # one call's protocol, for `ivr calls show`


@dataclass(frozen=True, slots=True)
class Impact:
    release: str  # which release the draft is compared with ("release 3, version 9b1c2d3e4f5a6b7c")
    draft: str
    since: datetime
    until: datetime
    in_window: int  # calls ended in the window
    sampled: int  # the newest of them, up to the limit
    replayed: int
    as_recorded: int  # replays on the release that end as the recorded call did
    changed: tuple[ChangedCall, ...]
    endings: tuple[EndingChange, ...]  # most calls first
    nodes: tuple[NodeShift, ...]  # nodes whose visits change, largest change first
    not_replayed: tuple[Skipped, ...]  # most calls first

    def as_json(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        data["since"], data["until"] = self.since.isoformat(), self.until.isoformat()
        for shift, node in zip(data["nodes"], self.nodes, strict=True):
            shift["change"] = node.change
        return data


async def replay_calls(
    calls: Sequence[RecordedCall],
    *,
    release: Mapping[str, Flow],
    draft: Mapping[str, Flow],
    make_services: ServicesFactory,
    settings: Settings,
    stand_in: StandIn,
    now: datetime,
) -> tuple[dict[str, tuple[CallResult, CallResult]], dict[str, str]]:
    """Each call replayed on both sides, oldest first (what one opens, the next can find, on both sides
    alike): {protocol: (on the release, on the draft)}, and {protocol: why not replayed}."""
    replays: dict[str, tuple[RecordedCall, Replay]] = {}
    skipped: dict[str, str] = {}
    for call in sorted(calls, key=lambda c: c.started_at):
        try:
            if call.flow not in release or call.flow not in draft:
                side = "published release" if call.flow not in release else "draft"
                raise NotReplayable(f"flow '{call.flow}' is not in the {side}")
            replays[call.protocol] = (call, replay_of(call, release, stand_in))
        except NotReplayable as exc:
            skipped[call.protocol] = str(exc)
    before = await _run_side(replays.values(), release, make_services, settings, now)
    after = await _run_side(replays.values(), draft, make_services, settings, now)
    return {protocol: (before[protocol], after[protocol]) for protocol in replays}, skipped


async def _run_side(
    replays: Iterable[tuple[RecordedCall, Replay]],
    flows: Mapping[str, Flow],
    make_services: ServicesFactory,
    settings: Settings,
    now: datetime,
) -> dict[str, CallResult]:
    clock = ManualClock(now)  # the demo store is seeded as of `now`; each call then runs at its own moment
    results: dict[str, CallResult] = {}
    async with make_services(clock) as services:
        services = dataclasses.replace(services, queues=StatedQueues())  # not known: callers join untold
        for call, replay in replays:
            clock.set(call.started_at)
            channel = ScriptedChannel(
                CallInfo(replay.caller_id, dialled=settings.page.sac_number, unique_id=f"impact-{call.protocol}"),
                replay.inputs,
                queue_outcomes=replay.queues,
                transfer_outcome=replay.transfer,
            )
            results[call.protocol] = await run_call(flows[call.flow], channel, services, flows=flows, settings=settings)
    return results


def measure(
    calls: Sequence[RecordedCall],
    results: Mapping[str, tuple[CallResult, CallResult]],
    skipped: Mapping[str, str],
    *,
    release: str,
    draft: str,
    since: datetime,
    until: datetime,
    in_window: int,
) -> Impact:
    """What the replays say: the calls that end differently and the nodes whose visits change."""
    recorded = {call.protocol: call for call in calls}
    changed = tuple(
        ChangedCall(protocol, before.summary, after.summary)
        for protocol, (before, after) in results.items()
        if before.summary != after.summary
    )
    endings = Counter((c.before, c.after) for c in changed)
    visits: tuple[Counter[str], Counter[str]] = (Counter(), Counter())
    for protocol, sides in results.items():
        for counted, result in zip(visits, sides, strict=True):
            top = recorded[protocol].flow
            counted.update(step if "/" in step else f"{top}/{step}" for step in result.path)
    shifts = [NodeShift(node, visits[0][node], visits[1][node]) for node in visits[0].keys() | visits[1].keys()]
    reasons = Counter(skipped.values())
    return Impact(
        release=release,
        draft=draft,
        since=since,
        until=until,
        in_window=in_window,
        sampled=len(calls),
        replayed=len(results),
        as_recorded=sum(before.summary == recorded[p].outcome for p, (before, _) in results.items()),
        changed=changed,
        endings=tuple(EndingChange(b, a, n) for (b, a), n in endings.most_common()),
        nodes=tuple(sorted((s for s in shifts if s.change), key=lambda s: (-abs(s.change), s.node))),
        not_replayed=tuple(
            Skipped(reason, n, next(p for p, r in skipped.items() if r == reason))
            for reason, n in reasons.most_common()
        ),
    )


def render(impact: Impact, *, top: int = 10) -> str:
    """The report a supervisor reads before pressing publish."""
    share = f" ({100 * len(impact.changed) / impact.replayed:.1f}%)" if impact.replayed else ""
    unlike = impact.replayed - impact.as_recorded
    lines = [
        f"publishing {impact.draft} instead of the {impact.release}",
        f"calls from {impact.since:%Y-%m-%d %H:%M} to {impact.until:%Y-%m-%d %H:%M} (local time): "
        f"{impact.in_window}, the newest {impact.sampled} sampled",
        f"calls replayed: {impact.replayed}; on the release, {impact.as_recorded} end as recorded"
        + (f" ({unlike} meet the demo account's data or a stand-in instead of the caller's)" if unlike else ""),
        f"calls that would end differently: {len(impact.changed)}{share}",
    ]
    lines += [f"  {e.before} → {e.after}: {e.calls} call{'s' * (e.calls != 1)}" for e in impact.endings[:top]]
    lines.append(f"nodes gaining or losing visits: {len(impact.nodes)}")
    if impact.nodes:
        width = max(len(s.node) for s in impact.nodes[:top])
        lines += [
            f"  {s.node.ljust(width)}  {s.before:>6} → {s.after:<6} ({s.change:+d})" for s in impact.nodes[:top]
        ]
    lines.append(f"calls not replayed: {sum(s.calls for s in impact.not_replayed)}")
    lines += [f"  {s.reason}: {s.calls} (e.g. {s.example})" for s in impact.not_replayed[:top]]
    if impact.not_replayed or impact.replayed:
        lines.append("what stands in for masked data, and what a replay cannot know: flows/README.md, Impact")
    return "\n".join(lines)
