"""The pages' templates and filters without a server: every user-supplied string renders as text (a hostile
sensor name, description, skip reason, error, log line, run message or metadata value holding markup or a
``javascript:`` link), links are built from user data only for http(s), times are UTC ISO in the HTML, and
a request for the live part gets that part alone."""

from __future__ import annotations

import re
from typing import Any

from starlette.requests import Request

from assetpipe.web.pages import Pages, asset_href, http_url, path_part, ts

HOSTILE = '<script>window.__pwned=1</script><img src=x onerror="alert(1)">'
JS_LINK = "javascript:alert(document.cookie)"


def request(live: bool = False, path: str = "/sensors/loc/s") -> Request:
    headers = [(b"x-assetpipe-live", b"1")] if live else []
    return Request({"type": "http", "method": "GET", "path": path, "headers": headers, "query_string": b""})


def render(template: str, context: dict[str, Any], live: bool = False) -> str:
    pages = Pages()
    pages.env.globals["static"] = lambda name: f"/static/{name}"
    return pages.render(request(live), template, context).body.decode()


def state(**extra: Any) -> dict[str, Any]:
    return {
        "status": "running",
        "status_source": "override",
        "default_status": "stopped",
        "override": {"status": "running", "by": HOSTILE, "at": "2024-06-03T10:00:00Z"},
        "last_tick": {"at": "2024-06-03T10:00:00.5Z", "status": "failure"},
        "ticks": 1,
        "ticks_24h": {"success": 0, "skipped": 0, "failure": 1},
        **extra,
    }


def sensor() -> dict[str, Any]:
    return {
        "code_location": "loc",
        "name": HOSTILE,
        "type": "asset",
        "event_type": "materialization",
        "asset_keys": [f"a/{HOSTILE}"],
        "job_name": HOSTILE,
        "start_at": "latest",
        "description": f"{HOSTILE} [click]({JS_LINK})",
        "registered_at": "2024-06-03T09:00:00Z",
        **state(),
    }


def tick() -> dict[str, Any]:
    return {
        "tick_id": "t1",
        "status": "failure",
        "evaluated_at": "2024-06-03T10:00:00.5Z",
        "trigger": {"event_id": "e1", "event_type": "materialization", "asset_key": HOSTILE, "partition": HOSTILE,
                    "data_version": None, "timestamp": None},
        "runs": [{"run_id": "00000000-0000-0000-0000-000000000001", "run_key": HOSTILE, "job_name": HOSTILE}],
        "skipped_run_keys": [HOSTILE],
        "skip_reason": HOSTILE,
        "error": f"ValueError: {HOSTILE}",
        "traceback": HOSTILE,
        "logs": [{"time": "2024-06-03T10:00:00Z", "level": "INFO", "message": HOSTILE}],
        "duration_ms": 3.5,
    }  # fmt: skip


def assert_inert(html: str) -> None:
    """Nothing hostile became markup: no injected element, handler or javascript: link."""
    assert "<script>window" not in html and "<img" not in html and 'onerror="' not in html
    assert 'href="javascript' not in html.lower()
    assert "&lt;script&gt;window.__pwned=1&lt;/script&gt;" in html


def test_a_hostile_sensor_and_its_ticks_render_as_text() -> None:
    context = {"title": "Sensor", "kind": "sensor", "plural": "sensors", "item": sensor(), "status": "",
               "statuses": ("success", "skipped", "failure"), "paged": False,
               "ticks": {"items": [tick()], "next_cursor": "abc"}}  # fmt: skip
    html = render("instigator.html", context)
    assert_inert(html)
    assert f"[click]({JS_LINK})" in html  # the description is text, not markdown turned into a link
    assert (
        '<time datetime="2024-06-03T10:00:00.5Z" title="2024-06-03T10:00:00.5Z">2024-06-03 10:00:00 UTC</time>' in html
    )
    assert 'href="/assets/a/%3Cscript%3Ewindow.__pwned%3D1%3C/script%3E%3Cimg%20src' in html  # each part encoded
    listing = render("instigators.html", {"title": "Sensors", "kind": "sensor", "plural": "sensors",
                                          "items": [sensor()], "location": HOSTILE})  # fmt: skip
    assert_inert(listing)
    assert 'href="/sensors/loc/%3Cscript%3E' in listing


def test_a_hostile_run_renders_as_text_and_links_only_http_urls() -> None:
    run = {
        "run_id": "00000000-0000-0000-0000-000000000001", "job_name": HOSTILE, "code_location": "loc",
        "status": "failed", "run_key": HOSTILE, "partition_key": HOSTILE, "sensor_name": HOSTILE,
        "schedule_name": None, "tick_id": None, "trigger": {"event_id": "e", "asset_key": HOSTILE},
        "asset_selection": [HOSTILE], "requested_at": "2024-06-03T10:00:00Z", "started_at": None,
        "finished_at": None, "duration_ms": None, "attempts": 2, "run_config": HOSTILE, "tags": {HOSTILE: HOSTILE},
        "worker_host": HOSTILE, "events_total": 2,
        "error": {"type": HOSTILE, "message": HOSTILE, "traceback": HOSTILE, "metadata": {HOSTILE: HOSTILE}},
        "events": [
            {"seq": 0, "timestamp": "2024-06-03T10:00:00Z", "event_type": "log", "op_name": HOSTILE, "attempt": 1,
             "level": "ERROR", "message": HOSTILE, "output_name": None, "asset_key": None, "asset_event_id": None,
             "success": None, "label": None, "metadata": [], "error_type": None, "traceback": None},
            {"seq": 1, "timestamp": "2024-06-03T10:00:01Z", "event_type": "step_output", "op_name": "op",
             "attempt": 0, "level": None, "message": None, "output_name": HOSTILE, "asset_key": HOSTILE,
             "asset_event_id": None, "success": None, "label": None, "error_type": HOSTILE, "traceback": None,
             "metadata": [{"key": "bad", "type": "url", "value": JS_LINK},
                          {"key": "good", "type": "url", "value": "https://dash.example/d?a=1&b=2"},
                          {"key": "doc", "type": "md", "value": f"[x]({JS_LINK}) {HOSTILE}"},
                          {"key": "j", "type": "json", "value": '{"h": "' + HOSTILE.replace('"', "'") + '"}'}]},
        ],
    }  # fmt: skip
    html = render("run.html", {"title": "Run", "run": run})
    assert_inert(html)
    assert '<a href="https://dash.example/d?a=1&amp;b=2" rel="noopener noreferrer nofollow">' in html
    assert html.count("javascript:alert") == 2  # the url value and the markdown, both as text


def test_the_live_part_alone_is_sent_to_the_page_script() -> None:
    context = {"title": "Sensors", "kind": "sensor", "plural": "sensors", "items": [sensor()], "location": None}
    live = render("instigators.html", context, live=True)
    assert live.lstrip().startswith("<table") and "<html" not in live and "<header" not in live
    assert_inert(live)
    page = render("instigators.html", context)
    assert "<html" in page and re.search(r"<div data-live>\s*<table", page)


def test_links_from_user_data() -> None:
    assert http_url("https://a.example/x") == "https://a.example/x"
    for bad in (JS_LINK, " JavaScript:alert(1)", "data:text/html,x", "//evil.example", "/relative", "http://", None, 3):
        assert http_url(bad) is None, bad
    assert asset_href("sales/daily summary") == "/assets/sales/daily%20summary"
    assert asset_href(["a/b", "c?d"]) == "/assets/a%2Fb/c%3Fd"
    assert path_part("x/../y") == "x%2F..%2Fy"
    assert str(ts(None)) == '<span class="muted">never</span>'
    assert "&lt;" in str(ts("<x>"))


def test_markdown_keeps_raw_html_and_script_links_out() -> None:
    pages = Pages()
    out = pages.env.from_string("{{ text|markdown }}").render(
        text=f"**bold** [ok](https://a.example) [bad]({JS_LINK}) {HOSTILE}"
    )
    assert "<strong>bold</strong>" in out and '<a href="https://a.example">ok</a>' in out
    assert 'href="javascript' not in out and "<script>" not in out and "&lt;script&gt;" in out


def test_pages_carry_a_content_security_policy_and_are_not_cached() -> None:
    pages = Pages()
    pages.env.globals["static"] = lambda name: f"/static/{name}"
    answer = pages.render(request(), "error.html", {"title": "Error 404", "status": 404, "message": HOSTILE}, 404)
    assert answer.status_code == 404
    assert answer.headers["content-security-policy"].startswith("default-src 'self'; script-src 'self';")
    assert answer.headers["cache-control"] == "no-store" and answer.headers["x-frame-options"] == "DENY"
    assert_inert(answer.body.decode())
