"""End-to-end fixtures: Debian's Chromium driven by Playwright (never a downloaded browser)."""

from __future__ import annotations

import re

import pytest

from tests.conftest import ARTIFACTS, PERSONA_PASSWORD
from tests.integration.conftest import (  # noqa: F401 - fixtures shared with the integration tests
    cleanup_guests,
    guest_name,
    libvirt_conn,
    partial_stack,
    scratch_pool,
    services,
    sshd,
    stack,
)
from tests.stack import chromium_path

CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-quic"]


@pytest.fixture(autouse=True)
def _orm_beside_playwright(monkeypatch):
    """Playwright's sync API keeps an event loop in the test thread; the tests' own ORM calls are
    still synchronous and safe, so allow them (Django's documented escape hatch) for e2e only."""
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")


def pytest_collection_modifyitems(items):
    for item in items:
        if "/e2e/" in str(item.fspath):
            item.add_marker(pytest.mark.e2e)


@pytest.fixture(scope="module")
def browser():
    """One Chromium per test module: Playwright's event loop then never outlives the e2e tests."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        chromium = pw.chromium.launch(executable_path=chromium_path(), args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


@pytest.fixture
def page(browser):
    context = browser.new_context(viewport={"width": 1360, "height": 860})
    context.set_default_timeout(15000)
    tab = context.new_page()
    yield tab
    context.close()


def login(page, base_url: str, username: str, password: str = PERSONA_PASSWORD) -> None:
    page.goto(f"{base_url}/accounts/login/")
    page.fill("#id_username", username)
    page.fill("#id_password", password)
    page.click("button[type=submit]")
    page.wait_for_url(re.compile(r"^(?!.*accounts/login).*$"))


def screenshot(page, name: str) -> str:
    path = ARTIFACTS / "screenshots" / f"{name}.png"
    path.parent.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(path), full_page=True)
    return str(path)
