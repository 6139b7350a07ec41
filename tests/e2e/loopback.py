"""The back-ends the real IVR talks to during the journeys, faked on 127.0.0.1 in the test process: the
Speech-to-Text gRPC fake (tests/speech) and an SMTP server (aiosmtpd, tests/email).

They run on an event loop of their own in a thread, so they answer the `ivr serve` subprocess whenever
it asks, whichever loop the tests run on. Tests read what arrived (`speech.requests`, `smtp.received`,
lists only ever appended to) and wait for it with `wait_for`, bounded.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Coroutine, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, TypeVar

from tests.email.conftest import SmtpServer
from tests.speech.fake_speech import FakeSpeech, Reply

T = TypeVar("T")
START_TIMEOUT_S = 10.0


@dataclass
class Loopback:
    speech: FakeSpeech
    smtp: SmtpServer

    def ivr_env(self) -> dict[str, str]:
        """The IVR_ settings that point `ivr serve` at these fakes."""
        return {
            "IVR_SPEECH__ENDPOINT": self.speech.endpoint,
            "IVR_SPEECH__INSECURE": "true",
            "IVR_EMAIL__HOST": "127.0.0.1",
            "IVR_EMAIL__PORT": str(self.smtp.port),
            "IVR_EMAIL__SECURITY": "none",
            "IVR_EMAIL__TIMEOUT_S": "5",
        }


@contextmanager
def loopback_servers(transcript: str) -> Iterator[Loopback]:
    """Start both fakes (every recognition answers `transcript`); stop them and their thread at the end."""
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, name="e2e-loopback", daemon=True)
    thread.start()

    def run(coroutine: Coroutine[Any, Any, T]) -> T:
        return asyncio.run_coroutine_threadsafe(coroutine, loop).result(START_TIMEOUT_S)

    servers = Loopback(FakeSpeech(reply=Reply(transcript=transcript, confidence=0.93)), SmtpServer())
    try:
        run(servers.speech.start())
        run(servers.smtp.start())
        yield servers
    finally:
        run(servers.smtp.stop())
        run(servers.speech.stop())
        loop.call_soon_threadsafe(loop.stop)
        thread.join(START_TIMEOUT_S)
        loop.close()
