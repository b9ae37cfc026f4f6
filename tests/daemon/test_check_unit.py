"""The pure parts of ``callwatch check`` on synthetic signals (and one real voice): hum, DC,
noise floor, dead mic, speech level, clipping, speaker coupling, verdicts and the saved
result the daemon exports."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import numpy as np
import pytest

from daemon.check.cli import build_result, render_text
from daemon.check.judge import (
    CheckSettings,
    judge_clipping,
    judge_dc,
    judge_echo,
    judge_far_end_route,
    judge_hum,
    judge_latency,
    judge_mic_signal,
    judge_noise,
    judge_snr,
    judge_speech_level,
    overall,
    volume_advice,
)
from daemon.check.measure import (
    band_limited_noise,
    dc_offset,
    measure_coupling,
    measure_hum,
    measure_speech,
    noise_floor_dbfs,
)
from daemon.check.result import (
    SCHEMA,
    Item,
    LastCheckWatcher,
    Verdict,
    apply_last_check,
    check_verdicts,
    load_last_check,
    save_result,
)
from daemon.check.steps import ITEM_ORDER
from daemon.config import ConfigError, build_settings
from daemon.state import DaemonState
from dsp.settings import DetectorSettings
from tests.speech import voice

DOCS = Path(__file__).resolve().parents[2] / "docs" / "check.md"

RATE = 16000
D = DetectorSettings()
C = CheckSettings()


def noise(seconds: float, dbfs: float, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return rng.standard_normal(round(seconds * RATE)) * 10 ** (dbfs / 20)


def tones(seconds: float, parts: list[tuple[float, float]]) -> np.ndarray:
    """Sines of (frequency, level dBFS) (a sine's RMS level, so amplitude = sqrt(2)·RMS)."""
    t = np.arange(round(seconds * RATE)) / RATE
    return sum(np.sqrt(2) * 10 ** (lvl / 20) * np.sin(2 * np.pi * f * t + f)
               for f, lvl in parts)


# -- hum ------------------------------------------------------------------------------------


@pytest.mark.parametrize("mains", [50.0, 60.0])
def test_hum_names_the_mains_frequency(mains):
    x = noise(3, -60) + tones(3, [(mains, -50), (2 * mains, -58), (3 * mains, -54)])
    hum = measure_hum(x, RATE)
    assert hum is not None
    assert hum.mains_hz == mains and hum.harmonic_hz == mains
    assert hum.prominence_db > 30
    assert abs(hum.level_dbfs - (-50)) < 1.5
    item = judge_hum(hum, C)
    assert item.verdict is Verdict.FAIL and item.threshold == C.hum_fail_db
    assert item.fix.startswith(f"Mains hum at {mains:.0f} Hz, ")


def test_hum_strongest_harmonic_and_warning_band():
    # Only the third harmonic stands out, by about 15 dB: a warning at 150 Hz.
    floor = noise(3, -50, seed=2)
    # white noise at -50 dBFS over 8 kHz is -89 dB per 1 Hz bin; a -77 dBFS tone is ~12 dB up
    x = floor + tones(3, [(150, -75)])
    hum = measure_hum(x, RATE)
    assert hum is not None and hum.mains_hz == 50 and hum.harmonic_hz == 150
    assert C.hum_warn_db <= hum.prominence_db < C.hum_fail_db, hum
    assert judge_hum(hum, C).verdict is Verdict.WARN


def test_no_hum_in_plain_noise():
    hum = measure_hum(noise(3, -55, seed=4), RATE)
    assert hum is not None and hum.prominence_db < C.hum_warn_db
    assert judge_hum(hum, C).verdict is Verdict.PASS


def test_inaudible_hum_is_ignored():
    x = noise(3, -110, seed=5) + tones(3, [(50, -90)])
    hum = measure_hum(x, RATE)
    assert hum is not None and hum.prominence_db > C.hum_fail_db and hum.level_dbfs < -85
    assert judge_hum(hum, C).verdict is Verdict.PASS


def test_hum_needs_signal():
    assert measure_hum(np.zeros(3 * RATE), RATE) is None
    assert judge_hum(None, C).verdict is Verdict.SKIP


# -- DC, floor, dead mic --------------------------------------------------------------------


@pytest.mark.parametrize(("dc", "verdict"), [(0.0, Verdict.PASS), (0.003, Verdict.PASS),
                                             (0.05, Verdict.WARN), (0.2, Verdict.FAIL)])
def test_dc_offset(dc, verdict):
    x = noise(1, -60) + dc
    assert abs(dc_offset(x) - dc) < 1e-3
    assert judge_dc(dc_offset(x), C).verdict is verdict


def test_noise_floor_is_robust_to_a_click():
    x = noise(3, -50)
    x[RATE : RATE + 400] = 0.9  # a 25 ms knock
    assert abs(noise_floor_dbfs(x, RATE) - (-50)) < 0.5


@pytest.mark.parametrize(("floor", "verdict"), [(-60, Verdict.PASS), (-48, Verdict.WARN),
                                                (-40, Verdict.FAIL)])
def test_noise_verdicts_use_the_detector_limit(floor, verdict):
    item = judge_noise(floor, D, C)
    assert item.verdict is verdict
    if verdict is Verdict.FAIL:
        assert item.threshold == D.noise_floor_dbfs


def test_a_digitally_silent_floor_is_not_measured():
    """A mic that gives only zeros while the agent is quiet measures no floor and no DC: its
    -120 dBFS would read as a perfect headset (as hum already says, not measured)."""
    for item in (judge_noise(None, D, C), judge_dc(None, C)):
        assert item.verdict is Verdict.SKIP and item.value is None, item
        assert "no signal from the mic" in item.message
    ok = measure_speech(real_speech(-26).astype(np.float32), RATE, D.clip_level)
    snr = judge_snr(ok, None, D, C, floor_silent=True)
    assert snr.verdict is Verdict.SKIP and "no signal from the mic" in snr.message


def test_dead_and_muted_mic():
    assert judge_mic_signal(-120, True, D).verdict is Verdict.FAIL
    assert "digital silence" in judge_mic_signal(-120, True, D).message
    assert judge_mic_signal(-80, False, D).verdict is Verdict.FAIL
    assert judge_mic_signal(-60, False, D).verdict is Verdict.PASS
    muted = judge_mic_signal(-120, True, D, source="alsa_input.usb", muted=True)
    assert muted.verdict is Verdict.FAIL
    assert "pactl set-source-mute alsa_input.usb 0" in muted.fix


# -- speech ---------------------------------------------------------------------------------


def real_speech(level_dbfs: float) -> np.ndarray:
    v = voice("hts1").astype(np.float64)
    m = measure_speech(v.astype(np.float32), RATE, D.clip_level)
    assert m.active_dbfs is not None
    return v * 10 ** ((level_dbfs - m.active_dbfs) / 20) + noise(len(v) / RATE, -70)[: len(v)]


@pytest.mark.parametrize(("level", "verdict"), [(-26, Verdict.PASS), (-34, Verdict.WARN),
                                                (-50, Verdict.FAIL), (-8, Verdict.FAIL)])
def test_speech_level_verdicts(level, verdict):
    sp = measure_speech(real_speech(level).astype(np.float32), RATE, D.clip_level)
    assert abs(sp.active_dbfs - level) < 0.6
    item = judge_speech_level(sp, D, C, volume_pct=40)
    assert item.verdict is verdict
    if verdict is not Verdict.PASS:
        side = "below" if level < -26 else "above"
        assert item.fix.startswith(f"Mic level is {abs(level + 26):.0f} dB {side} target")


def test_volume_advice_follows_the_cubic_volume_curve():
    assert volume_advice(14, 40) == "raise the input volume from 40 % to about 68 %"
    assert volume_advice(-10, 100) == "lower the input volume from 100 % to about 68 %"
    assert "maximum" in volume_advice(30, 60)
    assert volume_advice(14, None) == "raise the mic input volume by about 14 dB"


def test_no_speech_is_a_failure_and_no_test_a_skip():
    sp = measure_speech(noise(3, -65).astype(np.float32), RATE, D.clip_level)
    assert judge_speech_level(sp, D, C).verdict is Verdict.FAIL
    assert judge_speech_level(None, D, C).verdict is Verdict.SKIP


def test_clipping_and_snr():
    loud = np.clip(real_speech(-6), -1, 1).astype(np.float32)
    sp = measure_speech(loud, RATE, D.clip_level)
    clip = judge_clipping(sp, D, volume_pct=80)
    assert clip.verdict is Verdict.FAIL and sp.clipped_samples > 100
    assert "lower the input volume from 80 %" in clip.fix
    ok = measure_speech(real_speech(-26).astype(np.float32), RATE, D.clip_level)
    assert judge_clipping(ok, D).verdict is Verdict.PASS
    assert judge_snr(ok, -70, D, C).verdict is Verdict.PASS
    assert judge_snr(ok, -46, D, C).verdict is Verdict.WARN  # 20 dB
    assert judge_snr(ok, -36, D, C).verdict is Verdict.FAIL  # 10 dB


# -- speaker coupling -----------------------------------------------------------------------


@pytest.mark.parametrize(("gain_db", "verdict"), [(-12, Verdict.FAIL), (-35, Verdict.WARN),
                                                  (-50, Verdict.PASS)])
def test_coupling_of_a_delayed_copy(gain_db, verdict):
    ref = band_limited_noise(RATE, 1.0, -24)
    delay = 1234
    cap = noise(1.8, -70, seed=9)
    cap[delay : delay + len(ref)] += ref * 10 ** (gain_db / 20)
    cp = measure_coupling(ref, cap, RATE)
    assert cp.detected and cp.delay_samples == delay
    assert abs(cp.coupling_db - gain_db) < 1.0
    assert judge_echo(cp, D, C).verdict is verdict


def test_coupling_through_a_room_like_path():
    """A direct path plus reflections: the energy over the whole response counts."""
    ref = band_limited_noise(RATE, 1.0, -24)
    h = np.zeros(400)
    h[[0, 80, 250]] = [0.1, 0.07, 0.05]  # energy 0.0174 = -17.6 dB
    cap = noise(1.8, -70, seed=1)
    y = np.convolve(ref, h)
    cap[500 : 500 + len(y)] += y
    cp = measure_coupling(ref, cap, RATE)
    assert cp.detected and cp.delay_samples == 500
    assert abs(cp.coupling_db - 10 * np.log10(0.0174)) < 1.0


def test_no_coupling_gives_a_bound():
    ref = band_limited_noise(RATE, 1.0, -24)
    cp = measure_coupling(ref, noise(1.8, -60, seed=3), RATE)
    assert not cp.detected and cp.coupling_db < C.leak_warn_db
    item = judge_echo(cp, D, C)
    assert item.verdict is Verdict.PASS and item.value is None


def test_far_end_route_verdicts_and_their_advice():
    """A capture that hears the burst passes; one that does not fails with the advice to pick
    the output's monitor, unless it already is that monitor (then what to look at instead);
    a burst the output could not play whole (underflows) judges nothing: WARN, run again."""
    ref = band_limited_noise(RATE, 1.0, -24)
    heard = measure_coupling(ref, np.concatenate((np.zeros(800), ref * 0.5, np.zeros(800))),
                             RATE)
    deaf = measure_coupling(ref, noise(1.8, -60, seed=3), RATE)
    speaker, monitor = "pulse:headset", "pulse:headset.monitor"
    assert judge_far_end_route(heard, C, speaker, monitor).verdict is Verdict.PASS
    other = judge_far_end_route(deaf, C, speaker, "pulse:speakers.monitor")
    assert other.verdict is Verdict.FAIL and "set [capture] far_end_device" in other.fix
    same = judge_far_end_route(deaf, C, speaker, monitor)
    assert same.verdict is Verdict.FAIL and "already is this output's monitor" in same.fix
    busy = judge_far_end_route(deaf, C, speaker, monitor, underflows=53)
    assert busy.verdict is Verdict.WARN and "53 underflows" in busy.message
    assert "less busy" in busy.fix
    assert judge_far_end_route(deaf, C, speaker, monitor, underflows=3).verdict is Verdict.FAIL


@pytest.mark.parametrize("delay_ms", [-24.0, -2.0])
def test_a_negative_latency_is_not_measured(delay_ms):
    """Sound cannot reach a capture before the speaker plays it: a negative delay is a
    timing error of the streams, not a fast headset, so it never passes."""
    item = judge_latency(delay_ms, "far-end capture", C)
    assert item.verdict is Verdict.SKIP and item.value is None, item
    assert "before the speaker played it" in item.message and "monitor" in item.message
    assert item.fix and "again" in item.fix


def test_latency_within_the_timing_slack_is_zero():
    item = judge_latency(-0.4, "far-end capture", C)
    assert item.verdict is Verdict.PASS and item.value == 0.0
    assert judge_latency(12.0, "mic", C).verdict is Verdict.PASS
    assert judge_latency(250.0, "mic", C).verdict is Verdict.WARN


def test_test_signal_level_and_band():
    x = band_limited_noise(RATE, 1.0, -24)
    assert abs(10 * np.log10(np.mean(x.astype(np.float64) ** 2)) + 24) < 0.01
    spec = np.abs(np.fft.rfft(x)) ** 2
    f = np.fft.rfftfreq(len(x), 1 / RATE)
    assert spec[(f < 250) | (f > 3500)].sum() < 1e-3 * spec.sum()


# -- verdicts, settings and the saved result ------------------------------------------------


def _items(*verdicts: Verdict) -> list[Item]:
    return [Item(f"i{k}", v, 1.0, "dB", 0.0, "m") for k, v in enumerate(verdicts)]


def test_item_order_is_the_documented_one():
    """docs/check.md promises the items "in the order below": its example lists them all."""
    text = DOCS.read_text()
    example = text[text.index("```json\n") + len("```json\n"):]
    example = json.loads(example[: example.index("```")])
    assert tuple(i["name"] for i in example["items"]) == ITEM_ORDER


def test_overall_is_the_worst_measured_verdict():
    assert overall(_items(Verdict.PASS, Verdict.SKIP)) is Verdict.PASS
    assert overall(_items(Verdict.PASS, Verdict.WARN, Verdict.SKIP)) is Verdict.WARN
    assert overall(_items(Verdict.WARN, Verdict.FAIL)) is Verdict.FAIL
    assert overall([]) is Verdict.PASS


def test_check_settings_load_like_any_config_table():
    s = build_settings(CheckSettings, {"hum_warn_db": 12, "leak_warn_db": -45.0}, "c: [check]")
    assert s.hum_warn_db == 12.0 and s.leak_warn_db == -45.0
    with pytest.raises(ConfigError, match=r"hum_warn_db = 1: must be between 3.0 and 60.0"):
        build_settings(CheckSettings, {"hum_warn_db": 1}, "c: [check]")
    with pytest.raises(ConfigError, match="hum_fail_db"):
        build_settings(CheckSettings, {"hum_warn_db": 30, "hum_fail_db": 20}, "c: [check]")


def _result(*verdicts: Verdict) -> dict:
    items = [Item(n, v, -30.0, "dBFS", -38.0, "msg", "fix" if v else None)
             for n, v in zip(("mic_level", "noise", "hum"), verdicts, strict=False)]
    return build_result(items, {}, time.monotonic(), 1_790_000_000.0, "non-interactive", "a@h")


def test_result_shape_and_text():
    r = _result(Verdict.PASS, Verdict.WARN, Verdict.SKIP)
    assert r["schema"] == SCHEMA and r["result"] == "warn" and r["exit_code"] == 1
    assert r["timestamp"] == "2026-09-21T14:13:20Z"
    assert [i["verdict"] for i in r["items"]] == ["pass", "warn", "skip"]
    assert check_verdicts(r) == {"mic_level": 0, "noise": 1}
    text = render_text(r)
    assert "WARN  noise" in text and "fix: fix" in text and "Result: WARN" in text


def test_saved_result_round_trip_and_state(tmp_path):
    path = tmp_path / "state" / "callwatch" / "check.json"
    r = _result(Verdict.PASS, Verdict.FAIL)
    save_result(r, path)
    assert os.listdir(path.parent) == ["check.json"]  # the temp file was renamed, not left
    assert load_last_check(path) == r
    state = DaemonState(agent_id="a@h")
    assert apply_last_check(state, load_last_check(path))
    assert state.check_results == {"mic_level": 0, "noise": 2}
    assert state.check_timestamp == 1_790_000_000.0


def test_default_result_path_follows_xdg_state_home(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path))
    r = _result(Verdict.PASS)
    assert save_result(r) == tmp_path / "callwatch" / "check.json"
    assert load_last_check() == r


@pytest.mark.parametrize("content", ["", "{not json", json.dumps({"schema": "other/1"}),
                                     json.dumps([1, 2]), json.dumps({"schema": SCHEMA})])
def test_bad_result_files_are_ignored(tmp_path, content):
    p = tmp_path / "check.json"
    p.write_text(content)
    assert load_last_check(p) is None
    assert load_last_check(tmp_path / "missing.json") is None


def test_watcher_rereads_only_on_change(tmp_path):
    path = tmp_path / "check.json"
    state = DaemonState(agent_id="a@h")
    w = LastCheckWatcher(path, min_interval_s=0.0)
    assert not w.poll(state) and state.check_results == {}
    save_result(_result(Verdict.PASS), path)
    assert w.poll(state) and state.check_results == {"mic_level": 0}
    assert not w.poll(state)
    r = _result(Verdict.WARN, Verdict.FAIL)
    save_result(r, path)
    os.utime(path, ns=(time.time_ns(), time.time_ns() + 10**9))
    assert w.poll(state) and state.check_results == {"mic_level": 1, "noise": 2}
    slow = LastCheckWatcher(path, min_interval_s=60.0)
    assert slow.poll(state)
    save_result(_result(Verdict.PASS), path)
    assert not slow.poll(state)  # rate-limited: the loop may call it every pass


# -- bad input (before any device is touched) -----------------------------------------------


@pytest.mark.parametrize(("argv", "message"), [
    (["--speech", "/nonexistent/speech.wav"], "--speech /nonexistent/speech.wav: "),
    (["--silence-s", "100"], "--silence-s 100.0: must be between 1 and 30"),
    (["--config", "/nonexistent.toml"], "/nonexistent.toml: no such config file"),
])
def test_bad_input_exits_2_with_one_line(argv, message, capsys, tmp_path, monkeypatch):
    from daemon.cli import main

    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path))
    assert main(["check", "--non-interactive", *argv]) == 2
    err = capsys.readouterr().err
    assert err.startswith("callwatch check: ") and message in err and err.count("\n") == 1
    assert not (tmp_path / "callwatch").exists()
