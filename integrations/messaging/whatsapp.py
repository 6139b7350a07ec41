"""WhatsApp out through the WhatsApp Business Cloud API (aiohttp): the outbox's sender for ``whatsapp``.

A delivery is one template message: ``POST {base_url}/{api_version}/{phone_number_id}/messages`` with
``Authorization: Bearer <token>`` and

    {"messaging_product": "whatsapp", "recipient_type": "individual", "to": "5531988887777",
     "type": "template", "template": {"name": <row's template>, "language": {"code": "pt_BR"},
     "components": [{"type": "body", "parameters": [{"type": "text", "text": ...}, ...]}]}}

Outside a customer's 24-hour service window the Cloud API sends only approved templates, so every
message is one. The outbox row keeps the recipient as ``+<country><number>``, the template's name and its
body parameters (`template_body`). Settings: `ivr.config.WhatsAppSettings` (``IVR_WHATSAPP__TOKEN``...).

Failures map to `DeliveryError`:
- permanent (the row goes to `failed` at once): HTTP 4xx refusing this message, such as a number not on
  WhatsApp (error 131026), a template missing (132001) or not matching its parameters (132000);
- retried later: no connection, time-outs, HTTP 5xx, 429 and the Graph rate-limit codes, and 401/403:
  a token or permission problem is ours to fix, and the message goes once the token is renewed.

There is no idempotency key in the Cloud API: like the outbox, delivery is at least once. Numbers are
masked in logs and errors.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Sequence
from typing import Any

import aiohttp

from integrations.messaging.outbox import Delivery, DeliveryError
from ivr import phone
from ivr.config import WhatsAppSettings

log = logging.getLogger(__name__)

#: Statuses worth another try: the API is overloaded or restarting, or our token needs renewing.
RETRY_STATUSES = frozenset({401, 403, 408, 429, 500, 502, 503, 504})
#: Graph error codes that mean "later", even when they come with HTTP 400.
RETRY_CODES = frozenset(
    {
        4,  # application request limit reached
        80007,  # WhatsApp Business Account rate limit
        130429,  # Cloud API throughput reached
        131016,  # service temporarily unavailable
        131048,  # spam rate limit hit
        131056,  # too many messages to this number in a short time
        133004,  # server temporarily unavailable
    }
)
_RESPONSE_BYTES = 64 * 1024  # a Graph answer is a few hundred bytes; more is not read
_RECIPIENT = re.compile(r"\+\d{8,15}")
_LONG_NUMBER = re.compile(r"\d{8,}")


def template_body(parameters: Sequence[str]) -> str:
    """The outbox row's body for a template message: its body parameters, in order, as a JSON list.
    The Cloud API refuses line breaks, tabs and runs of spaces in a parameter, so each is made one line."""
    texts = [" ".join(str(p).split()) for p in parameters]
    if not all(texts):
        raise ValueError("a WhatsApp template parameter cannot be empty")
    return json.dumps(texts, ensure_ascii=False)


def recipient(national: str) -> str | None:
    """A registered number (as `ivr.phone.normalise` keeps it) as the row's recipient, ``+<country><number>``;
    None for numbers no WhatsApp account can have (non-geographic 0800, 3003...)."""
    if national.startswith("+"):
        return national if _RECIPIENT.fullmatch(national) else None
    if len(national) in (10, 11) and national.isdigit() and not national.startswith("0"):
        return f"+55{national}"
    return None


class WhatsAppSender:
    def __init__(self, conf: WhatsAppSettings) -> None:
        if not conf.configured:
            raise ValueError(
                "WhatsApp: no phone number id or access token configured "
                "(IVR_WHATSAPP__PHONE_NUMBER_ID, IVR_WHATSAPP__TOKEN)"
            )
        self._conf = conf
        self._url = f"{conf.base_url}/{conf.api_version}/{conf.phone_number_id}/messages"

    def payload(self, delivery: Delivery) -> dict[str, Any]:
        """The request's JSON; a row that cannot become one is a permanent failure."""
        if not _RECIPIENT.fullmatch(delivery.recipient):
            masked = phone.mask(delivery.recipient)
            raise DeliveryError(f"recipient {masked} is not +<country><number>", permanent=True)
        try:
            parameters = json.loads(delivery.body)
        except json.JSONDecodeError as exc:
            raise DeliveryError(f"body is not the template's parameters: {exc}", permanent=True) from exc
        if not isinstance(parameters, list) or not all(isinstance(p, str) and p for p in parameters):
            raise DeliveryError("body is not a JSON list of non-empty texts", permanent=True)
        texts = [{"type": "text", "text": p} for p in parameters]
        return {
            "messaging_product": "whatsapp",
            "recipient_type": "individual",
            "to": delivery.recipient.removeprefix("+"),
            "type": "template",
            "template": {
                "name": delivery.template,
                "language": {"code": self._conf.language},
                "components": [{"type": "body", "parameters": texts}],
            },
        }

    async def send(self, delivery: Delivery) -> None:
        payload = self.payload(delivery)
        conf = self._conf
        who = phone.mask(delivery.recipient)
        # A session per message: they are sporadic (a few per call at most), and nothing is left open
        # between them or at shutdown.
        timeout = aiohttp.ClientTimeout(total=conf.timeout_s, sock_connect=conf.connect_timeout_s)
        headers = {"Authorization": f"Bearer {conf.token.get_secret_value()}"}
        try:
            async with aiohttp.ClientSession(timeout=timeout) as session:
                async with session.post(self._url, json=payload, headers=headers) as response:
                    status = response.status
                    raw = await _read_capped(response)
        except (aiohttp.ClientError, TimeoutError, OSError) as exc:
            raise DeliveryError(f"WhatsApp Cloud API {conf.base_url}: {type(exc).__name__}: {exc}") from exc
        answer = _json(raw)
        if 200 <= status < 300:
            sent = answer.get("messages") if isinstance(answer, dict) else None
            if not (isinstance(sent, list) and sent and isinstance(sent[0], dict) and sent[0].get("id")):
                raise DeliveryError(f"HTTP {status} without a message id from the Cloud API")
            log.info("whatsapp: %s to %s accepted as %s", delivery.template, who, sent[0]["id"])
            return
        raise _refusal(status, answer, who)


async def _read_capped(response: aiohttp.ClientResponse) -> bytes:
    """The answer's first _RESPONSE_BYTES (each read adds at least one byte, so the loop is bounded)."""
    raw = b""
    while len(raw) < _RESPONSE_BYTES:
        chunk = await response.content.read(_RESPONSE_BYTES - len(raw))
        if not chunk:
            break
        raw += chunk
    return raw


def _json(raw: bytes) -> Any:
    try:
        return json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError):
        return None


def _refusal(status: int, answer: Any, who: str) -> DeliveryError:
    """The Graph error (``{"error": {"code", "message", ...}}``) as a `DeliveryError`, numbers masked."""
    error = answer.get("error") if isinstance(answer, dict) else None
    code = error.get("code") if isinstance(error, dict) else None
    detail = ""
    if isinstance(error, dict):
        data = error.get("error_data")
        detail = str((data.get("details") if isinstance(data, dict) else None) or error.get("message") or "")
    detail = _LONG_NUMBER.sub(lambda m: phone.mask(m[0]), detail)[:200]
    permanent = 400 <= status < 500 and status not in RETRY_STATUSES and code not in RETRY_CODES
    return DeliveryError(
        f"to {who}: HTTP {status}, error {code}: {detail or 'no details'}",
        permanent=permanent,
    )
