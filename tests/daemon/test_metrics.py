"""The Prometheus exposition: names, types and label sets (golden), counters that follow the
pipeline, and promtool's linter. The HTTP endpoint is in test_metrics_server."""

from __future__ import annotations

import pytest
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from daemon.metrics import (
    CALL_DURATION_BUCKETS_S,
    CHECK_FAIL,
    Metrics,
    PublishedStats,
    default_registry,
)
from daemon.metrics_state import ALERT_SERIES
from daemon.state import DaemonState
from dsp.events import Kind, Stream
from dsp.stats import CallStats
from tests.exposition import (
    busy_metrics,
    call_stats,
    promtool_check_metrics,
    scrape,
)

BOUNDED_LABELS = {"stream", "kind", "initiator", "check", "le"}


def shape(registry: CollectorRegistry) -> list[str]:
    """Type, sample name and label set of every callwatch sample; free-text label values
    (identity in *_info) become ``*``, and histogram buckets are folded into one line."""
    lines: set[str] = set()
    buckets: dict[str, list[str]] = {}
    for fam in text_string_to_metric_families(generate_latest(registry).decode()):
        if not fam.name.startswith("callwatch_"):
            continue
        for s in fam.samples:
            if s.name.endswith("_bucket"):
                buckets.setdefault(s.name, []).append(s.labels["le"])
                continue
            labels = ",".join(
                f"{k}={v if k in BOUNDED_LABELS else '*'}" for k, v in sorted(s.labels.items())
            )
            lines.add(f"{fam.type} {s.name}{{{labels}}}")
    for name, les in buckets.items():
        lines.add(f"histogram {name}{{le={','.join(les)}}}")
    return sorted(lines)


ALERT_LABELS = (
    "kind=acoustic_shock,stream=customer",
    "kind=clipping,stream=agent",
    "kind=clipping,stream=customer",
    "kind=echo,stream=agent",
    "kind=echo,stream=customer",
    "kind=exposure,stream=customer",
    "kind=fast_speech,stream=agent",
    "kind=loud_far_end,stream=customer",
    "kind=mic_dead,stream=agent",
    "kind=mic_dead,stream=customer",
    "kind=monologue,stream=agent",
    "kind=noise,stream=agent",
    "kind=noise,stream=customer",
    "kind=silence,stream=",
    "kind=talk_over,stream=agent",
    "kind=talk_over,stream=customer",
    "kind=too_loud,stream=agent",
    "kind=too_loud,stream=customer",
    "kind=too_quiet,stream=agent",
    "kind=too_quiet,stream=customer",
)
"""The alert series' label sets: every kind, for each side it can be about."""

GOLDEN = """\
counter callwatch_audio_seconds_total{stream=agent}
counter callwatch_audio_seconds_total{stream=customer}
counter callwatch_calls_total{}
counter callwatch_clipped_samples_total{stream=agent}
counter callwatch_clipped_samples_total{stream=customer}
counter callwatch_device_restarts_total{stream=agent}
counter callwatch_device_restarts_total{stream=customer}
counter callwatch_dropped_blocks_total{stream=agent}
counter callwatch_dropped_blocks_total{stream=customer}
counter callwatch_input_overflows_total{stream=agent}
counter callwatch_input_overflows_total{stream=customer}
counter callwatch_speech_seconds_total{stream=agent}
counter callwatch_speech_seconds_total{stream=customer}
counter callwatch_talk_over_events_total{initiator=agent}
counter callwatch_talk_over_events_total{initiator=customer}
counter callwatch_talk_over_seconds_total{initiator=agent}
counter callwatch_talk_over_seconds_total{initiator=customer}
counter callwatch_websocket_dropped_messages_total{}
gauge callwatch_agent_info{agent=*,far_end_device=*,host=*,mic_device=*}
gauge callwatch_build_info{version=*}
gauge callwatch_call_active{}
gauge callwatch_check_result{check=echo}
gauge callwatch_check_result{check=mic_device}
gauge callwatch_check_result{check=noise}
gauge callwatch_check_timestamp_seconds{}
gauge callwatch_device_up{stream=agent}
gauge callwatch_device_up{stream=customer}
gauge callwatch_longest_turn_seconds{stream=agent}
gauge callwatch_longest_turn_seconds{stream=customer}
gauge callwatch_noise_floor_dbfs{stream=agent}
gauge callwatch_noise_floor_dbfs{stream=customer}
gauge callwatch_snr_db{stream=agent}
gauge callwatch_speech_level_dbfs{stream=agent}
gauge callwatch_websocket_clients{}
histogram callwatch_call_duration_seconds_bucket{le=30.0,60.0,120.0,180.0,300.0,450.0,600.0,\
900.0,1200.0,1800.0,2700.0,3600.0,5400.0,7200.0,+Inf}
histogram callwatch_call_duration_seconds_count{}
histogram callwatch_call_duration_seconds_sum{}
histogram callwatch_processing_seconds_bucket{le=0.0005,0.001,0.0025,0.005,0.01,0.025,0.05,0.1,\
0.25,+Inf}
histogram callwatch_processing_seconds_count{}
histogram callwatch_processing_seconds_sum{}
"""


def test_golden_names_types_and_label_sets():
    alerts = [f"{kind} callwatch_alerts_{name}{{{labels}}}" for kind, name in
              (("counter", "fired_total"), ("gauge", "active")) for labels in ALERT_LABELS]
    assert shape(busy_metrics().registry) == sorted(GOLDEN.splitlines() + alerts)


def test_only_bounded_labels_outside_info_metrics():
    for fam in text_string_to_metric_families(generate_latest(busy_metrics().registry).decode()):
        if fam.name.startswith("callwatch_") and not fam.name.endswith("_info"):
            for s in fam.samples:
                assert set(s.labels) <= BOUNDED_LABELS, (s.name, s.labels)


def test_identity_and_values_read_at_scrape_time():
    m = busy_metrics()
    v = scrape(m.registry)
    assert v['callwatch_agent_info{agent="ana@ws-17",far_end_device="Jabra Evolve2 40 Mono '
             'monitor",host="ws-17",mic_device="Jabra Evolve2 40 Mono"}'] == 1
    assert v['callwatch_build_info{version="0.1.0"}'] == 1
    assert v['callwatch_speech_level_dbfs{stream="agent"}'] == -27.5
    assert v['callwatch_snr_db{stream="agent"}'] == pytest.approx(34.5)
    assert v['callwatch_talk_over_events_total{initiator="agent"}'] == 2
    assert v['callwatch_talk_over_seconds_total{initiator="agent"}'] == pytest.approx(3.0)
    assert v['callwatch_talk_over_seconds_total{initiator="customer"}'] == pytest.approx(1.2)
    assert v['callwatch_check_result{check="echo"}'] == CHECK_FAIL
    assert v['callwatch_call_duration_seconds_bucket{le="450.0"}'] == 1
    assert v['callwatch_call_duration_seconds_bucket{le="300.0"}'] == 0
    # Changed state shows at the next scrape, with no call into the metrics module.
    m.state.streams[Stream.AGENT].device_up = False
    m.state.alerts_fired[Kind.ECHO.value, "agent"] += 1
    m.state.streams[Stream.AGENT].device_name = "USB headset"
    v = scrape(m.registry)
    assert v['callwatch_device_up{stream="agent"}'] == 0
    assert v['callwatch_alerts_fired_total{kind="echo",stream="agent"}'] == 1
    infos = [k for k in v if k.startswith("callwatch_agent_info")]
    assert len(infos) == 1 and 'mic_device="USB headset"' in infos[0]


def test_every_label_set_exists_at_start_with_zeros():
    """A fresh daemon with no pipeline yet: counters at 0 for every label value, so the first
    event is a visible increase; unknown levels are absent rather than invented."""
    registry = CollectorRegistry()
    Metrics(registry, DaemonState(agent_id="bob@ws-2"), host="ws-2")
    v = scrape(registry)
    for kind, stream in ALERT_SERIES:  # every kind, for each party it can be about
        assert v[f'callwatch_alerts_fired_total{{kind="{kind}",stream="{stream}"}}'] == 0
        assert v[f'callwatch_alerts_active{{kind="{kind}",stream="{stream}"}}'] == 0
    assert {k for k, _ in ALERT_SERIES} == {k.value for k in Kind}
    for stream in ("agent", "customer"):
        for name in ("audio_seconds", "speech_seconds", "clipped_samples", "device_restarts",
                     "input_overflows", "dropped_blocks"):
            assert v[f'callwatch_{name}_total{{stream="{stream}"}}'] == 0
        assert v[f'callwatch_device_up{{stream="{stream}"}}'] == 0
        assert v[f'callwatch_talk_over_events_total{{initiator="{stream}"}}'] == 0
    assert v["callwatch_calls_total{}"] == 0
    assert v['callwatch_call_duration_seconds_bucket{le="+Inf"}'] == 0
    assert not any(k.startswith(("callwatch_speech_level", "callwatch_snr", "callwatch_noise"))
                   for k in v)
    assert "callwatch_check_timestamp_seconds{}" not in v


def test_unknown_or_nan_level_is_left_out():
    registry = CollectorRegistry()
    stats = call_stats(level=None, noise=float("nan"))
    Metrics(registry, DaemonState(agent_id="x"), pipeline_stats=lambda: (stats, stats))
    v = scrape(registry)
    assert not any(k.startswith(("callwatch_speech_level_dbfs", "callwatch_snr_db")) for k in v)
    assert 'callwatch_noise_floor_dbfs{stream="agent"}' not in v
    assert v['callwatch_noise_floor_dbfs{stream="customer"}'] == -70.0


COUNTERS_FROM_TOTALS = {
    'callwatch_audio_seconds_total{stream="agent"}': lambda t: t.agent.audio_s,
    'callwatch_audio_seconds_total{stream="customer"}': lambda t: t.customer.audio_s,
    'callwatch_speech_seconds_total{stream="agent"}': lambda t: t.agent.speech_s,
    'callwatch_speech_seconds_total{stream="customer"}': lambda t: t.customer.speech_s,
    'callwatch_clipped_samples_total{stream="agent"}': lambda t: t.agent.clipped_samples,
    'callwatch_clipped_samples_total{stream="customer"}': lambda t: t.customer.clipped_samples,
    'callwatch_talk_over_events_total{initiator="agent"}': lambda t: t.talk_over.by_agent,
    'callwatch_talk_over_events_total{initiator="customer"}': lambda t: t.talk_over.by_customer,
    'callwatch_talk_over_seconds_total{initiator="agent"}': lambda t: t.talk_over.seconds_by_agent,
    'callwatch_talk_over_seconds_total{initiator="customer"}':
        lambda t: t.talk_over.seconds_by_customer,
}


def test_counters_go_up_exactly_when_the_pipeline_totals_do():
    """A real pipeline on real speech with two talk-overs, scraped after every block."""
    from dsp.pipeline import Pipeline
    from tests.speech import two_party_call

    agent, customer = two_party_call(
        [("customer", "cq_ref", 1.0), ("agent", "mmt1", 4.0),
         ("agent", "cq_ref", 12.0), ("customer", "mmt1", 14.5)],
        seconds=24.0,
    )
    # Loud bursts so that clipping is counted too.
    agent[20 * 16000 : 20 * 16000 + 400] = 1.0
    holder: dict[str, Pipeline] = {"p": Pipeline()}
    registry = CollectorRegistry()
    Metrics(registry, DaemonState(agent_id="x"),
            pipeline_stats=lambda: (holder["p"].totals, holder["p"].stats))
    before = scrape(registry)
    block = 8000
    grew = set()
    for i in range(0, len(agent), block):
        totals_before = holder["p"].totals
        holder["p"].push(agent[i : i + block], customer[i : i + block])
        if i == 10 * 16000:
            holder["p"].start_call()  # per-call stats reset; the counters must not
        totals = holder["p"].totals
        now = scrape(registry)
        for key, read in COUNTERS_FROM_TOTALS.items():
            assert now[key] >= before[key], key
            assert now[key] == pytest.approx(read(totals)), key
            assert (now[key] > before[key]) == (read(totals) > read(totals_before)), key
            if now[key] > before[key]:
                grew.add(key)
        before = now
    holder["p"].finish()
    assert holder["p"].totals.talk_over.count == 2
    never = {'callwatch_clipped_samples_total{stream="customer"}'}  # no clipping there
    assert grew == set(COUNTERS_FROM_TOTALS) - never
    # Nothing new processed: nothing moves.
    assert scrape(registry) == before
    # The loop replaces its pipeline (e.g. after a device change): counters carry on.
    last = holder["p"].totals
    holder["p"] = Pipeline()
    counters = {k: v for k, v in scrape(registry).items() if "_total" in k}
    assert counters == {k: v for k, v in before.items() if "_total" in k}
    holder["p"].push(agent[: 2 * block], customer[: 2 * block])
    after = scrape(registry)
    for key, read in COUNTERS_FROM_TOTALS.items():
        assert after[key] == pytest.approx(read(last) + read(holder["p"].totals)), key


def test_published_stats_are_what_scrapes_see_until_the_next_publish():
    """Scrapes read the loop's last snapshots and never call into the pipeline itself."""
    from dsp.pipeline import Pipeline
    from tests.speech import two_party_call

    agent, customer = two_party_call([("customer", "cq_ref", 0.5), ("agent", "mmt1", 1.0)],
                                     seconds=8.0)
    pipeline = Pipeline()
    published = PublishedStats()
    registry = CollectorRegistry()
    Metrics(registry, DaemonState(agent_id="x"), pipeline_stats=published)
    key = 'callwatch_audio_seconds_total{stream="agent"}'
    assert scrape(registry)[key] == 0
    pipeline.push(agent[:64000], customer[:64000])
    assert scrape(registry)[key] == 0  # not published yet
    published.publish(pipeline)
    assert scrape(registry)[key] == pytest.approx(4.0)
    pipeline.push(agent[64000:], customer[64000:])
    assert scrape(registry)[key] == pytest.approx(4.0)
    published.publish(pipeline)
    assert scrape(registry)[key] == pytest.approx(8.0)


def test_a_failing_stats_source_keeps_the_last_counter_values():
    registry = CollectorRegistry()
    stats = call_stats()
    source = {"ok": True}

    def read() -> tuple[CallStats, CallStats]:
        if not source["ok"]:
            raise RuntimeError("pipeline being rebuilt")
        return stats, stats

    Metrics(registry, DaemonState(agent_id="x"), pipeline_stats=read)
    first = scrape(registry)
    source["ok"] = False
    second = scrape(registry)
    assert second['callwatch_talk_over_events_total{initiator="agent"}'] == 2
    assert 'callwatch_speech_level_dbfs{stream="agent"}' not in second
    assert {k: v for k, v in first.items() if "_total" in k} == {
        k: v for k, v in second.items() if "_total" in k
    }


def test_promtool_accepts_the_full_exposition():
    registry = default_registry()
    busy_metrics(registry)
    text = generate_latest(registry)
    assert b"process_cpu_seconds_total" in text and b"python_gc_objects_collected_total" in text
    r = promtool_check_metrics(text)
    assert r.returncode == 0, r.stdout + r.stderr


def test_promtool_check_is_able_to_fail():
    r = promtool_check_metrics(b"# TYPE callwatch_things counter\ncallwatch_things 1\n")
    assert r.returncode != 0 and "_total" in (r.stdout + r.stderr)


def test_call_duration_buckets_cover_half_a_minute_to_two_hours():
    assert CALL_DURATION_BUCKETS_S[0] == 30 and CALL_DURATION_BUCKETS_S[-1] == 7200
