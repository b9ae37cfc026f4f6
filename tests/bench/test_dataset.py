"""The accuracy set builder is deterministic and its truth describes its audio."""

from __future__ import annotations

import hashlib
import json

import numpy as np
import pytest
import soundfile as sf

from bench.audio import frame_db
from bench.dataset import RATES, build, plan
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
    build(a, seed=7, calls=2, jobs=1, duration_s=DURATION, lib=lib, first=1)
    build(b, seed=7, calls=2, jobs=2, duration_s=DURATION, lib=lib, first=1)
    build(c, seed=8, calls=2, jobs=1, duration_s=DURATION, lib=lib, first=1)
    da, db, dc = digest(a), digest(b), digest(c)
    assert len(da) == 4  # two WAVs, two truth files
    assert da == db
    assert all(da[k] != dc.get(k) for k in da)
    assert json.loads((a / "manifest.json").read_text())["calls"] == [
        f.name for f in sorted(a.glob("call-*.wav"))]


def test_truth_matches_audio(tmp_path, lib):
    build(tmp_path, seed=3, calls=4, jobs=1, duration_s=DURATION, lib=lib, first=1)
    specs = plan("dev")
    for i, wav in enumerate(sorted(tmp_path.glob("call-*.wav")), start=1):
        truth = json.loads(wav.with_suffix(".truth.json").read_text())
        x, rate = sf.read(wav, dtype="float64")
        assert rate == RATES[i % len(RATES)] == truth["sample_rate_hz"]
        assert truth["conditions"] == specs[i].conditions(rate)
        frame = int(rate * 0.02)
        for ch, party in enumerate(("agent", "customer")):
            d = frame_db(x[:, ch], frame)
            active = truth["activity"][party]
            inside = np.concatenate([d[int(a / 0.02) : int(b / 0.02)] for a, b in active])
            assert np.median(inside) > truth[party]["active_level_dbfs"] - 15
        for t in truth["talk_overs"]:
            assert t["end_s"] - t["start_s"] >= 1.0
            assert t["initiator"] in ("agent", "customer")


def test_accuracy_report_end_to_end_on_a_tiny_set(tmp_path, lib, capsys):
    from bench.accuracy import main

    data = tmp_path / "data"
    build(data, seed=5, calls=2, jobs=1, duration_s=DURATION, lib=lib, first=1)
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


def test_a_set_built_by_another_generator_is_named_stale(tmp_path, lib, capsys):
    """A set keeps the digest of the code that built it: figures measured on a set from
    another plan or other noises are not this code's, and the accuracy run says so."""
    from bench.accuracy import main
    from bench.dataset import generator_digest, stale

    data = tmp_path / "data"
    build(data, seed=5, calls=1, jobs=1, duration_s=DURATION, lib=lib, first=1)
    manifest = json.loads((data / "manifest.json").read_text())
    assert manifest["generator"] == generator_digest() and stale(data) is None
    manifest["generator"] = "0" * 16
    (data / "manifest.json").write_text(json.dumps(manifest))
    assert "another version of the set generator" in stale(data)
    out = tmp_path / "acc.json"
    assert main(["--data", str(data), "--jobs", "1", "--out", str(out),
                 "--systems", "callwatch"]) == 0
    assert "warning:" in capsys.readouterr().err


def test_plans_cover_the_conditions_in_both_sets_with_one_long_call():
    for name in ("dev", "blind"):
        specs = plan(name)
        assert sum(s.long for s in specs) == 1 and specs[0].long
        labels = {c for s in specs for c in s.conditions(16000)}
        assert {"clean", "babble", "typing", "rain", "hum", "leak", "phone", "quiet_party",
                "low_agent", "clipping", "snr<=10", "snr>10"} <= labels
        assert any(s.leak and s.noise != "clean" for s in specs)
    assert len(plan("blind")) < len(plan("dev"))
    # The development set's steady noise (the blind set's is its running water).
    assert any(s.noise == "fan" and s.snr_db and s.snr_db[1] <= 10 for s in plan("dev"))


def test_fan_is_steady_and_rain_is_not():
    """The fan swings within 3 dB (20 ms frames, 10th to 90th percentile) as running water
    does; rain's drips and swells reach over twice that."""
    from bench.noises import fan, rainforest

    rate = 16000
    for seed in (1, 2):
        db = frame_db(fan(np.random.default_rng(seed), 20 * rate, rate), rate // 50)
        assert np.percentile(db, 90) - np.percentile(db, 10) < 3.5
    db = frame_db(rainforest(np.random.default_rng(1), 20 * rate, rate), rate // 50)
    assert np.percentile(db, 90) - np.percentile(db, 10) > 5.0


def test_truth_has_the_hard_cases(tmp_path, lib):
    """Over a few calls: interruptions of >= 1 s, must-not overlaps, a clipped or a quiet
    party, telephone-band audio, as the plan says."""
    build(tmp_path, seed=1, calls=8, jobs=2, duration_s=(40.0, 45.0), lib=lib, first=1)
    truths = [json.loads(f.read_text()) for f in sorted(tmp_path.glob("*.truth.json"))]
    assert sum(len(t["talk_overs"]) for t in truths) >= 8
    assert sum(len(t["short_overlaps"]) + len(t["optional_talk_overs"]) for t in truths) >= 4
    assert all(t["talk_overs"] == [] or {e["initiator"] for e in t["talk_overs"]} <=
               {"agent", "customer", None} for t in truths)
    rates = {t["sample_rate_hz"] for t in truths}
    assert rates == {8000, 16000, 48000}


def test_babble_is_already_going_at_the_first_sample(lib):
    from bench.noises import babble

    rate = 16000
    x = babble(np.random.default_rng(5), list(lib.speech), 8 * rate, rate)
    db = frame_db(x, rate // 4)  # quarter seconds
    # The office talks from the first quarter second as it does later (talkers joined
    # before the call); with lead_s=0 the first quarter second holds at most one talker.
    assert db[0] > np.median(db) - 6.0
    late = babble(np.random.default_rng(5), list(lib.speech), 8 * rate, rate, lead_s=0.0)
    assert frame_db(late, rate // 4)[0] < np.median(frame_db(late, rate // 4)) - 6.0
