"""The alerts page and ``GET /api/alerts`` on the stack's HTTP API, over rows of the real ``alerts`` table:
newest first, filters, cursor pages, a bad filter a 400, user text escaped; and an asset's own alerts."""

from __future__ import annotations

import time
import uuid

from assetpipe.broker import free_port
from assetpipe.consumers.alerts import Alert, alert_id_for, alerts_of
from assetpipe.consumers.alerts.alert import Delivery, Sent
from assetpipe.consumers.alerts.store import AlertStore
from assetpipe.consumers.warehouse import Warehouse
from assetpipe.schemas.settings import Settings
from tests.integration.http_server import serving_stack_api


def record(store: AlertStore, key: str, policy: str, check: str, change: str, ok: bool, at: int) -> str:
    event_id = str(uuid.uuid4())
    alert = Alert(
        alert_id=alert_id_for(policy, key, check, change, event_id),  # type: ignore[arg-type]
        policy=policy,
        kind="check",
        change=change,  # type: ignore[arg-type]
        asset_key=key,
        subject=check,
        severity="ERROR" if change == "triggered" else "",
        state="FAILED" if change == "triggered" else "PASSED",
        cause="<script>alert(1)</script>",
        event_id=event_id,
        event_us=at,
        link=f"http://catalog.example/assets/{key}",
        owners=("ana@example.com",),
    )
    sent = Sent(1, "", at + 1) if ok else Sent(5, "HTTP 500 <b>Internal</b>")
    store.record(Delivery(alert, "webhook", "webhook", "webhook"), sent, at)
    return alert.alert_id


def test_alerts_listed_filtered_paged_and_escaped(settings: Settings, warehouse: Warehouse) -> None:
    root = f"web{uuid.uuid4().hex[:8]}"
    store = AlertStore(warehouse)
    now = time.time_ns() // 1000
    first = record(store, f"{root}/a", "p1", "rows", "triggered", True, now)
    second = record(store, f"{root}/a", "p1", "rows", "resolved", True, now + 10)
    third = record(store, f"{root}/b", "p2", "nulls", "triggered", False, now + 20)
    api = Settings(**{**settings.model_dump(), "http_port": free_port()})
    with serving_stack_api(api, warehouse) as client:
        page = client.get("/api/alerts", params={"asset": f"{root}/a"}).json()
        assert [(i["alert_id"], i["transition"]) for i in page["items"]] == [(second, "resolved"), (first, "triggered")]
        assert page["next_cursor"] is None and page["items"][1]["owners"] == ["ana@example.com"]

        failed = client.get("/api/alerts", params={"status": "failed", "policy": "p2"}).json()["items"]
        assert [(i["alert_id"], i["error"], i["attempts"]) for i in failed] == [(third, "HTTP 500 <b>Internal</b>", 5)]

        one = client.get("/api/alerts", params={"asset": f"{root}/a", "limit": "1"}).json()
        assert [i["alert_id"] for i in one["items"]] == [second] and one["next_cursor"]
        rest = client.get("/api/alerts", params={"asset": f"{root}/a", "limit": "1", "cursor": one["next_cursor"]})
        assert [i["alert_id"] for i in rest.json()["items"]] == [first] and rest.json()["next_cursor"] is None

        assert client.get("/api/alerts", params={"status": "lost"}).status_code == 400
        for bad in ({"limit": "0"}, {"limit": "201"}, {"kind": "pager"}):
            assert client.get("/api/alerts", params=bad).status_code == 400, bad
        for odd in ({"asset": "\x00/\u00fc/\U0001f642"}, {"policy": "'; DROP TABLE alerts; --"}):
            answer = client.get("/api/alerts", params=odd)
            assert answer.status_code == 200 and answer.json()["items"] == [], odd
        assert client.get("/api/alerts", params={"cursor": "nonsense"}).status_code == 400

        html = client.get("/alerts", params={"asset": f"{root}/b"})
        assert html.status_code == 200
        assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html.text and "<script>alert(1)" not in html.text
        assert "HTTP 500 &lt;b&gt;Internal&lt;/b&gt;" in html.text and third in html.text and first not in html.text
        assert client.get("/openapi.json").json()["paths"]["/api/alerts"]["get"]["operationId"] == "list_alerts"

    mine = alerts_of(lambda sql, params: warehouse.read_only_query(sql, params), f"{root}/a")
    assert [a["alert_id"] for a in mine] == [second, first]
