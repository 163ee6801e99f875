"""The alerts page as a person uses it, in headless Chromium: alerts newest first, filtered by status with the
form, older ones a click away, an asset linked to its page, a hostile message shown as text."""

from __future__ import annotations

import time
import uuid
from typing import Any

from assetpipe.broker import free_port
from assetpipe.consumers.alerts.store import AlertStore
from assetpipe.consumers.warehouse import Warehouse
from tests.integration.http_server import serving_stack_api
from tests.integration.test_alerts_web import record
from tests.integration.test_web_ops import SettingsFactory


def test_alerts_page_filters_pages_and_escapes(
    page: Any, screenshot: Any, settings_factory: SettingsFactory, warehouse: Warehouse
) -> None:
    settings = settings_factory(http_port=free_port())
    root = f"br{uuid.uuid4().hex[:8]}"
    store, now = AlertStore(warehouse), time.time_ns() // 1000
    ids = [record(store, f"{root}/t{i}", "browser", "rows", "triggered", i != 3, now + i) for i in range(60)]
    with serving_stack_api(settings, warehouse) as client:
        base = str(client.base_url).rstrip("/")
        page.goto(f"{base}/alerts?policy=browser")
        rows = page.locator("#alerts tbody tr")
        assert rows.count() == 50
        assert rows.nth(0).get_attribute("data-alert") == ids[59]  # newest first
        assert "<script>alert(1)</script>" in rows.nth(0).inner_text()  # shown as text, never run
        screenshot("alerts")

        page.get_by_role("link", name="Older alerts →").click()
        page.wait_for_url("**cursor=**")
        assert [rows.nth(i).get_attribute("data-alert") for i in range(rows.count())] == ids[9::-1]

        page.goto(f"{base}/alerts?policy=browser")
        page.locator("select[name=status]").select_option("failed")
        page.get_by_role("button", name="Filter").click()
        page.wait_for_url("**status=failed**")
        assert rows.count() == 1 and rows.nth(0).get_attribute("data-alert") == ids[3]
        assert "HTTP 500 <b>Internal</b>" in rows.nth(0).inner_text()

        rows.nth(0).get_by_role("link", name=f"{root}/t3").click()
        page.wait_for_url(f"**/assets/{root}/t3")
