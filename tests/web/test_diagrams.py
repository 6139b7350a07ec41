"""The console's diagrams as a supervisor reads them: a call's path on the flow it ran, the drop-off per node
on the current flow, a diff's nodes coloured; each drawn by Graphviz into SVG inline in the page."""

from __future__ import annotations

import re
import shutil
from datetime import timedelta
from functools import partial
from pathlib import Path

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from ivr.config import REPO_ROOT
from ivr.engine.flow import Flow
from ivr.flows.graph import Overlay, render
from ivr.flows.loader import load_flow, parse_flow
from ivr.protocol_number import make_call_protocol
from ivr.store.models import DropOffHour, Rollup
from ivr.store.reports import local_days, report
from ivr.web.diagrams import ADDED, CHANGED, REMOVED, VISITED, Diagrams
from tests.store.calls_data import DAY, A, at, insert_call

from .conftest import Site

pytestmark = pytest.mark.skipif(shutil.which("dot") is None, reason="Graphviz's dot is not installed")

SAC = REPO_ROOT / "flows" / "sac.yaml"
WALKED = make_call_protocol(2026, 100)
#: A call through the main flow as it is published: an unknown caller keys 1 (technical), then 0 (a person).
PATH = ["greet", "identify_by_caller", "announce_protocol", "mail_protocol_or_not", "announcements", "main_menu",
        "technical_entry", "technical", "technical_queue"]  # fmt: skip


def node(page: str, name: str) -> tuple[str, str]:
    """The SVG class of node `name` and its markup (Graphviz writes a comment before each node and edge)."""
    found = re.search(rf'<g id="node:{re.escape(name)}" class="([^"]*)">', page)
    assert found, f"no node {name} in the page"
    end = page.find("<!--", found.end())
    return found[1], page[found.end() : end if end >= 0 else None]


async def test_a_call_s_path_is_drawn_on_the_flow_it_ran_in_order(site: Site) -> None:
    version = load_flow(SAC).version
    outcomes = {"identify_by_caller": "not_found", "main_menu": "1", "technical": "0"}
    visits = [(name, "any", "", outcomes.get(name, "next")) for name in PATH]
    await site.console.store.write(
        partial(insert_call, protocol=WALKED, start=at(11), seconds=90, caller="3133334444", customer=None,
                outcome="queue:technical", flow="sac", visits=visits, flow_version=version)
    )  # fmt: skip
    assert await site.log_in("vera") == 303
    page = await (await site.client.get(f"/calls/{WALKED}")).text()
    assert f"flow sac (version {version})" in page
    css, markup = node(page, "main_menu")
    assert css == "node visited" and "#6" in markup and f'fill="{VISITED}"' in markup
    assert node(page, "technical_queue")[0] == "node visited" and "#9" in node(page, "technical_queue")[1]
    css, markup = node(page, "billing")  # never reached: dimmed
    assert css == "node" and 'fill="#f3f4f6"' in markup
    taken = re.findall(r'class="edge taken">\n<title>([^<]*)<', page)
    assert sorted(title.replace("&#45;&gt;", "->") for title in taken) == sorted(
        ["start:->greet", *(f"{a}->{b}" for a, b in zip(PATH, PATH[1:], strict=False))]
    )  # one edge per step: of identify_by_caller's three ways to announce_protocol, the not_found taken
    not_found = r'class="edge taken">\n<title>identify_by_caller[^<]*</title>\n(?:.*\n){1,6}?.*>not_found #3<'
    assert re.search(not_found, page)
    assert "<script" not in page.split("<svg", 1)[1].split("</svg>", 1)[0]


async def test_a_call_on_a_version_no_release_holds_says_so(site: Site) -> None:
    assert await site.log_in("vera") == 303
    page = await (await site.client.get(f"/calls/{A}")).text()  # the known day's calls ran version "v7"
    assert "flow sac (version v7)" in page and "No published release here holds this version" in page
    assert "queue_tech" in page  # the table still says it all


async def test_the_drop_off_per_node_is_drawn_on_the_current_flow_and_rolled_up_as_ivr_report_does(
    site: Site,
) -> None:
    store = site.console.store
    since, until = local_days(DAY, 1, site.console.conf.timezone)
    from_visits = await report(store, since, until)  # before any roll-up: counted from the node visits
    assert await site.log_in("vera") == 303
    page = await (await site.client.get(f"/reports?date={DAY}&span=day")).text()
    css, markup = node(page, "greet")  # call F failed on greet: 1 of the day's 6 calls of sac
    assert css == "node dropoff" and "1 of 6 dropped (16.7%)" in markup and 'fill="#fecaca"' in markup
    assert "hung up 0, input failed 0, failed 1" in markup
    assert "no longer has: cnpj, menu." in page  # the known day's other nodes are not in today's flow

    def rolled(session: Session) -> tuple[int, object]:
        mark = session.get(Rollup, "drop_off_hours")
        return session.scalar(select(func.count()).select_from(DropOffHour)) or 0, mark and mark.rolled_until

    count, until_hour = await store.read(rolled)
    assert count > 0 and until_hour == (site.clock() - timedelta(days=1)).replace(minute=0, second=0, microsecond=0)
    assert await report(store, since, until) == from_visits  # the same figures from the roll-up


async def test_a_diff_is_drawn_with_nodes_added_removed_and_changed(site: Site, tmp_path: Path) -> None:
    draft = tmp_path / "draft"
    shutil.copytree(REPO_ROOT / "flows", draft, ignore=shutil.ignore_patterns("tests", "*.md", "*.json"))
    text = (draft / "sac.yaml").read_text(encoding="utf-8")
    for old, new in (
        ("    next: identify_by_caller\n", "    next: hello_again\n\n  hello_again:\n    play: welcome\n"
                                         "    next: identify_by_caller\n"),
        ("go: protocol_sent_both}", "go: protocol_mailed}"),
        ("  protocol_sent_both:\n    play: protocol_emailed_and_whatsapp\n    next: announcements\n\n", ""),
    ):  # fmt: skip
        assert old in text
        text = text.replace(old, new, 1)
    (draft / "sac.yaml").write_text(text, encoding="utf-8")
    published = site.console.library.publish(draft, who="test", note="hello again")
    assert published.ok, published.render()
    assert await site.log_in("vera") == 303
    page = await (await site.client.get("/flows/diff?a=1&b=2")).text()
    for name, css, fill in (("hello_again", "node added", ADDED), ("protocol_sent_both", "node removed", REMOVED),
                            ("greet", "node changed", CHANGED)):  # fmt: skip
        found, markup = node(page, name)
        assert (found, f'fill="{fill}"' in markup) == (css, True), name
    assert node(page, "main_menu")[0] == "node"  # unchanged: plain


def test_names_and_labels_reach_the_svg_escaped() -> None:
    flow = parse_flow(
        'flow: \'x" <script>alert(1)</script> \\\\ y\'\nstart: greet\nnodes:\n  greet:\n    hangup: goodbye\n',
        Path("odd.yaml"),
    )
    svg = render_svg(flow, Overlay(caption='a "caption" <b>&amp;</b>'))
    assert "<script" not in svg and "<b>" not in svg
    assert "&lt;script&gt;" in svg and "&lt;b&gt;" in svg


def render_svg(flow: Flow, overlay: Overlay) -> str:
    from ivr.flows.graph import flow_dot

    return render(flow_dot(flow, overlay=overlay), "svg").decode()


async def test_a_drawing_is_kept_and_graphviz_failing_is_said_not_raised(monkeypatch: pytest.MonkeyPatch) -> None:
    diagrams, flow = Diagrams(), load_flow(SAC)
    first = await diagrams.drawing(flow, Overlay(), "sac")
    monkeypatch.setattr("ivr.flows.graph.shutil.which", lambda _name: None)  # as if graphviz were removed
    assert (await diagrams.drawing(flow, Overlay(), "sac")).svg is first.svg  # kept: dot does not run again
    missing = await diagrams.drawing(flow, Overlay(dim=True), "sac")
    assert missing.svg is None and "'dot' program is not installed" in missing.note
