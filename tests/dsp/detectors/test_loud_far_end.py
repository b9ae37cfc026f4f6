"""Loud far end: the far end's A-weighted LAeq, in dB(A) SPL once calibrated, in dBFS when not."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from dsp import ANALYSIS_RATE, FRAME_LEN
from dsp.detectors.loud_far_end import LoudFarEnd
from dsp.events import Event, Kind, Phase, Stream
from dsp.hearing import HearingSettings
from tests.speech import voice

S = HearingSettings()
SR = ANALYSIS_RATE


def frames_of(x: np.ndarray) -> np.ndarray:
    n = len(x) // FRAME_LEN
    return np.asarray(x[: n * FRAME_LEN], dtype=np.float32).reshape(n, FRAME_LEN)


def run(x: np.ndarray, settings: HearingSettings = S, chunk: int = 13
        ) -> tuple[list[Event], LoudFarEnd]:
    f = frames_of(x)
    det = LoudFarEnd(settings)
    out: list[Event] = []
    for i in range(0, len(f), chunk):
        out += det.update(i, f[i : i + chunk])
    return out + det.close(len(f)), det


def tone(rms_dbfs: float, seconds: float, freq: float = 1000.0) -> np.ndarray:
    t = np.arange(int(seconds * SR)) / SR
    return (np.sqrt(2) * 10 ** (rms_dbfs / 20) * np.sin(2 * np.pi * freq * t)).astype(np.float32)


def test_uncalibrated_loud_tone_begins_after_the_window_and_says_uncalibrated() -> None:
    x = np.concatenate([tone(-30, 10), tone(-10, 10), tone(-30, 10)])
    events, _ = run(x)
    begin, end = events
    assert begin.kind is Kind.LOUD_FAR_END and begin.stream is Stream.CUSTOMER
    assert begin.phase is Phase.BEGIN and end.phase is Phase.END
    assert begin.data["calibrated"] == 0 and "level_dba" not in begin.data
    assert begin.data["threshold_dbfs"] == S.loud_far_end_dbfs
    # The window's LAeq crosses -15 dBFS once a third of it is at -10 dBFS (~2 s in).
    assert 10 + 1 <= begin.end / SR <= 10 + 3
    assert 20 + 1 <= end.end_s <= 20 + 5
    # The END's own level is the quieter window that ended it; it also says how loud it got.
    assert float(end.data["level_dbfs"]) < S.loud_far_end_dbfs
    assert float(end.data["worst_level_dbfs"]) == pytest.approx(-10.0, abs=0.3)
    assert "worst_level_dbfs" not in begin.data


def test_calibrated_compares_db_a_spl() -> None:
    """A -20 dBFS tone on a headset where 0 dBFS is 110 dB SPL is 90 dB(A): too loud; on one
    where it is 95 dB SPL, 75 dB(A): fine, though the dBFS level is the same."""
    x = tone(-20, 12)
    loud, det = run(x, dataclasses.replace(S, dbspl_at_0dbfs=110.0))
    assert loud[0].phase is Phase.BEGIN and loud[0].data["calibrated"] == 1
    assert float(loud[0].data["level_dba"]) == pytest.approx(90.0, abs=0.1)
    assert det.level == pytest.approx(90.0, abs=0.1)
    fine, _ = run(x, dataclasses.replace(S, dbspl_at_0dbfs=95.0))
    assert fine == []


def test_a_low_hum_counts_less_than_a_tone_at_1_khz() -> None:
    """A-weighting: 100 Hz at -10 dBFS is about -29 dB(A)FS, nowhere near too loud."""
    assert run(tone(-10, 10, 100.0))[0] == []
    assert run(tone(-10, 10, 1000.0))[0] != []


def test_speech_at_the_nominal_level_is_not_loud() -> None:
    assert run(voice("hts2"))[0] == []


def test_energy_totals_are_the_frames_a_weighted_energy_whatever_the_chunking() -> None:
    x = np.concatenate([voice("cq_ref")[: 7 * SR], tone(-10, 8)])
    a_events, a = run(x, chunk=1)
    b_events, b = run(x, chunk=137)
    assert a_events == b_events and len(a_events) == 2
    assert a.energy_fs2_s == b.energy_fs2_s and a.seconds == b.seconds == 15.0
    assert a.energy_fs2_s == pytest.approx(float(np.mean(x.astype(np.float64)[:7*SR] ** 2)) * 7
                                           + 0.1 * 8, rel=0.05)


def test_a_caller_reusing_its_buffer_changes_nothing() -> None:
    """Frames of an unfinished segment are kept as copies: a caller that refills one buffer
    for every block (as a live capture loop does) gets the same totals and events as fresh
    arrays give, and the detector never writes into the frames it is given."""
    x = np.concatenate([voice("cq_ref")[: 7 * SR], tone(-10, 8)])
    f = frames_of(x)
    want_events, want = run(x, chunk=37)
    det = LoudFarEnd(S)
    buf = np.empty((37, FRAME_LEN), np.float32)
    events: list[Event] = []
    for i in range(0, len(f), 37):
        block = buf[: len(f[i : i + 37])]
        block[:] = f[i : i + 37]
        events += det.update(i, block)
        assert np.array_equal(block, f[i : i + 37])
        block[:] = 1.0  # the caller reuses its buffer
    events += det.close(len(f))
    assert events == want_events and len(events) == 2
    assert det.energy_fs2_s == want.energy_fs2_s and det.laeq_dbfs == want.laeq_dbfs


def test_reload_keeps_the_window_and_switches_scale() -> None:
    det = LoudFarEnd(S)
    f = frames_of(tone(-20, 6))
    assert det.update(0, f) == []  # -20 dBFS(A) is under the uncalibrated -15
    det.configure(dataclasses.replace(S, dbspl_at_0dbfs=110.0))
    (begin,) = det.update(len(f), frames_of(tone(-20, 1)))
    assert begin.data["calibrated"] == 1
