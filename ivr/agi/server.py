"""The FastAGI server: accept, read the ``agi_*`` block, route by request path, drain on SIGTERM.

One asyncio task per call (never a process or thread per call), so one process carries thousands of
concurrent calls. The server knows nothing about flows: it hands an `AgiChannel` and the flow name
from the request path (``agi://127.0.0.1:4574/sac?lang=pt_BR`` -> ``"sac"``, params in
``channel.info.params``) to a `CallHandler` that ``ivr.app`` provides. When the handler returns
normally the server sets ``IVR_DONE=1``; a handler that raises, a timeout or a drain leaves it unset,
and the dialplan sends the caller to the fallback queue.

Why not panoramisk's FastAGI (``panoramisk/fast_agi.py`` in the 1.4 release installed in our venv):

* ``Application.handler`` reads the header block with ``while b'\\n\\n' not in buffer: buffer += await
  reader.read(self.buf_size)``. At EOF ``StreamReader.read`` returns ``b''`` without suspending, so a
  peer that connects and closes before the blank line spins that loop forever and freezes the whole
  event loop, every other call with it (checked: a peer sending one header line and closing stops a
  0.2 s ticker task dead). It also drops whatever followed the blank line (``buffer[:-2]``).
* ``Request.send_command`` reads exactly one line as the answer. An out-of-band ``HANGUP`` (res_agi
  writes it between commands) is taken as the answer (``parse_agi_result`` maps it to
  ``AGIResultHangup``), so the real answer becomes the answer to the *next* command: every answer after
  a hang-up is off by one. A ``520-`` usage answer gets one extra ``readline()``, not reading to the
  ``520 End of proper usage.`` line, which desynchronises it the same way.
* The route is awaited inside ``except BaseException: log.exception(...)``: cancellation (our drain on
  SIGTERM) and failures are swallowed into a log line.
* No timeout on any read, and ``add_route`` calls ``asyncio.coroutine``, removed in Python 3.11.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import logging
import resource
import signal
from collections.abc import Awaitable, Callable
from typing import Any

from ivr.agi.admission import KEY_PARAM, Admission
from ivr.agi.bounds import CommandBounds
from ivr.agi.channel import AgiChannel, Peers
from ivr.agi.wire import MAX_LINE, AgiConnection, AgiError, AgiProtocolError, read_request
from ivr.config import Settings
from ivr.engine.channel import CallerHangup, Channel

log = logging.getLogger(__name__)

#: Runs one call: the channel and the flow name taken from the request path.
CallHandler = Callable[[Channel, str], Awaitable[None]]
#: Called on SIGHUP (reload flows); may be a coroutine function.
ReloadHook = Callable[[], Awaitable[None] | None]

#: Pending connections the kernel keeps while we accept (a burst of calls after a restart).
BACKLOG = 4096


class AgiServer:
    """Accepts FastAGI connections and runs each call in its own task."""

    def __init__(
        self,
        handler: CallHandler,
        settings: Settings,
        *,
        admission: Admission,
        host: str | None = None,
        port: int | None = None,
        reuse_port: bool = False,
    ) -> None:
        self._handler = handler
        self._reuse_port = reuse_port  # `ivr serve --workers`: all workers listen on the port, the kernel spreads calls
        self._settings = settings
        self._admission = admission
        self._unidentified = 0  # connections still to send their agi_* block
        self._bounds = CommandBounds(settings)
        self._peers = Peers()
        self._host = host if host is not None else settings.agi.host
        self._port = port if port is not None else settings.agi.port
        self._server: asyncio.Server | None = None
        self._calls: set[asyncio.Task[None]] = set()
        self._calls_done = asyncio.Event()
        self._calls_done.set()

    @property
    def port(self) -> int:
        """The bound port (useful with port 0)."""
        if self._server is None:
            raise RuntimeError("the AGI server is not started")
        return int(self._server.sockets[0].getsockname()[1])

    @property
    def active_calls(self) -> int:
        return len(self._calls)

    async def start(self) -> None:
        self._server = await asyncio.start_server(
            self._accept,
            self._host,
            self._port,
            limit=MAX_LINE,
            backlog=BACKLOG,
            reuse_address=True,
            reuse_port=self._reuse_port,
        )
        log.info("FastAGI listening on %s:%d", self._host, self.port)

    async def drain(self, timeout_s: float | None = None) -> int:
        """Stop accepting, let calls in progress finish within ``timeout_s``, cancel the rest.

        Returns how many calls had to be cancelled. A cancelled call closes its socket, and Asterisk
        continues the dialplan after ``AGI()`` (the fallback queue, since IVR_DONE is unset).
        """
        if self._server is not None:
            self._server.close()
        timeout_s = self._settings.agi.drain_timeout_s if timeout_s is None else timeout_s
        if self._calls:
            log.info("draining %d call(s) for up to %g s", len(self._calls), timeout_s)
        with contextlib.suppress(TimeoutError):  # the calls still running are cancelled just below
            async with asyncio.timeout(timeout_s):
                await self._calls_done.wait()
        left = list(self._calls)
        for task in left:
            task.cancel()
        if left:
            log.warning("cancelled %d call(s) still running after %g s", len(left), timeout_s)
            await asyncio.gather(*left, return_exceptions=True)
        if self._server is not None:
            await self._server.wait_closed()
        return len(left)

    def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if self._unidentified >= self._settings.agi.max_unidentified:
            # Idle sockets that never send a header must not take every file descriptor from the calls.
            log.warning("FastAGI peer %s closed: %d connections already waiting for their agi_* block",
                        writer.get_extra_info("peername"), self._unidentified)  # fmt: skip
            writer.transport.abort()
            return
        # Our own task per call (not the one asyncio's stream protocol would make): drain may cancel
        # it, and Python 3.11's stream callback logs a cancelled connection task as an error.
        task = asyncio.create_task(self._run_call(reader, writer))
        self._calls.add(task)
        self._calls_done.clear()
        task.add_done_callback(self._call_ended)

    def _call_ended(self, task: asyncio.Task[None]) -> None:
        self._calls.discard(task)
        if not self._calls:
            self._calls_done.set()

    async def _run_call(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        peer = writer.get_extra_info("peername")
        self._unidentified += 1
        try:
            request = await read_request(reader, timeout=self._settings.agi.header_timeout_s)
        except (AgiError, CallerHangup) as exc:  # CallerHangup: the socket reset before the block ended
            log.warning("FastAGI peer %s: %s", peer, exc)
            writer.close()
            return
        finally:
            self._unidentified -= 1
        refused = self._admission.refusal(peer[0] if peer else None, request)
        if refused is not None:
            log.warning("FastAGI peer %s refused: %s", peer, refused)
            writer.close()
            return
        request = request.without_param(KEY_PARAM)
        conn = AgiConnection(reader, writer, request)
        call_id = request.get("agi_uniqueid") or str(peer)
        for name in request.malformed:  # a control character in a caller-ID value, say: the call goes on
            log.warning("call %s: %s held a line break or control character; ignored (value not logged)", call_id, name)
        if self._bounds.refresh():  # the prompts were rebuilt: files may have gone
            self._peers.forget_played()
        try:
            channel = await AgiChannel.open(conn, self._settings, self._bounds, self._peers)
            await self._handler(channel, request.flow)
            await channel.mark_done()  # only a flow that returned normally keeps the caller from the fallback
        except CallerHangup:
            log.info("call %s: caller hung up", call_id)
        except AgiProtocolError as exc:
            # The peer broke the protocol (a bogus result=, say): this call ends, the server goes on.
            log.error("call %s (flow %r) ended: AGI protocol error: %s", call_id, request.flow, exc)
        except Exception:
            # The call's last stop: the flow failed. Closing the socket sends the caller to the
            # dialplan's fallback queue; the traceback goes to the log. Cancellation passes through.
            log.exception("call %s (flow %r) failed", call_id, request.flow)
        finally:
            await conn.close()


async def serve(
    handler: CallHandler,
    settings: Settings,
    *,
    admission: Admission,
    host: str | None = None,
    port: int | None = None,
    on_reload: ReloadHook | None = None,
    started: Callable[[AgiServer], Any] | None = None,
    reuse_port: bool = False,
) -> int:
    """Run the FastAGI server until SIGTERM or SIGINT, then drain. SIGHUP calls ``on_reload``.

    Returns the number of calls cut by the drain bound (0 after a clean drain).
    """
    raise_open_files_limit()
    server = AgiServer(handler, settings, admission=admission, host=host, port=port, reuse_port=reuse_port)
    await server.start()
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    reloads: set[asyncio.Task[None]] = set()

    def reload() -> None:
        if on_reload is None:
            log.info("SIGHUP: nothing to reload")
            return
        task = asyncio.ensure_future(_reload(on_reload))
        reloads.add(task)
        task.add_done_callback(reloads.discard)

    loop.add_signal_handler(signal.SIGTERM, stop.set)
    loop.add_signal_handler(signal.SIGINT, stop.set)
    loop.add_signal_handler(signal.SIGHUP, reload)
    try:
        if started is not None:
            started(server)
        await stop.wait()
        log.info("stopping: no new calls; draining")
        return await server.drain()
    finally:
        for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
            loop.remove_signal_handler(sig)
        for task in reloads:
            task.cancel()


async def _reload(on_reload: ReloadHook) -> None:
    log.info("SIGHUP: reloading")
    try:
        result = on_reload()
        if inspect.isawaitable(result):
            await result
    except Exception:
        # A bad reload (e.g. a flow that fails its checks) must not stop the calls being served.
        log.exception("reload failed; still serving the previous configuration")


def raise_open_files_limit() -> int:
    """Each call holds a socket (and Asterisk's peer another): the soft limit on open files (often 1,024)
    goes up to the hard one, so a burst of calls is not refused for descriptors. Returns the limit now."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY or soft < hard:
        wanted = hard if hard != resource.RLIM_INFINITY else max(soft, 1 << 20)
        with contextlib.suppress(ValueError, OSError):  # a container may refuse: the soft limit stays
            resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, hard))
            soft = wanted
    if soft < 4096:
        log.warning("open files limited to %d (ulimit -n): fewer calls than that at once", soft)
    return soft
