"""The event fold on its own, fed with AMI events as Asterisk 22 names their fields."""

from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from ivr.ami.live import LiveState
from ivr.clock import ManualClock

T0 = datetime(2026, 11, 25, 14, 0, tzinfo=ZoneInfo("America/Sao_Paulo"))


def test_a_call_through_the_queue_to_an_agent_and_away() -> None:
    clock = ManualClock(T0)
    state = LiveState(clock=clock)
    for uid, caller in (("1.1", "1133334444"), ("1.2", "2133335555")):
        state.apply({"Event": "Newchannel", "Uniqueid": uid, "Linkedid": uid, "Channel": f"PJSIP/c-{uid}", "CallerIDNum": caller})
    state.apply({"Event": "QueueCallerJoin", "Queue": "billing", "Uniqueid": "1.2"})
    clock.set(T0 + timedelta(seconds=5))
    state.apply({"Event": "QueueCallerJoin", "Queue": "billing", "Uniqueid": "1.1"})
    assert [c.caller_id for c in state.waiting("billing")] == ["2133335555", "1133334444"]  # longest wait first

    state.apply({"Event": "AgentCalled", "Queue": "billing", "Uniqueid": "1.2", "Interface": "PJSIP/agent-101", "ChanVariable": "IVR_PROTOCOL=202600000017"})
    state.apply({"Event": "AgentConnect", "Queue": "billing", "Uniqueid": "1.2", "Interface": "PJSIP/agent-101"})
    state.apply({"Event": "QueueCallerLeave", "Queue": "billing", "Uniqueid": "1.2"})
    [talking] = state.with_agents()
    assert (talking.agent, talking.answered_at, talking.variables) == ("PJSIP/agent-101", clock(), {"IVR_PROTOCOL": "202600000017"})
    assert [c.unique_id for c in state.waiting("billing")] == ["1.1"]

    state.apply({"Event": "Hangup", "Uniqueid": "1.2", "Cause": "16"})
    state.apply({"Event": "QueueCallerLeave", "Queue": "billing", "Uniqueid": "1.1"})
    state.apply({"Event": "Hangup", "Uniqueid": "1.1", "Cause": "16"})
    assert state.calls == {}


def test_events_for_channels_seen_before_we_connected_are_ignored() -> None:
    state = LiveState(clock=lambda: T0)
    state.apply({"Event": "QueueCallerJoin", "Queue": "technical", "Uniqueid": "9.9"})
    state.apply({"Event": "Hangup", "Uniqueid": "9.9"})
    assert state.calls == {} and state.waiting("technical") == []
