"""One failing source never blanks the scrape: each collector is left out alone."""

from __future__ import annotations

import logging

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from daemon.metrics import Metrics
from daemon.metrics_hearing import HearingCollector, HearingReading
from daemon.state import DaemonState
from dsp.events import Stream
from dsp.stats import CallStats
from tests.exposition import call_stats, promtool_check_metrics, stream_stats


def _stats() -> CallStats:
    """The same measurements on both sides."""
    return call_stats(customer=stream_stats(-27.5, -62.0))


def _families(registry: CollectorRegistry) -> tuple[set[str], bytes]:
    text = generate_latest(registry)
    names = {f.name for f in text_string_to_metric_families(text.decode())
             if f.name.startswith("callwatch_")}
    return names, text


def _promtool_ok(text: bytes) -> bool:
    return promtool_check_metrics(text).returncode == 0


def test_a_broken_state_leaves_out_only_the_collectors_that_read_it(caplog):
    registry = CollectorRegistry()
    stats = _stats()
    state = DaemonState(agent_id="ana@ws-17", version="0.1.0")
    Metrics(registry, state, pipeline_stats=lambda: (stats, stats), host="ws-17")
    whole, _ = _families(registry)
    del state.streams[Stream.CUSTOMER]          # the far end's health record is gone
    with caplog.at_level(logging.ERROR, "callwatch.metrics"):
        names, text = _families(registry)
    left_out = {"callwatch_agent_info", "callwatch_build_info", "callwatch_device_up",
                "callwatch_device_restarts", "callwatch_input_overflows",
                "callwatch_dropped_blocks"}
    assert names == whole - left_out
    assert {"callwatch_calls", "callwatch_alerts_fired", "callwatch_speech_level_dbfs",
            "callwatch_talk_over_events", "callwatch_websocket_clients",
            "callwatch_talk_share_ratio"} <= names
    assert "the identity metrics could not be read" in caplog.text
    assert "the device metrics could not be read" in caplog.text
    assert _promtool_ok(text)


def test_malformed_pipeline_statistics_leave_the_counters_and_the_state_served(caplog):
    registry = CollectorRegistry()
    stats = _stats()
    source = {"pair": (stats, stats)}
    Metrics(registry, DaemonState(agent_id="x"), pipeline_stats=lambda: source["pair"])
    whole, _ = _families(registry)
    source["pair"] = (stats, "not statistics")   # totals fine, the current call unreadable
    with caplog.at_level(logging.ERROR, "callwatch.metrics"):
        names, text = _families(registry)
    gauges_of_the_call = {"callwatch_speech_level_dbfs", "callwatch_noise_floor_dbfs",
                          "callwatch_snr_db", "callwatch_talk_share_ratio",
                          "callwatch_speech_rate_syllables_per_second",
                          "callwatch_longest_turn_seconds"}
    assert names == whole - gauges_of_the_call
    assert "the level metrics could not be read" in caplog.text
    assert "the coaching metrics could not be read" in caplog.text
    assert _promtool_ok(text)


def test_a_malformed_hearing_reading_leaves_out_only_the_hearing_series(caplog):
    registry = CollectorRegistry()
    Metrics(registry, DaemonState(agent_id="x"))
    registry.register(HearingCollector(lambda: HearingReading("no exposure snapshot")))
    with caplog.at_level(logging.ERROR, "callwatch.metrics"):
        names, text = _families(registry)
    assert not any(n.startswith(("callwatch_hearing", "callwatch_exposure")) for n in names)
    assert {"callwatch_calls", "callwatch_device_up", "callwatch_audio_seconds"} <= names
    assert "the hearing metrics could not be read" in caplog.text
    assert _promtool_ok(text)
