"""What the caller hears about mailboxes, phone numbers and due days agrees with the settings
(settings().page, settings().billing): a supervisor who changes one there is told here which prompt says
it too. Mailboxes are written as a person says them, never as an address espeak would spell out."""

from __future__ import annotations

import re

import pytest

from ivr.config import REPO_ROOT, settings
from ivr.engine.verbs.transfer import Transfer
from ivr.flows.loader import load_flow
from ivr.voice.catalogue import Catalogue
from ivr.voice.speak import say_ids

CATALOGUE = Catalogue.load(REPO_ROOT / "prompts" / "pt_BR")


def spoken(address: str) -> str:
    """br.contas@americantower.com -> "br ponto contas, arroba, americantower ponto com" """
    user, _, domain = address.partition("@")
    return f"{user.replace('.', ' ponto ')}, arroba, {domain.replace('.', ' ponto ')}"


@pytest.mark.parametrize(
    ("prompt_id", "field"),
    [
        ("payment_proof", "receivables_email"),
        ("negotiation_failed", "receivables_email"),
        ("lead_failed", "attendance_email"),
        ("lead_registered", "attendance_email"),
        ("maintenance_details", "scheduled_activity_email"),
        ("bgp_next_steps", "bgp_email"),
    ],
)
def test_prompts_say_the_configured_mailboxes_as_words(prompt_id: str, field: str) -> None:
    address = getattr(settings().page, field)
    text = " ".join(CATALOGUE.text(prompt_id).split())
    assert spoken(address) in text, f"prompt {prompt_id} must say {spoken(address)!r} (settings.page.{field})"


def test_no_prompt_reads_out_an_address_or_a_dotted_name() -> None:
    for prompt_id in CATALOGUE.ids():
        text = CATALOGUE.text(prompt_id)
        assert "@" not in text and not re.search(r"\w\.\w", text), f"prompt {prompt_id}: {text!r}"


def test_the_negotiation_transfer_dials_the_configured_number_in_e164() -> None:
    flow = load_flow(REPO_ROOT / "flows" / "sac.yaml")
    numbers = {node.verb.number for node in flow.nodes.values() if isinstance(node.verb, Transfer)}
    assert numbers == {settings().page.negotiation_number}


def test_the_negotiation_number_is_said_as_configured() -> None:
    said = CATALOGUE.render_text(say_ids("phone", settings().page.negotiation_number))  # "três um, três um..."
    for prompt_id in ("negotiation_info", "negotiation_failed"):
        assert said in CATALOGUE.text(prompt_id), f"prompt {prompt_id} must say {said!r}"


def test_the_due_days_offered_are_the_configured_ones() -> None:
    days = [int(day) for day in re.findall(r"\d+", CATALOGUE.text("type_due_day"))]
    assert days == list(settings().billing.due_days)
