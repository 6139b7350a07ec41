"""The WhatsApp sender behind the durable outbox, against the local Cloud API fake: what a request looks
like, and which failures are retried until the API recovers and which give up at once."""

from __future__ import annotations

import logging

import pytest
from pydantic import SecretStr
from sqlalchemy import select

from integrations.messaging.outbox import NewMessage, Outbox
from integrations.messaging.whatsapp import WhatsAppSender, template_body
from ivr.clock import system_clock
from ivr.config import WhatsAppSettings
from ivr.store.db import Store
from ivr.store.models import OutboxChannel, OutboxMessage, OutboxState
from tests.outbox_support import FAST, WAIT_S

from .conftest import TOKEN, CloudApi

MARTA = "+5531988887777"
PARAMETERS = ("Transportes Serra Azul Ltda", "10/03/2026 às 10:00", "202600042424")


def drainer(store: Store, cloud: CloudApi, outboxes: list[Outbox], **changes: object) -> Outbox:
    box = Outbox(
        store, {OutboxChannel.WHATSAPP: WhatsAppSender(cloud.settings(**changes))}, clock=system_clock, conf=FAST
    )
    outboxes.append(box)
    return box


def protocol_message(recipient: str = MARTA, template: str = "sac_protocolo") -> NewMessage:
    return NewMessage(OutboxChannel.WHATSAPP, recipient, template, template_body(PARAMETERS))


async def rows(store: Store) -> list[OutboxMessage]:
    return await store.read(lambda s: list(s.scalars(select(OutboxMessage).order_by(OutboxMessage.id))))


async def test_a_template_message_reaches_the_cloud_api_as_documented(
    store: Store, cloud: CloudApi, outboxes: list[Outbox]
) -> None:
    box = drainer(store, cloud, outboxes)
    await box.start()
    await box.enqueue(protocol_message())
    sent = await cloud.next()
    # The fake checked the path, the bearer token and the JSON shape before accepting it.
    assert (sent.to, sent.template, sent.language) == ("5531988887777", "sac_protocolo", "pt_BR")
    assert sent.parameters == PARAMETERS
    await box.wait_until(lambda s: s.sent == 1, WAIT_S)
    [row] = await rows(store)
    assert row.state is OutboxState.SENT and row.attempts == 1 and row.last_error == ""


def test_parameters_are_made_one_line_as_the_cloud_api_demands() -> None:
    assert template_body(["Olá,\n  mundo\t!", "2"]) == '["Olá, mundo !", "2"]'
    with pytest.raises(ValueError, match="empty"):
        template_body(["name", "  "])


@pytest.mark.parametrize(
    ("status", "code"),
    [(500, 131000), (503, 131016), (429, 130429), (400, 131056)],
    ids=["500", "503", "429", "pair-rate-limit-400"],
)
async def test_server_errors_and_rate_limits_are_retried_until_the_api_recovers(
    store: Store, cloud: CloudApi, outboxes: list[Outbox], status: int, code: int
) -> None:
    cloud.fail(status, code, "(#131000) Something went wrong", times=2)
    box = drainer(store, cloud, outboxes)
    await box.start()
    await box.enqueue(protocol_message())
    assert (await cloud.next()).to == "5531988887777"
    await box.wait_until(lambda s: s.sent == 1, WAIT_S)
    [row] = await rows(store)
    assert (row.state, row.attempts) == (OutboxState.SENT, 3)
    assert box.stats.retrying == 2 and cloud.requests == 3


async def test_with_the_api_unreachable_the_message_waits_in_the_outbox_and_goes_when_it_is_back(
    store: Store, cloud: CloudApi, outboxes: list[Outbox]
) -> None:
    await cloud.stop()  # connection refused
    box = drainer(store, cloud, outboxes)
    await box.start()
    await box.enqueue(protocol_message())
    await box.wait_until(lambda s: s.retrying >= 2, WAIT_S)
    [row] = await rows(store)
    assert row.state is OutboxState.PENDING and row.sent_at is None
    assert cloud.base_url in row.last_error

    await cloud.start()
    assert (await cloud.next()).parameters == PARAMETERS
    await box.wait_until(lambda s: s.sent == 1, WAIT_S)
    [row] = await rows(store)
    assert row.state is OutboxState.SENT and row.last_error == ""


async def test_a_number_not_on_whatsapp_fails_at_once_and_other_messages_still_go(
    store: Store, cloud: CloudApi, outboxes: list[Outbox], caplog: pytest.LogCaptureFixture
) -> None:
    cloud.not_on_whatsapp.add("5531977776666")
    box = drainer(store, cloud, outboxes)
    await box.start()
    with caplog.at_level(logging.INFO):
        await box.enqueue(protocol_message("+5531977776666"), protocol_message())
        assert (await cloud.next()).to == "5531988887777"
        await box.wait_until(lambda s: s.sent == 1 and s.failed == 1, WAIT_S)
    refused, sent = await rows(store)
    assert (refused.state, refused.attempts, sent.state) == (OutboxState.FAILED, 1, OutboxState.SENT)
    assert "131026" in refused.last_error and "31977776666" not in refused.last_error
    # Numbers are masked in every log line, and the token is never logged.
    assert "31977776666" not in caplog.text and "31988887777" not in caplog.text
    assert "55*********66" in caplog.text and TOKEN not in caplog.text


async def test_a_template_missing_from_whatsapp_manager_fails_at_once(
    store: Store, cloud: CloudApi, outboxes: list[Outbox]
) -> None:
    box = drainer(store, cloud, outboxes)
    await box.start()
    await box.enqueue(protocol_message(template="sac_protocolo_v2"))
    await box.wait_until(lambda s: s.failed == 1, WAIT_S)
    [row] = await rows(store)
    assert (row.state, row.attempts) == (OutboxState.FAILED, 1)
    assert "132001" in row.last_error and cloud.sent == []


async def test_a_refused_token_is_retried_not_given_up_so_messages_go_once_it_is_renewed(
    store: Store, cloud: CloudApi, outboxes: list[Outbox]
) -> None:
    box = drainer(store, cloud, outboxes, token=SecretStr("expired"))
    await box.start()
    await box.enqueue(protocol_message())
    await box.wait_until(lambda s: s.retrying >= 2, WAIT_S)
    await box.aclose()
    [row] = await rows(store)
    assert row.state is OutboxState.PENDING and "HTTP 401" in row.last_error and cloud.sent == []

    renewed = drainer(store, cloud, outboxes)
    await renewed.start()
    assert (await cloud.next()).to == "5531988887777"


async def test_a_row_that_is_not_a_template_message_is_never_sent(
    store: Store, cloud: CloudApi, outboxes: list[Outbox]
) -> None:
    box = drainer(store, cloud, outboxes)
    await box.start()
    await box.enqueue(
        NewMessage(OutboxChannel.WHATSAPP, "31988887777", "sac_protocolo", template_body(PARAMETERS)),
        NewMessage(OutboxChannel.WHATSAPP, MARTA, "sac_protocolo", "Olá, texto livre"),
    )
    await box.wait_until(lambda s: s.failed == 2, WAIT_S)
    national, free_text = await rows(store)
    assert "+<country><number>" in national.last_error and "parameters" in free_text.last_error
    assert cloud.requests == 0


def test_an_unconfigured_sender_says_what_to_set() -> None:
    with pytest.raises(ValueError, match="IVR_WHATSAPP__TOKEN"):
        WhatsAppSender(WhatsAppSettings(phone_number_id="123"))
