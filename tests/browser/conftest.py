"""Browser tests: the pages in a real headless Chromium (Debian's, at /usr/bin/chromium), driven by
Playwright as a person would use them, against the real stack (a real broker, the embedded ClickHouse
engine, the workers in this process, built as the integration fixtures build them). Skipped, saying why,
without Chromium or Playwright. With ASSETPIPE_SCREENSHOTS=1 each page is also saved to
docs/screenshots/<name>.png.

The embedded engine takes one data directory per process: the browser tests use the integration tests' broker
and engine (``embedded_stack``), with a database of their own. Chromium is started once a module: while
Playwright's synchronous API runs, its event loop is this thread's running loop, and a later test of the same
process could not start one of its own (``asyncio.run``)."""

from __future__ import annotations

import dataclasses
import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.integration.conftest import (  # noqa: F401 (fixtures)
    Stack,
    embedded_stack,
    opened_warehouses,
    settings,
    settings_factory,
    warehouse,
)

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]  # fmt: skip
SCREENSHOTS = Path(__file__).resolve().parents[2] / "docs" / "screenshots"


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The browser tests last: the rest report first."""
    here = Path(__file__).parent
    items.sort(key=lambda item: Path(str(item.path)).is_relative_to(here))


@pytest.fixture(scope="session")
def stack(request: pytest.FixtureRequest) -> Stack:
    """The integration tests' broker and engine, with a database of the browser tests' own: the pages list every
    asset of theirs."""
    shared: Stack = request.getfixturevalue("embedded_stack")
    return dataclasses.replace(shared, database=f"test_{uuid.uuid4().hex[:12]}")


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    if not CHROMIUM.exists():
        pytest.skip(f"no Chromium at {CHROMIUM}: install Debian's (apt-get install chromium) to run the browser tests")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.skip("Playwright is not installed (pip install -e '.[dev]')")
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            yield chromium
        finally:
            chromium.close()


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    context = browser.new_context(viewport={"width": 1280, "height": 860}, timezone_id="Europe/Paris")
    tab = context.new_page()
    tab.set_default_timeout(20_000)
    try:
        yield tab
    finally:
        context.close()


@pytest.fixture
def screenshot(page: Any) -> Any:
    """``screenshot(name)``: the page as docs/screenshots/<name>.png, when ASSETPIPE_SCREENSHOTS=1."""

    def take(name: str) -> None:
        if os.environ.get("ASSETPIPE_SCREENSHOTS") == "1":
            SCREENSHOTS.mkdir(parents=True, exist_ok=True)
            page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=True)

    return take
