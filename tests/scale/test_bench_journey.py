"""The bench's scripted caller reads its keys off the flows, and says so when the flow lost its nodes."""

from __future__ import annotations

from pathlib import Path

import pytest

from bench.asterisk_side import FLOWS, FlowChanged, ticket_status_then_agent


def test_the_keys_are_the_menus_of_todays_flow() -> None:
    keys = ticket_status_then_agent(FLOWS / "sac.yaml").keys
    assert keys[-2:] == (("type_ticket_number", "800001028#"), ("anything_else", "0"))
    assert keys[0][0] == "main_menu"


def test_a_flow_without_the_journeys_node_is_named(tmp_path: Path) -> None:
    flow = tmp_path / "sac.yaml"
    flow.write_text((FLOWS / "sac.yaml").read_text().replace("  ticket_status:\n", "  ticket_state:\n", 1))
    with pytest.raises(FlowChanged, match="`collect` node 'ticket_status'"):
        ticket_status_then_agent(flow)
