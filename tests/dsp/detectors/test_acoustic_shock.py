"""Acoustic shock: every injected burst (tones at several frequencies, a noise burst, a clipped
click train, a feedback howl; :data:`bench.hearing.BURSTS`) is found within 50 ms, on silence
and over real speech; real speech at normal levels (the codec2 voices, the bundled sample
call) never is. ``python -m bench.hearing`` runs the same over the development set."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from bench.hearing import BURSTS, click_train, howl, noise_burst, onset_of_level, tone
from dsp import ANALYSIS_RATE, FRAME_LEN
from dsp.detectors.acoustic_shock import AcousticShock
from dsp.events import Event, Kind, Phase
from dsp.hearing import HearingSettings
from dsp.resample import Resampler
from tests.speech import AGENT_VOICES, CUSTOMER_VOICES, voice

S = HearingSettings()
SR = ANALYSIS_RATE
SAMPLE = Path(__file__).resolve().parents[3] / "samples" / "sample-call.wav"


def run(x: np.ndarray, settings: HearingSettings = S, chunks: list[int] | None = None
        ) -> list[Event]:
    """Feed ``x`` (16 kHz) in chunks of whole frames; close at the end."""
    n = len(x) // FRAME_LEN
    frames = np.asarray(x[: n * FRAME_LEN], dtype=np.float32).reshape(n, FRAME_LEN)
    det = AcousticShock(settings)
    out: list[Event] = []
    i = 0
    sizes = iter(chunks or [n])
    while i < n:
        k = min(n - i, next(sizes, 7))
        out += det.update(i, frames[i : i + k])
        i += k
    return out + det.close(n)


def begins(events: list[Event]) -> list[Event]:
    return [e for e in events if e.phase is Phase.BEGIN]


def quiet_line(seconds: float, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return (rng.standard_normal(int(seconds * SR)) * 10 ** (-60 / 20)).astype(np.float32)


def inject(base: np.ndarray, burst: np.ndarray, at_s: float) -> tuple[np.ndarray, int]:
    y = base.copy()
    i = int(at_s * SR)
    n = min(len(burst), len(y) - i)
    y[i : i + n] = np.clip(y[i : i + n] + burst[:n], -1, 1)
    return y, i


def confirm_latency_ms(events: list[Event], onset: int) -> float:
    (begin,) = begins(events)
    assert begin.kind is Kind.ACOUSTIC_SHOCK
    return (begin.end - onset) * 1000.0 / SR


def truth_onset(name: str, burst: np.ndarray, at: int) -> int:
    if name == "feedback_howl":
        return at + onset_of_level(burst, S.shock_tone_dbfs)
    return at


@pytest.mark.parametrize("name", sorted(BURSTS))
@pytest.mark.parametrize("offset_ms", [0.0, 7.0, 13.0])
def test_every_burst_is_found_within_50_ms_on_a_quiet_line(name: str, offset_ms: float) -> None:
    burst = BURSTS[name]()
    x, at = inject(quiet_line(4.0), burst, 1.5 + offset_ms / 1000)
    events = run(x)
    latency = confirm_latency_ms(events, truth_onset(name, burst, at))
    assert 0 <= latency <= 50.0, f"{name}: confirmed {latency:.1f} ms after onset"
    assert [e.phase for e in events] == [Phase.BEGIN, Phase.END]


@pytest.mark.parametrize("name", sorted(BURSTS))
def test_every_burst_is_found_within_50_ms_over_speech(name: str) -> None:
    """Over a customer talking at the nominal level, the burst lands mid-word."""
    speech = voice("hts2")[: int(6 * SR)]
    burst = BURSTS[name]()
    x, at = inject(speech, burst, 2.013)
    events = run(x)
    shocks = begins(events)
    assert len(shocks) == 1, f"{name}: {len(shocks)} shocks"
    latency = confirm_latency_ms(events, truth_onset(name, burst, at))
    assert 0 <= latency <= 50.0, f"{name}: confirmed {latency:.1f} ms after onset"


@pytest.mark.parametrize("name", sorted(BURSTS))
def test_every_shock_reports_the_threshold_its_trigger_crossed(name: str) -> None:
    """Bursts and tones are judged by their level, clicks by their sample peak: each event
    names the threshold after the measure it bounds, and that measure is at or above it (a
    click's 10 ms level is mostly below the burst threshold, which it also carries)."""
    x, _ = inject(voice("hts2")[: int(6 * SR)], BURSTS[name](), 2.013)
    for e in run(x):
        if e.data["trigger"] == "click":
            measure, limit = "peak_dbfs", "threshold_peak_dbfs"
            assert e.data[limit] == S.shock_click_peak_dbfs
        else:
            measure, limit = "level_dbfs", "threshold_dbfs"
        assert ("threshold_peak_dbfs" in e.data) == (e.data["trigger"] == "click"), e.data
        assert "threshold_dbfs" in e.data, e.data
        assert float(e.data[measure]) >= float(e.data[limit]), (name, e.data)


def test_tone_event_names_its_frequency_and_trigger() -> None:
    x, _ = inject(quiet_line(3.0), tone(2100, 1.0, -6.0), 1.0)
    begin = begins(run(x))[0]
    assert begin.data["trigger"] == "tone"
    assert abs(float(begin.data["frequency_hz"]) - 2100) <= 50
    assert float(begin.data["level_dbfs"]) == pytest.approx(-6.0, abs=0.5)


def test_a_click_train_is_one_shock_and_ends_after_the_release() -> None:
    x, at = inject(quiet_line(5.0), click_train(1.0), 1.0)
    events = run(x)
    assert [e.phase for e in events] == [Phase.BEGIN, Phase.END]
    end = events[1]
    last_click = at + int(SR / 8.0) * 7 + 16
    assert abs(end.end - last_click) <= 2 * 80
    assert end.data["trigger"] == "click" and float(end.data["peak_dbfs"]) == pytest.approx(0.0)
    assert end.data["threshold_peak_dbfs"] == S.shock_click_peak_dbfs
    assert float(end.data["level_dbfs"]) < S.shock_burst_dbfs  # a click, not a burst


def test_a_tone_that_starts_inside_a_click_train_is_a_shock_of_its_own() -> None:
    x, _ = inject(quiet_line(5.0), click_train(2.0), 1.0)
    x, at = inject(x, tone(440, 0.5, -6.0), 2.0)
    events = run(x)
    assert [(e.phase, e.data["trigger"]) for e in events] == [
        (Phase.BEGIN, "click"), (Phase.END, "click"), (Phase.BEGIN, "tone"), (Phase.END, "tone")]
    assert confirm_latency_ms(events[2:], truth_onset("tone_440hz", tone(440, 0.5, -6.0), at)) <= 50


def test_two_bursts_apart_are_two_shocks() -> None:
    x, _ = inject(quiet_line(6.0), noise_burst(0.1, -3.0), 1.0)
    x, _ = inject(x, noise_burst(0.1, -3.0), 4.0)
    assert len(begins(run(x))) == 2


def test_a_tone_under_the_level_or_a_slow_rise_to_a_loud_noise_is_not_a_shock() -> None:
    x, _ = inject(quiet_line(4.0), tone(1000, 1.0, -12.0), 1.0)
    assert run(x) == []
    # Broadband noise faded in over 2 s to -3 dBFS: loud (that is loud_far_end's business)
    # but no sudden rise.
    n = noise_burst(3.0, -3.0) * np.minimum(1.0, np.arange(3 * SR) / (2.0 * SR)).astype(np.float32)
    x, _ = inject(quiet_line(5.0), n.astype(np.float32), 1.0)
    assert run(x) == []


@pytest.mark.parametrize("name", AGENT_VOICES + CUSTOMER_VOICES)
@pytest.mark.parametrize("gain_db", [0.0, 6.0])
def test_real_speech_at_normal_levels_is_never_a_shock(name: str, gain_db: float) -> None:
    """The codec2 voices at the nominal level (-26 dBFS) and 6 dB hotter."""
    y = voice(name) * np.float32(10 ** (gain_db / 20))
    assert begins(run(quiet_line(len(y) / SR, 3)[: len(y)] + y)) == []


def _read_16k(path: Path) -> np.ndarray:
    x, sr = sf.read(path, dtype="float32", always_2d=True)
    if sr == SR:
        return x
    r = Resampler(sr, SR)
    return np.stack([np.concatenate([r.process(x[:, c]), r.flush()]) for c in range(2)], 1)


def test_the_bundled_sample_call_has_no_shock_on_either_side() -> None:
    x = _read_16k(SAMPLE)
    for channel in range(x.shape[1]):
        assert begins(run(x[:, channel])) == []


def test_the_same_events_whatever_the_chunking() -> None:
    x, _ = inject(voice("cq_ref")[: 8 * SR], howl(), 1.0)
    x, _ = inject(x, click_train(0.5), 4.0)
    x, _ = inject(x, tone(3400, 0.4, -6.0), 6.0)
    whole = run(x)
    assert len(begins(whole)) == 3
    rng = np.random.default_rng(1)
    assert run(x, chunks=[1] * 400) == whole
    assert run(x, chunks=rng.integers(1, 60, 500).tolist()) == whole


def test_reload_takes_new_thresholds() -> None:
    x, _ = inject(quiet_line(3.0), tone(1000, 0.5, -6.0), 1.0)
    strict = dataclasses.replace(S, shock_tone_dbfs=-3.0, shock_burst_dbfs=-1.0)
    assert run(x, strict) == []
    assert len(begins(run(x))) == 1


def test_events_are_decided_in_fixed_frames_whatever_the_chunking() -> None:
    """Each event's emission frame (for merging with per-frame events) is the frame that holds
    its confirming sample (BEGIN) or the end of its release (END), however the audio is cut."""
    x, _ = inject(quiet_line(6.0), click_train(0.5), 1.0)
    x, _ = inject(x, tone(1000, 0.3, -6.0), 3.5)
    n = len(x) // FRAME_LEN
    frames = x[: n * FRAME_LEN].reshape(n, FRAME_LEN)
    for step in (1, 3, 50, n):
        det = AcousticShock(S)
        seen = []
        for i in range(0, n, step):
            evs = det.update(i, frames[i : i + step])
            assert len(det.emit_frames) == len(evs)
            for f, e in zip(det.emit_frames, evs, strict=True):
                assert i <= f < i + step
                seen.append((f, e.phase))
        begin1, end1, _, _ = seen
        # Hits are reported at the end of the 5 ms block that holds them.
        first_hit = int(1.0 * SR) + 80
        last_hit = first_hit + int(SR / 8.0) * 3
        assert begin1[0] == (first_hit - 1) // FRAME_LEN
        released = last_hit + int(S.shock_release_s * SR)
        assert end1[0] == -(-released // FRAME_LEN) - 1
        assert [p for _, p in seen] == [Phase.BEGIN, Phase.END] * 2


def test_a_shock_resampled_from_8_khz_reports_a_sample_peak_no_higher_than_full_scale() -> None:
    """A click train clipped at ±1 in an 8 kHz recording overshoots full scale once resampled
    (the filter's ringing at each step, +1.2 dB here). A recording's samples never go past
    0 dBFS: that overshoot is ours, and the reported peak is full scale."""
    rate = 8000
    x = np.zeros(2 * rate, dtype=np.float32)
    for k, i in enumerate(range(rate // 2, rate + rate // 2, rate // 8)):
        x[i : i + 8] = 1.0 if k % 2 else -1.0
    r = Resampler(rate, SR)
    y = np.concatenate((r.process(x), r.flush()))
    assert float(np.abs(y).max()) > 1.05  # the overshoot this guards against is there
    events = run(y)
    assert begins(events)
    assert all(float(e.data["peak_dbfs"]) == pytest.approx(0.0) for e in events), events
