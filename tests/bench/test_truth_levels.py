"""The development set's P.56 levels agree with the literal per-sample reference."""

from __future__ import annotations

import numpy as np
import pytest

from bench.levels import p56_active_level_dbfs
from bench.p56_reference import active_level_dbfs as reference

CODEC2 = "/usr/share/codec2/raw/{}.raw"


@pytest.mark.parametrize("name", ["hts1", "cq_ref"])
def test_vectorised_p56_matches_reference_on_real_speech(name):
    x = np.fromfile(CODEC2.format(name), dtype="<i2").astype(np.float64) / 32768
    x = np.concatenate([x, np.zeros(8000 * 3), 0.3 * x])  # pauses and a quieter repeat
    assert p56_active_level_dbfs(x, 8000) == pytest.approx(reference(x, 8000), abs=0.02)


def test_full_scale_sine_is_minus_3_dbfs_and_silence_has_no_level():
    t = np.arange(16000 * 2) / 16000
    assert p56_active_level_dbfs(np.sin(2 * np.pi * 1000 * t), 16000) == pytest.approx(
        -3.01, abs=0.1)
    assert p56_active_level_dbfs(np.zeros(16000), 16000) is None
