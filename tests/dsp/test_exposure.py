"""Daily exposure: the A-weighted meter against IEC 61672 and LEX,8h against a hand
computation for a constant tone over a simulated hour."""

from __future__ import annotations

import math

import numpy as np
import pytest

from dsp import ANALYSIS_RATE, FRAME_LEN
from dsp.exposure import Exposure, ExposureState
from dsp.hearing import a_weighted_power, a_weighting_db

SR = ANALYSIS_RATE


def tone_frames(freq: float, rms_dbfs: float, seconds: float, t0: float = 0.0) -> np.ndarray:
    t = t0 + np.arange(int(seconds * SR)) / SR
    x = np.sqrt(2) * 10 ** (rms_dbfs / 20) * np.sin(2 * np.pi * freq * t)
    return x.reshape(-1, FRAME_LEN)


def test_a_weighting_matches_iec_61672_table() -> None:
    # IEC 61672-1 table values (dB, rounded to 0.1) at the exact base-10 frequencies.
    table = {10**1.5: -39.4, 100: -19.1, 1000: 0.0, 2000: 1.2, 4000: 1.0, 8000: -1.1}
    got = a_weighting_db(np.array(list(table)))
    assert got == pytest.approx(list(table.values()), abs=0.1)


@pytest.mark.parametrize(("freq", "weight"), [(1000, 0.0), (100, -19.1), (4000, 1.0)])
def test_a_weighted_level_of_a_tone(freq: float, weight: float) -> None:
    power = a_weighted_power(tone_frames(freq, -20.0, 1.0))
    assert 10 * np.log10(power) == pytest.approx(np.full(50, -20.0 + weight), abs=0.1)


def test_constant_tone_over_a_simulated_hour_matches_the_hand_computation() -> None:
    """1 kHz at -10 dBFS RMS on a headset where 0 dBFS is 100 dB SPL: LAeq = 90 dB(A) for one
    hour, so LEX,8h = 90 + 10·log10(1 h / 8 h) = 80.97 dB(A). Fed second by second through
    the meter as the daemon feeds it; the lower action value is reached at
    8 h · 10^((80 - 90)/10) = 2880 s."""
    exp = Exposure((80.0, 85.0))
    one_second = a_weighted_power(tone_frames(1000, -10.0, 1.0))
    reached_at = []
    for second in range(3600):
        energy = float(one_second.sum()) * 0.02
        for v in exp.add(energy, 1.0, dbspl_at_0dbfs=100.0):
            reached_at.append((v, second + 1))
    hand = 90.0 + 10 * math.log10(1 / 8)
    assert exp.lex_8h_db == pytest.approx(hand, abs=0.02)
    assert exp.laeq_db == pytest.approx(90.0, abs=0.02)
    assert reached_at == [(80.0, 2880)]
    assert not exp.uncalibrated


def test_upper_action_value_and_both_in_one_step() -> None:
    """94.5 dB(A) reaches 80 after 8 h·10^-1.45 = 1021.9 s and 85 after 8 h·10^-0.95 =
    3231.3 s."""
    exp = Exposure((80.0, 85.0))
    ms = 10 ** (-5.5 / 10)
    seen = []
    for second in range(1, 3601):
        seen += [(v, second) for v in exp.add(ms, 1.0, 100.0)]
    assert seen == [(80.0, 1022), (85.0, 3232)]
    loud = Exposure((80.0, 85.0))
    assert loud.add(ms * 3600, 3600.0, 100.0) == [80.0, 85.0]


def test_uncalibrated_audio_is_never_reported_in_db_spl() -> None:
    exp = Exposure()
    assert exp.add(1.0, 3600.0, None) == []
    assert exp.lex_8h_db is None and exp.laeq_db is None
    assert exp.uncalibrated
    assert exp.uncalibrated_laeq_dbfs == pytest.approx(10 * math.log10(1 / 3600))


def test_a_sensitivity_change_does_not_rescale_what_was_heard() -> None:
    exp = Exposure()
    exp.add(0.1 * 3600, 3600.0, 100.0)  # 90 dB(A) for an hour
    exp.add(0.1 * 3600, 3600.0, 80.0)  # then 70 dB(A) for an hour
    hand = 10 * math.log10((10**9 + 10**7) * 3600 / (8 * 3600))
    assert exp.lex_8h_db == pytest.approx(hand, abs=1e-9)


def test_state_round_trip_and_validation() -> None:
    exp = Exposure()
    exp.add(1.0, 10.0, 100.0)
    exp.add(2.0, 5.0, None)
    state = ExposureState.from_json(exp.state().to_json())
    again = Exposure(state=state)
    assert again.state() == exp.state()
    with pytest.raises(ValueError, match="dose_s"):
        ExposureState.from_json({"dose_s": -1})
    with pytest.raises(ValueError, match="calibrated_s"):
        ExposureState.from_json({"calibrated_s": "ten"})
    with pytest.raises(ValueError):
        Exposure().add(-1.0, 1.0, 100.0)
