"""The ambience probe: the train recording lands in the agent's channel at the asked SNR, the
customer's is untouched, and the truth keeps the clean call's speech with the new noise."""

from __future__ import annotations

import json

import numpy as np
import soundfile as sf

from bench.probe_ambience import clean_calls, mix


def test_the_train_goes_into_the_agents_channel_at_the_asked_snr(tmp_path):
    rate = 16000
    rng = np.random.default_rng(3)
    call = np.zeros((10 * rate, 2))
    call[:, 1] = 0.05 * rng.standard_normal(10 * rate)
    src = tmp_path / "set"
    src.mkdir()
    sf.write(src / "call-000-clean-16k.wav", call, rate, subtype="FLOAT")
    truth = {"file": "call-000-clean-16k.wav", "conditions": ["clean", "16k"],
             "quiet_room": True, "noise_alert_expected": False,
             "agent": {"active_level_dbfs": -30.0, "noise_floor_dbfs": -70.0, "snr_db": 40.0}}
    (src / "call-000-clean-16k.truth.json").write_text(json.dumps(truth))
    left_out = {**truth, "file": "call-001-clean-leak-16k.wav", "conditions": ["clean", "leak"]}
    (src / "call-001-clean-leak-16k.truth.json").write_text(json.dumps(left_out))

    (wav, t), = clean_calls([src])  # the leak call is not the probe's
    out = tmp_path / "out"
    out.mkdir()
    new = mix(wav, t, 5.0, np.random.default_rng(1), out)
    y, r = sf.read(out / new["file"], always_2d=True)
    assert r == rate
    agent_dbfs = 10 * np.log10(np.mean(y[:, 0] ** 2))
    assert abs(agent_dbfs - (-35.0)) < 0.01  # the agent's level less 5 dB
    assert np.array_equal(y[:, 1], call[:, 1].astype(np.float32))
    assert new["conditions"] == ["clean", "16k", "train5"]
    assert new["noise_alert_expected"] is True and new["quiet_room"] is False
    assert abs(new["agent"]["noise_floor_dbfs"] - (-35.0)) < 0.01
    assert abs(new["agent"]["snr_db"] - 5.0) < 0.01
    assert mix(wav, t, 15.0, np.random.default_rng(1), out)["noise_alert_expected"] is False

    # On the customer's line instead: the agent's channel and truth are untouched.
    t["customer"] = {"active_level_dbfs": -26.0, "noise_floor_dbfs": -80.0, "snr_db": 54.0}
    new = mix(wav, t, 8.0, np.random.default_rng(1), out, "customer")
    y, _ = sf.read(out / new["file"], always_2d=True)
    assert np.array_equal(y[:, 0], call[:, 0].astype(np.float32))
    customer_dbfs = 10 * np.log10(np.mean((y[:, 1] - call[:, 1]) ** 2))
    assert abs(customer_dbfs - (-34.0)) < 0.01
    assert new["agent"] == t["agent"] and new["quiet_room"] is True
    assert new["noise_alert_expected"] is None
    assert abs(new["customer"]["snr_db"] - 8.0) < 0.01


def test_bad_arguments_are_refused_with_their_fix(tmp_path, capsys):
    from bench.probe_ambience import main

    assert main(["--code", str(tmp_path)]) == 2
    assert "no daemon/cli.py there" in capsys.readouterr().err
    assert main(["--jobs", "0"]) == 2
    assert "give 1 or more processes" in capsys.readouterr().err
    assert main(["--data", str(tmp_path / "none")]) == 2
    assert "no such folder" in capsys.readouterr().err
    assert main(["--snr", "abc"]) == 2
    assert "give dB values" in capsys.readouterr().err
    assert main(["--data", str(tmp_path)]) == 2  # a folder without clean calls
    assert "no clean calls" in capsys.readouterr().err
