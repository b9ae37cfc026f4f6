"""What every callwatch collector shares: families built at scrape time, failures kept local.

client_python asks each registered collector in turn and lets an exception end the whole
scrape, so one bad source would blank every series of the daemon. node_exporter's answer is
one collector per concern, each of which fails alone; :class:`ScrapeCollector` is that: a
collector whose families cannot be built logs why and is left out of that scrape, and the
other collectors' series are served as usual.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from typing import ClassVar

from prometheus_client.core import Metric
from prometheus_client.registry import Collector

from dsp.stats import CallStats

__all__ = ["PipelineStats", "ScrapeCollector", "read_pipeline"]

log = logging.getLogger("callwatch.metrics")

PipelineStats = Callable[[], "tuple[CallStats, CallStats] | None"]
"""Returns ``(totals, current)``: the pipeline's lifetime statistics (monotonic) and those of
the current call, or ``None`` while there is no pipeline."""


class ScrapeCollector(Collector):
    """A collector of one concern; subclasses build their families in :meth:`families`."""

    concern: ClassVar[str] = "callwatch"
    """What the collector exports, for the log line when it fails."""

    def families(self) -> Iterable[Metric]:
        raise NotImplementedError

    def collect(self) -> list[Metric]:
        # Built whole before anything is handed over, so a failure half-way leaves out this
        # collector's families, never a half-filled family.
        try:
            return list(self.families())
        except Exception:
            log.exception("the %s metrics could not be read; left out of this scrape",
                          self.concern)
            return []

    def describe(self) -> list[Metric]:
        return self.collect()


def read_pipeline(source: PipelineStats, concern: str) -> tuple[CallStats, CallStats] | None:
    """``source()``, or ``None`` (logged) when it fails: the pipeline may be being rebuilt,
    and what a collector does without its statistics (hold a counter, leave a gauge out) is
    its own decision."""
    try:
        return source()
    except Exception:
        log.exception("reading the pipeline statistics for the %s metrics failed", concern)
        return None
