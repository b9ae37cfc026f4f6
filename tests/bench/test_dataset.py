"""The development set builder is deterministic and its truth describes its audio."""

from __future__ import annotations

import hashlib
import json

import numpy as np
import pytest
import soundfile as sf

from bench.audio import frame_db
from bench.dataset import SPECS, build
from bench.sources import Library, backchannel_utterances, codec2_utterances

DURATION = (20.0, 25.0)


@pytest.fixture(scope="module")
def lib():
    return Library(tuple(codec2_utterances()), tuple(backchannel_utterances()))


def digest(folder):
    out = {}
    for f in sorted(folder.glob("call-*")):
        out[f.name] = hashlib.sha256(f.read_bytes()).hexdigest()
    return out


def test_same_seed_same_files_other_seed_other_files(tmp_path, lib):
    a, b, c = tmp_path / "a", tmp_path / "b", tmp_path / "c"
    build(a, seed=7, calls=2, jobs=1, duration_s=DURATION, lib=lib)
    build(b, seed=7, calls=2, jobs=2, duration_s=DURATION, lib=lib)
    build(c, seed=8, calls=2, jobs=1, duration_s=DURATION, lib=lib)
    da, db, dc = digest(a), digest(b), digest(c)
    assert len(da) == 4  # two WAVs, two truth files
    assert da == db
    assert all(da[k] != dc.get(k) for k in da)
    assert json.loads((a / "manifest.json").read_text())["calls"] == [
        f.name for f in sorted(a.glob("call-*.wav"))]


def test_truth_matches_audio(tmp_path, lib):
    build(tmp_path, seed=3, calls=2, jobs=1, duration_s=DURATION, lib=lib)
    for i, wav in enumerate(sorted(tmp_path.glob("call-*.wav"))):
        truth = json.loads(wav.with_suffix(".truth.json").read_text())
        x, rate = sf.read(wav, dtype="float64")
        assert rate == SPECS[i].rate == truth["sample_rate_hz"]
        assert truth["conditions"][0] == SPECS[i].condition
        frame = int(rate * 0.02)
        for ch, party in enumerate(("agent", "customer")):
            d = frame_db(x[:, ch], frame)
            spurts = truth["spurts"][party]
            inside = np.concatenate([d[int(a / 0.02) : int(b / 0.02)] for a, b in spurts])
            assert np.median(inside) > truth[party]["active_level_dbfs"] - 15
        for t in truth["talk_overs"]:
            assert t["end_s"] - t["start_s"] >= 0.9
            assert t["initiator"] in ("agent", "customer")


def test_accuracy_report_end_to_end_on_a_tiny_set(tmp_path, lib, capsys):
    from bench.accuracy import main

    data = tmp_path / "data"
    build(data, seed=5, calls=2, jobs=1, duration_s=DURATION, lib=lib)
    out = tmp_path / "acc.json"
    assert main(["--data", str(data), "--jobs", "1", "--out", str(out)]) == 0
    table = capsys.readouterr().out
    assert "| talk-over F1 |" in table and "| callwatch | baseline |" in table
    results = json.loads(out.read_text())["results"]
    for system in ("callwatch", "baseline"):
        assert results[system]["missing_reports"] == []
        overall = results[system]["overall"]
        assert overall["calls"] == 2
        assert overall["tp"] + overall["fn"] == overall["true_talk_overs"]
    # The analysis contract carries levels; the baseline has none to score.
    assert results["callwatch"]["overall"]["level_error_db"]["n"] > 0
    assert results["baseline"]["overall"]["level_error_db"]["n"] == 0
