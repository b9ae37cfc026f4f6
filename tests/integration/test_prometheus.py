"""A real Prometheus scrapes callwatch metrics fed by the real pipeline on the sample call; the
rules and every dashboard query are checked against what it stored."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import soundfile as sf
import yaml

from daemon.metrics import (
    CHECK_PASS,
    CHECK_WARN,
    Metrics,
    MetricsSettings,
    PublishedStats,
    default_registry,
)
from daemon.metrics_server import start_metrics_server
from daemon.state import DaemonState
from dsp.events import Stream
from dsp.pipeline import Pipeline
from dsp.stats import CallStats
from tests.integration.prometheus_server import (
    REPO,
    TARGET_LABELS,
    PrometheusServer,
    prometheus,  # noqa: F401 (fixture)
)

pytestmark = pytest.mark.integration

RULES = REPO / "prometheus" / "callwatch.rules.yml"
RULE_TESTS = sorted((REPO / "prometheus" / "tests").glob("*.yml"))
DASHBOARD = REPO / "dashboards" / "callwatch.json"
SAMPLE = REPO / "samples" / "sample-call.wav"
AGENT = "ana@ws-17"
REPLAY_SPEED = 8.0  # the 31 s call in about 4 s


def test_promtool_check_rules():
    r = subprocess.run(["promtool", "check", "rules", str(RULES)],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stdout + r.stderr


def test_promtool_rule_unit_tests():
    assert RULE_TESTS
    r = subprocess.run(["promtool", "test", "rules", *map(str, RULE_TESTS)],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stdout + r.stderr


@dataclass
class ReplayedCall:
    state: DaemonState
    totals: CallStats
    call: CallStats
    ended_at: float


@pytest.fixture(scope="module")
def replayed_call(prometheus: PrometheusServer) -> Iterator[ReplayedCall]:  # noqa: F811
    """The sample call through a real pipeline, paced, exported on the scraped port."""
    audio, rate = sf.read(SAMPLE, dtype="float32", always_2d=True)
    state = DaemonState(agent_id=AGENT, version="0.1.0")
    for stream, name in ((Stream.AGENT, "Headset mic"), (Stream.CUSTOMER, "Headset monitor")):
        state.streams[stream].device_name = name
        state.streams[stream].device_up = True
    state.check_results = {"mic_device": CHECK_PASS, "far_end_device": CHECK_PASS,
                           "noise": CHECK_WARN}
    state.check_timestamp = time.time()
    # A calibrated headset (100 dB SPL at 0 dBFS), so the hearing panels have their dB(A).
    import datetime as dt
    import tempfile

    from daemon.hearing import HearingTracker
    from daemon.metrics_hearing import HearingCollector, HearingReading
    from dsp.hearing import HearingSettings

    hearing_settings = HearingSettings(dbspl_at_0dbfs=100.0)
    pipeline = Pipeline(agent_rate=rate, customer_rate=rate, hearing=hearing_settings)
    tracker = HearingTracker(hearing_settings, dt.date.today(),
                             path=Path(tempfile.mkdtemp()) / "exposure.json",
                             sensitivity=100.0, source="config")
    reading: list[HearingReading] = []
    registry = default_registry()
    published = PublishedStats()  # as the daemon's loop does: scrapes never touch the pipeline
    metrics = Metrics(registry, state, pipeline_stats=published)
    registry.register(HearingCollector(lambda: reading[-1] if reading else None))
    server = start_metrics_server(MetricsSettings(port=prometheus.target_port), registry)
    try:
        # Start the call once Prometheus has seen the idle exporter, so that every counter is
        # scraped from zero and rate()/increase() see the whole call.
        prometheus.wait_for('up{job="callwatch"}', lambda r: bool(r) and value(r) == 1)
        block = rate // 10
        pipeline.start_call()
        state.calls_total += 1
        state.call_active = True
        start = time.monotonic()
        for i in range(0, len(audio), block):
            t0 = time.perf_counter()
            pipeline.push(agent=audio[i : i + block, 0], customer=audio[i : i + block, 1])
            published.publish(pipeline)
            tracker.feed(*pipeline.far_end_heard, dt.date.today(), pipeline.position,
                         time.monotonic())
            reading.append(HearingReading(tracker.snapshot, pipeline.acoustic_shocks,
                                          pipeline.far_end_laeq_dbfs))
            metrics.observe_processing(time.perf_counter() - t0)
            due = start + (i + block) / rate / REPLAY_SPEED
            time.sleep(max(0.0, due - time.monotonic()))
        pipeline.finish()
        published.publish(pipeline)
        metrics.observe_call_end(pipeline.stats.duration_s)
        state.call_active = False
        ended_at = time.time()
        # A scrape that started after the call ended, and a few more for rate() windows.
        prometheus.wait_for(
            "timestamp(callwatch_calls_total)",
            lambda r: bool(r) and float(r[0]["value"][1]) > ended_at + 0.05,
        )
        prometheus.wait_for("count_over_time(callwatch_calls_total[1m])",
                            lambda r: bool(r) and float(r[0]["value"][1]) >= 4)
        yield ReplayedCall(state, pipeline.totals, pipeline.stats, ended_at)
    finally:
        server.stop()


def value(result: list[dict]) -> float:
    assert len(result) == 1, result
    return float(result[0]["value"][1])


def test_talk_over_count_in_prometheus_equals_the_call_summary(prometheus, replayed_call):  # noqa: F811
    assert replayed_call.call.talk_over.count >= 1  # the sample call has talk-overs
    assert replayed_call.totals.talk_over == replayed_call.call.talk_over
    got = value(prometheus.query('sum(callwatch_talk_over_events_total{job="callwatch"})'))
    assert got == replayed_call.call.talk_over.count
    by = {r["metric"]["initiator"]: float(r["value"][1])
          for r in prometheus.query('callwatch_talk_over_events_total{job="callwatch"}')}
    assert by == {"agent": replayed_call.call.talk_over.by_agent,
                  "customer": replayed_call.call.talk_over.by_customer}
    seconds = value(prometheus.query('sum(callwatch_talk_over_seconds_total{job="callwatch"})'))
    assert seconds == pytest.approx(replayed_call.call.talk_over.seconds)
    by_s = {r["metric"]["initiator"]: float(r["value"][1])
            for r in prometheus.query('callwatch_talk_over_seconds_total{job="callwatch"}')}
    assert by_s == pytest.approx({"agent": replayed_call.call.talk_over.seconds_by_agent,
                                  "customer": replayed_call.call.talk_over.seconds_by_customer})
    speech = value(prometheus.query(
        'callwatch_speech_seconds_total{job="callwatch",stream="agent"}'))
    assert speech == pytest.approx(replayed_call.totals.agent.speech_s)


def test_agent_identity_joins_through_the_info_metric(prometheus, replayed_call):  # noqa: F811
    result = prometheus.query(
        'sum by (agent, site, team) (callwatch_talk_over_events_total{job="callwatch"}'
        " * on (instance) group_left (agent) callwatch_agent_info)"
    )
    assert [r["metric"] for r in result] == [{"agent": AGENT, **TARGET_LABELS}]
    assert value(result) == replayed_call.call.talk_over.count
    duration = value(prometheus.query('callwatch_call_duration_seconds_sum{job="callwatch"}'))
    assert duration == pytest.approx(replayed_call.call.duration_s)


GRAFANA_VARIABLES = {"$site": ".*", "$team": ".*", "$agent": ".*", "$__rate_interval": "1m",
                     "${datasource}": ""}


def grafana_to_promql(expr: str) -> str:
    for var, repl in GRAFANA_VARIABLES.items():
        expr = expr.replace(var, repl)
    assert "$" not in expr, f"unhandled Grafana variable in {expr!r}"
    return expr


def dashboard_panels() -> list[dict]:
    def walk(panels: list[dict]) -> Iterator[dict]:
        for p in panels:
            yield p
            yield from walk(p.get("panels", []))

    return list(walk(json.loads(DASHBOARD.read_text())["panels"]))


def dashboard_queries() -> list[tuple[str, str]]:
    return [(f"{p['title']} / {t['refId']}", t["expr"])
            for p in dashboard_panels() for t in p.get("targets", [])]


def test_dashboard_shape():
    board = json.loads(DASHBOARD.read_text())
    assert 36 <= board["schemaVersion"] <= 41
    names = [v["name"] for v in board["templating"]["list"]]
    assert names == ["datasource", "site", "team", "agent"]
    for p in dashboard_panels():
        if p["type"] != "row":
            assert p["datasource"] == {"type": "prometheus", "uid": "${datasource}"}, p["title"]
            assert p["targets"], p["title"]
    assert [p["title"] for p in dashboard_panels() if p["type"] == "row"] == [
        "Fleet overview", "Agent drill-down ($agent)", "Hearing safety", "Coaching"]
    queries = dashboard_queries()
    assert len(queries) >= 25
    for where, expr in queries:
        if "callwatch_" in expr and not expr.startswith(("callwatch_agent_info",
                                                         "count(callwatch_agent_info")):
            assert "group_left (agent) callwatch_agent_info" in expr, where

@pytest.mark.parametrize(("where", "expr"), dashboard_queries(), ids=[w for w, _ in
                                                                     dashboard_queries()])
def test_every_dashboard_query_returns_data(prometheus, replayed_call, where, expr):  # noqa: F811
    result = prometheus.query(grafana_to_promql(expr))
    assert result, f"{where}: no data for {expr}"


def test_dashboard_variables_find_site_team_and_agent(prometheus, replayed_call):  # noqa: F811
    found = {}
    for var in json.loads(DASHBOARD.read_text())["templating"]["list"]:
        if var["type"] != "query":
            continue
        query = var["query"]["query"] if isinstance(var["query"], dict) else var["query"]
        m = re.fullmatch(r"label_values\((.+), *(\w+)\)", query)
        assert m, query
        result = prometheus.query(grafana_to_promql(m.group(1)))
        found[var["name"]] = {r["metric"].get(m.group(2)) for r in result}
    assert found == {"site": {TARGET_LABELS["site"]}, "team": {TARGET_LABELS["team"]},
                     "agent": {AGENT}}


def rules() -> list[dict]:
    doc = yaml.safe_load(RULES.read_text())
    return [r for g in doc["groups"] for r in g["rules"]]


@pytest.mark.parametrize("rule", rules(), ids=[r.get("record") or r["alert"] for r in rules()])
def test_every_rule_expression_runs(prometheus, replayed_call, rule):  # noqa: F811
    result = prometheus.query(rule["expr"])  # a parse error raises PromQLError
    if "record" in rule:
        assert result, f"{rule['record']}: no data"
        # ... and the server evaluates it from the loaded rule file.
        assert prometheus.query(rule["record"]), f"{rule['record']} not recorded"
    else:
        assert result == [], f"{rule['alert']} fires on a healthy workstation: {result}"



def test_rates_and_recording_rules_see_the_whole_call(prometheus, replayed_call):  # noqa: F811
    """The counters were scraped from zero, so increase() over the hour is the call's count
    (plus at most a little extrapolation to the window's end)."""
    count = replayed_call.call.talk_over.count
    recorded = value(prometheus.wait_for(
        'instance:callwatch_talk_over_events:increase1h{job="callwatch"}',
        lambda r: bool(r) and value(r) > 0))
    assert count <= recorded <= count * 1.25
    calls = value(prometheus.query('instance:callwatch_calls:increase1h{job="callwatch"}'))
    assert 1 <= calls <= 1.25


def alert_expr(name: str) -> str:
    return next(r["expr"] for r in rules() if r.get("alert") == name)


def test_alert_expressions_fire_on_a_faulty_workstation(prometheus, replayed_call):  # noqa: F811
    """Faults made on the exporter's state reach the alert expressions (their ``for:`` waits
    are covered by the promtool unit tests). Runs last: it leaves the state faulty."""
    state = replayed_call.state
    # A noisy customer line is the customer's, not a noisy room to move the agent out of.
    state.alerts_active["noise", "customer"] = 1
    prometheus.wait_for('callwatch_alerts_active{kind="noise",stream="customer"} == 1', bool,
                        timeout_s=10)
    assert prometheus.query(alert_expr("CallwatchNoisyRoom")) == []
    state.streams[Stream.AGENT].device_up = False
    state.streams[Stream.CUSTOMER].restarts += 4
    state.alerts_active["noise", "agent"] = 1
    for name, labels in (
        ("CallwatchHeadsetMissing", {"stream": "agent", "agent": AGENT}),
        ("CallwatchDeviceFlapping", {"stream": "customer", "agent": AGENT}),
        ("CallwatchNoisyRoom", {"agent": AGENT}),
    ):
        result = prometheus.wait_for(alert_expr(name), bool, timeout_s=10)
        assert len(result) == 1, (name, result)
        assert labels.items() <= result[0]["metric"].items(), (name, result)


def test_daemon_replay_reaches_prometheus_with_the_call_summary(prometheus, tmp_path):  # noqa: F811
    """The whole daemon (``callwatch run --replay``) on the sample call: the talk-overs
    Prometheus scraped equal the call summary the daemon logged. Runs last in this module, so
    its (soon stale) series never mix with the in-process exporter's."""
    config = tmp_path / "config.toml"
    config.write_text(
        f'[agent]\nid = "replay@ws-9"\n\n[metrics]\nport = {prometheus.replay_port}\n'
    )
    log = tmp_path / "events.jsonl"
    prometheus.wait_for('up{job="callwatch-replay"}', bool)  # its scrape loop is running
    run = subprocess.run(
        [sys.executable, "-m", "daemon.cli", "run", "--config", str(config),
         "--replay", str(SAMPLE), "--speed", "4", "--no-server",
         "--log-json", str(log), "--output", "json"],
        capture_output=True, text=True, timeout=60,
    )
    assert run.returncode == 0, run.stderr
    events = [json.loads(line) for line in log.read_text().splitlines()]
    summary = next(e["summary"] for e in events if e["event"] == "call_ended")
    assert summary["talk_over"]["count"] >= 1
    job = '{job="callwatch-replay"}'
    scraped = prometheus.query(
        f"sum by (agent) (last_over_time(callwatch_talk_over_events_total{job}[1m])"
        f" * on (instance) group_left (agent) last_over_time(callwatch_agent_info{job}[1m]))"
    )
    assert [r["metric"] for r in scraped] == [{"agent": "replay@ws-9"}]
    assert value(scraped) == summary["talk_over"]["count"]
    by = {r["metric"]["initiator"]: float(r["value"][1]) for r in prometheus.query(
        f"last_over_time(callwatch_talk_over_events_total{job}[1m])")}
    assert by == {"agent": summary["talk_over"]["by_agent"],
                  "customer": summary["talk_over"]["by_customer"]}
    calls = value(prometheus.query(f"last_over_time(callwatch_calls_total{job}[1m])"))
    assert calls == 1
