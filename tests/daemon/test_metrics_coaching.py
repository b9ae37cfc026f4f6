"""Coaching metrics: per-party talk share, speaking rate and longest turn of the current call,
read at scrape time from what a real pipeline on real speech published, and exported by the
daemon's Metrics."""

from __future__ import annotations

import dataclasses

import pytest
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from daemon.metrics import Metrics, PublishedStats, default_registry
from daemon.metrics_coaching import CoachingCollector
from daemon.state import DaemonState
from dsp import ANALYSIS_RATE
from dsp.events import Kind, Stream
from dsp.pipeline import Pipeline
from dsp.stats import CallStats
from tests.exposition import promtool_check_metrics, scrape
from tests.speech import two_party_call

NAMES = ("callwatch_talk_share_ratio", "callwatch_speech_rate_syllables_per_second",
         "callwatch_longest_turn_seconds")


def coaching(values: dict[str, float]) -> dict[str, float]:
    return {k: v for k, v in values.items() if k.startswith(NAMES)}


def expected(stats: CallStats) -> dict[str, float]:
    """What the gauges must say for ``stats``: its known values, nothing else."""
    out = {}
    for stream in Stream:
        st = getattr(stats, stream.value)
        for name, value in zip(NAMES, (st.talk_share, st.speech_rate_sps, st.longest_turn_s),
                               strict=True):
            if value is not None:
                out[f'{name}{{stream="{stream.value}"}}'] = value
    return out


@pytest.fixture(scope="module")
def call() -> tuple:
    """Real recorded voices: the customer, the agent at length, the customer again."""
    return two_party_call([("customer", "cq_ref", 0.5), ("agent", "hts1", 10.0),
                           ("agent", "kristoff", 16.5), ("agent", "mmt1", 22.0),
                           ("customer", "vk5qi", 27.0)], seconds=42.0)


def test_gauges_follow_what_the_loop_published(call):
    agent, customer = call
    pipeline = Pipeline()
    published = PublishedStats()
    registry = CollectorRegistry()
    Metrics(registry, DaemonState(agent_id="ana@ws-17"), pipeline_stats=published)
    assert coaching(scrape(registry)) == {}            # no pipeline yet: nothing made up

    pipeline.push(agent=agent[: 2 * ANALYSIS_RATE], customer=customer[: 2 * ANALYSIS_RATE])
    published.publish(pipeline)
    early = coaching(scrape(registry))
    assert early == pytest.approx(expected(pipeline.stats))
    assert 'callwatch_speech_rate_syllables_per_second{stream="agent"}' not in early  # silent

    half = 26 * ANALYSIS_RATE
    pipeline.push(agent=agent[2 * ANALYSIS_RATE:half], customer=customer[2 * ANALYSIS_RATE:half])
    unpublished = pipeline.stats
    assert coaching(scrape(registry)) == early         # scrapes see only published snapshots
    published.publish(pipeline)
    mid = coaching(scrape(registry))
    assert mid == pytest.approx(expected(unpublished))
    assert mid['callwatch_longest_turn_seconds{stream="agent"}'] > 12.0  # three clips, one turn
    assert 0.4 < mid['callwatch_talk_share_ratio{stream="agent"}'] < 0.7
    assert 2.0 < mid['callwatch_speech_rate_syllables_per_second{stream="agent"}'] < 7.0

    pipeline.push(agent=agent[half:], customer=customer[half:])
    pipeline.end_call()
    published.publish(pipeline)
    end = coaching(scrape(registry))
    assert end == pytest.approx(expected(pipeline.stats))
    assert end['callwatch_talk_share_ratio{stream="agent"}'] + \
        end['callwatch_talk_share_ratio{stream="customer"}'] == pytest.approx(1.0)
    assert end['callwatch_talk_share_ratio{stream="customer"}'] > \
        mid['callwatch_talk_share_ratio{stream="customer"}']

    # A new call starts from nothing: the last call's values do not leak into it.
    pipeline.start_call()
    published.publish(pipeline)
    fresh = coaching(scrape(registry))
    assert fresh == {'callwatch_longest_turn_seconds{stream="agent"}': 0.0,
                     'callwatch_longest_turn_seconds{stream="customer"}': 0.0}


def test_unknown_or_nan_values_are_left_out(call):
    agent, customer = call
    pipeline = Pipeline()
    pipeline.push(agent=agent, customer=customer)
    stats = pipeline.stats
    broken = dataclasses.replace(
        stats, agent=dataclasses.replace(stats.agent, speech_rate_sps=float("nan")),
        customer=dataclasses.replace(stats.customer, talk_share=None))
    registry = CollectorRegistry()
    registry.register(CoachingCollector(lambda: (broken, broken)))
    got = scrape(registry)
    assert 'callwatch_speech_rate_syllables_per_second{stream="agent"}' not in got
    assert 'callwatch_talk_share_ratio{stream="customer"}' not in got
    assert got['callwatch_talk_share_ratio{stream="agent"}'] == pytest.approx(
        stats.agent.talk_share)


def test_a_failing_stats_source_gives_an_empty_but_valid_scrape(caplog):
    def read() -> tuple[CallStats, CallStats]:
        raise RuntimeError("pipeline being rebuilt")

    registry = CollectorRegistry()
    Metrics(registry, DaemonState(agent_id="x"), pipeline_stats=read)
    got = scrape(registry)
    assert coaching(got) == {}
    assert got['callwatch_alerts_fired_total{kind="fast_speech",stream="agent"}'] == 0
    assert "coaching metrics failed" in caplog.text


def test_pace_and_monologue_nudges_are_counted_by_kind():
    """The existing alert counters already carry the two coaching nudges, from zero."""
    registry = CollectorRegistry()
    state = DaemonState(agent_id="x")
    Metrics(registry, state)
    before = scrape(registry)
    for kind in (Kind.FAST_SPEECH, Kind.MONOLOGUE):
        assert before[f'callwatch_alerts_fired_total{{kind="{kind.value}",stream="agent"}}'] == 0
        assert before[f'callwatch_alerts_active{{kind="{kind.value}",stream="agent"}}'] == 0
    state.alerts_fired[Kind.FAST_SPEECH.value, "agent"] += 2
    state.alerts_fired[Kind.MONOLOGUE.value, "agent"] += 1
    state.alerts_active[Kind.MONOLOGUE.value, "agent"] = 1
    after = scrape(registry)
    assert after['callwatch_alerts_fired_total{kind="fast_speech",stream="agent"}'] == 2
    assert after['callwatch_alerts_fired_total{kind="monologue",stream="agent"}'] == 1
    assert after['callwatch_alerts_active{kind="monologue",stream="agent"}'] == 1


def test_help_type_and_labels_and_promtool_accepts_them(call):
    agent, customer = call
    pipeline = Pipeline()
    pipeline.push(agent=agent, customer=customer)
    registry = default_registry()
    stats = pipeline.stats
    Metrics(registry, DaemonState(agent_id="x"), pipeline_stats=lambda: (stats, stats))
    text = generate_latest(registry)
    families = {f.name: f for f in text_string_to_metric_families(text.decode())}
    for name in NAMES:
        fam = families[name]
        assert fam.type == "gauge"
        assert "current call" in fam.documentation
        assert {tuple(s.labels.items()) for s in fam.samples} == {
            (("stream", "agent"),), (("stream", "customer"),)}
    r = promtool_check_metrics(text)
    assert r.returncode == 0, r.stdout + r.stderr
