"""The agent's nudge page in real headless Chromium, fed by a replayed call.

A recorded-speech call (the agent cuts in on the customer) runs through the real Pipeline and
AlertPolicy; the policy's alerts and the live meters go through a real AlertServer to the page,
as the daemon's processing loop does it.
"""

from __future__ import annotations

import json
import signal
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pytest

from alerts import protocol
from alerts.policy import TALK_OVER_BY_AGENT, TALK_OVER_BY_CUSTOMER, AlertPolicy, AlertSettings
from alerts.server import AlertServer, ServerSettings
from dsp import ANALYSIS_RATE
from dsp.pipeline import Pipeline
from dsp.settings import DetectorSettings
from tests.integration import browser
from tests.integration.browser import (
    nudge_texts,
    open_nudge_page,
    wait_for_no_nudge,
    wait_for_nudge,
)
from tests.integration.daemon_run import DaemonProcess, wall
from tests.ports import free_port
from tests.speech import two_party_call

chromium = browser.chromium          # fixtures shared with the daemon's end-to-end tests
nudge_page = browser.nudge_page
server = browser.page_server

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "test-artifacts"
BLOCK = ANALYSIS_RATE // 10           # 100 ms of audio per loop iteration, like the daemon
LEVELS_EVERY = 2                      # meters at 5 Hz of call time


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
    assert page.text_content("#meter-agent .db") == "-20 dB"
    assert page.text_content("#meter-customer .db") == "< -60 dB"  # silence: under the scale


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


# -- `callwatch demo`: the sample call on the page, timed against the call's truth ------------

SAMPLE_TRUTH = ROOT / "samples" / "sample-call.truth.json"
SHOW_AFTER_CONFIRMATION_S = 1.0   # a nudge within a second of its condition being confirmed
DEAD_AIR_TOLERANCE_S = 0.5        # dead air shows / goes within 0.5 s of the 5 s mark / speech


@dataclass
class DemoRun:
    """One `callwatch demo` replay of the sample call, watched by the nudge page."""

    daemon: DaemonProcess
    page: object
    page_url: str
    timeline: list[dict] = field(default_factory=list)   # browser.nudge_timeline at the end

    def records(self) -> list[dict]:
        return self.daemon.read()

    def record(self, event: str, **match: object) -> dict | None:
        return next((r for r in self.records() if r["event"] == event
                     and all(r.get(k) == v for k, v in match.items())), None)


def _shot_name(nudge: dict) -> str:
    if nudge["kind"] == "talk_over":
        who = "agent" if nudge["text"] == TALK_OVER_BY_AGENT else "customer"
        return f"nudge-talk_over-by-{who}.png"
    return f"nudge-{nudge['kind']}.png"


@pytest.fixture(scope="module")
def demo_run(chromium, tmp_path_factory):
    """`callwatch demo` with no headset (the newcomer's `make run`) at real-time pace, its page
    in Chromium from the start of the call to the end of the replay; each nudge kind is
    screenshotted into test-artifacts/ while it shows."""
    config = f"[server]\nport = {free_port()}\n[metrics]\nenabled = false\n"
    d = DaemonProcess(tmp_path_factory.mktemp("demo"), config, args=("--output", "json"),
                      servers=True, command="demo")
    context = chromium.new_context(viewport=browser.WINDOW)
    try:
        page = context.new_page()
        errors: list[str] = []
        page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
        page.console_errors = errors
        run = DemoRun(d, page, d.page_url(timeout=15))
        browser.record_nudges(page)
        open_nudge_page(page, run.page_url)
        ARTIFACTS.mkdir(exist_ok=True)
        shot, deadline = set(), time.monotonic() + 60
        while run.record("replay_finished") is None:
            assert d.proc.poll() is None, d.stderr.read_text()
            assert time.monotonic() < deadline, "replay not over within 60 s"
            for n in browser.nudge_timeline(page):
                if n["what"] == "shown" and n["id"] not in shot:
                    shot.add(n["id"])
                    page.screenshot(path=str(ARTIFACTS / _shot_name(n)))
            time.sleep(0.05)
        run.timeline = browser.nudge_timeline(page)
        yield run
    finally:
        context.close()
        d.kill()


def _nudge_spans(timeline: list[dict]) -> list[dict]:
    """``shown``/``gone`` pairs by nudge id: ``{id, kind, text, severity, shown, gone}``."""
    spans: dict[str, dict] = {}
    for n in timeline:
        span = spans.setdefault(n["id"], {k: n[k] for k in ("id", "kind", "text", "severity")}
                                | {"shown": None, "gone": None})
        span[n["what"]] = n["at"]
    return list(spans.values())


def test_every_nudge_of_the_sample_call_on_time(demo_run):
    """Both talk-overs with the wording of who started them (the agent's 6 s after the
    customer's), dead air at the 5 s mark and gone at the first speech, each timed on the
    page from the call's truth; the delays are printed."""
    truth = json.loads(SAMPLE_TRUTH.read_text())
    min_overlap_s = DetectorSettings().min_overlap_s
    silence_s = DetectorSettings().silence_min_s
    resolve_s = AlertSettings().resolve_s
    t0 = wall(demo_run.record("call_started"))          # the replay's first sample
    fired = {r["id"]: wall(r) for r in demo_run.records()
             if r["event"] == "alert" and r["state"] == "firing"}
    spans = _nudge_spans(demo_run.timeline)
    talk_overs = [s for s in spans if s["kind"] == "talk_over"]
    dead_air = [s for s in spans if s["kind"] == "silence"]
    checks: list[tuple[str, float | None, float, float]] = []   # what, delay, lowest, highest
    report = []

    def measure(what: str, truth_s: float, span: dict | None, edge: str,
                lowest: float, highest: float) -> None:
        at = span[edge] if span else None
        delay = None if at is None else at - (t0 + truth_s)
        checks.append((what, delay, lowest, highest))
        if delay is None:
            report.append(f"{what:<40} truth {truth_s:6.2f} s  never on the page")
            return
        alert_at = fired.get(span["id"]) if edge == "shown" else None
        via = "" if alert_at is None else (f"  (alert fired {alert_at - t0 - truth_s:+.2f} s, "
                                           f"on the page {1e3 * (at - alert_at):.0f} ms later)")
        report.append(f"{what:<40} truth {truth_s:6.2f} s  page {at - t0:6.2f} s  "
                      f"delay {delay:+.2f} s{via}")

    for i, t in enumerate(truth["talk_overs"]):
        who = t["initiator"]
        s = talk_overs[i] if i < len(talk_overs) else None
        measure(f"talk-over by {who} shown (start+{min_overlap_s:g})",
                t["start_s"] + min_overlap_s, s, "shown",
                -min_overlap_s, SHOW_AFTER_CONFIRMATION_S)
        measure(f"talk-over by {who} gone (end+{resolve_s:g})", t["end_s"] + resolve_s, s,
                "gone", -SHOW_AFTER_CONFIRMATION_S, SHOW_AFTER_CONFIRMATION_S)
    [gap] = truth["dead_air"]
    measure(f"dead air shown (start+{silence_s:g})", gap["start_s"] + silence_s,
            dead_air[0] if dead_air else None, "shown",
            -DEAD_AIR_TOLERANCE_S, DEAD_AIR_TOLERANCE_S)
    measure("dead air gone (first speech)", gap["end_s"], dead_air[0] if dead_air else None,
            "gone", -DEAD_AIR_TOLERANCE_S, DEAD_AIR_TOLERANCE_S)
    for s in spans:
        if s["kind"] not in ("talk_over", "silence"):
            report.append(f"also shown: {s['kind']} {s['text']!r} at {s['shown'] - t0:.2f} s")
    print("\n" + "\n".join(report))

    assert [s["text"] for s in talk_overs] == [
        TALK_OVER_BY_CUSTOMER if t["initiator"] == "customer" else TALK_OVER_BY_AGENT
        for t in truth["talk_overs"]], report
    assert len(dead_air) == 1, report
    late = [c for c in checks if c[1] is None or not c[2] <= c[1] <= c[3]]
    assert not late, report
    assert not [s for s in spans if s["kind"] == "device"], spans
    assert demo_run.page.console_errors == []


def test_demo_keeps_serving_the_page_after_the_replay_until_ctrl_c(demo_run):
    page = demo_run.page
    assert demo_run.record("call_ended", reason="replay finished") is not None
    time.sleep(2.0)                                       # well after the end of the call
    assert demo_run.daemon.proc.poll() is None, demo_run.daemon.stderr.read_text()
    assert page.get_attribute("#status", "data-state") == "connected"
    assert page.get_attribute("body", "data-call") == "off"
    with urllib.request.urlopen(demo_run.page_url, timeout=5) as r:   # a newcomer opens it now
        assert r.status == 200 and b"nudges" in r.read()
    assert "the nudge page stays up" in demo_run.daemon.stderr.read_text()
    t = time.monotonic()
    demo_run.daemon.proc.send_signal(signal.SIGINT)
    assert demo_run.daemon.proc.wait(10) == 0
    print(f"\nexit 0 {time.monotonic() - t:.2f} s after Ctrl-C")
    stopped = demo_run.record("stopped")
    assert stopped is not None and stopped["reason"] == "SIGINT"
    assert "Traceback" not in demo_run.daemon.stderr.read_text()
