"""E-mail out through SMTP (aiosmtplib): the outbox's sender for the ``email`` channel.

A delivery becomes one MIME message: a UTF-8 plain-text body in Portuguese, the subject encoded for any
mail client (RFC 2047), the documents attached as files, and a Message-ID fixed by the outbox row, so a
message sent twice (a drainer died mid-send) is shown once. Settings: `ivr.config.EmailSettings`
(``IVR_EMAIL__HOST``, ``IVR_EMAIL__PASSWORD``...). Addresses are masked in logs.

SMTP failures map to `DeliveryError`: a recipient or message refused with a 5xx code is permanent (the
row goes to `failed` at once); anything else (server down, time-out, 4xx) is tried again later.
"""

from __future__ import annotations

from email.message import EmailMessage
from email.utils import format_datetime, formataddr

import aiosmtplib

from integrations.messaging.outbox import Delivery, DeliveryError
from ivr import email_address
from ivr.config import EmailSettings


class SmtpSender:
    def __init__(self, conf: EmailSettings) -> None:
        if not conf.host:
            raise ValueError("e-mail: no SMTP host configured (IVR_EMAIL__HOST)")
        self._conf = conf
        self._domain = conf.from_address.rpartition("@")[2] or "localhost"

    def build(self, delivery: Delivery) -> EmailMessage:
        conf = self._conf
        message = EmailMessage()
        message["From"] = formataddr((conf.from_name, conf.from_address))
        message["To"] = delivery.recipient
        message["Subject"] = " ".join(delivery.subject.split())  # one line, whatever the flow passed
        message["Date"] = format_datetime(delivery.created_at)
        message["Message-ID"] = f"<outbox-{delivery.id}.{int(delivery.created_at.timestamp())}@{self._domain}>"
        if delivery.call_protocol:
            message["X-SAC-Protocolo"] = delivery.call_protocol
        message.set_content(delivery.body, charset="utf-8")
        for attachment in delivery.attachments:
            maintype, _, subtype = attachment.content_type.partition("/")
            message.add_attachment(
                attachment.content,
                maintype=maintype,
                subtype=subtype or "octet-stream",
                filename=attachment.file_name,
            )
        return message

    async def send(self, delivery: Delivery) -> None:
        conf = self._conf
        if not email_address.is_one_address(delivery.recipient):  # "To: a@x.com, b@y.com" would reach both
            raise DeliveryError(
                f"recipient {email_address.mask_field(delivery.recipient)} is not one address; not sent", permanent=True
            )
        try:
            await aiosmtplib.send(
                self.build(delivery),
                hostname=conf.host,
                port=conf.port,
                username=conf.username or None,
                password=conf.password.get_secret_value() or None,
                use_tls=conf.security == "tls",
                start_tls=conf.security == "starttls",
                validate_certs=conf.validate_certs,
                cert_bundle=str(conf.ca_file) if conf.ca_file else None,
                timeout=conf.timeout_s,
            )
        except aiosmtplib.SMTPRecipientsRefused as exc:
            codes = [refused.code for refused in exc.recipients]
            raise DeliveryError(
                f"{email_address.mask(delivery.recipient)} refused by the server ({codes})",
                permanent=all(code >= 500 for code in codes),
            ) from exc
        except aiosmtplib.SMTPDataError as exc:
            raise DeliveryError(f"message refused: {exc.code} {exc.message}", permanent=exc.code >= 500) from exc
        except (aiosmtplib.SMTPException, OSError) as exc:
            raise DeliveryError(f"SMTP {conf.host}:{conf.port}: {exc}") from exc
