"""Every callwatch Prometheus metric, in one module: names, help, units, labels.

Naming follows the design's metrics contract: prefix ``callwatch_``, base units (seconds,
samples), decibels as ``_dbfs`` (relative to full scale) or ``_db`` (differences), counters end
in ``_total`` and ratios are exported as their two counters. The only labels are ``stream``
(agent, customer), ``kind`` (the alert kinds), ``initiator`` (who started a talk-over) and
``check`` (the fixed items of ``callwatch check``); all are bounded. Who the workstation is
(agent id, host, device names) lives in ``callwatch_agent_info`` (value 1) so dashboards join
it with ``* on(instance) group_left(agent) callwatch_agent_info`` instead of multiplying every
series by free text.

Most values are read at scrape time, as node_exporter and client_python's own collectors do:
:class:`CallwatchCollector` reads the :class:`~daemon.state.DaemonState` counters and the
pipeline's statistics when Prometheus asks, so the processing loop pays nothing per frame and
the audio callback never touches a Prometheus lock. Only the two histograms are instruments the
loop updates, because a distribution cannot be rebuilt from a counter at scrape time::

    registry = default_registry()            # a fresh registry + process/platform/GC collectors
    published = PublishedStats()
    metrics = Metrics(registry, state, pipeline_stats=published)
    server = start_metrics_server(cfg.metrics, registry)    # see daemon.metrics_server
    ...                                      # in the processing loop, after each pass:
    published.publish(pipeline)              # two frozen snapshots, handed over atomically
    metrics.observe_processing(seconds_spent_in_one_iteration)
    metrics.observe_call_end(call_duration_s)
    server.stop()

Scrapes run on the HTTP server's threads. They must not call into the pipeline, which is not
thread-safe (its level meter caches results, and a read racing a ``push`` can leave a stale
cache behind for the call summary). :class:`PublishedStats` lets the loop hand over immutable
snapshots instead.

Every label set exists from the start (zeros, not missing) so ``rate()`` and ``increase()``
see the first event. The level gauges are the exception: a level that is not known yet (no
speech so far) is left out rather than exported as a made-up number or NaN.
"""

from __future__ import annotations

import logging
import math
import socket
import threading
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Protocol

from prometheus_client import (
    GC_COLLECTOR,
    PLATFORM_COLLECTOR,
    PROCESS_COLLECTOR,
    CollectorRegistry,
    Histogram,
    disable_created_metrics,
)
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    InfoMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector

from daemon.state import DaemonState
from dsp.events import Kind, Stream
from dsp.settings import setting
from dsp.stats import CallStats, StreamStats

log = logging.getLogger("callwatch.metrics")

CALL_DURATION_BUCKETS_S: tuple[float, ...] = (
    30, 60, 120, 180, 300, 450, 600, 900, 1200, 1800, 2700, 3600, 5400, 7200,
)
"""Contact-centre calls run from under a minute to about two hours; most last 3-10 min."""

PROCESSING_BUCKETS_S: tuple[float, ...] = (
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25,
)
"""One loop iteration handles 20-100 ms of audio; beyond that the rings start to fill."""

CHECK_PASS, CHECK_WARN, CHECK_FAIL = 0, 1, 2
"""Values of ``callwatch_check_result``."""

class _HasStats(Protocol):
    @property
    def totals(self) -> CallStats: ...
    @property
    def stats(self) -> CallStats: ...


PipelineStats = Callable[[], "tuple[CallStats, CallStats] | None"]
"""Returns ``(totals, current)``: the pipeline's lifetime statistics (monotonic) and those of
the current call, or ``None`` while there is no pipeline."""


class PublishedStats:
    """The pipeline statistics as last published by the processing loop; a ``PipelineStats``.

    ``publish`` runs on the loop's thread and builds the snapshots there; a scrape only reads
    the reference, which Python assigns atomically, so no lock is needed and the scrape never
    touches the pipeline.
    """

    def __init__(self) -> None:
        self._value: tuple[CallStats, CallStats] | None = None

    def publish(self, pipeline: _HasStats) -> None:
        self._value = (pipeline.totals, pipeline.stats)

    def __call__(self) -> tuple[CallStats, CallStats] | None:
        return self._value


@dataclass(frozen=True, slots=True)
class MetricsSettings:
    """The ``[metrics]`` table: the Prometheus endpoint.

    It listens on loopback by default. To let a central Prometheus scrape it, set
    ``listen_address = "0.0.0.0"`` together with TLS and basic auth (docs/fleet.md). The
    password is stored only as its SHA-256 hex digest (``printf %s 'secret' | sha256sum``);
    the server hashes what a client sends and compares the digests in constant time. Plain
    SHA-256 keeps the daemon free of extra dependencies; it is a scrape credential on a TLS
    channel, not a user password, so pick a long random one.
    """

    enabled: bool = setting(True, doc="serve /metrics for Prometheus")
    listen_address: str = setting(
        "127.0.0.1", doc="address to listen on; \"0.0.0.0\" or \"::\" to be scraped remotely"
    )
    port: int = setting(9464, 0, 65535, "TCP port of /metrics (0 = any free port)")
    tls_cert_file: str = setting("", doc="PEM certificate (chain); serve HTTPS when set")
    tls_key_file: str = setting("", doc="PEM private key of tls_cert_file")
    basic_auth_user: str = setting("", doc="require HTTP basic auth with this user name")
    basic_auth_password_sha256: str = setting(
        "", doc="SHA-256 hex digest of the basic-auth password (printf %s PASS | sha256sum)"
    )

    def __post_init__(self) -> None:
        if bool(self.tls_cert_file) != bool(self.tls_key_file):
            raise ValueError("tls_cert_file and tls_key_file must be set together")
        if bool(self.basic_auth_user) != bool(self.basic_auth_password_sha256):
            raise ValueError("basic_auth_user and basic_auth_password_sha256 must be set together")
        digest = self.basic_auth_password_sha256
        if digest and (len(digest) != 64 or any(c not in "0123456789abcdefABCDEF" for c in digest)):
            raise ValueError(
                "basic_auth_password_sha256 must be 64 hex digits (printf %s PASS | sha256sum)"
            )


def default_registry() -> CollectorRegistry:
    """A fresh registry with the process, platform and GC collectors a real daemon exports.

    A new registry rather than the global ``REGISTRY`` so that tests and benchmarks can build
    as many daemons as they like in one process.
    """
    registry = CollectorRegistry()
    for collector in (PROCESS_COLLECTOR, PLATFORM_COLLECTOR, GC_COLLECTOR):
        registry.register(collector)
    return registry


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


def _known(value: float | None) -> bool:
    return value is not None and math.isfinite(value)


class CallwatchCollector(Collector):
    """Reads the daemon state and the pipeline statistics at scrape time."""

    def __init__(
        self, state: DaemonState, pipeline_stats: PipelineStats, host: str | None = None
    ) -> None:
        self._state = state
        self._pipeline_stats = pipeline_stats
        self._host = host if host is not None else socket.gethostname()
        self._mono = _Monotonic()
        self._lock = threading.Lock()  # scrapes run on concurrent server threads

    def describe(self) -> Iterable[Metric]:
        return list(self.collect())

    def collect(self) -> Iterator[Metric]:
        with self._lock:
            totals, current = self._read_pipeline()
            families = [
                *self._identity(),
                *self._levels(current),
                *self._pipeline_counters(totals),
                *self._alerts(),
                *self._calls(),
                *self._devices(),
                *self._websocket(),
                *self._check(),
            ]
        yield from families

    def _read_pipeline(self) -> tuple[CallStats | None, CallStats | None]:
        try:
            pair = self._pipeline_stats()
        except Exception:  # a scrape must not fail because the stats could not be read
            log.exception("reading the pipeline statistics for /metrics failed")
            return None, None
        return pair if pair is not None else (None, None)

    def _identity(self) -> Iterator[Metric]:
        s = self._state
        yield InfoMetricFamily(
            "callwatch_build", "callwatch version running on this workstation",
            value={"version": s.version or "unknown"},
        )
        yield InfoMetricFamily(
            "callwatch_agent",
            "Who this workstation is: join on instance to label any series with the agent",
            value={
                "agent": s.agent_id,
                "host": self._host,
                "mic_device": s.streams[Stream.AGENT].device_name,
                "far_end_device": s.streams[Stream.CUSTOMER].device_name,
            },
        )

    def _levels(self, current: CallStats | None) -> Iterator[Metric]:
        gauges = (
            ("callwatch_speech_level_dbfs",
             "Active speech level (ITU-T P.56) in the current call, dBFS; absent until known",
             lambda st: st.active_level_dbfs),
            ("callwatch_noise_floor_dbfs",
             "Noise floor (non-speech frames) in the current call, dBFS; absent until known",
             lambda st: st.noise_floor_dbfs),
            ("callwatch_snr_db",
             "Speech level minus noise floor in the current call, dB; absent until known",
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

    def _pipeline_counters(self, totals: CallStats | None) -> Iterator[Metric]:
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
        events = CounterMetricFamily(
            "callwatch_talk_over_events",
            "Talk-overs (both parties speaking at least min_overlap_s), by who started them",
            labels=["initiator"],
        )
        for stream, cur in (
            (Stream.AGENT, to.by_agent if to else None),
            (Stream.CUSTOMER, to.by_customer if to else None),
        ):
            events.add_metric(
                [stream.value], self._mono.value("talk_over_events", stream.value, cur)
            )
        yield events
        seconds = CounterMetricFamily(
            "callwatch_talk_over_seconds",
            "Time both parties spoke at once in talk-overs, by who started them, seconds",
            labels=["initiator"],
        )
        for stream, cur in (
            (Stream.AGENT, to.seconds_by_agent if to else None),
            (Stream.CUSTOMER, to.seconds_by_customer if to else None),
        ):
            seconds.add_metric(
                [stream.value], self._mono.value("talk_over_seconds", stream.value, cur)
            )
        yield seconds

    def _alerts(self) -> Iterator[Metric]:
        s = self._state
        fired = CounterMetricFamily(
            "callwatch_alerts_fired", "Alerts that reached firing, by kind", labels=["kind"]
        )
        active = GaugeMetricFamily(
            "callwatch_alerts_active", "Alerts firing now, by kind", labels=["kind"]
        )
        for kind in Kind:
            fired.add_metric([kind.value], s.alerts_fired.get(kind.value, 0))
            active.add_metric([kind.value], s.alerts_active.get(kind.value, 0))
        yield fired
        yield active

    def _calls(self) -> Iterator[Metric]:
        s = self._state
        yield CounterMetricFamily("callwatch_calls", "Calls started", value=s.calls_total)
        yield GaugeMetricFamily(
            "callwatch_call_active", "1 while a call is in progress", value=int(s.call_active)
        )

    def _devices(self) -> Iterator[Metric]:
        up = GaugeMetricFamily(
            "callwatch_device_up", "1 while the stream's device delivers audio", labels=["stream"]
        )
        counters = (
            ("callwatch_device_restarts", "Times the stream was reopened after a fault",
             "restarts"),
            ("callwatch_input_overflows", "PortAudio input-overflow flags (audio lost)",
             "overflows"),
            ("callwatch_dropped_blocks",
             "Blocks the ring buffer had no room for (processing fell behind)", "dropped_blocks"),
        )
        families = [CounterMetricFamily(n, d, labels=["stream"]) for n, d, _ in counters]
        for stream in Stream:
            h = self._state.streams[stream]
            up.add_metric([stream.value], int(h.device_up))
            for fam, (_, _, attr) in zip(families, counters, strict=True):
                fam.add_metric([stream.value], getattr(h, attr))
        yield up
        yield from families

    def _websocket(self) -> Iterator[Metric]:
        s = self._state
        yield GaugeMetricFamily(
            "callwatch_websocket_clients", "Connected WebSocket clients", value=s.ws_clients
        )
        yield CounterMetricFamily(
            "callwatch_websocket_dropped_messages",
            "Messages dropped for clients that read too slowly", value=s.ws_dropped_messages,
        )

    def _check(self) -> Iterator[Metric]:
        s = self._state
        result = GaugeMetricFamily(
            "callwatch_check_result",
            "Last callwatch check verdict per item: 0 pass, 1 warn, 2 fail",
            labels=["check"],
        )
        for item, verdict in sorted(s.check_results.items()):
            result.add_metric([item], verdict)
        yield result
        ts = GaugeMetricFamily(
            "callwatch_check_timestamp_seconds", "Unix time of the last callwatch check"
        )
        if s.check_timestamp is not None:
            ts.add_metric([], s.check_timestamp)
        yield ts


class Metrics:
    """The daemon's metrics: the scrape-time collector plus the two histograms the loop feeds.

    ``registry`` is injected (tests build many); ``pipeline_stats`` returns ``(totals,
    current)`` from the pipeline or ``None``. ``host`` defaults to this machine's host name.
    """

    def __init__(
        self,
        registry: CollectorRegistry,
        state: DaemonState,
        pipeline_stats: PipelineStats = lambda: None,
        host: str | None = None,
    ) -> None:
        # The ``_created`` series of client_python's histograms are one extra series each
        # that Prometheus 2.x stores as a plain gauge; the start time is process_start_time.
        disable_created_metrics()
        self.registry = registry
        self.state = state
        self.collector = CallwatchCollector(state, pipeline_stats, host)
        registry.register(self.collector)
        self._call_duration = Histogram(
            "callwatch_call_duration_seconds", "Duration of finished calls, seconds",
            buckets=CALL_DURATION_BUCKETS_S, registry=registry,
        )
        self._processing = Histogram(
            "callwatch_processing_seconds",
            "Time one processing-loop iteration took (pipeline, alerts), seconds",
            buckets=PROCESSING_BUCKETS_S, registry=registry,
        )

    def observe_call_end(self, duration_s: float) -> None:
        """Record a finished call (call the loop makes when a call ends)."""
        self._call_duration.observe(duration_s)

    def observe_processing(self, seconds: float) -> None:
        """Record how long one processing-loop iteration took."""
        self._processing.observe(seconds)
