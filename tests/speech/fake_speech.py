"""A local stand-in for Google Speech-to-Text: a real gRPC server on 127.0.0.1, port 0.

google-cloud-speech ships no servicer, so the ``google.cloud.speech.v1.Speech`` service is served by a
generic handler built from the proto message classes' own (de)serialisers: the client under test
speaks the real wire protocol. Every request is kept (config and audio bytes); each answer follows
the script set by the test: a transcript and confidence, a gRPC error, or a delay.
"""

from __future__ import annotations

import asyncio
from collections import deque
from dataclasses import dataclass, field

import grpc
from google.cloud import speech_v1

SERVICE = "google.cloud.speech.v1.Speech"


@dataclass
class Reply:
    """What the fake answers to the next Recognize."""

    transcript: str = ""
    confidence: float = 0.9
    fail: grpc.StatusCode | None = None  # answer with this error instead
    delay_s: float = 0.0  # wait this long first (longer than the client's timeout: a slow back-end)


@dataclass
class FakeSpeech:
    reply: Reply = field(default_factory=Reply)  # the answer when no scripted one is left
    scripted: deque[Reply] = field(default_factory=deque)  # answers to the next requests, in order
    requests: list[speech_v1.RecognizeRequest] = field(default_factory=list)
    port: int = 0
    _server: grpc.aio.Server | None = None

    @property
    def endpoint(self) -> str:
        return f"127.0.0.1:{self.port}"

    async def start(self) -> None:
        handler = grpc.method_handlers_generic_handler(
            SERVICE,
            {
                "Recognize": grpc.unary_unary_rpc_method_handler(
                    self._recognize,
                    request_deserializer=speech_v1.RecognizeRequest.deserialize,
                    response_serializer=speech_v1.RecognizeResponse.serialize,
                )
            },
        )
        self._server = grpc.aio.server()
        self._server.add_generic_rpc_handlers((handler,))
        self.port = self._server.add_insecure_port("127.0.0.1:0")
        await self._server.start()

    async def stop(self) -> None:
        if self._server is not None:
            await self._server.stop(grace=None)
            self._server = None

    async def _recognize(
        self, request: speech_v1.RecognizeRequest, context: grpc.aio.ServicerContext
    ) -> speech_v1.RecognizeResponse:
        self.requests.append(request)
        reply = self.scripted.popleft() if self.scripted else self.reply
        if reply.delay_s:
            await asyncio.sleep(reply.delay_s)  # the slow back-end itself, not a test waiting
        if reply.fail is not None:
            await context.abort(reply.fail, "scripted failure")
        if not reply.transcript:
            return speech_v1.RecognizeResponse()
        alternative = speech_v1.SpeechRecognitionAlternative(transcript=reply.transcript, confidence=reply.confidence)
        return speech_v1.RecognizeResponse(results=[speech_v1.SpeechRecognitionResult(alternatives=[alternative])])
