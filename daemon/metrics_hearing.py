"""Hearing-safety metrics: today's exposure, the far end's level at the ear, acoustic shocks.

A collector of its own (one per concern, failing alone:
:class:`daemon.metrics_scrape.ScrapeCollector`), read at scrape time from a frozen
:class:`HearingReading` that the processing loop publishes. Exposure figures in dB(A) SPL
are exported only when the headset's sensitivity is known; otherwise only the relative
(dBFS) figures and ``callwatch_hearing_calibrated 0``, so a board can never show an
uncalibrated number as dB SPL.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric

from daemon.hearing import ExposureSnapshot
from daemon.metrics_scrape import ScrapeCollector

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class HearingReading:
    """What the hearing collector exports, as of the last processing pass."""

    exposure: ExposureSnapshot
    acoustic_shocks: int = 0
    """Acoustic shocks begun since the daemon started."""
    far_end_laeq_dbfs: float | None = None
    """The far end's A-weighted LAeq over the loud-far-end window, dBFS."""


HearingSource = Callable[[], HearingReading | None]


class HearingCollector(ScrapeCollector):
    """Reads the latest :class:`HearingReading` at scrape time; without one (none yet, or
    the source failed) it exports the uncalibrated defaults rather than nothing."""

    concern = "hearing"

    def __init__(self, source: HearingSource) -> None:
        self._source = source
        self._lock = threading.Lock()

    def families(self) -> list[Metric]:
        with self._lock:
            try:
                r = self._source()
            except Exception:  # a scrape must not fail because the reading could not be made
                log.exception("reading the hearing state for /metrics failed")
                r = None
            return list(self._families(r))

    @staticmethod
    def _families(r: HearingReading | None) -> Iterator[Metric]:
        e = r.exposure if r is not None else None
        sensitivity = e.sensitivity if e is not None else None
        yield GaugeMetricFamily(
            "callwatch_hearing_calibrated",
            "1 when the headset's sensitivity (dB SPL at 0 dBFS) is known, else 0: exposure is "
            "then not reported in dB(A)", value=int(sensitivity is not None))
        sens = GaugeMetricFamily(
            "callwatch_hearing_sensitivity_db",
            "Headset sensitivity in force: dB SPL at the ear for a 0 dBFS RMS far-end signal")
        if sensitivity is not None:
            sens.add_metric([], sensitivity)
        yield sens
        lex = GaugeMetricFamily(
            "callwatch_exposure_lex8h_db",
            "Today's daily noise exposure LEX,8h at the agent's ear, dB(A) (EU 2003/10/EC); "
            "absent until calibrated audio was heard")
        laeq = GaugeMetricFamily(
            "callwatch_far_end_laeq_db",
            "Far-end A-weighted level at the ear over the last seconds, dB(A) SPL; absent "
            "uncalibrated")
        laeq_fs = GaugeMetricFamily(
            "callwatch_far_end_laeq_dbfs",
            "Far-end A-weighted level over the last seconds, dBFS (relative, uncalibrated)")
        heard = GaugeMetricFamily(
            "callwatch_exposure_heard_seconds",
            "Seconds of far-end audio in today's exposure, by whether the sensitivity was known",
            labels=["calibrated"])
        if e is not None:
            if e.lex_8h_db is not None:
                lex.add_metric([], e.lex_8h_db)
            heard.add_metric(["true"], e.calibrated_s)
            heard.add_metric(["false"], e.uncalibrated_s)
        if r is not None and r.far_end_laeq_dbfs is not None:
            laeq_fs.add_metric([], r.far_end_laeq_dbfs)
            if sensitivity is not None:
                laeq.add_metric([], r.far_end_laeq_dbfs + sensitivity)
        yield lex
        yield laeq
        yield laeq_fs
        yield heard
        yield CounterMetricFamily(
            "callwatch_acoustic_shocks", "Acoustic shocks on the far end since the daemon started",
            value=r.acoustic_shocks if r is not None else 0)
