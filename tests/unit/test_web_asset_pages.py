"""The catalog and asset pages' templates without a server: each metadata type rendered as it reads (a url a link
only when http(s), md as Markdown with raw HTML off, json collapsible, table_schema a table with its constraints,
a timestamp a UTC ``<time>`` the script shows in the reader's zone, ...), and every user string (a key holding
``<``, a description, md metadata, partitions, check names, tags) rendered as text on every tab; the key as the
JSON routes take it in a path; the lineage laid out left to right."""

from __future__ import annotations

import itertools
import json
import re
from typing import Any

import pytest
from starlette.requests import Request

from assetpipe.web.asset_pages import EVENT_TYPES, api_path, metadata_entries
from assetpipe.web.auth import Visitor
from assetpipe.web.lineage_layout import NODE_H, layout
from assetpipe.web.pages import Pages

HOSTILE = '<script>window.__pwned=1</script><img src=x onerror="alert(1)">'
JS_LINK = "javascript:alert(document.cookie)"
KEY = "h/<b>x"
AT = "2024-06-03T10:00:00.5Z"


def request(live: bool = False, can_run: bool = True) -> Request:
    headers = [(b"x-assetpipe-live", b"1")] if live else []
    scope = {"type": "http", "method": "GET", "path": "/assets/h/x", "headers": headers, "query_string": b""}
    req = Request(scope)
    req.state.visitor = Visitor(None, "open") if can_run else None
    return req


def render(template: str, context: dict[str, Any], live: bool = False, can_run: bool = True) -> str:
    pages = Pages()
    pages.env.globals["static"] = lambda name: f"/static/{name}"
    return pages.render(request(live, can_run), template, context).body.decode()


def entry(kind: str, value: Any) -> dict[str, Any]:
    return {"type": kind, "value": value}


SCHEMA = {
    "columns": [
        {"name": "id", "type": "int", "description": HOSTILE,
         "constraints": {"nullable": False, "unique": True, "other": ["> 0"]}, "tags": {"pii": ""}},
        {"name": "total", "type": "float", "description": None,
         "constraints": {"nullable": True, "unique": False, "other": []}, "tags": {}},
    ],
    "constraints": ["id unique per day"],
}  # fmt: skip
METADATA = {
    "dashboard": entry("url", "https://bi.example.com/d/42?a=1&b=2"),
    "evil_url": entry("url", JS_LINK),
    "notes": entry("md", f"# Notes\n\n**bold** {HOSTILE} [click]({JS_LINK}) [docs](https://docs.example.com)"),
    "config": entry("json", {"a": [1, 2], "html": HOSTILE}),
    "dagster/column_schema": entry("table_schema", SCHEMA),
    "sample": entry("table", {"records": [{"id": 1, "name": HOSTILE}], "schema": SCHEMA | {"columns": [
        {"name": "id", "type": "int"}, {"name": "name", "type": "string"}]}}),
    "file": entry("path", "/data/<orders>.csv"),
    "nb": entry("notebook_path", "/nb/report.ipynb"),
    "seen": entry("timestamp", 1717408800.5),
    "parent": entry("asset", "raw/<orders>"),
    "lineage": entry("column_lineage", {"deps_by_column": {"total": [{"asset_key": ["raw", "orders"],
                                                                      "column_name": "amount"}]}}),
    "refs": entry("code_references", {"references": [
        {"url": "https://github.com/o/r/blob/main/a.py#L3", "label": "source"},
        {"url": JS_LINK, "label": "evil"},
        {"file_path": "/src/defs.py", "line_number": 12, "label": None}]}),
    "dagster/row_count": entry("int", 1200),
    "ratio": entry("float", 0.5),
    "ok": entry("bool", False),
    "nothing": entry("null", None),
    "hostile": entry("text", HOSTILE),
}  # fmt: skip


def event(**extra: Any) -> dict[str, Any]:
    return {
        "event_id": "00000000-0000-7000-8000-000000000001",
        "event_type": "materialization",
        "timestamp": AT,
        "partition": HOSTILE,
        "data_version": HOSTILE,
        "description": HOSTILE,
        "metadata": METADATA,
        "tags": {HOSTILE: HOSTILE},
        "source": "sdk",
        "run_id": None,
        "run": None,
        **extra,
    }


def check(passed: bool = False) -> dict[str, Any]:
    return event(event_type="check_evaluation", check_name=HOSTILE, passed=passed, severity="WARN",
                 metadata={"n": entry("int", 3)})  # fmt: skip


def failure(**extra: Any) -> dict[str, Any]:
    return event(event_type="materialization_failure", data_version=None, failure_type="FAILED",
                 reason="UPSTREAM_FAILED_TO_MATERIALIZE", run_id="00000000-0000-0000-0000-0000000000bb",
                 event_id="00000000-0000-7000-8000-000000000002", **extra)  # fmt: skip


def detail() -> dict[str, Any]:
    definition = {
        "code_location": HOSTILE, "source": "code", "version": 2, "registered_at": AT,
        "description": f"{HOSTILE} [click]({JS_LINK})", "owners": ["team:<b>", "ana@example.com"],
        "tags": {"domain": HOSTILE, "pii": ""}, "kinds": [HOSTILE], "group_name": "g", "deps": ["raw/<orders>"],
        "code_version": "3", "execution_type": "materialization", "partitions": None, "automation_condition": None,
        "metadata": METADATA, "shadowed": [], "versions": 2,
    }  # fmt: skip
    return {
        "asset_key": KEY,
        "defined": True,
        "definition": definition,
        "status": "STALE",
        "causes": [{"category": "DATA", "dependency": "raw/<orders>", "reason": HOSTILE}],
        "latest_materialization": event(run_id="00000000-0000-0000-0000-0000000000aa"),
        "latest_observation": None,
        "latest_failure": failure(),
        "failed": True,
        "column_schema": [{"name": "id", "type": "int", "description": HOSTILE, "constraints": SCHEMA["columns"][0][
            "constraints"], "tags": {"pii": ""}, "source": "both"}],
        "column_lineage": {"id": [{"asset_key": "raw/<orders>", "column_name": HOSTILE}]},
        "code_references": [{"kind": "url", "url": JS_LINK, "label": HOSTILE},
                            {"kind": "url", "url": "https://github.com/o/r", "label": "gh"},
                            {"kind": "local_file", "file_path": "/src/<defs>.py", "line_number": 3, "label": None}],
        "upstream": ["raw/<orders>"],
        "downstream": [f"down/{HOSTILE}"],
        "checks": [check()],
        "check_summary": {"total": 1, "passed": {"WARN": 0, "ERROR": 0}, "failed": {"WARN": 1, "ERROR": 0}},
        "partitions": {"partitioned": True, "materialized": 1, "observed": 0, "failed": 1, "failed_checks": 1,
                       "latest": HOSTILE},
    }  # fmt: skip


def asset_context(tab: str, **extra: Any) -> dict[str, Any]:
    found = detail()
    return {
        "title": KEY, "tab": tab, "asset": found, "definition": found["definition"], "parts": KEY.split("/"),
        "api_path": api_path(KEY), "action": "materialize", "paged": False, "live": True,
        "metadata_entries": metadata_entries, **extra,
    }  # fmt: skip


def tab_context(tab: str) -> dict[str, Any]:
    found = detail()
    if tab == "overview":
        entries = metadata_entries(METADATA)
        return asset_context(tab, metadata={"definition": entries, "materialization": entries, "observation": []},
                             alerts=[])  # fmt: skip
    if tab == "events":
        failed = failure(run={"run_id": "r-2", "status": "failed"})
        page = {
            "items": [event(run={"run_id": "r-1", "status": "succeeded"}), check(True), failed],
            "next_cursor": "c1",
        }
        return asset_context(tab, events=page, event_filters={"type": "", "partition": HOSTILE, "at": ""},
                             focus=page["items"][0]["event_id"], event_types=EVENT_TYPES)  # fmt: skip
    if tab == "plots":
        plots = [{"label": HOSTILE, "x": "time", "id": "plot-0-time"}]
        return asset_context(tab, plots=plots, plot_data={"api": "/api/assets/" + api_path(KEY), "page": "/assets/h",
                                                          "plots": plots})  # fmt: skip
    if tab == "partitions":
        item = {"partition": HOSTILE, "status": "MATERIALIZED", "materialization": {"timestamp": AT, "event_id": "e",
                "data_version": HOSTILE, "run_id": None}, "observation": None, "failure": None, "checks": [
                {"check_name": HOSTILE, "passed": False, "severity": "ERROR", "timestamp": AT, "event_id": "e"}],
                "failed_checks": 1}  # fmt: skip
        failed = {**item, "partition": "p2", "status": "FAILED", "checks": [], "failed_checks": 0, "failure": {
                  "timestamp": AT, "event_id": "f", "run_id": "r", "reason": "RUN_TERMINATED"}}  # fmt: skip
        return asset_context(tab, partition_page={"items": [item, failed], "next_cursor": None})
    if tab == "checks":
        return asset_context(tab, history={"items": [check(), check(True)], "next_cursor": None})
    graph = {"root": KEY, "nodes": [{"asset_key": k, "defined": True, "status": "FRESH", "distance": d}
                                    for k, d in (("raw/<orders>", -1), (KEY, 0), (found["downstream"][0], 1))],
             "edges": [{"from": "raw/<orders>", "to": KEY}, {"from": KEY, "to": found["downstream"][0]}]}  # fmt: skip
    return asset_context(tab, depth=2, graph=layout(graph))


def assert_inert(html: str) -> None:
    """Nothing hostile became markup: no injected element, handler or javascript: link."""
    assert "<script>window" not in html and "<img" not in html and 'onerror="' not in html
    assert 'href="javascript' not in html.lower() and "href='javascript" not in html.lower()
    assert "<b>" not in html


def metadata_html() -> str:
    return render("asset.html", tab_context("overview"))


def row(html: str, label: str) -> str:
    """The rendered row of one metadata label (the definition's table)."""
    start = re.search(rf'<tr data-type="[a-z_]+"><th>{re.escape(label)} <span class="type">', html)
    assert start, label
    end = html.find("<tr data-type=", start.end())
    return html[start.start() : end if end > 0 else start.end() + 2000]


def test_a_url_is_a_link_only_when_http() -> None:
    html = metadata_html()
    assert 'href="https://bi.example.com/d/42?a=1&amp;b=2"' in row(html, "dashboard")
    evil = row(html, "evil_url")
    assert "href" not in evil and JS_LINK in evil and "not an http(s) link" in evil


def test_md_is_rendered_markdown_with_raw_html_as_text() -> None:
    notes = row(metadata_html(), "notes")
    assert "<h1>Notes</h1>" in notes and "<strong>bold</strong>" in notes
    assert "&lt;script&gt;window.__pwned=1&lt;/script&gt;" in notes
    assert '<a href="https://docs.example.com">docs</a>' in notes
    assert "javascript" not in re.findall(r"<a [^>]*>", notes).__str__()


def test_json_is_collapsible_and_a_table_is_a_table_of_its_records() -> None:
    html = metadata_html()
    config = row(html, "config")
    assert "<details" in config and "object · 2 keys" in config and "&#34;a&#34;" in config
    sample = row(html, "sample")
    assert "Table · 1 record" in sample and "<th>id</th><th>name</th>" in sample and "&lt;script&gt;" in sample


def test_a_table_schema_is_a_table_with_its_constraints() -> None:
    schema = row(metadata_html(), "dagster/column_schema")
    assert "<code>id</code>" in schema and "<code>total</code>" in schema
    cells = re.search(r"<code>id</code>.*?</tr>", schema, re.S).group(0)  # type: ignore[union-attr]
    assert "not null" in cells and "unique" in cells and "&gt; 0" in cells and "pii" in cells
    assert "not null" not in re.search(r"<code>total</code>.*?</tr>", schema, re.S).group(0)  # type: ignore[union-attr]
    assert "Table constraints" in schema and "id unique per day" in schema


def test_paths_are_text_timestamps_are_times_assets_are_links() -> None:
    html = metadata_html()
    assert '<code class="path">/data/&lt;orders&gt;.csv</code>' in row(html, "file")
    assert "notebook" in row(html, "nb")
    assert '<time datetime="2024-06-03T10:00:00.500000Z"' in row(html, "seen")
    assert 'href="/assets/raw/%3Corders%3E"' in row(html, "parent")
    lineage = row(html, "lineage")
    assert 'href="/assets/raw/orders"' in lineage and "<code>amount</code>" in lineage


def test_code_references_link_http_only_and_show_local_files_as_text() -> None:
    refs = row(metadata_html(), "refs")
    assert 'href="https://github.com/o/r/blob/main/a.py#L3"' in refs
    assert JS_LINK in refs and 'href="javascript' not in refs
    assert "/src/defs.py:12" in refs and "local file" in refs
    html = metadata_html()
    code = re.search(r'<ul class="refs" id="code-references">.*?</ul>', html, re.S).group(0)  # type: ignore[union-attr]
    assert 'href="https://github.com/o/r"' in code and "/src/&lt;defs&gt;.py:3" in code
    assert code.count("<a ") == 1


def test_scalars_render_as_text() -> None:
    html = metadata_html()
    assert '<code class="text">1200</code>' in row(html, "dagster/row_count")
    assert "0.5" in row(html, "ratio") and "<code>false</code>" in row(html, "ok")
    assert "null" in row(html, "nothing")
    assert "&lt;script&gt;" in row(html, "hostile")


@pytest.mark.parametrize("tab", ["overview", "events", "plots", "partitions", "checks", "lineage"])
def test_every_tab_shows_a_hostile_asset_as_text(tab: str) -> None:
    html = render("asset.html", tab_context(tab))
    assert_inert(html)
    assert '<h1 id="asset-key">h/&lt;b&gt;x</h1>' in html
    assert 'data-url="/api/assets/h/%3Cb%3Ex/materialize"' in html


def test_the_overview_shows_status_causes_checks_owners_tags_and_neighbours() -> None:
    html = render("asset.html", tab_context("overview"))
    assert "badge-stale" in html and "1 check failed" in html
    causes = re.search(r'<ul class="causes".*?</ul>', html, re.S).group(0)  # type: ignore[union-attr]
    assert "DATA" in causes and "&lt;script&gt;" in causes and 'href="/assets/raw/%3Corders%3E"' in causes
    assert 'href="/?owner=team%3A%3Cb%3E"' in html and ">team:&lt;b&gt;</a>" in html
    assert 'title="label">pii</a>' in html
    assert 'href="/assets/down/%3Cscript%3E' in html


def test_the_events_tab_links_runs_focuses_an_event_and_pages_on() -> None:
    html = render("asset.html", tab_context("events"))
    assert 'href="/runs/r-1"' in html and "badge-succeeded" in html
    assert 'class="event event-materialization focus"' in html
    assert "&amp;partition=%3Cscript%3E" in html and "&amp;cursor=c1" in html
    row = re.search(r'<tr class="event event-materialization_failure".*?</tr>', html, re.S).group(0)  # type: ignore[union-attr]
    assert "materialization failure" in row and "FAILED · UPSTREAM_FAILED_TO_MATERIALIZE" in row
    assert 'href="/runs/r-2"' in html and "badge-failed" in html
    assert '<option value="materialization_failure">materialization failure</option>' in html


def test_a_failed_materialization_shows_on_the_overview_and_the_partitions() -> None:
    overview = render("asset.html", tab_context("overview"))
    status = re.search(r'<section class="state" id="status">.*?</section>', overview, re.S).group(0)  # type: ignore[union-attr]
    assert "badge-materialization-failed" in status and "UPSTREAM_FAILED_TO_MATERIALIZE" in status
    latest = re.search(r'<dl class="facts" id="latest-failure">.*?</dl>', overview, re.S).group(0)  # type: ignore[union-attr]
    assert "FAILED · UPSTREAM_FAILED_TO_MATERIALIZE" in latest and "&lt;script&gt;" in latest
    assert "materialized since" not in latest and "1 failed to materialize" in overview
    reported = tab_context("overview")
    reported["asset"] = {**reported["asset"], "defined": False, "definition": None}
    reported["definition"], reported["action"] = {}, None
    only_reported = render("asset.html", reported)  # an asset reported only (a failure may be all there is)
    assert "reported, never defined" in only_reported and 'id="latest-failure"' in only_reported
    grid = render("asset.html", tab_context("partitions"))
    assert 'class="cell cell-materialization-failed" href="?tab=events&amp;partition=p2"' in grid
    assert f"p2: failed to materialize at {AT} (RUN_TERMINATED)" in grid


def test_a_latest_event_past_the_raw_window_says_its_metadata_is_gone() -> None:
    context = tab_context("overview")
    kept = render("asset.html", context)
    assert 'id="expired-materialization"' not in kept and "reported (sdk)" not in kept  # its run links instead
    expired = event(expired=True, metadata={}, tags={}, description=None, source=None, partition="2021-03-04")
    context["asset"] = {**context["asset"], "latest_materialization": expired}
    context["metadata"] = {**context["metadata"], "materialization": []}
    html = render("asset.html", context)
    latest = re.search(r'<dl class="facts" id="latest-materialization">.*?</dl>', html, re.S).group(0)  # type: ignore[union-attr]
    assert "2021-03-04" in latest and "reported</span>" in latest and "None" not in latest
    note = re.search(r'<p class="muted small" id="expired-materialization">(.*?)</p>', html, re.S)
    assert note and "no longer stored" in note.group(1)


def test_the_plots_tab_hands_its_data_to_the_script_as_inert_json() -> None:
    html = render("asset.html", tab_context("plots"))
    data = re.search(r'<script type="application/json" id="plot-data">(.*?)</script>', html, re.S)
    assert data is not None and "<" not in data.group(1)
    assert json.loads(data.group(1))["plots"][0]["label"] == HOSTILE
    assert "vendor/plotly.min.js" in html and "assets.js" in html


def test_the_lineage_tab_draws_links_to_each_asset() -> None:
    html = render("asset.html", tab_context("lineage"))
    assert '<a href="/assets/raw/%3Corders%3E" class="node"' in html
    assert 'class="node root"' in html and html.count('class="edge"') == 2


def test_the_materialize_button_needs_the_run_scope() -> None:
    assert 'id="run-button"' not in render("asset.html", tab_context("overview"), can_run=False)


def test_the_live_part_alone_for_a_refresh() -> None:
    html = render("asset.html", tab_context("events"), live=True)
    assert 'id="asset-key"' not in html and 'id="events"' in html and 'id="status"' in html


def test_the_catalog_lists_assets_with_badges_filters_and_the_next_page() -> None:
    item = {
        "asset_key": KEY, "defined": False, "description": HOSTILE, "owners": ["team:<b>"], "kinds": [HOSTILE],
        "group": HOSTILE, "code_location": None, "tags": {HOSTILE: "", "team": "sales"}, "execution_type": "external",
        "last_updated": AT, "latest_materialization": {"timestamp": AT, "partition": HOSTILE},
        "latest_observation": None, "failed": True,
        "latest_failure": {"timestamp": AT, "partition": "p9", "event_id": "f", "run_id": None, "reason": "UNKNOWN"},
        "checks": {"total": 2, "passed": {"WARN": 0, "ERROR": 1}, "failed": {"WARN": 0, "ERROR": 1}}, "status": "FRESH",
    }  # fmt: skip
    filters = {"search": HOSTILE, "prefix": "", "tag": "team=sales", "owner": "", "group": "", "kind": "",
               "location": "", "status": "failed_check", "defined": "", "sort": "key"}  # fmt: skip
    context = {
        "title": "Assets", "assets": {"items": [item], "next_cursor": "abc"}, "filters": filters, "filtered": True,
        "query_string": "search=x&tag=team%3Dsales", "facets": {"owners": [HOSTILE], "groups": [], "kinds": [],
        "locations": [], "tags": []}, "statuses": (("FRESH", "fresh"), ("FAILED_CHECK", "failed check")), "paged": True,
    }  # fmt: skip
    html = render("catalog.html", context)
    assert_inert(html)
    assert '<tr class="asset" data-key="h/&lt;b&gt;x">' in html and 'href="/assets/h/%3Cb%3Ex"' in html
    assert "badge-fresh" in html and "1 check failed" in html and "reported" in html
    assert (
        'badge-materialization-failed" title="its latest attempt to materialize (partition p9) failed: UNKNOWN"' in html
    )
    assert '<option value="FAILED_CHECK" selected>' in html
    assert 'href="/?search=x&amp;tag=team%3Dsales&amp;cursor=abc"' in html
    assert 'href="/?tag=team%3Dsales"' in html


def test_a_key_in_a_json_route_path() -> None:
    assert api_path("sales/orders") == "sales/orders"
    assert api_path("a b/<c>") == "a%20b/%3Cc%3E"
    for key in ("a/events", "metadata/x", "a/observe", "[x"):
        assert json.loads(__import__("urllib.parse").parse.unquote(api_path(key))) == key.split("/")


def test_timestamps_get_an_iso_time() -> None:
    shown = {e["label"]: e for e in metadata_entries(METADATA)}
    assert shown["seen"]["at"] == "2024-06-03T10:00:00.500000Z" and "at" not in shown["ratio"]


def test_the_lineage_is_laid_out_left_to_right_without_overlaps() -> None:
    nodes = [{"asset_key": k, "defined": True, "status": None, "distance": 0} for k in "abcdef"]
    edges = [("a", "c"), ("b", "c"), ("c", "d"), ("c", "e"), ("e", "f"), ("a", "f")]
    graph = layout({"root": "c", "nodes": nodes, "edges": [{"from": a, "to": b} for a, b in edges]})
    at = {n.key: n for n in graph.nodes}
    assert all(at[a].x + at[a].w < at[b].x for a, b in edges)  # every edge points right
    boxes = sorted((n.x, n.y) for n in graph.nodes)
    assert all(not (x1 == x2 and abs(y1 - y2) < NODE_H) for (x1, y1), (x2, y2) in itertools.pairwise(boxes))
    assert len(graph.edges) == len(edges) and graph.width > at["f"].x and graph.height >= NODE_H
    assert at["c"].root and not at["a"].root
