"""The draft's editor: a flow file of the draft (`settings.flows_dir`, what publish takes) edited in the
browser with the checker's problems at their lines as one types; the flow tests, the simulator and the
impact of publishing, run on the draft.

The check is the library's (the one publish and `ivr flow check` run) over a temporary copy of the whole
draft with the edited text in place, so the rules across flows see what publishing would see. The flow
tests and the simulator run on demo stores, never the live one (nothing is sent, no real ticket opened);
the impact replays the store's recorded calls on demo stores too. Those runners are `ivr.app`'s, which
this package may not import (the same layer): `ivr web` hands them in as `DraftRunners`.

Viewers read the draft and run everything that changes nothing; editors also save (and publish, on the
flows page).
"""

from __future__ import annotations

import asyncio
import difflib
import hashlib
import io
import os
import shutil
import stat
import tempfile
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, Protocol

from aiohttp import web

from ivr.clock import Clock, ManualClock, local
from ivr.config import Settings
from ivr.flows.checks import flow_files
from ivr.flows.flowtest import FlowTestError, ServicesFactory, run_files
from ivr.flows.impact import Impact, ImpactRefused
from ivr.flows.library import FlowLibrary
from ivr.flows.loader import FlowLoadError, flows_beside, load_flow
from ivr.flows.simulate import simulate, split_inputs
from ivr.store.models import WebRole
from ivr.web.app import CONSOLE, Console, address, needs, render, user

#: An edited file larger than any flow we have by far; more is refused before it is copied or parsed.
MAX_TEXT_BYTES = 256 * 1024
MAX_IMPACT_DAYS = 90
MAX_CALLER_CHARS = 20
# Bounds of a run, so a draft that loops or a long window never holds a request for good.
TESTS_TIMEOUT_S = 300.0
SIMULATE_TIMEOUT_S = 30.0
IMPACT_TIMEOUT_S = 600.0
TESTS_SUBDIR = "tests"  # the draft's flow tests, as `ivr flow test` finds them in a checkout


class ImpactOf(Protocol):
    """`ivr.app.flow_impact`."""

    def __call__(
        self, draft: Path, *, settings: Settings, clock: Clock, days: int = ..., limit: int = ...
    ) -> Awaitable[Impact]: ...


@dataclass(frozen=True, slots=True)
class DraftRunners:
    """What the editor's pages run, from `ivr.app`: demo stores for flow tests and the simulator, the impact."""

    demo: Callable[[Settings], ServicesFactory]  # ivr.app.demo_factory
    impact: ImpactOf  # ivr.app.flow_impact


SAVING = web.AppKey("saving", asyncio.Lock)  # one save at a time: compare-then-write must not interleave


def add_routes(app: web.Application) -> None:
    app[SAVING] = asyncio.Lock()
    app.router.add_get("/flows/edit", edit_first)
    app.router.add_get("/flows/edit/{name}", edit_page)
    app.router.add_post("/flows/check", check)
    app.router.add_post("/flows/save/{name}", save)
    app.router.add_post("/flows/test", run_tests)
    app.router.add_get("/flows/simulate", simulate_page)
    app.router.add_post("/flows/simulate", run_simulation)
    app.router.add_get("/flows/impact", impact_page)


def _console(request: web.Request) -> Console:
    return request.app[CONSOLE]


def _draft(console: Console) -> Path:
    return console.conf.flows_dir


def _draft_names(console: Console) -> list[str]:
    return [file.name for file in flow_files([_draft(console)])]


def _draft_file(request: web.Request, name: str) -> Path:
    """The draft's flow file `name`: only an existing *.yaml directly in the draft (no path, nothing new)."""
    console = _console(request)
    names = _draft_names(console)
    if name not in names:
        raise web.HTTPNotFound(
            text=f"No flow file {name!r} in the draft; the draft has: {', '.join(names) or 'no flow files'}."
        )
    return _draft(console) / name


async def _read_draft(path: Path) -> str:
    """A draft file's text; one removed meanwhile or not UTF-8 gets a page saying so, not a server error."""
    try:
        return await asyncio.to_thread(path.read_text, encoding="utf-8")
    except FileNotFoundError:
        raise web.HTTPNotFound(text=f"{path.name} was removed from the draft meanwhile.") from None
    except UnicodeDecodeError as exc:
        raise web.HTTPUnprocessableEntity(
            text=f"{path.name} is not UTF-8 text (byte {exc.start}): save it as UTF-8 in an editor, then reload."
        ) from None


def _posted_text(form: Any) -> str:
    """The edited text as a file keeps it: a browser sends a textarea's lines ended by CR LF."""
    text = str(form.get("text", ""))
    if len(text.encode("utf-8")) > MAX_TEXT_BYTES:
        raise web.HTTPRequestEntityTooLarge(
            MAX_TEXT_BYTES, len(text.encode("utf-8")), text=f"The text is over {MAX_TEXT_BYTES // 1024} KiB: a flow "
            "file that long cannot be checked or saved here; split it into subflows."
        )  # fmt: skip
    return text.replace("\r\n", "\n")


def digest(text: str) -> str:
    """What the page sends back as the text it loaded, to tell whether the file changed since."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


# --- editing ------------------------------------------------------------------------------------------


async def edit_first(request: web.Request) -> web.Response:
    names = _draft_names(_console(request))
    if not names:
        raise web.HTTPNotFound(text=f"The draft ({_draft(_console(request))}) has no flow files (*.yaml).")
    raise web.HTTPSeeOther(f"/flows/edit/{names[0]}")


async def edit_page(request: web.Request) -> web.Response:
    name = request.match_info["name"]
    text = await _read_draft(_draft_file(request, name))
    return _editor(request, name, text, base=digest(text))


def _editor(
    request: web.Request, name: str, text: str, *, base: str, status: int = 200, **context: Any
) -> web.Response:
    return render(request, "editor.html", status=status, name=name, text=text, base=base,
                  files=_draft_names(_console(request)), **{"message": "", "theirs": "", **context})  # fmt: skip


async def check(request: web.Request) -> web.Response:
    """The problems of the draft with one file's text in its place, as JSON for the editor's script:
    ``{"problems": [{file, line, column, severity, message}], "summary", "ok"}``."""
    console = _console(request)
    form = await request.post()
    name = str(form.get("name", ""))
    _draft_file(request, name)
    text = _posted_text(form)
    return web.json_response(await asyncio.to_thread(checked_with, console.library, _draft(console), name, text))


def checked_with(library: FlowLibrary, draft: Path, name: str, text: str) -> dict[str, Any]:
    """The check of the whole draft with file `name` holding `text` instead, on a temporary copy, as the
    editor's script reads it: a problem in a file of the draft names the file, any other (the prompt
    catalogue's, whose files share the flows' names) its whole path."""
    with tempfile.TemporaryDirectory(prefix="ivr-draft-") as directory:
        copy = Path(directory)
        for file in flow_files([draft]):
            shutil.copyfile(file, copy / file.name)
        (copy / name).write_text(text, encoding="utf-8")
        report = library.check(copy)
    problems = [
        {"file": p.position.file.name if p.position.file.parent == copy else str(p.position.file),
         "line": p.position.line, "column": p.position.column, "severity": p.severity.value, "message": p.message}
        for p in (*report.errors, *report.warnings)
    ]  # fmt: skip
    return {"problems": problems, "summary": report.summary(), "ok": report.ok}


@needs(WebRole.EDITOR)
async def save(request: web.Request) -> web.Response:
    """Write the file, only if it is still what the editor loaded (`base`): else 409, the text kept on the
    page. A draft with errors is saved all the same (it is a draft); publishing refuses it."""
    console = _console(request)
    name = request.match_info["name"]
    path = _draft_file(request, name)
    form = await request.post()
    text, base = _posted_text(form), str(form.get("base", ""))
    async with request.app[SAVING]:
        before = await _read_draft(path)
        if digest(before) != base:
            theirs = "".join(_diff(name, text, before, ("yours", "on disk now")))
            return _editor(request, name, text, base=base, status=409, theirs=theirs,
                           message=f"Not saved: {name} was changed by someone else since you opened it. Your text is "
                           "still below; the differences from the file as it is now follow it. Copy your text, "
                           "reload the page, and make your changes again.")  # fmt: skip
        if before == text:
            return _editor(request, name, text, base=base, message="Nothing changed: nothing to save.")
        await asyncio.to_thread(_write_atomically, path, text)
    who = user(request).name
    await console.accounts.audit(who, "flow.edit", f"{name}\n" + "".join(_diff(name, before, text, ("a", "b"))),
                                 address=address(request))  # fmt: skip
    report = await asyncio.to_thread(console.library.check, _draft(console))
    verdict = (
        "The draft passes its checks: it can be published."
        if report.ok
        else f"The draft has {len(report.errors)} error(s): it cannot be published until they are fixed."
    )
    return _editor(request, name, text, base=digest(text), message=f"Saved {name}. {verdict}")


def _diff(name: str, old: str, new: str, sides: tuple[str, str]) -> list[str]:
    return list(difflib.unified_diff(old.splitlines(keepends=True), new.splitlines(keepends=True),
                                     fromfile=f"{sides[0]}/{name}", tofile=f"{sides[1]}/{name}"))  # fmt: skip


def _write_atomically(path: Path, text: str) -> None:
    """A temporary file beside it renamed over it: a reader (a publish) sees the old file or the new, whole."""
    handle, temporary = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as out:
            out.write(text)
        os.chmod(temporary, stat.S_IMODE(path.stat().st_mode))
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


# --- running the draft --------------------------------------------------------------------------------


async def run_tests(request: web.Request) -> web.Response:
    """The draft's flow tests (`<draft>/tests`), as `ivr flow test` runs them, on demo stores."""
    console = _console(request)
    tests = _draft(console) / TESTS_SUBDIR
    if not tests.is_dir():
        return render(request, "draft_tests.html", status=404, results=[], message=f"The draft has no {tests}.")
    try:
        async with asyncio.timeout(TESTS_TIMEOUT_S):
            results = await run_files([tests], console.drafts.demo(console.conf), console.conf, now=console.clock())
    except (FlowTestError, FlowLoadError) as exc:
        return render(request, "draft_tests.html", status=422, results=[], message=f"The tests cannot run: {exc}")
    except TimeoutError:
        return render(request, "draft_tests.html", status=504, results=[],
                      message=f"The flow tests took over {TESTS_TIMEOUT_S:.0f} s and were stopped.")  # fmt: skip
    failed = sum(not r.passed for r in results)
    message = f"{len(results) - failed} passed, {failed} failed" if results else "No flow tests found."
    return render(request, "draft_tests.html", results=results, message=message)


async def simulate_page(request: web.Request) -> web.Response:
    return _simulation(request, {"flow": "sac.yaml", "caller": "", "inputs": "", "at": ""})


def _simulation(request: web.Request, form: dict[str, str], *, status: int = 200, **context: Any) -> web.Response:
    return render(request, "simulate.html", status=status, files=_draft_names(_console(request)), form=form,
                  **{"message": "", "transcript": "", **context})  # fmt: skip


async def run_simulation(request: web.Request) -> web.Response:
    """One call through a flow of the draft, with the caller's actions given as `ivr flow simulate --input`
    takes them, at a chosen moment (default now), on a demo store; the transcript the simulator prints."""
    console = _console(request)
    posted = await request.post()
    form = {key: str(posted.get(key, "")).strip() for key in ("flow", "caller", "inputs", "at")}
    path = _draft_file(request, form["flow"])
    try:
        caller = form["caller"]
        if caller and (len(caller) > MAX_CALLER_CHARS or not caller.removeprefix("+").isdigit()):
            raise ValueError("the caller's number is digits (a + before them allowed), or nothing for a withheld one")
        inputs = split_inputs(form["inputs"])
        moment = _moment(form["at"], console)
        flow = await asyncio.to_thread(load_flow, path)
        flows = await asyncio.to_thread(flows_beside, flow)
    except FlowLoadError as exc:
        return _simulation(request, form, status=422, message=f"The draft does not load: {exc}")
    except ValueError as exc:  # the caller, the inputs (ScriptError), the moment
        return _simulation(request, form, status=400, message=f"Not simulated: {exc}")
    out = io.StringIO()
    try:
        async with asyncio.timeout(SIMULATE_TIMEOUT_S):
            async with console.drafts.demo(console.conf)(ManualClock(moment)) as services:
                await simulate(flow, services, console.conf, caller=form["caller"] or None, inputs=inputs,
                               flows=flows, out=out)  # fmt: skip
    except TimeoutError:
        return _simulation(request, form, status=504, transcript=out.getvalue(),
                           message=f"The call took over {SIMULATE_TIMEOUT_S:.0f} s and was stopped.")  # fmt: skip
    return _simulation(request, form, transcript=out.getvalue())


def _moment(text: str, console: Console) -> datetime:
    """When the simulated call happens: a local date and time as written, or now."""
    if not text:
        return console.clock()
    try:
        return local(datetime.fromisoformat(text), console.conf.timezone)
    except ValueError:
        raise ValueError(f"the moment {text!r} is not a date and time like 2026-12-24 21:00") from None


async def impact_page(request: web.Request) -> web.Response:
    """What publishing the draft would change for the calls of the last `days` days (`ivr flow impact`)."""
    console = _console(request)
    days = request.query.get("days", "7").strip()
    if not days.isdigit() or not 1 <= int(days) <= MAX_IMPACT_DAYS:
        return _impact(request, days, status=400, message=f"The days are a whole number from 1 to {MAX_IMPACT_DAYS}.")
    try:
        async with asyncio.timeout(IMPACT_TIMEOUT_S):
            impact = await console.drafts.impact(_draft(console), settings=console.conf, clock=console.clock,
                                                 days=int(days))  # fmt: skip
    except ImpactRefused as exc:
        return _impact(request, days, status=422, message=f"No impact: {exc}",
                       problems=exc.report.render() if exc.report else "")  # fmt: skip
    except TimeoutError:
        return _impact(request, days, status=504,
                       message=f"The replay took over {IMPACT_TIMEOUT_S:.0f} s and was stopped: try fewer days.")
    return _impact(request, days, impact=impact)


def _impact(
    request: web.Request, days: str, *, status: int = 200, impact: Impact | None = None, message: str = "",
    problems: str = "",
) -> web.Response:
    return render(request, "impact.html", status=status, days=days, impact=impact, message=message, problems=problems)
