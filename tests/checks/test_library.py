"""Publishing: only a checked set goes live, every version is kept, and a call keeps the set it started on."""

from __future__ import annotations

from pathlib import Path

import pytest

from ivr.clock import system_clock
from ivr.config import REPO_ROOT
from ivr.engine.operations import OperationRegistry
from ivr.flows.checks import Report
from ivr.flows.library import CURRENT, RELEASES, FlowLibrary, NothingPublished, UnknownFlow
from ivr.voice.catalogue import Catalogue

FIXTURES = REPO_ROOT / "tests" / "data" / "flows"


@pytest.fixture
def library(tmp_path: Path, catalogue: Catalogue, registry: OperationRegistry) -> FlowLibrary:
    return FlowLibrary(tmp_path / "published", catalogue=catalogue, registry=registry, clock=system_clock)


def edit(flows_dir: Path, old: str, new: str) -> None:
    path = flows_dir / "minimal.yaml"
    text = path.read_text(encoding="utf-8")
    assert old in text
    path.write_text(text.replace(old, new), encoding="utf-8")


def test_publish_serves_the_checked_copy(library: FlowLibrary, flows_dir: Path) -> None:
    report = library.publish(flows_dir, who="ana")
    assert report.ok and list(report.flows) == ["minimal"]
    flow = library.current("minimal")
    assert flow.source == library.root / RELEASES / str(library.version) / "minimal.yaml"
    assert (library.root / CURRENT).read_text().strip() == library.version
    [entry] = library.history()
    assert (entry.version, entry.who, entry.files) == (library.version, "ana", ("minimal.yaml",))


def test_broken_set_is_refused_and_the_previous_version_keeps_serving(library: FlowLibrary, flows_dir: Path) -> None:
    library.publish(flows_dir, who="ana")
    served, flow = library.version, library.current("minimal")
    edit(flows_dir, '"0": {go: agent}', '"0": {go: agnet}')

    report = library.publish(flows_dir, who="bruno")

    assert not report.ok
    assert [p.message.split(" (")[0] for p in report.errors] == ["node 'main_menu' goes to 'agnet'"]
    assert library.version == served and library.current("minimal") is flow
    assert library.published_version() == served
    assert [e.who for e in library.history()] == ["ana"]
    assert [p.name for p in (library.root / RELEASES).iterdir()] == [served]


def test_a_call_keeps_the_version_it_started_with(library: FlowLibrary, flows_dir: Path) -> None:
    library.publish(flows_dir)
    held = library.snapshot()  # a call starts
    edit(flows_dir, "then: agent", "then: goodbye")
    library.publish(flows_dir)
    assert library.version != held.version
    assert held["minimal"].nodes["main_menu"].verb.then == "agent"  # type: ignore[attr-defined]
    assert library.current("minimal").nodes["main_menu"].verb.then == "goodbye"  # type: ignore[attr-defined]
    with pytest.raises(TypeError):
        held.flows["other"] = held["minimal"]  # type: ignore[index]


def test_reload_picks_up_what_another_process_published(
    tmp_path: Path, catalogue: Catalogue, registry: OperationRegistry, flows_dir: Path
) -> None:
    server = FlowLibrary(tmp_path / "published", catalogue=catalogue, registry=registry, clock=system_clock)
    publisher = FlowLibrary(tmp_path / "published", catalogue=catalogue, registry=registry, clock=system_clock)
    with pytest.raises(NothingPublished):
        server.reload()
    publisher.publish(flows_dir)
    assert server.reload().ok and server.version == publisher.version
    edit(flows_dir, "then: agent", "then: goodbye")
    publisher.publish(flows_dir)
    server.reload()
    assert server.version == publisher.version
    assert server.current("minimal").nodes["main_menu"].verb.then == "goodbye"  # type: ignore[attr-defined]


def test_reload_keeps_serving_when_a_release_no_longer_checks(
    tmp_path: Path, catalogue: Catalogue, registry: OperationRegistry, flows_dir: Path
) -> None:
    """The server checks again on reload: its own catalogue may lack a prompt the new release plays."""
    prompts = tmp_path / "prompts"
    prompts.mkdir()
    text = (FIXTURES / "prompts" / "fixtures.yaml").read_text(encoding="utf-8")
    (prompts / "p.yaml").write_text(text.replace("\nsent: ", "\nsent_to_you: "), encoding="utf-8")
    publisher = FlowLibrary(tmp_path / "published", catalogue=catalogue, registry=registry, clock=system_clock)
    server = FlowLibrary(
        tmp_path / "published", catalogue=Catalogue.load(prompts), registry=registry, clock=system_clock
    )
    publisher.publish(flows_dir)
    server.reload()
    first = server.version
    edit(flows_dir, "hangup: goodbye", "hangup: [goodbye, sent]")
    publisher.publish(flows_dir)

    report = server.reload()

    assert [p.message.split(",")[0] for p in report.errors] == ["node 'goodbye' plays prompt 'sent'"]
    assert server.version == first != publisher.version


def test_same_files_give_the_same_version(library: FlowLibrary, flows_dir: Path) -> None:
    library.publish(flows_dir, who="ana")
    first = library.version
    library.publish(flows_dir, who="bruno")
    assert library.version == first
    assert [(e.version, e.who) for e in library.history()] == [(first, "ana"), (first, "bruno")]


def test_unknown_flow_and_empty_directory(library: FlowLibrary, flows_dir: Path, tmp_path: Path) -> None:
    with pytest.raises(NothingPublished):
        library.current("minimal")
    empty = tmp_path / "empty"
    empty.mkdir()
    report = library.publish(empty)
    assert [p.message for p in report.errors] == [f"no flow files (*.yaml) in {empty}: nothing to publish"]
    library.publish(flows_dir)
    with pytest.raises(UnknownFlow, match="no published flow is named 'sac'"):
        library.current("sac")


def test_a_file_saved_while_publishing_is_not_published(
    library: FlowLibrary, flows_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    check = library.check

    def check_then_save(directory: Path) -> Report:
        report = check(directory)
        edit(flows_dir, "then: agent", "then: goodbye")  # a supervisor saves while the check runs
        return report

    monkeypatch.setattr(library, "check", check_then_save)
    report = library.publish(flows_dir)
    [problem] = report.errors
    assert problem.message == "the flow files changed while they were being published: publish again"
    assert library.published_version() is None
    assert list((library.root / RELEASES).iterdir()) == []
