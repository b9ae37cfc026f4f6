"""The pipeline's metrics: level gauges of the current call and the lifetime counters.

Both read the statistics the processing loop publishes (:class:`daemon.metrics.PublishedStats`)
at scrape time. They are two collectors because they fail differently: without statistics
the level gauges of the current call are simply unknown and left out, while the counters
hold their last values (a counter that vanished or dropped would read as a restart).
"""

from __future__ import annotations

import math
import threading
from collections.abc import Iterator

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric

from daemon.metrics_scrape import PipelineStats, ScrapeCollector, read_pipeline
from dsp.events import Stream
from dsp.stats import StreamStats

__all__ = ["LevelsCollector", "PipelineCountersCollector"]


def _known(value: float | None) -> bool:
    return value is not None and math.isfinite(value)


class LevelsCollector(ScrapeCollector):
    """Speech level, noise floor and SNR per party in the current call; absent until known."""

    concern = "level"

    def __init__(self, pipeline_stats: PipelineStats) -> None:
        self._pipeline_stats = pipeline_stats

    def families(self) -> Iterator[Metric]:
        pair = read_pipeline(self._pipeline_stats, self.concern)
        current = pair[1] if pair is not None else None
        gauges = (
            ("callwatch_speech_level_dbfs",
             "Active speech level (ITU-T P.56) in the current call (the last one between "
             "calls), dBFS; absent until known",
             lambda st: st.active_level_dbfs),
            ("callwatch_noise_floor_dbfs",
             "Noise floor (non-speech frames) in the current call (the last one between calls), "
             "dBFS; absent until known",
             lambda st: st.noise_floor_dbfs),
            ("callwatch_snr_db",
             "Speech level minus noise floor in the current call (the last one between calls), "
             "dB; absent until known",
             lambda st: st.snr_db),
        )
        for name, doc, read in gauges:
            g = GaugeMetricFamily(name, doc, labels=["stream"])
            if current is not None:
                for stream in Stream:
                    stats: StreamStats = getattr(current, stream.value)
                    value = read(stats)
                    if _known(value):
                        g.add_metric([stream.value], value)
            yield g


class _Monotonic:
    """Turns values that may restart from zero (a new pipeline) into counters that never go down.

    When a source value drops, the last value seen is banked, so the exported counter carries
    on from where it was; Prometheus would survive a reset, but a daemon-internal restart of the
    pipeline is not a restart of the exporter and must not look like one.
    """

    def __init__(self) -> None:
        self._base: dict[tuple[str, str], float] = {}
        self._last: dict[tuple[str, str], float] = {}

    def value(self, name: str, label: str, current: float | None) -> float:
        key = (name, label)
        last = self._last.get(key, 0.0)
        if current is None:  # source unavailable: hold the last value
            return self._base.get(key, 0.0) + last
        if current < last:
            self._base[key] = self._base.get(key, 0.0) + last
        self._last[key] = current
        return self._base.get(key, 0.0) + current


class PipelineCountersCollector(ScrapeCollector):
    """Audio and speech analysed, clipped samples and talk-overs since the daemon started."""

    concern = "pipeline counter"

    def __init__(self, pipeline_stats: PipelineStats) -> None:
        self._pipeline_stats = pipeline_stats
        self._mono = _Monotonic()
        self._lock = threading.Lock()  # scrapes run on concurrent server threads

    def families(self) -> list[Metric]:
        with self._lock:
            return list(self._families())

    def _families(self) -> Iterator[Metric]:
        pair = read_pipeline(self._pipeline_stats, self.concern)
        totals = pair[0] if pair is not None else None
        per_stream = (
            ("callwatch_audio_seconds", "Audio analysed, seconds", "audio_s"),
            ("callwatch_speech_seconds", "Speech detected, seconds", "speech_s"),
            ("callwatch_clipped_samples",
             "Samples at or above the clip level (at 16 kHz; ratio: divide by 16000 x "
             "callwatch_audio_seconds_total)", "clipped_samples"),
        )
        for name, doc, attr in per_stream:
            c = CounterMetricFamily(name, doc, labels=["stream"])
            for stream in Stream:
                cur = getattr(getattr(totals, stream.value), attr) if totals else None
                c.add_metric([stream.value], self._mono.value(name, stream.value, cur))
            yield c
        to = totals.talk_over if totals else None
        per_initiator = (
            ("callwatch_talk_over_events", "talk_over_events",
             "Talk-overs (both parties speaking at least min_overlap_s), by who started them",
             (to.by_agent, to.by_customer) if to else (None, None)),
            ("callwatch_talk_over_seconds", "talk_over_seconds",
             "Time both parties spoke at once in talk-overs, by who started them, seconds",
             (to.seconds_by_agent, to.seconds_by_customer) if to else (None, None)),
        )
        for name, key, doc, (by_agent, by_customer) in per_initiator:
            c = CounterMetricFamily(name, doc, labels=["initiator"])
            for stream, cur in ((Stream.AGENT, by_agent), (Stream.CUSTOMER, by_customer)):
                c.add_metric([stream.value], self._mono.value(key, stream.value, cur))
            yield c
