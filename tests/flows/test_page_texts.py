"""What the caller hears about mailboxes and phone numbers agrees with the service page in the settings
(settings().page): a supervisor who changes one there is told here which prompt says it too."""

from __future__ import annotations

import pytest

from ivr.config import REPO_ROOT, settings
from ivr.engine.verbs.transfer import Transfer
from ivr.flows.loader import load_flow
from ivr.voice.catalogue import Catalogue

CATALOGUE = Catalogue.load(REPO_ROOT / "prompts" / "pt_BR")


@pytest.mark.parametrize(
    ("prompt_id", "field"),
    [
        ("payment_proof", "receivables_email"),
        ("negotiation_info", "receivables_email"),
        ("lead_failed", "attendance_email"),
    ],
)
def test_prompts_say_the_configured_mailboxes(prompt_id: str, field: str) -> None:
    address = getattr(settings().page, field)
    assert address in CATALOGUE.text(prompt_id), f"prompt {prompt_id} must say {address} (settings.page.{field})"


def test_the_negotiation_transfer_dials_the_configured_number() -> None:
    flow = load_flow(REPO_ROOT / "flows" / "sac.yaml")
    numbers = {node.verb.digits for node in flow.nodes.values() if isinstance(node.verb, Transfer)}
    assert numbers == {"".join(ch for ch in settings().page.negotiation_number if ch.isdigit())}


def test_prompts_name_no_mailbox_outside_the_service_page() -> None:
    page = settings().page.model_dump()
    known = {value for value in page.values() if isinstance(value, str) and "@" in value}
    for prompt_id in CATALOGUE.ids():
        for word in CATALOGUE.text(prompt_id).split():
            if "@" in word:
                assert word.rstrip(".,") in known, f"prompt {prompt_id} says {word}, not a mailbox of settings.page"
