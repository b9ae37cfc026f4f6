"""Noise verdicts: the ``noise_min_s`` boundary, SNR, resolve and reload."""

from __future__ import annotations

import dataclasses

from dsp import ANALYSIS_RATE
from dsp.detectors.noise import Noise
from dsp.events import Kind, Phase, Stream
from dsp.party import Party, frames
from dsp.settings import DetectorSettings

S = DetectorSettings()


def _noise(settings: DetectorSettings = S) -> Noise:
    return Noise(Party(Stream.AGENT, ANALYSIS_RATE, settings), settings)


def test_noise_of_exactly_noise_min_is_reported_one_frame_under_is_not():
    n = frames(S.noise_min_s)
    det = _noise()
    assert det.judge(0, n - 1, -30.0, n - 1) == []
    (begin,) = det.judge(n - 1, 1, -30.0, n)
    assert begin.phase is Phase.BEGIN and begin.kind is Kind.NOISE and begin.start == 0
    assert begin.data["noise_floor_dbfs"] == -30.0
    assert _noise().judge(0, n - 1, -30.0, n) == []


def test_resolves_after_resolve_s_back_below_the_hysteresis():
    n = frames(S.noise_min_s)
    det = _noise()
    det.judge(0, n, -30.0, n)
    assert det.judge(n, 10, S.noise_floor_dbfs - 1.0, n + 10) == []  # inside the hysteresis
    (end,) = det.judge(n + 10, frames(S.resolve_s), -70.0, n + 60)
    assert end.phase is Phase.END and end.end == (n + 10) * 320


def test_an_end_gives_the_snr_at_the_worst_noise_not_at_the_quiet_that_ended_it():
    n = frames(S.noise_min_s)
    det = _noise()
    det.party.level_dbfs = lambda: -26.0  # type: ignore[method-assign]  # the party's speech
    (begin,) = det.judge(0, n, -36.0, n)
    assert begin.data["snr_db"] == 10.0
    assert det.judge(n, 20, -33.0, n + 20) == []  # worse while it lasts
    (end,) = det.judge(n + 20, frames(S.resolve_s), -70.0, n + 80)
    assert end.phase is Phase.END
    assert (end.data["noise_floor_dbfs"], end.data["snr_db"]) == (-33.0, 7.0)


def test_close_ends_an_open_condition():
    det = _noise()
    n = frames(S.noise_min_s)
    det.judge(0, n, -30.0, n)
    (end,) = det.close(n + 5)
    assert end.phase is Phase.END and end.end == (n + 5) * 320


def test_reload_shortens_the_minimum_and_keeps_the_run():
    det = _noise()
    det.judge(0, frames(2.0), -30.0, frames(2.0))
    det.configure(dataclasses.replace(S, noise_min_s=3.0))
    (begin,) = det.judge(frames(2.0), frames(1.0), -30.0, frames(3.0))
    assert begin.phase is Phase.BEGIN and begin.start == 0
