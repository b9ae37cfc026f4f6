"""Echo verdicts: the ``echo_min_s`` boundary, resolve and reload (on a scripted estimate)."""

from __future__ import annotations

import dataclasses

from dsp.detectors.echo import Echo
from dsp.events import Kind, Phase
from dsp.party import SEGMENT_FRAMES, segments
from dsp.settings import DetectorSettings

S = DetectorSettings()


class _Estimate:
    """What the verdict reads of :class:`dsp.echo.EchoEstimator`."""

    def __init__(self, coupling_db: float) -> None:
        self.present = True
        self.coupling_db = coupling_db
        self.delay_ms = 120.0


def _run(det: Echo, n: int, first: int = 0) -> list:
    return [e for k in range(first, first + n)
            for e in det.judge(k * SEGMENT_FRAMES, (k + 1) * SEGMENT_FRAMES)]


def test_coupling_for_exactly_echo_min_is_reported_one_segment_under_is_not():
    n = segments(S.echo_min_s)
    assert _run(Echo(S, _Estimate(-10.0)), n - 1) == []  # type: ignore[arg-type]
    (begin,) = _run(Echo(S, _Estimate(-10.0)), n)  # type: ignore[arg-type]
    assert begin.kind is Kind.ECHO and begin.phase is Phase.BEGIN
    assert begin.data["coupling_db"] == -10.0 and begin.data["erl_db"] == 10.0


def test_resolves_when_the_coupling_drops():
    est = _Estimate(-10.0)
    det = Echo(S, est)  # type: ignore[arg-type]
    _run(det, segments(S.echo_min_s))
    est.coupling_db = -50.0
    (end,) = _run(det, segments(S.resolve_s), first=10)
    assert end.phase is Phase.END and end.end == 10 * SEGMENT_FRAMES * 320


def test_reload_changes_the_threshold():
    det = Echo(S, _Estimate(-35.0))  # type: ignore[arg-type]
    assert _run(det, 5) == []
    det.configure(dataclasses.replace(S, echo_max_coupling_db=-40.0))
    assert len(_run(det, segments(S.echo_min_s), first=5)) == 1
