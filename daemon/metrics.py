"""The daemon's Prometheus metrics: the registry, the collectors per concern, the histograms.

Naming follows the design's metrics contract: prefix ``callwatch_``, base units (seconds,
samples), decibels as ``_dbfs`` (relative to full scale) or ``_db`` (differences), counters end
in ``_total`` and ratios are exported as their two counters. The only labels are ``stream``
(agent, customer), ``kind`` (the alert kinds), ``initiator`` (who started a talk-over) and
``check`` (the fixed items of ``callwatch check``); all are bounded. Who the workstation is
(agent id, host, device names) lives in ``callwatch_agent_info`` (value 1) so dashboards join
it with ``* on(instance) group_left(agent) callwatch_agent_info`` instead of multiplying every
series by free text.

Most values are read at scrape time, as node_exporter and client_python's own collectors do:
one collector per concern, each registered on its own and failing alone
(:mod:`daemon.metrics_scrape`), reads the :class:`~daemon.state.DaemonState` counters
(:mod:`daemon.metrics_state`) or the pipeline's statistics (:mod:`daemon.metrics_pipeline`,
:mod:`daemon.metrics_coaching`) when Prometheus asks, so the processing loop pays nothing per
frame and the audio callback never touches a Prometheus lock. Only the two histograms are
instruments the loop updates, because a distribution cannot be rebuilt from a counter at
scrape time::

    registry = default_registry()            # a fresh registry + process/platform/GC collectors
    published = PublishedStats()
    metrics = Metrics(registry, state, pipeline_stats=published)
    server = start_metrics_server(cfg.metrics, registry)    # see daemon.metrics_server
    ...                                      # in the processing loop, after each pass:
    if published.wanted:                     # a scrape asked (it waits for the answer)
        published.publish(pipeline)          # two frozen snapshots, handed over atomically
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

import math
import threading
import time
from collections.abc import Callable
from typing import Protocol

from prometheus_client import (
    GC_COLLECTOR,
    PLATFORM_COLLECTOR,
    PROCESS_COLLECTOR,
    CollectorRegistry,
    Histogram,
    disable_created_metrics,
)
from prometheus_client.registry import Collector

from daemon.check.result import Verdict
from daemon.metrics_coaching import CoachingCollector
from daemon.metrics_pipeline import LevelsCollector, PipelineCountersCollector
from daemon.metrics_scrape import PipelineStats
from daemon.metrics_server import MetricsServer
from daemon.metrics_settings import MetricsSettings
from daemon.metrics_state import state_collectors
from daemon.state import DaemonState
from dsp.stats import CallStats

__all__ = [
    "CALL_DURATION_BUCKETS_S",
    "CHECK_FAIL",
    "CHECK_PASS",
    "CHECK_WARN",
    "PROCESSING_BUCKETS_S",
    "Metrics",
    "MetricsSettings",
    "PipelineStats",
    "PublishedStats",
    "default_registry",
]

CALL_DURATION_BUCKETS_S: tuple[float, ...] = (
    30, 60, 120, 180, 300, 450, 600, 900, 1200, 1800, 2700, 3600, 5400, 7200,
)
"""Contact-centre calls run from under a minute to about two hours; most last 3-10 min."""

PROCESSING_BUCKETS_S: tuple[float, ...] = (
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25,
)
"""One loop iteration handles 20-100 ms of audio; beyond that the rings start to fill."""

CHECK_PASS, CHECK_WARN, CHECK_FAIL = Verdict.PASS, Verdict.WARN, Verdict.FAIL
"""Values of ``callwatch_check_result``: the check's own verdicts (an ``IntEnum``)."""


FRESH_S = 1.0
"""Snapshots published this recently serve a scrape as they are."""

FRESH_WAIT_S = 0.25
"""How long a scrape waits for the loop to publish (a pass comes every block, 20-100 ms)."""


class _HasStats(Protocol):
    @property
    def totals(self) -> CallStats: ...
    @property
    def stats(self) -> CallStats: ...


class PublishedStats:
    """The pipeline statistics as last published by the processing loop; a ``PipelineStats``.

    ``publish`` runs on the loop's thread and builds the snapshots there; a scrape only reads
    the reference, which Python assigns atomically, so no lock is needed and the scrape never
    touches the pipeline.

    The snapshots cost more than a pass of the loop (the level meters evaluate the second in
    progress), and Prometheus asks every 15 s or so: the loop builds them when a scrape has
    asked for them (:attr:`wanted`, which it looks at every pass), and the scrape waits up to
    :data:`FRESH_WAIT_S` for them. Without a loop to answer (stopped, or a test), the scrape
    gets the last ones published.
    """

    def __init__(self, wait_s: float = FRESH_WAIT_S,
                 wake: Callable[[], None] | None = None) -> None:
        """``wake``: rouses the loop when a scrape asks (it may be resting for a while
        between passes, see :meth:`daemon.monitor.Monitor.next_tick`)."""
        self._value: tuple[CallStats, CallStats] | None = None
        self._wake = wake
        self._at = -math.inf
        self._fresh = threading.Event()
        self._wait_s = wait_s
        self.wanted = False
        """A scrape is waiting for new snapshots: the loop's cue to :meth:`publish`."""

    def publish(self, pipeline: _HasStats) -> None:
        self._value = (pipeline.totals, pipeline.stats)
        self._at = time.monotonic()
        self.wanted = False
        self._fresh.set()

    def __call__(self) -> tuple[CallStats, CallStats] | None:
        # The collectors of one scrape each read: the first asks and waits, the others find
        # the snapshots fresh (or, if the loop did not answer, a request still open).
        if time.monotonic() - self._at > FRESH_S and not self.wanted:
            self._fresh.clear()
            self.wanted = True
            if self._wake is not None:
                self._wake()
            self._fresh.wait(self._wait_s)
        return self._value


def default_registry() -> CollectorRegistry:
    """A fresh registry with the process, platform and GC collectors a real daemon exports.

    A new registry rather than the global ``REGISTRY`` so that tests and benchmarks can build
    as many daemons as they like in one process.
    """
    registry = CollectorRegistry()
    for collector in (PROCESS_COLLECTOR, PLATFORM_COLLECTOR, GC_COLLECTOR):
        registry.register(collector)
    return registry


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
        self.http: MetricsServer | None = None
        """The HTTP endpoint serving this registry, once the daemon has started it."""
        self.collectors: tuple[Collector, ...] = (
            *state_collectors(state, host),
            LevelsCollector(pipeline_stats),
            PipelineCountersCollector(pipeline_stats),
            CoachingCollector(pipeline_stats),
        )
        for collector in self.collectors:
            registry.register(collector)
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
