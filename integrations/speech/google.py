"""Google Cloud Speech-to-Text (v1 ``Recognize``) as the IVR's `Recognizer`.

A caller's answer is short (a menu choice, a number, a complaint under a minute), recorded whole by
Asterisk before we see it, so one synchronous ``Recognize`` per answer is enough: no streaming. The
request says what a phone call is (pt-BR, the ``telephony`` model, 8 kHz LINEAR16) and carries the
menu's synonyms as phrase hints, which makes the recogniser prefer the words the menu can act on.

Errors: every failure (unreadable recording, back-end error, no answer within ``timeout_s``) becomes a
`RecognitionError`, raised from the original exception; the engine then asks for keys instead.
There are no retries: the caller is waiting in silence, and asking them is quicker than retrying.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence

import google.auth.exceptions
import grpc
from google.api_core import exceptions as api_exceptions
from google.api_core.client_options import ClientOptions
from google.cloud import speech_v1
from google.cloud.speech_v1.services.speech.transports import SpeechGrpcAsyncIOTransport

from integrations.speech import SAMPLE_RATE_HZ, read_recording
from ivr.config import ConfigError, SpeechSettings
from ivr.engine.ports import Heard, Recognition, RecognitionError

log = logging.getLogger(__name__)

#: Synchronous Recognize refuses more audio than this; longer recordings need LongRunningRecognize.
MAX_AUDIO_S = 60
#: Google's limit on one phrase hint.
MAX_PHRASE_CHARS = 100


class GoogleRecognizer:
    """Sends recordings to Speech-to-Text. Build it inside the running event loop; `aclose` it."""

    listens = True

    def __init__(self, settings: SpeechSettings) -> None:
        if settings.endpoint is None:
            raise ConfigError("speech.endpoint is not set: there is no speech back-end to talk to")
        self._settings = settings
        self._client = _client(settings.endpoint, insecure=settings.insecure)

    async def recognise(self, heard: Heard, *, phrase_hints: Sequence[str] = ()) -> Recognition:
        if heard.audio is None:
            raise RecognitionError("nothing was recorded")
        audio = await asyncio.to_thread(read_recording, heard.audio)
        seconds = len(audio) / (2 * SAMPLE_RATE_HZ)
        if seconds > MAX_AUDIO_S:
            raise RecognitionError(f"{heard.audio}: {seconds:.0f} s of audio, Recognize takes {MAX_AUDIO_S} s at most")
        request = speech_v1.RecognizeRequest(
            config=self._config(phrase_hints), audio=speech_v1.RecognitionAudio(content=audio)
        )
        timeout_s = self._settings.timeout_s
        try:
            # The gRPC deadline tells the server when to give up; asyncio's bounds everything else
            # (connecting, refreshing credentials) so the caller never waits longer than timeout_s.
            async with asyncio.timeout(timeout_s):
                response = await self._client.recognize(request=request, retry=None, timeout=timeout_s)
        except TimeoutError as exc:
            raise RecognitionError(f"the speech back-end did not answer within {timeout_s} s") from exc
        except (api_exceptions.GoogleAPIError, google.auth.exceptions.GoogleAuthError) as exc:
            raise RecognitionError(f"the speech back-end failed: {exc}") from exc
        return _recognition(response)

    def _config(self, phrase_hints: Sequence[str]) -> speech_v1.RecognitionConfig:
        phrases = list(dict.fromkeys(h.strip() for h in phrase_hints if h.strip() and len(h) <= MAX_PHRASE_CHARS))
        return speech_v1.RecognitionConfig(
            encoding=speech_v1.RecognitionConfig.AudioEncoding.LINEAR16,
            sample_rate_hertz=SAMPLE_RATE_HZ,
            audio_channel_count=1,
            language_code=self._settings.language_code,
            model=self._settings.model,
            max_alternatives=1,
            speech_contexts=[speech_v1.SpeechContext(phrases=phrases)] if phrases else [],
        )

    async def aclose(self) -> None:
        await self._client.transport.close()


def _client(endpoint: str, *, insecure: bool) -> speech_v1.SpeechAsyncClient:
    if insecure:
        # client_options alone would open TLS; a local fake speaks plaintext on loopback.
        transport = SpeechGrpcAsyncIOTransport(host=endpoint, channel=grpc.aio.insecure_channel(endpoint))
        return speech_v1.SpeechAsyncClient(transport=transport)
    try:
        return speech_v1.SpeechAsyncClient(client_options=ClientOptions(api_endpoint=endpoint))
    except google.auth.exceptions.DefaultCredentialsError as exc:
        raise ConfigError(
            f"speech.endpoint is {endpoint} but no Google credentials were found: set "
            f"GOOGLE_APPLICATION_CREDENTIALS to a service account key file ({exc})"
        ) from exc


def _recognition(response: speech_v1.RecognizeResponse) -> Recognition:
    """One transcript from the results (consecutive stretches of audio), as sure as its least sure part."""
    best = [result.alternatives[0] for result in response.results if result.alternatives]
    if not best:
        return Recognition(transcript="", confidence=0.0)
    transcript = " ".join(alt.transcript.strip() for alt in best).strip()
    return Recognition(transcript=transcript, confidence=min(alt.confidence for alt in best))
