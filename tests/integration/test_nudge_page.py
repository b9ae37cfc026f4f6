"""The agent's nudge page in real headless Chromium, fed by a replayed call.

A recorded-speech call (the agent cuts in on the customer) runs through the real Pipeline and
AlertPolicy; the policy's alerts and the live meters go through a real AlertServer to the page,
as the daemon's processing loop does it.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pytest

from alerts import protocol
from alerts.policy import TALK_OVER_BY_AGENT, AlertPolicy, AlertSettings
from alerts.server import AlertServer, ServerSettings
from dsp import ANALYSIS_RATE
from dsp.pipeline import Pipeline
from tests.integration import browser
from tests.integration.browser import (
    nudge_texts,
    open_nudge_page,
    wait_for_no_nudge,
    wait_for_nudge,
)
from tests.speech import two_party_call

chromium = browser.chromium          # fixtures shared with the daemon's end-to-end tests
nudge_page = browser.nudge_page

pytestmark = pytest.mark.integration
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
BLOCK = ANALYSIS_RATE // 10           # 100 ms of audio per loop iteration, like the daemon
LEVELS_EVERY = 2                      # meters at 5 Hz of call time


@pytest.fixture
def server(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    srv = AlertServer(ServerSettings(port=0),
                      {"version": "0.1.0", "agent": "ana@ws-17",
                       "devices": {"agent": "headset_mic", "customer": "speaker_monitor"}})
    srv.start()
    yield srv
    srv.stop()


def test_nudge_appears_within_a_second_and_goes_when_resolved(server, nudge_page):
    page = nudge_page
    open_nudge_page(page, server.page_url)
    assert page.locator("#all-good").is_visible()
    assert nudge_texts(page) == []

    # The customer talks from 1 s; the agent cuts in at 4 s (real recorded voices).
    agent, customer = two_party_call([("customer", "cq_ref", 1.0), ("agent", "mmt1", 4.0)],
                                     seconds=12.0)
    pipeline = Pipeline(agent_rate=ANALYSIS_RATE, customer_rate=ANALYSIS_RATE)
    policy = AlertPolicy(AlertSettings())
    t0 = 1_764_550_000.0               # call time mapped onto a wall-clock epoch
    server.publish(protocol.call_started_message("call-1", t0), "calls")
    shown, hidden, meters_seen = [], [], False
    for n, i in enumerate(range(0, len(agent), BLOCK)):
        events = pipeline.push(agent=agent[i:i + BLOCK], customer=customer[i:i + BLOCK])
        now = t0 + pipeline.position / ANALYSIS_RATE
        for alert in policy.update(events, now):
            server.publish(protocol.alert_message(alert), "alerts")
            if alert.state == "firing":
                shown.append((alert.message, wait_for_nudge(page, alert.message)))
                if alert.message == TALK_OVER_BY_AGENT:
                    ARTIFACTS.mkdir(exist_ok=True)
                    page.screenshot(path=str(ARTIFACTS / "nudge-page.png"))
            else:
                hidden.append((alert.message, wait_for_no_nudge(page, alert.message)))
        if n % LEVELS_EVERY == 0:
            stats = pipeline.stats
            server.publish(protocol.levels_message(stats.agent, stats.customer, now), "levels")
            if not meters_seen and stats.customer.speaking:
                # The customer is talking: her meter moves and is marked as speaking.
                page.wait_for_selector('#meter-customer[data-speaking="true"]', timeout=2000)
                width = page.eval_on_selector("#meter-customer .fill", "e => e.style.width")
                assert float(width.rstrip("%")) > 20, width
                meters_seen = True
        time.sleep(0.005)              # let the page paint between blocks

    assert meters_seen
    assert [m for m, _ in shown] == [TALK_OVER_BY_AGENT], shown
    assert [m for m, _ in hidden] == [TALK_OVER_BY_AGENT], hidden
    assert all(dt < 1.0 for _, dt in shown + hidden), (shown, hidden)
    assert page.locator("#all-good").is_visible()
    assert page.console_errors == []
    print(f"nudge shown after {shown[0][1] * 1e3:.0f} ms, removed after "
          f"{hidden[0][1] * 1e3:.0f} ms")


def test_page_shows_firing_alerts_after_reconnect_and_snoozes(server, nudge_page):
    """A page that (re)connects gets the alerts still firing; its snooze reaches the policy."""
    from dsp.events import Event, Kind, Phase, Stream

    policy = AlertPolicy()
    [noise] = policy.update([Event(Kind.NOISE, Phase.BEGIN, Stream.AGENT, 0, 5 * ANALYSIS_RATE,
                                   {"noise_floor_dbfs": -38.0, "threshold_dbfs": -45.0})],
                            now=time.time())
    server.publish(protocol.alert_message(noise), "alerts")
    page = nudge_page
    open_nudge_page(page, server.page_url)
    wait_for_nudge(page, noise.message)
    assert page.locator("#nudges li.sev-warning").count() == 1
    assert page.get_attribute("#nudges", "aria-live") == "polite"

    # The server restarts on the same port: the page reconnects by itself.
    port, token = server.port, server.token
    server.stop()
    page.wait_for_selector('#status[data-state="reconnecting"]', timeout=5000)
    snoozed: list = []
    again = AlertServer(ServerSettings(port=port, token=token), {"version": "0.1.0"},
                        on_snooze=lambda kind, minutes: snoozed.append((kind, minutes)))
    again.start()
    try:
        again.publish(protocol.alert_message(noise), "alerts")
        page.wait_for_selector('#status[data-state="connected"]', timeout=10000)
        wait_for_nudge(page, noise.message)
        page.click("#nudges li button.snooze")
        deadline = time.monotonic() + 5
        while not snoozed and time.monotonic() < deadline:
            time.sleep(0.02)
        assert snoozed == [(Kind.NOISE, 10.0)]
        # The daemon's policy resolves the snoozed kind; the page drops the nudge.
        policy.snooze(Kind.NOISE, until=time.time() + 600)
        for alert in policy.tick(time.time()):
            again.publish(protocol.alert_message(alert), "alerts")
        wait_for_no_nudge(page, noise.message, timeout_s=1.0)
    finally:
        again.stop()
    assert page.console_errors == [] or all("WebSocket" in e for e in page.console_errors)


def test_page_refuses_to_load_without_its_token(server, nudge_page):
    response = nudge_page.goto(server.page_url.split("?")[0])
    assert response.status == 401
    assert "callwatch tail --page-url" in nudge_page.content()


def test_levels_meter_reflects_silence_and_speech(server, nudge_page):
    class M:
        def __init__(self, rms, speaking):
            self.rms_dbfs, self.peak_dbfs = rms, rms + 6
            self.speaking, self.noise_floor_dbfs = speaking, -62.0

    page = nudge_page
    open_nudge_page(page, server.page_url)
    server.publish(protocol.levels_message(M(-20.0, True), M(float(np.float32("-inf")), False),
                                           time.time()), "levels")
    page.wait_for_selector('#meter-agent[data-speaking="true"]', timeout=2000)
    assert page.get_attribute("#meter-agent .bar", "aria-valuenow") == "-20"
    assert page.get_attribute("#meter-customer .bar", "aria-valuenow") == "-60"
    assert page.text_content("#meter-agent .db") == "-20"


def test_desktop_notification_when_enabled_and_permitted(tmp_path, monkeypatch, chromium):
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    srv = AlertServer(ServerSettings(port=0, desktop_notifications=True), {"version": "0.1.0"})
    srv.start()
    context = chromium.new_context(viewport=browser.WINDOW)
    try:
        context.grant_permissions(["notifications"], origin=f"http://127.0.0.1:{srv.port}")
        page = context.new_page()
        # Record notifications, and look unfocused: the agent is working in the softphone.
        page.add_init_script("""
            window.__shown = [];
            window.Notification = class { constructor(t, o) { window.__shown.push(o.body); }
                                          static get permission() { return 'granted'; } };
            document.hasFocus = () => false;
        """)
        open_nudge_page(page, srv.page_url)
        from dsp.events import Event, Kind, Phase, Stream

        [dead] = AlertPolicy().update(
            [Event(Kind.MIC_DEAD, Phase.BEGIN, Stream.AGENT, 0, 10 * ANALYSIS_RATE, {})],
            now=time.time())
        srv.publish(protocol.alert_message(dead), "alerts")
        wait_for_nudge(page, dead.message)
        assert page.evaluate("window.__shown") == [dead.message]
        assert page.text_content("#urgent") == dead.message          # role=alert for critical
    finally:
        context.close()
        srv.stop()
