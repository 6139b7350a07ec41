"""`AgiChannel`: the one class that turns `Channel` calls into AGI commands on a real Asterisk call.

Prompts are sound files under Asterisk's sounds directory (``<sound_prefix>/<prompt id>``): one plays with
``STREAM FILE``, several with one ``EXEC Background`` (a protocol number said digit by digit is ~20 files:
one round trip instead of twenty, the larger part of a call's commands); a key comes back as the ASCII code
res_agi puts in ``result=``, an entry of several keys from the shipped dialplan's `KEYS_CONTEXT` routine
(one ``GOSUB`` for a CNPJ's fifteen keys, not fifteen ``WAIT FOR DIGIT``); speech is a ``RECORD FILE`` the
IVR reads from its side of Asterisk's chroot. A ``result=-1`` means "error or hang-up" in res_agi:
`_failed` tells the two apart by whether a ``HANGUP`` line follows (res_agi writes it right after
answering). Each command is bounded by what it does (`ivr.agi.bounds`).
"""

from __future__ import annotations

import asyncio
import logging
import re
import uuid
from collections.abc import Mapping, Sequence

from ivr import phone
from ivr.agi.bounds import Bound, CommandBounds
from ivr.agi.recording import holds_voice
from ivr.agi.wire import (
    MAX_COMMAND,
    AgiConnection,
    AgiConnectionLost,
    AgiHangup,
    AgiProtocolError,
    AgiRequest,
    AgiResponse,
    AgiTimeout,
)
from ivr.config import Settings
from ivr.engine.channel import DTMF_KEYS, CallerHangup, ChannelError, Digits, DigitsEnd, QueueOutcome, TransferOutcome
from ivr.engine.ports import CallInfo, Heard
from ivr.text import replace_controls

log = logging.getLogger(__name__)

#: How long a ``result=-1`` waits for the HANGUP line res_agi sends after a hang-up.
HANGUP_GRACE_S = 0.5
#: RECORD FILE's "wav" is 8 kHz signed linear: endpos counts samples.
WAV_SAMPLE_RATE = 8000
#: Dialplan context that dials an outside number for a transfer (asterisk_conf/extensions.conf).
TRANSFER_CONTEXT = "sac-transfer"
#: Where Queue() sends a caller who presses the call-back key while waiting (queues.conf ``context``,
#: asterisk_conf/extensions.conf): app_queue's exit with a key leaves QUEUESTATUS unset (or as an earlier
#: Queue() of the call left it), so the channel's context is what tells it.
QUEUE_KEY_CONTEXT = "sac-queue-key"
#: Prefix of the call-context variables agents see (AMI AgentCalled shows channel variables).
CONTEXT_PREFIX = "IVR_"
#: The shipped dialplan's routine that reads an entry of several keys (asterisk_conf/extensions.conf):
#: ``GOSUB sac-keys s 1 <max>,<first s>,<next s>,<ending keys>`` leaves ``<READSTATUS>:<keys>`` in GOSUB_RETVAL.
KEYS_CONTEXT = "sac-keys"
#: A peer whose dialplan lacks `KEYS_CONTEXT` is read key by key; asked again after this long (a dialplan
#: reload may have added it).
KEYS_RETRY_S = 300.0
#: The request parameter the shipped dialplan gives the call's ``linkedid`` in (one command less a call).
LINKED_ID_PARAM = "linkedid"
#: Set when a flow ends normally; without it the dialplan sends the caller to the fallback queue.
DONE_VARIABLE = "IVR_DONE"
#: res_agi's RECORD FILE judges silence on voice frames only (handle_recordfile), so a caller who sends
#: no audio at all (no RTP: SIPp, or a phone that suppresses silence) never trips ``s=``. The first
#: stretch of a recording therefore ends this long after the silence bound; it goes on only if audio came.
NO_AUDIO_GRACE_S = 1.0
#: An answer this much before its bound means Asterisk's silence detection ended the recording.
EARLY_S = 0.25
#: Queue(c) and Dial(g): when the agent or the outside number hangs up first, the caller comes back to us
#: (QUEUESTATUS=CONTINUE, DIALSTATUS=ANSWER) instead of the application returning -1 (app_queue.c
#: queue_exec "qcontinue", app_dial.c OPT_GO_ON), which read as a failure queued the caller again.
QUEUE_OPTIONS = "c"
DIAL_OPTIONS = "g"

#: res_agi reads a command line of at most MAX_COMMAND bytes; this leaves room for ``EXEC "Background"
#: "...,p"``: a longer sequence of prompts (over a hundred digits) takes several commands.
_RUN_BYTES = MAX_COMMAND - 64

_LINKED_ID = re.compile(r"[A-Za-z0-9._-]{1,150}\Z")  # an Asterisk uniqueid, with its system name if set
_PROMPT_ID = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_./-]*\Z")
_FILE_NAME_UNSAFE = re.compile(r"[^A-Za-z0-9_.-]")
#: What MSet would read as a separator, a quote or an escape, inside a value (see `_mset_pair`).
_MSET_SPECIAL = re.compile(r'[\\",()\[\]]')
_VARIABLE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(\([A-Za-z0-9_,-]*\))?\Z")
_QUEUE = re.compile(r"[A-Za-z0-9_-]+\Z")
_DIALLED = re.compile(r"\+?[0-9]+\Z")
_ANY_DTMF = DTMF_KEYS + "ABCD"  # a phone may send A-D: a key the flow ignores, not a broken peer

_QUEUE_STATUS = {
    "TIMEOUT": QueueOutcome.TIMEOUT,
    "FULL": QueueOutcome.FULL,
    "JOINEMPTY": QueueOutcome.NO_AGENTS,
    "LEAVEEMPTY": QueueOutcome.NO_AGENTS,
    "JOINUNAVAIL": QueueOutcome.NO_AGENTS,
    "LEAVEUNAVAIL": QueueOutcome.NO_AGENTS,
    "CONTINUE": QueueOutcome.ANSWERED,  # the agent hung up first and the caller came back
}
_DIAL_STATUS = {
    "ANSWER": TransferOutcome.ANSWERED,
    "BUSY": TransferOutcome.BUSY,
    "NOANSWER": TransferOutcome.NO_ANSWER,
}


class Peers:
    """What the IVR learned of each Asterisk peer: the sound files it has played through since the prompts
    were last built, and whether its dialplan has the routine that reads several keys (`KEYS_CONTEXT`).

    Background stops silently at a file it cannot open (only ``BACKGROUNDSTATUS`` says so), so a sequence
    that played through is followed by a ``GET VARIABLE``: 5 of the 40 commands of a recorded call. Once a
    peer has played a file, a sequence made only of such files is not asked about again. A file removed
    from that Asterisk afterwards would then be skipped unnoticed (Asterisk logs it): files go with a
    rebuild of the prompts (`forget_played`, when the audio manifest changes), not in the middle of serving
    calls.
    """

    #: A peer plays the catalogue's prompts, digits and numbers: bounded, but a runaway is forgotten.
    MAX_FILES = 20_000

    def __init__(self) -> None:
        self._played: set[tuple[str, str]] = set()  # (peer, file)
        self._without_keys_routine: dict[str, float] = {}  # peer -> loop time it was found without it

    def has_keys_routine(self, peer: str) -> bool:
        found_without = self._without_keys_routine.get(peer)
        if found_without is None:
            return True
        if asyncio.get_running_loop().time() - found_without < KEYS_RETRY_S:
            return False
        del self._without_keys_routine[peer]
        return True

    def lacks_keys_routine(self, peer: str) -> None:
        self._without_keys_routine[peer] = asyncio.get_running_loop().time()

    def all_played(self, peer: str, files: Sequence[str]) -> bool:
        return all((peer, name) in self._played for name in files)

    def played(self, peer: str, files: Sequence[str]) -> None:
        if len(self._played) + len(files) > self.MAX_FILES:
            self._played.clear()
        self._played.update((peer, name) for name in files)

    def forget_played(self) -> None:
        self._played.clear()


def _runs(items: Sequence[str]) -> list[slice]:
    """Consecutive slices of `items` (sound files, or MSet's pairs) that, joined by a one-byte separator,
    fit in one command line as the wire sends them (`quote` escapes backslashes and double quotes)."""
    runs: list[slice] = []
    start, size = 0, 0
    for index, item in enumerate(items):
        length = len(item.encode()) + item.count("\\") + item.count('"')
        if index > start and size + 1 + length > _RUN_BYTES:
            runs.append(slice(start, index))
            start, size = index, 0
        size += length + (1 if index > start else 0)
    runs.append(slice(start, len(items)))
    return runs


def _mset_pair(name: str, value: str) -> str:
    """``name=value`` for MSet, whose arguments Asterisk splits at commas outside quotes, parentheses and
    brackets, dropping quotes and backslashes (app.c, __ast_app_separate_args): a backslash before each of
    those characters keeps it literal. The value is taken whole after the first "=" (pbx_variables.c)."""
    escaped = _MSET_SPECIAL.sub(r"\\\g<0>", replace_controls(value))
    return f"{name}={escaped}"


def _key(answer: AgiResponse) -> str:
    """The key whose ASCII code res_agi put in ``result=``; any other code is a peer gone wrong, not a key."""
    key = chr(answer.result) if 0 < answer.result < 128 else ""
    if not key or key not in _ANY_DTMF:
        raise AgiProtocolError(f"answer with result={answer.result}, not a DTMF key: {answer.raw[:80]!r}")
    return key


def call_info(request: AgiRequest, linked_id: str = "") -> CallInfo:
    """What the header block says about the call (Asterisk's ``unknown`` read as missing)."""
    unique_id = request.get("agi_uniqueid") or ""
    extension = request.get("agi_extension") or ""
    # sac-ivr keeps the dialled form as the extension; a call sent to "s" falls back on the DNID.
    dialled = extension if _DIALLED.match(extension) else request.get("agi_dnid") or ""
    return CallInfo(
        caller_id=request.get("agi_callerid"),
        caller_name=request.get("agi_calleridname"),
        dialled=dialled,
        unique_id=unique_id,
        linked_id=linked_id or unique_id,
        channel_name=request.get("agi_channel") or "",
        params=request.params,
    )


class AgiChannel:
    """A `Channel` over one FastAGI connection."""

    hears_words = False  # words come as recordings, for the recogniser

    def __init__(
        self, conn: AgiConnection, info: CallInfo, settings: Settings, bounds: CommandBounds, peers: Peers
    ) -> None:
        self.info = info
        self._conn = conn
        self._bounds = bounds
        self._peers = peers
        self._sound_prefix = settings.agi.sound_prefix
        self._record_dir_asterisk = settings.asterisk.recordings_dir_in_asterisk.rstrip("/")
        self._record_dir_local = settings.recordings_path
        self._trunk_number_format = settings.sip.trunk_number_format
        # Recordings are named after the call, so whatever is left on disk says whose it was.
        self._record_prefix = _FILE_NAME_UNSAFE.sub("_", info.unique_id) or "call"
        self._hung_up = False  # by us, with HANGUP

    @classmethod
    async def open(
        cls, conn: AgiConnection, settings: Settings, bounds: CommandBounds, peers: Peers
    ) -> AgiChannel:
        """The channel for a new call, with Asterisk's ``linkedid`` (joins CDR lines and IVR records): given
        in the request by the shipped dialplan, else asked for."""
        linked_id = conn.request.params.get(LINKED_ID_PARAM, "")
        if not _LINKED_ID.match(linked_id):
            answer = await conn.execute("GET VARIABLE", "CHANNEL(linkedid)", timeout=bounds.instant().seconds)
            linked_id = answer.data if answer.result == 1 else ""
        return cls(conn, call_info(conn.request, linked_id), settings, bounds, peers)

    async def answer(self) -> None:
        await self._run("ANSWER")

    async def play(self, prompt_ids: Sequence[str], *, interruptible: bool = True) -> str:
        for prompt_id in prompt_ids:
            if not _PROMPT_ID.match(prompt_id) or ".." in prompt_id:
                raise ChannelError(f"not a prompt id: {prompt_id!r}")
        if len(prompt_ids) == 1:
            escape = DTMF_KEYS if interruptible else ""
            answer = await self._run(
                "STREAM FILE", f"{self._sound_prefix}/{prompt_ids[0]}", escape, bound=self._bounds.prompt(prompt_ids[0])
            )
            return _key(answer) if answer.result > 0 else ""
        files = [f"{self._sound_prefix}/{prompt_id}" for prompt_id in prompt_ids]
        for run in _runs(files):
            key = await self._background(prompt_ids[run], files[run], interruptible)
            if key:
                return key
        return ""

    async def _background(self, prompt_ids: Sequence[str], files: Sequence[str], interruptible: bool) -> str:
        """Several prompts with one command: ``Background(a&b&c)`` stops at a key and returns it (res_agi's
        EXEC disables the jump to an extension of that key), ``Background(a&b&c,p)`` plays them whole. A
        missing file is not an error to Background (it stops there, BACKGROUNDSTATUS=FAILED): asked after a
        sequence that played through, as STREAM FILE's ``result=-1`` would have said it, unless this peer
        has played every one of its files before (`Peers`)."""
        data = "&".join(files) + ("" if interruptible else ",p")
        answer = await self._run_app("Background", data, self._bounds.prompts(prompt_ids))
        if answer.result > 0:
            return _key(answer)
        peer = self._conn.peer
        if self._peers.all_played(peer, files):
            return ""
        if await self._variable("BACKGROUNDSTATUS") == "FAILED":
            raise ChannelError(
                f"Background of {prompt_ids[0]} .. {prompt_ids[-1]} failed (missing sound file, or directory?)"
            )
        self._peers.played(peer, files)
        return ""

    async def read_digits(
        self, *, max_digits: int, first_timeout_s: float, inter_digit_timeout_s: float, terminator: str = "#"
    ) -> Digits:
        if max_digits > 1 and self._peers.has_keys_routine(self._conn.peer):
            entry = await self._read_entry(max_digits, first_timeout_s, inter_digit_timeout_s, terminator)
            if entry is not None:
                return entry
        return await self._read_key_by_key(max_digits, first_timeout_s, inter_digit_timeout_s, terminator)

    async def _read_entry(self, max_digits: int, first_s: float, next_s: float, terminator: str) -> Digits | None:
        """The keys of one entry with one ``GOSUB`` to the dialplan's `KEYS_CONTEXT` routine, which reads
        them one by one with ``Read()`` as `_read_key_by_key` does here (the first within `first_s`, each
        next within `next_s`, a key of `terminator` ending it at once). None when the peer's dialplan has
        no such routine (not the shipped one)."""
        for key in terminator:
            if key not in DTMF_KEYS:
                raise ChannelError(f"not a key that can end an entry: {key!r}")
        answer = await self._execute(
            "GOSUB",
            KEYS_CONTEXT,
            "s",
            1,
            f"{max_digits},{first_s:g},{next_s:g},{terminator}",
            bound=self._bounds.wait("an entry's keys", first_s + (max_digits - 1) * next_s),
        )
        if answer.result < 0:  # res_agi's only -1 for GOSUB: "Gosub label not found"
            peer = self._conn.peer
            self._peers.lacks_keys_routine(peer)
            log.warning(
                "Asterisk at %s has no %s routine in its dialplan (asterisk_conf/extensions.conf): entries are"
                " read key by key, a command each",
                peer,
                KEYS_CONTEXT,
            )
            return None
        returned = await self._variable("GOSUB_RETVAL")
        status, _, keys = returned.partition(":")
        if status == "HANGUP" or "abnormal exit" in answer.raw:  # Read() saw the hang-up, or the dialplan
            if await self._conn.hangup_follows(HANGUP_GRACE_S):  # stopped before Return() for it
                raise AgiHangup(f"GOSUB {KEYS_CONTEXT}: the caller hung up ({answer.raw})")
            raise ChannelError(f"GOSUB {KEYS_CONTEXT} did not return ({answer.raw}; READSTATUS={status[:20]!r})")
        if any(key not in _ANY_DTMF for key in keys) or len(keys) > max_digits:
            raise AgiProtocolError(f"{KEYS_CONTEXT} returned {returned[:80]!r}, not up to {max_digits} keys")
        if status == "TIMEOUT":
            return Digits(keys, DigitsEnd.TIMEOUT)
        if status == "OK" and keys and keys[-1] in terminator:
            return Digits(keys[:-1], DigitsEnd.TERMINATOR, keys[-1])
        if status == "OK" and len(keys) == max_digits:
            return Digits(keys, DigitsEnd.MAX_LENGTH)
        raise ChannelError(f"{KEYS_CONTEXT}: Read() ended with READSTATUS={status[:20]!r} after {len(keys)} key(s)")

    async def _read_key_by_key(
        self, max_digits: int, first_timeout_s: float, inter_digit_timeout_s: float, terminator: str
    ) -> Digits:
        digits = ""
        wait_s = first_timeout_s
        for _ in range(max_digits):
            answer = await self._run(
                "WAIT FOR DIGIT", round(wait_s * 1000), bound=self._bounds.wait("a key wait", wait_s)
            )
            if answer.result == 0:
                return Digits(digits, DigitsEnd.TIMEOUT)
            key = _key(answer)
            if key in terminator:
                return Digits(digits, DigitsEnd.TERMINATOR, key)
            digits += key
            wait_s = inter_digit_timeout_s
        return Digits(digits, DigitsEnd.MAX_LENGTH)

    async def late_key(self, expected: str, *, within_s: float) -> str:
        answer = await self._run(
            "WAIT FOR DIGIT", round(within_s * 1000), bound=self._bounds.wait("a late key's wait", within_s)
        )
        return _key(answer) if answer.result > 0 else ""

    async def listen(self, *, max_seconds: float, silence_seconds: float, beep: bool = False) -> Heard:
        name = f"{self._record_prefix}-{uuid.uuid4().hex[:12]}"
        local = self._record_dir_local / f"{name}.wav"
        silence = max(1, round(silence_seconds))  # res_agi reads s= as whole seconds
        first_s = min(max_seconds, silence + NO_AUDIO_GRACE_S)
        kept = False
        try:
            started = asyncio.get_running_loop().time()
            answer = await self._record(name, first_s, "BEEP" if beep else None, silence)
            ran_to_bound = asyncio.get_running_loop().time() - started > first_s - EARLY_S
            endpos = max(answer.endpos or 0, 0)
            if answer.data != "dtmf" and endpos > 0 and ran_to_bound and first_s < max_seconds:
                # Audio is coming (the caller is speaking): go on, appending from where it stopped.
                answer = await self._record(name, max_seconds - first_s, str(endpos), silence)
                endpos = max(answer.endpos or 0, 0)
            kept = await asyncio.to_thread(holds_voice, local)
        finally:
            if not kept:  # only silence, no audio at all, or the caller hung up: nothing to keep
                local.unlink(missing_ok=True)
        return Heard(
            audio=local if kept else None,
            duration_s=endpos / WAV_SAMPLE_RATE,
            interrupted_by=_key(answer) if answer.data == "dtmf" else "",
        )

    async def _record(self, name: str, seconds: float, seventh: str | None, silence: int) -> AgiResponse:
        """One RECORD FILE into the recordings directory. `seventh` is the 7th word res_agi reads: the
        sample offset to append at, anything else (BEEP) to beep first, or none."""
        return await self._run(
            "RECORD FILE",
            f"{self._record_dir_asterisk}/{name}",
            "wav",
            DTMF_KEYS,  # any key ends the recording and counts as the answer (a menu chosen by key)
            round(seconds * 1000),
            *([seventh] if seventh else []),
            f"s={silence}",
            bound=self._bounds.wait("a recording", seconds),
        )

    async def set_variable(self, name: str, value: str) -> None:
        if not _VARIABLE.match(name):
            raise ChannelError(f"not a channel variable name: {name!r}")
        # Values are data (a back-end's customer name): a line break in one is replaced, never fatal.
        await self._run("SET VARIABLE", name, replace_controls(value))

    async def _set_variables(self, values: Mapping[str, str]) -> None:
        """Several channel variables with one ``EXEC MSet`` (the call's context for agents is ~8: one command
        instead of eight), in as many commands as res_agi's command line needs."""
        for name in values:
            if not _VARIABLE.match(name):
                raise ChannelError(f"not a channel variable name: {name!r}")
        pairs = [_mset_pair(name, value) for name, value in values.items()]
        for run in _runs(pairs) if pairs else []:
            await self._run_app("MSet", ",".join(pairs[run]), self._bounds.instant())

    async def queue(self, queue: str, *, context: Mapping[str, str], timeout_s: float) -> QueueOutcome:
        if not _QUEUE.match(queue):
            raise ChannelError(f"not a queue name: {queue!r}")
        await self._set_variables(
            {key.upper() if key.upper().startswith(CONTEXT_PREFIX) else CONTEXT_PREFIX + key.upper(): value
             for key, value in context.items()}
        )  # fmt: skip
        # queues.conf sets joinempty/leavewhenempty, so Queue() returns at once when nobody is logged in.
        hung_up = await self._exec("Queue", f"{queue},{QUEUE_OPTIONS},,,{max(1, round(timeout_s))}")
        if not hung_up and await self._variable("CONTEXT") == QUEUE_KEY_CONTEXT:
            return QueueOutcome.CALLBACK
        status = await self._variable("QUEUESTATUS")
        if status in _QUEUE_STATUS:
            return _QUEUE_STATUS[status]
        if await self._variable("MEMBERINTERFACE"):  # app_queue sets it once an agent answers
            return QueueOutcome.ANSWERED
        if hung_up:
            raise AgiHangup(f"caller left queue {queue} before an agent answered")
        log.warning("queue %s ended with QUEUESTATUS=%r", queue, status)
        return QueueOutcome.FAILED

    async def transfer(self, number: str, *, timeout_s: float) -> TransferOutcome:
        try:
            dialled = phone.for_trunk(number, self._trunk_number_format)
        except ValueError as exc:
            raise ChannelError(f"not a number to transfer to: {exc}") from exc
        seconds = max(1, round(timeout_s))
        hung_up = await self._exec("Dial", f"Local/{dialled}@{TRANSFER_CONTEXT},{seconds},{DIAL_OPTIONS}")
        status = await self._variable("DIALSTATUS")
        if status in _DIAL_STATUS:
            return _DIAL_STATUS[status]
        if hung_up:
            raise AgiHangup(f"caller hung up during the transfer (DIALSTATUS={status!r})")
        return TransferOutcome.FAILED

    async def hangup(self) -> None:
        if self._conn.hung_up or self._hung_up:
            return
        try:
            await self._run("HANGUP")
        except (AgiHangup, AgiConnectionLost):
            pass  # the caller left first: the call is over either way, which is what hangup() wants
        self._hung_up = True

    async def hangup_cause(self) -> int | None:
        try:
            cause = await self._variable("HANGUPCAUSE")
        except (CallerHangup, ChannelError):  # the connection closed, or no answer: nothing more to learn
            return None
        return int(cause) if cause.isdigit() else None

    async def mark_done(self) -> None:
        """Tell the dialplan the IVR finished this call itself (no fallback queue after ``AGI()``).

        The server calls it when the flow returns normally; nothing to say once the call is over.
        """
        if not (self._conn.hung_up or self._hung_up):
            await self.set_variable(DONE_VARIABLE, "1")

    async def _run(self, command: str, *arguments: str | int, bound: Bound | None = None) -> AgiResponse:
        """One command; a ``result=-1`` is turned into `AgiHangup` or `ChannelError`."""
        answer = await self._execute(command, *arguments, bound=bound or self._bounds.instant())
        if answer.result < 0:
            await self._failed(command, answer)
        return answer

    async def _execute(
        self, command: str, *arguments: str | int, bound: Bound, after_hangup: bool = False
    ) -> AgiResponse:
        """The wire's execute under `bound`; a time-out says which command ran past which bound and why."""
        try:
            return await self._conn.execute(command, *arguments, timeout=bound.seconds, after_hangup=after_hangup)
        except AgiTimeout as exc:
            # Arguments may be caller data: only the command and its bound are named.
            raise AgiTimeout(f"{command}: no answer from Asterisk within {bound.seconds:.1f} s ({bound.why})") from exc

    async def _run_app(self, app: str, data: str, bound: Bound) -> AgiResponse:
        """EXEC an application that returns once it has done its part; a ``result=-1`` is turned into
        `AgiHangup` or `ChannelError` as `_run` does."""
        answer = await self._execute("EXEC", app, data, bound=bound)
        if answer.result == -2:
            raise ChannelError(f"Asterisk has no {app} application loaded")
        if answer.result < 0:
            await self._failed(f"EXEC {app}", answer)
        return answer

    async def _exec(self, app: str, data: str) -> bool:
        """EXEC an application that may end with the caller gone; returns whether the caller hung up."""
        answer = await self._execute("EXEC", app, data, bound=self._bounds.conversation())
        if answer.result == -2:
            raise ChannelError(f"Asterisk has no {app} application loaded")
        if answer.result < 0:
            if await self._conn.hangup_follows(HANGUP_GRACE_S):
                return True
            raise ChannelError(f"{app}({data}) failed: {answer.raw}")
        return False

    async def _variable(self, name: str) -> str:
        """A channel variable ("" when unset); works on a hung-up channel too (res_agi allows it)."""
        answer = await self._execute("GET VARIABLE", name, bound=self._bounds.instant(), after_hangup=True)
        return answer.data if answer.result == 1 else ""

    async def _failed(self, command: str, answer: AgiResponse) -> None:
        if answer.data == "hangup" or await self._conn.hangup_follows(HANGUP_GRACE_S):
            raise AgiHangup(f"{command}: the caller hung up ({answer.raw})")
        raise ChannelError(f"{command} failed: {answer.raw} (missing sound file, or recording directory?)")
