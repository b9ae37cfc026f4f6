"""Echo: the far end coupling into the agent's mic above ``echo_max_coupling_db`` for
``echo_min_s``. The coupling and delay are estimated by :class:`dsp.echo.EchoEstimator`."""

from __future__ import annotations

import math

from dsp.condition import BEGIN, END, Condition
from dsp.detectors import carry, event
from dsp.echo import EchoEstimator
from dsp.events import Event, Kind, Phase, Stream
from dsp.levels import DBFS_FLOOR
from dsp.party import segments
from dsp.settings import DetectorSettings


class Echo:
    """Judged at each segment end where the estimator has a fresh estimate."""

    def __init__(self, settings: DetectorSettings, estimator: EchoEstimator) -> None:
        self.estimator = estimator
        self.cond: Condition | None = None
        self.configure(settings)

    def configure(self, s: DetectorSettings) -> None:
        self.threshold_db = s.echo_max_coupling_db
        self.cond = carry(self.cond, segments(s.echo_min_s), segments(s.resolve_s))

    def judge(self, seg_start: int, end: int) -> list[Event]:
        est, cond = self.estimator, self.cond
        assert cond is not None
        bad = est.present and est.coupling_db > self.threshold_db
        r = cond.update(seg_start, bad, not bad)
        if r is BEGIN:
            return [self._event(Phase.BEGIN, cond.start, end)]
        if r is END:
            return [self._event(Phase.END, cond.start, cond.end)]
        return []

    def close(self, frame: int) -> list[Event]:
        cond = self.cond
        assert cond is not None
        if not cond.close(frame):
            return []
        return [self._event(Phase.END, cond.start, cond.end)]

    def _event(self, phase: Phase, start: int, end: int) -> Event:
        est = self.estimator
        coupling = est.coupling_db if math.isfinite(est.coupling_db) else DBFS_FLOOR
        return event(Kind.ECHO, phase, Stream.AGENT, start, end, coupling_db=coupling,
                     erl_db=-coupling, delay_ms=est.delay_ms, threshold_db=self.threshold_db)
