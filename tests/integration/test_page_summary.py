"""The nudge page's call summary card and meters that agree with the nudges, in real Chromium.

Two real feeds: a recorded-speech call (a long, fast agent turn, then the agent cutting in on
the customer) through the real Pipeline, AlertPolicy and AlertServer, as the daemon's loop
does it; and ``callwatch demo`` replaying the sample call, whose logged ``call_ended`` summary
must be what the card shows.

Every DOM state the page reaches is recorded in the page itself (a MutationObserver, so a
state is seen even if it lasts less than a frame) with the nudges shown and the *painted*
colour of each meter's bar. The test then judges each state against the alerts it knows were
sent: a meter must wear the colour of the most severe nudge about its party, never the "fine"
green while such a nudge is up, and "All good" must never sit beside a nudge.
"""

from __future__ import annotations

import re
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest

from alerts import protocol
from alerts.policy import TALK_OVER_BY_AGENT, Alert, AlertPolicy, AlertSettings
from alerts.server import AlertServer
from dsp import ANALYSIS_RATE
from dsp.pipeline import Pipeline
from dsp.report import build_report
from dsp.settings import DetectorSettings
from tests.integration import browser
from tests.integration.browser import open_nudge_page, wait_for_nudge
from tests.integration.daemon_run import DaemonProcess
from tests.ports import free_port
from tests.speech import two_party_call, voice

chromium = browser.chromium
nudge_page = browser.nudge_page
server = browser.page_server

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "test-artifacts"
BLOCK = ANALYSIS_RATE // 10            # 100 ms of audio per loop iteration, like the daemon
SEVERITY_RANK = {"critical": 0, "warning": 1, "info": 2}
DEMO_SPEED = 4.0                       # the 31 s sample call in about 8 s

# Records every distinct state of the nudges, "All good" and the meters' painted colours.
STATE_RECORDER = """
window.__states = [];
document.addEventListener('DOMContentLoaded', () => {
  const probe = document.createElement('div');
  probe.style.display = 'none';
  document.body.appendChild(probe);
  const colour = css => {
    probe.style.background = css;
    return getComputedStyle(probe).backgroundColor;
  };
  window.__palette = {ok: colour('var(--ok)'), dim: colour('#4f6b57'), info: colour('var(--info)'),
                      warning: colour('var(--warning)'), critical: colour('var(--critical)')};
  let last = '';
  const record = () => {
    const fill = p => getComputedStyle(document.querySelector(`#meter-${p} .fill`)).backgroundColor;
    const state = {
      nudges: [...document.querySelectorAll('#nudges li')].map(li => ({
        id: li.dataset.id, severity: li.className.replace(/.*sev-/, ''),
        text: li.querySelector('.msg').textContent})),
      all_good: getComputedStyle(document.getElementById('all-good')).display !== 'none',
      meters: {agent: fill('agent'), customer: fill('customer')},
    };
    const key = JSON.stringify(state);
    if (key !== last) { last = key; window.__states.push({at: Date.now() / 1000, ...state}); }
  };
  new MutationObserver(record).observe(document.body,
    {subtree: true, childList: true, attributes: true, characterData: true});
  record();
});
"""


def party_of(alert: dict[str, Any]) -> str:
    """Who an alert (protocol JSON) is about, from the protocol alone: a talk-over's
    initiator, else its stream; ``call`` (both parties) for whole-call conditions."""
    if alert["kind"] == "talk_over":
        return "customer" if alert["values"].get("initiator") == "customer" else "agent"
    return alert["stream"] or "call"


def contradictions(states: list[dict], palette: dict[str, str],
                   alerts: dict[str, dict[str, Any]]) -> list[str]:
    """What in the recorded states disagrees with the nudges shown (empty: nothing)."""
    fine = {palette["ok"], palette["dim"]}
    found = []
    for st in states:
        shown = st["nudges"]
        if shown and st["all_good"]:
            found.append(f"{st['at']:.2f}: 'All good' beside {[n['text'] for n in shown]}")
        for party in ("agent", "customer"):
            about = [n for n in shown if party_of(alerts[n["id"]]) in (party, "call")]
            painted = st["meters"][party]
            if not about:
                if painted not in fine:
                    found.append(f"{st['at']:.2f}: {party} meter {painted} with no nudge"
                                 " about them")
                continue
            worst = min((n["severity"] for n in about), key=SEVERITY_RANK.__getitem__)
            if painted != palette[worst]:
                found.append(f"{st['at']:.2f}: {party} meter {painted} while {worst} "
                             f"{[n['text'] for n in about]} is up (want {palette[worst]})")
    return found


def duration_text(s: float) -> str:
    """A duration as the card writes it: seconds to a tenth under a minute, else m:ss."""
    if s < 60:
        return f"{s:.1f} s"
    whole = int(s + 0.5)
    return f"{whole // 60}:{whole % 60:02d}"


def card(page) -> dict[str, dict[str, dict[str, Any]]]:
    """The summary card: ``{row: {party: {text, value, flag}}}``; ``value`` is the cell's
    leading number (None for a dash), ``flag`` the hint shown under a flagged value."""
    cells = page.eval_on_selector_all(
        "#summary td",
        "tds => tds.map(td => ({row: td.closest('tr').dataset.row, party: td.dataset.party,"
        " text: td.childNodes[0] ? td.childNodes[0].textContent : '',"
        " flagged: td.classList.contains('flag'),"
        " hint: td.querySelector('small') ? td.querySelector('small').textContent : null}))")
    out: dict[str, dict[str, dict[str, Any]]] = {}
    for c in cells:
        m = re.match(r"(\d+(?:\.\d+)?)", c["text"])
        if c["flagged"] != (c["hint"] is not None):
            raise AssertionError(f"flag class and hint disagree: {c}")
        out.setdefault(c["row"], {})[c["party"]] = {
            "text": c["text"], "value": float(m.group(1)) if m else None, "flag": c["hint"]}
    return out


def assert_card_matches(page, summary: dict[str, Any]) -> dict[str, dict[str, dict[str, Any]]]:
    """Every number on the card is the summary's, in the unit the card shows."""
    got = card(page)
    for party in ("agent", "customer"):
        s = summary[party]
        share = got["talk_share"][party]
        assert share["value"] == pytest.approx(100 * s["talk_share"], abs=0.5), share
        assert share["text"].endswith(" %")
        turn = got["longest_turn"][party]
        assert turn["text"] == duration_text(s["longest_turn_s"]), turn
        pace = got["pace"][party]
        if s["speech_rate_sps"] is None:
            assert pace["text"] == "–"
        else:
            assert pace["value"] == pytest.approx(s["speech_rate_sps"], abs=0.051), pace
            assert pace["text"].endswith(" syl/s")
    assert got["talk_overs"]["agent"]["value"] == summary["talk_over"]["by_agent"]
    assert got["talk_overs"]["customer"]["value"] == summary["talk_over"]["by_customer"]
    return got


# -- a recorded-speech call through the real pipeline, policy and server ----------------------

COACHING = DetectorSettings(fast_speech_sps=3.0, fast_speech_window_s=5.0, monologue_max_s=15.0)
"""Coaching thresholds lowered so that a one-minute call of real speech holds a fast stretch
and a monologue; the page flags what the call's events say, whatever the thresholds."""


def coaching_call() -> tuple[Any, Any]:
    """The customer asks (hts2); the agent answers with one long turn of five recordings;
    the customer speaks again and the agent cuts in on her."""
    turns = [("customer", "hts2", 0.5)]
    t = 8.0
    for name in ("hts1", "kristoff", "mmt1", "hts1", "kristoff"):
        turns.append(("agent", name, t))
        t += len(voice(name)) / ANALYSIS_RATE + 0.4
    turns += [("customer", "hts2", t + 1.0), ("agent", "mmt1", t + 4.5)]
    return two_party_call(turns, seconds=t + 10.0)


def test_summary_card_and_meters_follow_a_coaching_call(server, nudge_page):
    page = nudge_page
    page.add_init_script(STATE_RECORDER)
    open_nudge_page(page, server.page_url)
    assert page.locator("#all-good").is_visible()
    assert not page.locator("#summary").is_visible()

    agent, customer = coaching_call()
    pipeline = Pipeline(COACHING)
    policy = AlertPolicy(AlertSettings())
    t0 = 1_764_550_000.0
    server.publish(protocol.call_started_message("call-1", t0), "calls")
    sent: dict[str, dict[str, Any]] = {}
    events = []
    for n, i in enumerate(range(0, len(agent), BLOCK)):
        new = pipeline.push(agent=agent[i:i + BLOCK], customer=customer[i:i + BLOCK])
        events += new
        now = t0 + pipeline.position / ANALYSIS_RATE
        for alert in policy.update(new, now):
            publish_alert(server, sent, alert)
        if n % 2 == 0:
            stats = pipeline.stats
            server.publish(protocol.levels_message(stats.agent, stats.customer, now), "levels")
        time.sleep(0.004)              # let the page paint between blocks
    closing = pipeline.end_call()
    events += closing
    end = t0 + pipeline.position / ANALYSIS_RATE
    for alert in policy.update(closing, end) + policy.tick(end + AlertSettings().resolve_s):
        publish_alert(server, sent, alert)
    summary = build_report(pipeline.stats, events, pipeline.stats.duration_s, ANALYSIS_RATE)
    server.publish(protocol.call_ended_message("call-1", t0 + summary["duration_s"], summary),
                   "calls")
    page.wait_for_selector("#summary", state="visible", timeout=3000)
    page.wait_for_function("() => document.querySelectorAll('#nudges li').length === 0",
                           timeout=3000)
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "summary-card.png"))

    # The call held what the card is to flag.
    kinds = {e["kind"] for e in summary["events"]}
    assert {"fast_speech", "monologue", "talk_over"} <= kinds, summary["events"]
    assert summary["agent"]["talk_share"] > 0.6, summary["agent"]
    assert {a["kind"] for a in sent.values()} >= {"fast_speech", "monologue", "talk_over"}

    got = assert_card_matches(page, summary)
    assert got["talk_share"]["agent"]["flag"] == "aim 40–60 %"
    assert got["longest_turn"]["agent"]["flag"] == "over 15.0 s"
    assert got["pace"]["agent"]["flag"] == "fast: over 3 syl/s"
    assert got["talk_overs"]["agent"]["flag"] == "let them finish"
    assert all(got[row]["customer"]["flag"] is None for row in got), got
    assert page.text_content("#summary .duration") == duration_text(summary["duration_s"])
    assert not page.locator("#all-good").is_visible()   # the card speaks for the call

    states, palette = page.evaluate("[window.__states, window.__palette]")
    with_nudges = [s for s in states if s["nudges"]]
    assert {n["text"] for s in with_nudges for n in s["nudges"]} >= {
        "Slow down a little", "Let the customer speak", TALK_OVER_BY_AGENT}
    assert any(s["meters"]["agent"] == palette["warning"] for s in with_nudges)
    assert contradictions(states, palette, sent) == []

    # Closed by the agent, "All good" is back; the next call starts without the card.
    page.click("#summary-close")
    assert not page.locator("#summary").is_visible()
    assert page.locator("#all-good").is_visible()
    server.publish(protocol.call_ended_message("call-1", t0 + 61, summary), "calls")
    page.wait_for_selector("#summary", state="visible", timeout=3000)
    server.publish(protocol.call_started_message("call-2", t0 + 70), "calls")
    page.wait_for_selector("#summary", state="hidden", timeout=3000)
    assert page.console_errors == []


def publish_alert(server: AlertServer, sent: dict[str, dict[str, Any]], alert: Alert) -> None:
    msg = protocol.alert_message(alert)
    sent[alert.id] = msg["alert"]
    server.publish(msg, "alerts")


def test_meters_turn_with_the_nudge_and_back(server, nudge_page):
    """A customer-side nudge colours only the customer's meter; dead air both; a critical
    nudge outranks an info one on the same meter; each goes when its nudge goes."""
    from dsp.events import Event, Kind, Phase, Stream

    page = nudge_page
    page.add_init_script(STATE_RECORDER)
    open_nudge_page(page, server.page_url)
    policy = AlertPolicy(AlertSettings())
    sent: dict[str, dict[str, Any]] = {}
    now = time.time()
    steps = [
        Event(Kind.TOO_LOUD, Phase.BEGIN, Stream.CUSTOMER, 0, 5 * ANALYSIS_RATE,
              {"active_level_dbfs": -8.0, "threshold_dbfs": -12.0}),
        Event(Kind.SILENCE, Phase.BEGIN, None, 6 * ANALYSIS_RATE, 11 * ANALYSIS_RATE, {}),
        Event(Kind.MIC_DEAD, Phase.BEGIN, Stream.AGENT, 0, 12 * ANALYSIS_RATE, {}),
    ]
    expected = [("none", "info"), ("info", "info"), ("critical", "info")]
    for ev, (agent_alert, customer_alert) in zip(steps, expected, strict=True):
        for alert in policy.update([ev], now):
            publish_alert(server, sent, alert)
        wait_for_nudge(page, sent[max(sent, key=lambda k: sent[k]["at"])]["message"])
        page.wait_for_function(
            "([a, c]) => (document.getElementById('meter-agent').dataset.alert || 'none') === a"
            " && (document.getElementById('meter-customer').dataset.alert || 'none') === c",
            arg=[agent_alert, customer_alert], timeout=2000)
        now += 1.0
    page.screenshot(path=str(ARTIFACTS / "meters-with-nudges.png"))
    for kind in (Kind.TOO_LOUD, Kind.SILENCE, Kind.MIC_DEAD):
        policy.snooze(kind, until=now + 600)
    for alert in policy.tick(now + 0.1):
        publish_alert(server, sent, alert)
    page.wait_for_function("() => document.querySelectorAll('#nudges li').length === 0",
                           timeout=3000)
    page.wait_for_function("() => !document.getElementById('meter-agent').dataset.alert &&"
                           " !document.getElementById('meter-customer').dataset.alert",
                           timeout=2000)
    assert page.locator("#all-good").is_visible()
    states, palette = page.evaluate("[window.__states, window.__palette]")
    assert contradictions(states, palette, sent) == []
    assert page.console_errors == []


def test_all_good_is_not_claimed_while_disconnected(server, nudge_page):
    page = nudge_page
    open_nudge_page(page, server.page_url)
    assert page.locator("#all-good").is_visible()
    server.stop()
    page.wait_for_selector('#status[data-state="reconnecting"]', timeout=5000)
    assert not page.locator("#all-good").is_visible()


# -- `callwatch demo`: the daemon's own call_ended summary on the card ------------------------

def test_demo_call_summary_on_the_card(chromium, tmp_path):
    config = f"[server]\nport = {free_port()}\n[metrics]\nenabled = false\n"
    d = DaemonProcess(tmp_path, config, args=("--speed", str(DEMO_SPEED), "--output", "json"),
                      servers=True, command="demo")
    context = chromium.new_context(viewport=browser.WINDOW)
    try:
        page = context.new_page()
        errors: list[str] = []
        page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
        page.add_init_script(STATE_RECORDER)
        open_nudge_page(page, d.page_url(timeout=15))
        ended = d.event("call_ended", timeout=60)
        page.wait_for_selector("#summary", state="visible", timeout=3000)
        page.wait_for_function("() => document.querySelectorAll('#nudges li').length === 0",
                               timeout=5000)
        page.screenshot(path=str(ARTIFACTS / "summary-card-sample-call.png"))
        summary = ended["summary"]
        got = assert_card_matches(page, summary)
        states, palette = page.evaluate("[window.__states, window.__palette]")
    finally:
        context.close()
        if d.proc.poll() is None:
            d.proc.send_signal(signal.SIGINT)
            try:
                d.proc.wait(10)
            except subprocess.TimeoutExpired:
                d.kill()

    # The sample call: two talk-overs (one each) and dead air, a balanced talk share, no
    # fast stretch or monologue - so the only flag is the agent's talk-over.
    assert summary["talk_over"]["by_agent"] == 1 and summary["talk_over"]["by_customer"] == 1
    flags = {(row, party): c["flag"] for row, cells in got.items()
             for party, c in cells.items() if c["flag"]}
    assert flags == {("talk_overs", "agent"): "let them finish"}, flags
    alerts = {r["id"]: r for r in d.read() if r["event"] == "alert"}
    shown = {n["id"] for s in states for n in s["nudges"]}
    assert {alerts[i]["kind"] for i in shown} >= {"talk_over", "silence"}, shown
    assert contradictions(states, palette, alerts) == []
    assert errors == []
