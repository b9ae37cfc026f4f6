"""Coaching metrics: how the agent and the customer share the current call.

Per party (``stream`` label), read at scrape time from the frozen snapshot of the current
call that the processing loop publishes (:class:`daemon.metrics.PublishedStats`):

- ``callwatch_talk_share_ratio``: the party's share of both parties' speech time, 0..1. The
  agent's is judged against the 40-60 % band (DESIGN.md §5) on the board.
- ``callwatch_speech_rate_syllables_per_second``: the party's articulation rate (syllable
  nuclei per second of their speech; 4.5 is about 160 words a minute, the top of the
  comfortable range).
- ``callwatch_longest_turn_seconds``: the party's longest turn so far (an agent turn over
  120 s is a monologue).

They are gauges of one call, not counters: a talk share or a pace has no meaningful sum over
calls, and the per-call value is what a supervisor compares with the norms. Like the level
gauges they describe the current call, or the last one until the next call starts, and a
value that is not known yet (no speech, too little speech for a rate) is left out rather than
exported as a made-up number. How often the pace and monologue nudges fired is already
counted by ``callwatch_alerts_fired_total{kind="fast_speech"|"monologue"}``, so there is no
second counter here.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator

from prometheus_client.core import GaugeMetricFamily, Metric

from daemon.metrics_scrape import PipelineStats, ScrapeCollector, read_pipeline
from dsp.events import Stream
from dsp.stats import StreamStats

COACHING_GAUGES: tuple[tuple[str, str, Callable[[StreamStats], float | None]], ...] = (
    ("callwatch_talk_share_ratio",
     "Share of both parties' speech time this party spoke in the current call (the last one "
     "between calls), 0..1; absent until someone speaks", lambda st: st.talk_share),
    ("callwatch_speech_rate_syllables_per_second",
     "Speaking rate in the current call (the last one between calls), syllables per second "
     "of the party's speech; absent until there is enough speech",
     lambda st: st.speech_rate_sps),
    ("callwatch_longest_turn_seconds",
     "Longest turn of the party in the current call (the last one between calls), seconds",
     lambda st: st.longest_turn_s),
)
"""Name, help text and how to read each per-party gauge from a :class:`StreamStats`."""


class CoachingCollector(ScrapeCollector):
    """Talk share, speaking rate and longest turn per party, read at scrape time.

    It holds no state of its own: each scrape reads the last published snapshot, so
    concurrent scrapes need no lock and never touch the pipeline.
    """

    concern = "coaching"

    def __init__(self, pipeline_stats: PipelineStats) -> None:
        self._pipeline_stats = pipeline_stats

    def families(self) -> Iterator[Metric]:
        pair = read_pipeline(self._pipeline_stats, self.concern)
        current = pair[1] if pair is not None else None
        for name, doc, read in COACHING_GAUGES:
            g = GaugeMetricFamily(name, doc, labels=["stream"])
            if current is not None:
                for stream in Stream:
                    value = read(getattr(current, stream.value))
                    if value is not None and math.isfinite(value):
                        g.add_metric([stream.value], value)
            yield g
