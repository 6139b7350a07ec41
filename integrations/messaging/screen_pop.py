"""The screen pop: when an agent answers a call from the IVR (AMI ``AgentConnect``), the call's context goes
to the agents' desktop as JSON over HTTP, through the durable outbox.

The context is what the IVR set on the caller's channel before queueing (``IVR_*`` channel variables, which
manager.conf's ``channelvars`` adds to the event as ``ChanVariable`` lines; see
`ivr.engine.state.CallState.queue_context`): built from the event alone, in the `ivr serve` process, so
the engine does not know screen pops exist. A call without ``IVR_PROTOCOL`` did not come through the IVR
and gets no pop.

    POST <screen_pop.url>
    Content-Type: application/json
    X-Sac-Ivr-Timestamp: 1765040000             (Unix seconds when this attempt was sent)
    X-Sac-Ivr-Delivery: 42                      (the outbox row: the same on every retry of one pop)
    X-Sac-Ivr-Signature: sha256=<hex>           (HMAC-SHA256 with the shared secret over
                                                 "<timestamp>." + the body's bytes)

    {"event": "agent_connect", "protocol": "202600000017", "queue": "billing",
     "agent": {"interface": "PJSIP/agent-101", "name": "Ana"}, "linkedid": "1765039990.12",
     "answered_at": "2026-12-06T18:00:00+00:00", "hold_s": 12, "caller_id": "3133334444",
     "customer": {"id": 1, "name": "Transportes Serra Azul Ltda"}, "circuit": null,
     "keyed": "main_menu=2 billing_menu=1", "path": ["main_menu", "billing_menu", "billing_queue"],
     "tickets": ["800000013"]}

A receiver recomputes the signature (compare in constant time), refuses a timestamp outside its tolerance
(a replayed request carries an old one: the signature covers it) and may drop a delivery id it has
already shown (delivery is at least once). Any 2xx is success; 4xx other than 408/429 is a refusal
given up at once; anything else is retried until the pop is `max_age_s` old, when it is no use any more.

The payload carries the caller's number and account (the agent needs them); logs carry neither, only the
protocol and the agent's interface.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import logging
from collections.abc import Mapping
from typing import Any

import aiohttp

from integrations.messaging.outbox import Delivery, DeliveryError, NewMessage, Outbox
from ivr.ami.live import channel_variables
from ivr.clock import Clock
from ivr.config import ScreenPopSettings
from ivr.store.db import StoreUnavailable
from ivr.store.models import OutboxChannel

log = logging.getLogger(__name__)

TEMPLATE = "agent_connect"  # the outbox row's template: what the pop is about
TIMESTAMP_HEADER = "X-Sac-Ivr-Timestamp"
SIGNATURE_HEADER = "X-Sac-Ivr-Signature"
DELIVERY_HEADER = "X-Sac-Ivr-Delivery"
#: Worth another try: the receiver is overloaded, restarting or timed out.
_RETRY_STATUSES = frozenset({408, 429})


def pop_from_event(event: Mapping[str, Any], *, answered_at: str) -> dict[str, Any] | None:
    """The pop of an ``AgentConnect`` event; None for a call that did not come through the IVR."""
    variables = channel_variables(event.get("ChanVariable"))
    protocol = variables.get("IVR_PROTOCOL", "")
    if not protocol:
        return None
    customer = variables.get("IVR_CUSTOMER", "")
    hold = str(event.get("HoldTime", ""))
    return {
        "event": "agent_connect",
        "protocol": protocol,
        "queue": str(event.get("Queue", "")),
        "agent": {"interface": str(event.get("Interface", "")), "name": str(event.get("MemberName", ""))},
        "linkedid": str(event.get("Linkedid", "")),
        "answered_at": answered_at,
        "hold_s": int(hold) if hold.isdigit() else 0,
        "caller_id": variables.get("IVR_CALLER_ID") or None,  # withheld
        "customer": {
            "id": int(customer) if customer.isdigit() else None,  # not identified
            "name": variables.get("IVR_CUSTOMER_NAME", ""),
        },
        "circuit": variables.get("IVR_CIRCUIT") or None,
        "keyed": variables.get("IVR_KEYED") or None,
        "path": _items(variables.get("IVR_PATH", ""), ">"),
        "tickets": _items(variables.get("IVR_TICKETS", ""), ","),
    }


def signature(secret: str, timestamp: str, body: bytes) -> str:
    """The signature header's value for one attempt."""
    digest = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()
    return f"sha256={digest}"


class ScreenPops:
    """Queues a pop in the outbox for each ``AgentConnect`` it is given (`on_agent_connect`, an AMI event
    callback). The write happens in a task, so the AMI reader never waits for the store."""

    def __init__(self, outbox: Outbox, *, clock: Clock) -> None:
        self._outbox = outbox
        self._clock = clock
        self._writing: set[asyncio.Task[None]] = set()
        self._closed = False

    def on_agent_connect(self, event: Mapping[str, Any]) -> None:
        if self._closed:
            return  # shutting down: the outbox is closing behind us
        pop = pop_from_event(event, answered_at=self._clock().isoformat())
        if pop is None:
            return
        task = asyncio.create_task(self._enqueue(pop), name=f"screen-pop-{pop['protocol']}")
        self._writing.add(task)
        task.add_done_callback(self._writing.discard)

    async def _enqueue(self, pop: dict[str, Any]) -> None:
        message = NewMessage(
            OutboxChannel.SCREEN_POP,
            recipient=pop["agent"]["interface"],
            template=TEMPLATE,
            body=json.dumps(pop, ensure_ascii=False),
            call_protocol=pop["protocol"],
        )
        try:
            await self._outbox.enqueue(message)
        except StoreUnavailable as exc:  # the agent has the channel variables still; the call goes on
            log.warning("screen pop for call %s to %s lost: %s", pop["protocol"], message.recipient, exc)

    async def aclose(self) -> None:
        """Take no more events; let the writes under way finish (each bounded by the store's own timeouts)."""
        self._closed = True
        if self._writing:
            await asyncio.wait(set(self._writing))


class ScreenPopSender:
    """The outbox's sender for ``screen_pop``: one signed POST per attempt."""

    def __init__(self, conf: ScreenPopSettings, *, clock: Clock) -> None:
        if not conf.url:
            raise ValueError("screen pop: no URL configured (IVR_SCREEN_POP__URL)")
        self._conf = conf
        self._clock = clock

    def _headers(self, delivery_id: int, body: bytes) -> dict[str, str]:
        timestamp = str(int(self._clock().timestamp()))  # this attempt's: a retry is signed afresh
        return {
            "Content-Type": "application/json",
            TIMESTAMP_HEADER: timestamp,
            DELIVERY_HEADER: str(delivery_id),
            SIGNATURE_HEADER: signature(self._conf.secret.get_secret_value(), timestamp, body),
        }

    async def send(self, delivery: Delivery) -> None:
        age_s = (self._clock() - delivery.created_at).total_seconds()
        if age_s > self._conf.max_age_s:
            raise DeliveryError(f"call {delivery.call_protocol}: pop {age_s:.0f} s old, no use now", permanent=True)
        await self._post(delivery.id, delivery.body.encode())
        log.info("screen pop for call %s to %s delivered", delivery.call_protocol, delivery.recipient)

    async def ping(self) -> None:
        """A signed ``{"event": "ping"}`` (delivery 0) a receiver accepts and shows nobody: `ivr doctor`'s
        proof that the URL answers and the secret is the receiver's."""
        await self._post(0, json.dumps({"event": "ping"}).encode())

    async def _post(self, delivery_id: int, body: bytes) -> None:
        conf = self._conf
        timeout = aiohttp.ClientTimeout(total=conf.timeout_s, sock_connect=conf.connect_timeout_s)
        try:
            async with aiohttp.ClientSession(timeout=timeout) as session:
                async with session.post(conf.url, data=body, headers=self._headers(delivery_id, body)) as response:
                    status = response.status  # the answer's body is not read: it may echo the payload
        except (aiohttp.ClientError, TimeoutError, OSError) as exc:
            raise DeliveryError(f"screen pop {conf.url}: {type(exc).__name__}: {exc}") from exc
        if not 200 <= status < 300:
            permanent = 400 <= status < 500 and status not in _RETRY_STATUSES
            raise DeliveryError(f"screen pop {conf.url}: HTTP {status}", permanent=permanent)


def _items(value: str, separator: str) -> list[str]:
    return [item for item in value.split(separator) if item]
