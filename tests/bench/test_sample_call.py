"""The committed sample call holds what its truth file says, and the script rebuilds it exactly."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from bench.audio import frame_db

ROOT = Path(__file__).resolve().parents[2]
WAV = ROOT / "samples" / "sample-call.wav"
TRUTH = json.loads((ROOT / "samples" / "sample-call.truth.json").read_text())
FRAME_S = 0.02


@pytest.fixture(scope="module")
def levels():
    x, rate = sf.read(WAV, dtype="float64")
    assert rate == 16000 and x.shape[1] == 2
    return {p: frame_db(x[:, ch], int(rate * FRAME_S)) for ch, p in enumerate(("agent",
                                                                               "customer"))}


def window(d, a, b):
    return d[int(a / FRAME_S) : int(b / FRAME_S)]


def test_format_and_size():
    info = sf.info(WAV)
    assert (info.samplerate, info.channels, info.subtype) == (16000, 2, "PCM_16")
    assert WAV.stat().st_size < 2_000_000
    assert TRUTH["duration_s"] == pytest.approx(info.duration, abs=0.01)


def test_two_talk_overs_with_both_parties_loud_and_different_initiators(levels):
    tos = TRUTH["talk_overs"]
    assert len(tos) == 2
    assert {t["initiator"] for t in tos} == {"agent", "customer"}
    for t in tos:
        assert t["end_s"] - t["start_s"] >= 1.2
        for party in ("agent", "customer"):
            w = window(levels[party], t["start_s"], t["end_s"])
            # Speech in most frames (word gaps and soft word edges allowed), well above the noise.
            assert np.mean(w > -45) >= 0.65, (party, t)


def test_backchannel_is_short_and_dead_air_is_quiet(levels):
    # Under 1 s the backchannel need not be reported (DESIGN.md §4.4), nor is it forbidden.
    assert TRUTH["short_overlaps"] == []
    (bc,) = TRUTH["optional_talk_overs"]
    assert 0.3 <= bc["end_s"] - bc["start_s"] < 0.7
    assert np.mean(window(levels["agent"], bc["start_s"], bc["end_s"]) > -45) >= 0.7
    (gap,) = TRUTH["dead_air"]
    assert gap["end_s"] - gap["start_s"] >= 6.0
    # Nobody speaks: the customer line is at its room noise, the agent side holds only the
    # babble (-40 dBFS), never speech-loud frames.
    inner = (gap["start_s"] + 0.2, gap["end_s"] - 0.2)
    assert window(levels["customer"], *inner).max() < -60
    assert window(levels["agent"], *inner).max() < -30


def test_speech_time_matches_truth(levels):
    for party in ("agent", "customer"):
        active = TRUTH["activity"][party]
        assert sum(b - a for a, b in active) == pytest.approx(TRUTH[party]["speech_s"], abs=0.02)
        inside = np.concatenate([window(levels[party], a, b) for a, b in active])
        assert np.mean(inside > -50) > 0.75


def test_script_rebuilds_the_committed_file(tmp_path):
    from bench.make_sample import build

    truth = build(tmp_path)
    digest = hashlib.sha256((tmp_path / "sample-call.wav").read_bytes()).hexdigest()
    assert digest == hashlib.sha256(WAV.read_bytes()).hexdigest()
    assert truth == TRUTH


def test_the_samples_readme_gives_the_truth_files_times():
    """samples/README.md says its times come from the truth file: each talk-over, the
    backchannel and the dead air appear there as the truth file has them."""
    readme = (ROOT / "samples" / "README.md").read_text()
    spans = [*TRUTH["talk_overs"], *TRUTH["optional_talk_overs"], *TRUTH["dead_air"]]
    assert len(spans) == 4
    for s in spans:
        assert f"{s['start_s']:.2f}–{s['end_s']:.2f} s" in readme, s
