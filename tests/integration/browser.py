"""Headless Debian Chromium through Playwright, and helpers to drive the nudge page.

Import the fixtures into a test module to use them::

    from tests.integration import browser

    chromium = browser.chromium
    nudge_page = browser.nudge_page
    server = browser.page_server

``chromium`` is module-scoped (launching costs ~0.7 s); ``nudge_page`` is a fresh page in a
small window (the agent's always-on-top size); ``page_server`` an alert server for the page to
connect to. Chromium keeps its profile, crash reports and
caches in temporary XDG directories, never in the user's home.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator

import pytest

from alerts.server import AlertServer, ServerSettings

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-quic",
]
WINDOW = {"width": 320, "height": 240}
HELLO = {"version": "0.1.0", "agent": "ana@ws-17",
         "devices": {"agent": "headset_mic", "customer": "speaker_monitor"}}


@pytest.fixture(scope="module")
def chromium(tmp_path_factory) -> Iterator[object]:
    """A launched headless Chromium (Playwright ``Browser``)."""
    from playwright.sync_api import sync_playwright

    if not os.path.exists(CHROMIUM):
        pytest.fail(f"{CHROMIUM} not found: install Debian's chromium (the Makefile's APT_TEST)")
    home = tmp_path_factory.mktemp("chromium")
    env = {**os.environ, "XDG_CONFIG_HOME": str(home / "config"),
           "XDG_CACHE_HOME": str(home / "cache")}
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, env=env)
        try:
            yield browser
        finally:
            browser.close()


@pytest.fixture
def nudge_page(chromium) -> Iterator[object]:
    """A new page (Playwright ``Page``) in a 320x240 window; console errors are collected in
    ``page.console_errors``."""
    context = chromium.new_context(viewport=WINDOW)
    page = context.new_page()
    errors: list[str] = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.console_errors = errors
    try:
        yield page
    finally:
        context.close()


@pytest.fixture
def page_server(tmp_path, monkeypatch) -> Iterator[AlertServer]:
    """A started alert server on a free loopback port saying :data:`HELLO`; its token file is
    in a temporary config directory, never the user's."""
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    srv = AlertServer(ServerSettings(port=0), HELLO)
    srv.start()
    yield srv
    srv.stop()


def open_nudge_page(page, page_url: str, timeout_s: float = 10.0) -> None:
    """Load the nudge page (URL with its token) and wait until its WebSocket is connected."""
    page.goto(page_url)
    page.wait_for_selector('#status[data-state="connected"]', timeout=timeout_s * 1000)


def nudge_texts(page) -> list[str]:
    return page.locator("#nudges li .msg").all_text_contents()


def wait_for_nudge(page, text: str, timeout_s: float = 5.0) -> float:
    """Wait until a nudge containing ``text`` is shown; returns the seconds it took."""
    t0 = time.monotonic()
    page.wait_for_function(
        "t => [...document.querySelectorAll('#nudges li .msg')]"
        ".some(e => e.textContent.includes(t))",
        arg=text, timeout=timeout_s * 1000, polling="raf",
    )
    return time.monotonic() - t0


def wait_for_no_nudge(page, text: str, timeout_s: float = 5.0) -> float:
    """Wait until no nudge containing ``text`` is shown; returns the seconds it took."""
    t0 = time.monotonic()
    page.wait_for_function(
        "t => ![...document.querySelectorAll('#nudges li .msg')]"
        ".some(e => e.textContent.includes(t))",
        arg=text, timeout=timeout_s * 1000, polling="raf",
    )
    return time.monotonic() - t0


NUDGE_RECORDER = """
window.__nudges = [];
document.addEventListener('DOMContentLoaded', () => {
  const stamp = (what, li) => window.__nudges.push({
    at: (performance.timeOrigin + performance.now()) / 1000, what, id: li.dataset.id,
    kind: li.dataset.kind, severity: li.className.replace(/.*sev-/, ''),
    text: li.querySelector('.msg').textContent});
  new MutationObserver(records => {
    for (const r of records) {
      for (const li of r.addedNodes) stamp('shown', li);
      for (const li of r.removedNodes) stamp('gone', li);
    }
  }).observe(document.getElementById('nudges'), {childList: true});
});
"""


def record_nudges(page) -> None:
    """Before the page loads: stamp every nudge that enters or leaves the list with the wall
    clock (seconds, the same clock as Python's ``time.time()``), in ``window.__nudges``.
    The stamp is the DOM change, at most one frame before it is painted."""
    page.add_init_script(NUDGE_RECORDER)


def nudge_timeline(page) -> list[dict]:
    """What :func:`record_nudges` saw so far: ``{at, what: shown|gone, id, kind, severity,
    text}`` in order."""
    return page.evaluate("window.__nudges")
