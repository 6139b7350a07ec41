"""Issue 4's journeys with real back-ends on loopback: SIPp -> Asterisk 22 -> `ivr serve`, which sends its
e-mails to an SMTP server and its recordings to a Speech-to-Text fake, both run by this module
(tests/e2e/loopback.py). J3, J4, J6 and J18 are in test_calls.py.

Every call is placed at once when the module starts (`in_flight`); each test awaits its own. Keys and
speech are timed as in test_calls.py, by a walk of the same call through the published flows.
When the menus change, update the key sequences below (one per journey, with the nodes they answer).
"""

from __future__ import annotations

import asyncio
import subprocess
import wave
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from datetime import date
from email.message import EmailMessage
from pathlib import Path

import pytest
import pytest_asyncio
from google.cloud import speech_v1

from ivr import phone
from ivr.asterisk.sipp import CallResult, Speech, prepare_speech
from ivr.asterisk.timing import said_s
from ivr.engine.verbs.say import Say
from ivr.store.seed import KNOWN_CALLER
from ivr.voice.build import prompt_duration, total_duration
from ivr.voice.catalogue import Catalogue
from ivr.voice.speak import say_ids

from . import audio
from .conftest import E2EAsterisk, serve_ivr
from .ivr_process import IvrProcess
from .loopback import Loopback, loopback_servers
from .scripts import (  # fmt: skip
    OWN_TICKET,
    SERRA_AZUL_CNPJ_ROOT,
    Journeys,
    Spoken,
    answered_call,
    boleto_of,
    month_before,
    visit_of,
)
from .store import StoredCall, StoreReader, wait_for

pytestmark = [pytest.mark.e2e, pytest.mark.asyncio(loop_scope="module")]

# Demo accounts (ivr/store/seed.py): KNOWN_CALLER is Transportes Serra Azul (code 100200, e-mails
# financeiro@ and ti@serraazul.com.br, an outage on one circuit); Comercial Ipê (3132221111, CNPJ
# 60.394.672/0001-50) is suspended for two overdue invoices.
SERRA_AZUL_EMAILS = {"financeiro@serraazul.com.br", "ti@serraazul.com.br"}
SUSPENDED_CALLER = "3132221111"
SUSPENDED_CNPJ = "60394672000150"
NEGOTIATION_DIALLED = "3131958012"  # +55 31 3195-8012 as the trunk takes it (sip.trunk_number_format national)
NEGOTIATION_OUTCOME = "transfer:+553131958012"
RECEIVABLES_SAID = "arroba, americantower ponto com"  # the receivables mailbox, said as words
SPOKEN = "preciso liberar um bloco barra vinte e nove adicional no circuito de Contagem"
# What the Speech fake answers, written as a recogniser would: the ticket must hold these words.
TRANSCRIPT = "preciso liberar um bloco /29 adicional no circuito de Contagem"
MAIL_WAIT_S = 15.0

# main_menu 1 -> technical_entry -> technical 2 -> ticket_status (the own ticket #) -> status_in_progress ->
# ... -> anything_else 2 -> repeat_protocol (the number again) -> anything_else: hangs up there
PROTOCOL_AGAIN = ("1", "2", f"{OWN_TICKET}#", "2")
# main_menu 1 -> technical 3 -> requests 1 -> service_request -> identify (caller ID is enough) ->
# service_words: the prompt and beep, then the caller speaks (RECORD FILE until 3 s of silence) ->
# open_service -> service_opened (the ticket number, waited out) -> ... -> anything_else 1 -> goodbye
SERVICE_REQUEST = ("1", "3", "1")
SERVICE_REQUEST_END = ("1",)
TRANSFER_TALK_S = 8.0  # the negotiation line answers, and the caller talks a while before hanging up
# main_menu 2 -> billing -> identify/ask_cnpj_root (#) -> say_overdue -> billing_menu 3 -> payment
# -> pay_overdue -> payment_menu 2 -> negotiation -> negotiation_transfer: out through the carrier trunk
NEGOTIATE = ("2", f"{SERRA_AZUL_CNPJ_ROOT}#", "3", "2")
# main_menu 1 -> technical 1 -> failure -> identify (caller ID) -> suspension_lookup -> (financial)
# suspended_confirm -> identify/ask_cnpj_root (#) -> suspension_amounts
# -> suspended_amount -> suspended_due -> payment_proof, all heard in full -> payment_menu: hangs up there
SUSPENDED_FINANCIAL = ("1", "1", f"{SUSPENDED_CNPJ[:8]}#")
# main_menu 1 -> technical_entry (the open ticket said) -> technical 1 -> failure -> suspension_lookup ->
# (technical) failure_check -> outage_said -> outage_menu 1 -> attach_incident -> attached_said -> ...
# -> anything_else 1 -> goodbye
SUSPENDED_TECHNICAL = ("1", "1", "1", "1")


@pytest.fixture(scope="module")
def loopback() -> Iterator[Loopback]:
    with loopback_servers(TRANSCRIPT) as servers:
        yield servers


@pytest.fixture(scope="module")
def ivr(asterisk: E2EAsterisk, loopback: Loopback) -> Iterator[IvrProcess]:
    """This module's IVR sends e-mail and speech to the loopback fakes."""
    with serve_ivr(asterisk, loopback.ivr_env()) as process:
        yield process


@pytest.fixture(scope="module")
def journeys(ivr: IvrProcess) -> Journeys:
    return Journeys(ivr)


@dataclass(frozen=True)
class SpokenRequest:
    source: Path  # the mu-law stream SIPp plays
    speech: Speech


@pytest.fixture(scope="module")
def spoken(tmp_path_factory: pytest.TempPathFactory) -> SpokenRequest:
    """SPOKEN in pt-BR by espeak-ng, as SIPp streams it, with silence after it to end the recording."""
    folder = tmp_path_factory.mktemp("spoken")
    wav = folder / "said.wav"
    subprocess.run(["espeak-ng", "-v", "pt-br", "-w", str(wav), SPOKEN], check=True, timeout=30)
    speech = prepare_speech(wav, folder / "said", trailing_silence_s=4.0)  # the record node stops after 3 s
    return SpokenRequest(speech.path, speech)


def _say_node(journeys: Journeys, node: str) -> Say:
    verb = journeys.flow.nodes[node].verb
    assert isinstance(verb, Say), f"{journeys.flow.source}: {node} is no `say` node"
    return verb


def _said_s(say: Say, value: object, audio: Path) -> float:
    return total_duration([*say.before, *say_ids(say.what, value, **say.options), *say.after], audio)


@dataclass
class Expected:
    month: date  # the boleto's month (J10)
    suspended_said_s: float  # the overdue amount, its date and where to send the proof (J15)


@dataclass
class InFlight:
    before: set[str]  # the store's protocols before these calls
    calls: dict[str, asyncio.Task[CallResult]]
    far_end: asyncio.Task[CallResult]  # the negotiation line on the carrier trunk
    expected: Expected


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def in_flight(
    asterisk: E2EAsterisk, ivr: IvrProcess, journeys: Journeys, stored: StoreReader, spoken: SpokenRequest
) -> AsyncIterator[InFlight]:
    before = stored.protocols()
    overdue_month = month_before(ivr.moment.date())
    total, oldest = stored.overdue(SUSPENDED_CNPJ)
    suspended_said = (
        _said_s(_say_node(journeys, "suspended_amount"), str(total), journeys.audio)
        + _said_s(_say_node(journeys, "suspended_due"), oldest.isoformat(), journeys.audio)
        + prompt_duration("payment_proof", journeys.audio)
    )
    scripts = {
        "protocol": await journeys.script(KNOWN_CALLER, *PROTOCOL_AGAIN, end="hangup"),
        "service_request": await journeys.script(
            KNOWN_CALLER, *SERVICE_REQUEST, Spoken(spoken.speech, TRANSCRIPT), *SERVICE_REQUEST_END
        ),
        "boleto": await journeys.script(KNOWN_CALLER, *boleto_of(overdue_month)),
        "negotiate": await journeys.script(KNOWN_CALLER, *NEGOTIATE, TRANSFER_TALK_S, end="hangup"),
        "suspended_financial": await journeys.script(SUSPENDED_CALLER, *SUSPENDED_FINANCIAL, end="hangup"),
        "suspended_technical": await journeys.script(KNOWN_CALLER, *SUSPENDED_TECHNICAL),
    }
    far_end = asyncio.create_task(asterisk.answer_on_trunk(timeout_s=90))
    tasks = {
        name: asyncio.create_task(answered_call(asterisk, call, timeout_s=call.steps_s + 45))
        for name, call in scripts.items()
    }
    try:
        yield InFlight(before, tasks, far_end, Expected(overdue_month, suspended_said))
    finally:
        for task in (*tasks.values(), far_end):
            task.cancel()
        await asyncio.gather(*tasks.values(), far_end, return_exceptions=True)


async def _the_call(
    in_flight: InFlight, stored: StoreReader, name: str, node: str, caller: str = KNOWN_CALLER
) -> StoredCall:
    """The journey's call, once SIPp is done with it and the store has it ended: of the calls from
    `caller`, the one that visited `node`."""
    result = await in_flight.calls[name]
    assert result.ok, result.summary()
    number = phone.normalise(caller)

    def found() -> StoredCall | None:
        calls = [stored.call(p) for p in stored.protocols() - in_flight.before]
        return next((c for c in calls if c.caller_id == number and node in c.path and c.ended), None)

    return await wait_for(found, f"ended call through {node}", timeout_s=15)


async def _mail(loopback: Loopback, protocol: str, template_subject: str, count: int) -> list[EmailMessage]:
    """The `count` messages about the call `protocol` whose subject starts with `template_subject`."""

    def arrived() -> list[EmailMessage] | None:
        mails = [
            r.message
            for r in list(loopback.smtp.received)
            if r.message["X-SAC-Protocolo"] == protocol and str(r.message["Subject"]).startswith(template_subject)
        ]
        return mails if len(mails) >= count else None

    mails = await wait_for(arrived, f"{count} e-mail(s) '{template_subject}...' for call {protocol}", MAIL_WAIT_S)
    assert len(mails) == count, [str(m["To"]) for m in mails]
    return mails


async def test_j1_the_protocol_is_said_before_the_first_menu_and_mailed_to_the_known_caller(
    in_flight: InFlight, stored: StoreReader, loopback: Loopback, journeys: Journeys, ivr: IvrProcess
) -> None:
    call = await _the_call(in_flight, stored, "protocol", "repeat_protocol")
    assert call.path[:3] == ["greet", "identify_by_caller", "announce_protocol"], call.path
    timeline = stored.timeline(call.protocol)
    announced = next(t for t in timeline if t[0] == "announce_protocol")
    first_menu = next(t for t in timeline if t[0] == "main_menu")
    # The call (and its protocol) exists from the answer; the number is said in full before the menu.
    assert stored.started_at(call.protocol) <= announced[1] < first_menu[1]
    announcement_s = said_s(_say_node(journeys, "announce_protocol"), 12, journeys.audio, ivr.moment.year)
    print(f"\nJ1: protocol announced in {announced[2]:.2f} s (at most {announcement_s:.2f} s for any number)")
    assert announced[2] >= 0.8 * announcement_s, f"announced in {announced[2]:.1f} s of {announcement_s:.1f}"
    assert call.outcome == "hangup" and call.path[-2:] == ["repeat_protocol", "anything_else"], call

    mails = await _mail(loopback, call.protocol, f"Protocolo de atendimento {call.protocol}", len(SERRA_AZUL_EMAILS))
    assert {str(m["To"]) for m in mails} == SERRA_AZUL_EMAILS
    for mail in mails:
        body = mail.get_body(("plain",))
        assert body is not None and f"Protocolo de atendimento: {call.protocol}" in body.get_content()


async def test_j5_a_spoken_service_request_is_recorded_transcribed_and_ticketed(
    in_flight: InFlight, stored: StoreReader, loopback: Loopback, spoken: SpokenRequest, asterisk: E2EAsterisk
) -> None:
    call = await _the_call(in_flight, stored, "service_request", "service_words")
    assert visit_of(call, "service_words")[2] == "recorded"
    ((number, kind),) = call.tickets
    assert kind == "service_request", call.tickets
    description = stored.ticket_description(number)
    assert description.startswith(TRANSCRIPT), description  # the recogniser's words, in the ticket
    assert call.path[-2:] == ["anything_else", "goodbye"] and call.outcome == "ended", call

    # The words went to Speech-to-Text as the IVR recorded them: a request with no menu hints...
    requests = [r for r in list(loopback.speech.requests) if not r.config.speech_contexts]
    assert len(requests) == 1, f"{len(requests)} free-speech recognitions (one expected)"
    (request,) = requests
    assert request.config.language_code == "pt-BR" and request.config.sample_rate_hertz == 8000
    assert request.config.encoding == speech_v1.RecognitionConfig.AudioEncoding.LINEAR16
    # ...carrying exactly the recording named in the ticket...
    recording = asterisk.settings.recordings_path / Path(description.rsplit("[gravação: ", 1)[1].rstrip("]")).name
    with wave.open(str(recording), "rb") as wav:
        assert request.audio.content == wav.readframes(wav.getnframes())
    # ...which is the speech SIPp streamed: same loudness contour, same length of voice.
    source = audio.envelope(audio.ulaw_to_linear(spoken.source.read_bytes()))
    heard = audio.envelope(audio.linear16(request.audio.content))
    correlation = audio.best_correlation(source, heard)
    print(f"\nJ5: {len(request.audio.content) / 16000:.2f} s sent to Speech, envelope correlation {correlation:.3f}")
    assert correlation > 0.8, f"the recording does not follow the streamed speech (r = {correlation:.2f})"
    assert abs(audio.voiced_s(heard) - audio.voiced_s(source)) < 0.5


async def test_j10_the_confirmed_caller_gets_the_boleto_of_the_month_by_email(
    in_flight: InFlight, stored: StoreReader, loopback: Loopback
) -> None:
    call = await _the_call(in_flight, stored, "boleto", "send_document")
    month = in_flight.expected.month
    assert visit_of(call, "identify/check_cnpj_root")[2] == "found"  # caller ID + CNPJ root: confirmed
    assert visit_of(call, "send_document")[2] == "found"
    assert "document_sent" in call.path and call.tickets == [], call
    assert call.outcome == "ended", call

    mails = await _mail(loopback, call.protocol, "Segunda via do boleto", len(SERRA_AZUL_EMAILS))
    assert {str(m["To"]) for m in mails} == SERRA_AZUL_EMAILS
    for mail in mails:
        (pdf,) = list(mail.iter_attachments())
        assert pdf.get_content_type() == "application/pdf"
        assert pdf.get_filename() == f"boleto-100200-{month:%Y-%m}.pdf"
        assert pdf.get_content().startswith(b"%PDF")
        body = mail.get_body(("plain",))
        assert body is not None and f"protocolo {call.protocol}" in body.get_content()


async def test_j14_negotiation_transfers_the_call_to_3195_8012_on_the_carrier_trunk(
    in_flight: InFlight, stored: StoreReader
) -> None:
    far_end = await in_flight.far_end
    assert far_end.received[0].startswith(f"INVITE sip:{NEGOTIATION_DIALLED}@"), far_end.received
    assert far_end.ok and far_end.answered and far_end.hung_up_by == "asterisk", far_end.summary()
    call = await _the_call(in_flight, stored, "negotiate", "negotiation_transfer")
    assert call.path[-3:] == ["payment_menu", "negotiation", "negotiation_transfer"], call.path
    assert call.outcome == NEGOTIATION_OUTCOME, call


async def test_j15_a_financial_suspension_says_the_overdue_amount_and_where_to_send_the_proof(
    in_flight: InFlight, stored: StoreReader, ivr: IvrProcess
) -> None:
    call = await _the_call(in_flight, stored, "suspended_financial", "suspension_lookup", SUSPENDED_CALLER)
    assert visit_of(call, "suspension_lookup")[2] == "found"
    said = ["suspended_amount", "suspended_due", "payment_proof"]
    assert call.path[-4:] == [*said, "payment_menu"], call.path
    # Each was heard in full (none cut by a key): the overdue amount in the store, its date and the
    # receivables mailbox.
    spent = sum(seconds for node, _, seconds in stored.timeline(call.protocol) if node in said)
    expected = in_flight.expected.suspended_said_s
    print(f"\nJ15: amount, date and proof said in {spent:.2f} s (their prompts last {expected:.2f} s)")
    assert expected * 0.95 <= spent <= expected + 2.0, f"said in {spent:.1f} s, the prompts last {expected:.1f} s"
    assert RECEIVABLES_SAID in Catalogue.load(ivr.settings.prompts_dir).text("payment_proof")
    assert call.outcome == "hangup" and call.tickets == [], call


async def test_j15_a_technical_suspension_goes_to_the_failure_journey(
    in_flight: InFlight, stored: StoreReader
) -> None:
    call = await _the_call(in_flight, stored, "suspended_technical", "suspension_lookup")
    path = call.path
    journey = ["suspension_lookup", "suspension_cause", "failure_check", "failure_known_issue", "outage_said",
               "outage_menu", "attach_incident", "attached_said", "ticket_summary", "written_summary",
               "after_ticket", "anything_else", "goodbye"]  # fmt: skip
    assert path[path.index("suspension_lookup") :] == journey, path
    assert not {"suspended_amount", "payment_proof"} & set(path), path
    assert call.outcome == "ended", call
