"""The alert templates: an asset's own alerts (the partial its page includes) with every user string as text."""

from __future__ import annotations

from assetpipe.web.pages import Pages


def item(**changes: object) -> dict[str, object]:
    values: dict[str, object] = {
        "alert_id": "a1", "delivery_id": "d1", "policy": "p<1>", "asset_key": "a/<b>", "check_name": "rows",
        "subject": "rows", "kind": "check", "transition": "triggered", "severity": "ERROR", "state": "FAILED",
        "message": "a/<b>: check rows failed (ERROR): <script>x()</script>", "channel": "webhook",
        "channel_kind": "webhook", "recipient": "webhook", "owners": [], "partition": None, "link": "http://x",
        "status": "failed", "attempts": 5, "error": "HTTP 500 <i>", "event_id": "e1",
        "event_time": "2026-01-05T10:00:00Z", "created_at": "2026-01-05T10:00:01Z", "sent_at": None,
    }  # fmt: skip
    values.update(changes)
    return values


def test_an_assets_alerts_partial_escapes_user_text_and_links_to_its_alerts() -> None:
    template = Pages().env.get_template("_asset_alerts.html")
    html = template.render(alerts=[item()], asset={"asset_key": "a/<b>"})
    assert "&lt;script&gt;x()&lt;/script&gt;" in html and "<script>" not in html
    assert "HTTP 500 &lt;i&gt;" in html and "5 attempts" in html
    assert 'href="/alerts?asset=a/%3Cb%3E"' in html
    assert 'href="/alerts?policy=p%3C1%3E"' in html
    assert "<th>Asset</th>" not in html  # its own page: no asset column


def test_no_alerts_says_so() -> None:
    html = Pages().env.get_template("_asset_alerts.html").render(alerts=[], asset={"asset_key": "a"})
    assert "No alert was sent about this asset." in html
