"""End to end: `callwatch run --replay` of the sample call, its nudge page in headless Chromium.

The agent's view of a talk-over: the daemon detects it in the replayed call, the alert policy
fires, the WebSocket server pushes it, and the page shows the nudge within a second and takes
it away once the talk-over is resolved.
"""

from __future__ import annotations

import time

import pytest

from tests.integration import browser
from tests.integration.daemon_run import ROOT, DaemonProcess, wall
from tests.ports import free_port

pytestmark = pytest.mark.integration

chromium = browser.chromium
nudge_page = browser.nudge_page

SAMPLE = ROOT / "samples" / "sample-call.wav"


def test_replayed_talk_over_reaches_the_nudge_page(tmp_path, nudge_page):
    config = f"[server]\nport = {free_port()}\n[metrics]\nenabled = false\n"
    d = DaemonProcess(tmp_path, config, args=("--replay", str(SAMPLE), "--speed", "1"),
                      servers=True)
    try:
        browser.open_nudge_page(nudge_page, d.page_url())  # the token: not logged
        # The sample's first talk-over starts about 9.6 s into the call.
        browser.wait_for_nudge(nudge_page, "talking over", timeout_s=20)
        shown = time.time()
        shot = ROOT / "test-artifacts" / "nudge-page-replay.png"
        shot.parent.mkdir(exist_ok=True)
        nudge_page.screenshot(path=str(shot))
        fired = d.event("alert", kind="talk_over", state="firing", timeout=5)
        assert shown - wall(fired) < 1.0, "nudge later than 1 s after the alert fired"
        resolved = d.event("alert", kind="talk_over", state="resolved", timeout=15)
        browser.wait_for_no_nudge(nudge_page, "talking over", timeout_s=5)
        assert time.time() - wall(resolved) < 2.0
        assert not nudge_page.console_errors, nudge_page.console_errors
    finally:
        d.kill()
