"""/docs renders with no internet: a real browser that may reach only the server on 127.0.0.1; /redoc is off."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support import ServerProcess
from tests.test_dashboard_browser import ARGS, CHROMIUM

pytestmark = pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="chromium is not installed")


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    """One headless chromium for the module."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        yield b
        b.close()


@pytest.fixture
def offline(browser, server: ServerProcess):  # noqa: ANN001 - playwright types
    """A page whose every request not to the test server is aborted; yields (page, seen, blocked)."""
    context = browser.new_context(base_url=server.url)
    context.set_default_timeout(20_000)
    seen: list[str] = []
    blocked: list[str] = []

    def gate(route) -> None:  # noqa: ANN001
        url = route.request.url
        if url.startswith(f"{server.url}/"):
            seen.append(url)
            route.continue_()
        else:
            blocked.append(url)
            route.abort()

    context.route("**/*", gate)
    yield context.new_page(), seen, blocked
    context.close()


def test_swagger_ui_renders_offline(offline, server: ServerProcess) -> None:  # noqa: ANN001
    from playwright.sync_api import expect

    page, seen, blocked = offline
    page.goto("/docs")
    expect(page.locator(".opblock-summary-path", has_text="/api/threads").first).to_be_visible()
    expect(page.locator(".opblock-summary-path", has_text="/healthz").first).to_be_visible()
    assert blocked == [], f"/docs tried to reach {blocked}"
    assert any("/static-offline-docs/swagger-ui-bundle.js" in url for url in seen)
    assert any(url.endswith("/openapi.json") for url in seen)
    html = server.client.get("/docs").text
    assert "cdn." not in html and "https://" not in html


def test_redoc_is_off(server: ServerProcess) -> None:
    # ReDoc loads its logo from a CDN whatever its options: /docs is the one API page.
    assert server.client.get("/redoc").status_code == 404
    assert server.client.get("/static-offline-docs/swagger-ui.css").status_code == 200
