"""Syllable nuclei and speaking rate (dsp.pace) on syllable trains of known rate, on real
speech under any chunking, and on what must give no syllables (silence, noise, hum)."""

from __future__ import annotations

import numpy as np
import pytest

from dsp import ANALYSIS_RATE, FRAME_LEN
from dsp.pace import QUEUE_FRAMES, SyllableCounter, voicing, voicings
from tests.speech import voice

COMFORT_LOW_SPS, COMFORT_HIGH_SPS = 3.3, 4.5
"""The comfortable band (120-160 words per minute, DESIGN.md §5)."""


def syllable_train(rate_sps: float, count: int, *, f0: float = 130.0, level: float = 0.1,
                   depth: float = 1.0, duty: float = 0.7, voiced: bool = True,
                   seed: int = 0) -> np.ndarray:
    """``count`` syllables at ``rate_sps``: a carrier under raised-sine pulses that fill
    ``duty`` of each period; ``depth`` < 1 leaves the dips that high. The voiced carrier is
    a 130 Hz harmonic complex (a vowel's source); the unvoiced one is white noise."""
    n = round(count / rate_sps * ANALYSIS_RATE)
    t = np.arange(n) / ANALYSIS_RATE
    if voiced:
        carrier = sum(np.sin(2 * np.pi * k * f0 * t + k) / k for k in range(1, 9))
    else:
        carrier = np.random.default_rng(seed).standard_normal(n)
    carrier = carrier / np.sqrt(np.mean(carrier**2))
    phase = (t * rate_sps) % 1.0
    pulse = np.where(phase < duty, np.sin(np.pi * phase / duty) ** 2, 0.0)
    return (level * carrier * ((1.0 - depth) + depth * pulse)).astype(np.float32)


def framed(x: np.ndarray, pad_s: float = 0.5) -> tuple[np.ndarray, np.ndarray]:
    """``x`` between two silences, as frames, with speech flags True over ``x`` only."""
    pad = np.zeros(round(pad_s * ANALYSIS_RATE), np.float32)
    y = np.concatenate((pad, x, pad))
    n = len(y) // FRAME_LEN
    frames = y[: n * FRAME_LEN].reshape(n, FRAME_LEN)
    speech = np.zeros(n, bool)
    speech[len(pad) // FRAME_LEN : (len(pad) + len(x)) // FRAME_LEN] = True
    return frames, speech


def run(frames: np.ndarray, speech: np.ndarray, blocks: list[int] | None = None,
        counter: SyllableCounter | None = None) -> tuple[list[int], SyllableCounter]:
    """Feed the frames in blocks of the given sizes (cycled), then finish."""
    c = counter or SyllableCounter()
    sizes = blocks or [50]
    out: list[int] = []
    a = k = 0
    while a < len(frames):
        b = min(len(frames), a + sizes[k % len(sizes)])
        out += c.update(frames[a:b], speech[a:b], a)
        a, k = b, k + 1
    out += c.finish()
    return out, c


@pytest.mark.parametrize("rate_sps", [2.0, 3.0, 4.0, 5.0, 6.0, 7.0])
def test_counts_every_syllable_of_a_train_and_measures_its_rate(rate_sps: float) -> None:
    count = round(12 * rate_sps)
    nuclei, c = run(*framed(syllable_train(rate_sps, count)))
    assert len(nuclei) == count
    assert c.syllables == count
    # One nucleus per period, at its pulse's peak (frame of the 0.5 s pad + the pulse middle).
    period_frames = 1 / rate_sps / 0.02
    peaks = 25 + (np.arange(count) + 0.35) * period_frames
    assert np.max(np.abs(np.array(nuclei) - peaks)) <= 1.5
    assert c.rate_sps() == pytest.approx(rate_sps, rel=0.05)


def contoured(points: list[tuple[float, float]], periods: int, period_s: float = 0.3,
              f0: float = 130.0) -> np.ndarray:
    """``periods`` syllables of a harmonic carrier whose level follows the same contour in
    each: ``points`` are (seconds into the period, dBFS), joined linearly in dB."""
    n = round(periods * period_s * ANALYSIS_RATE)
    t = np.arange(n) / ANALYSIS_RATE
    carrier = sum(np.sin(2 * np.pi * k * f0 * t + k) / k for k in range(1, 9))
    carrier = carrier / np.sqrt(np.mean(carrier**2))
    ts, db = zip(*points, strict=True)
    return (carrier * 10 ** (np.interp(t % period_s, ts, db) / 20)).astype(np.float32)


def test_a_vowels_second_peak_over_a_shallow_dip_is_not_a_syllable() -> None:
    """A vowel running into a liquid or a nasal: a second peak 80 ms after the first, over a
    dip of a few dB. The 1 dB hysteresis alone sees two peaks (the old count, with the rule
    off); the close-peak rule counts one syllable each."""
    x = contoured([(0, -70), (0.05, -20), (0.09, -26), (0.13, -20.5), (0.2, -70),
                   (0.3, -70)], 20)
    assert len(run(*framed(x), counter=SyllableCounter(close_s=0.0))[0]) == 40
    assert len(run(*framed(x))[0]) == 20


def test_close_peaks_over_a_deep_dip_stay_two_syllables() -> None:
    """The same two peaks 80 ms apart, but with a 10 dB dip between them: two syllables."""
    x = contoured([(0, -70), (0.05, -20), (0.09, -30), (0.13, -20.5), (0.2, -70),
                   (0.3, -70)], 20)
    assert len(run(*framed(x))[0]) == 40


def test_a_voiced_ripple_far_under_the_vowels_is_not_a_syllable() -> None:
    """A voiced bump 22 dB under each vowel (a phrase's fading end, creak, breath noise with
    hum): counted under the old 25 dB loud range, not under the 20 dB one."""
    x = contoured([(0, -70), (0.06, -20), (0.14, -50), (0.18, -42), (0.22, -70),
                   (0.3, -70)], 20)
    assert len(run(*framed(x), counter=SyllableCounter(loud_range_db=25.0))[0]) == 40
    assert len(run(*framed(x))[0]) == 20


def test_shallow_dips_still_separate_syllables() -> None:
    """Dips only 6 dB deep (connected speech rarely falls to silence between syllables)."""
    nuclei, c = run(*framed(syllable_train(5.0, 50, depth=0.5)))
    assert len(nuclei) == 50
    assert c.rate_sps() == pytest.approx(5.0, rel=0.05)


def test_the_comfortable_band_is_reachable_and_told_apart_from_slow_and_fast() -> None:
    rates = {}
    for sps in (2.5, 3.5, 4.2, 5.5):
        _, c = run(*framed(syllable_train(sps, round(20 * sps))))
        rates[sps] = c.rate_sps()
    assert rates[2.5] < COMFORT_LOW_SPS
    assert COMFORT_LOW_SPS <= rates[3.5] <= COMFORT_HIGH_SPS
    assert COMFORT_LOW_SPS <= rates[4.2] <= COMFORT_HIGH_SPS
    assert rates[5.5] > COMFORT_HIGH_SPS


def test_silence_gives_no_nuclei_and_no_rate() -> None:
    frames = np.zeros((500, FRAME_LEN), np.float32)
    nuclei, c = run(frames, np.ones(500, bool))
    assert nuclei == []
    assert c.speech_s == 0.0
    assert c.rate_sps() is None


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_noise_the_caller_calls_speech_gives_no_nuclei(seed: int) -> None:
    """White noise has envelope peaks but no pitch: the voicing test rejects every one."""
    rng = np.random.default_rng(seed)
    frames = (0.05 * rng.standard_normal((1000, FRAME_LEN))).astype(np.float32)
    nuclei, c = run(frames, np.ones(1000, bool))
    assert nuclei == []
    assert c.speech_s > 15.0  # it was counted as speech time: only the nuclei are refused


def test_whispered_syllables_are_not_counted_but_voiced_ones_are() -> None:
    """The same pulses on a noise carrier (no voicing) and on a harmonic one: only the voicing
    differs, so this fails if the voicing test does nothing."""
    unvoiced, _ = run(*framed(syllable_train(4.0, 40, voiced=False)))
    voiced_, _ = run(*framed(syllable_train(4.0, 40, voiced=True)))
    assert len(unvoiced) <= 2
    assert len(voiced_) == 40


def test_steady_hum_gives_no_nuclei() -> None:
    """Mains hum is periodic (voiced) but has no syllable envelope: nothing stands out of it
    once it is on (its onset from silence is one rise, at most one nucleus)."""
    t = np.arange(20 * ANALYSIS_RATE) / ANALYSIS_RATE
    hum = sum(0.02 / k * np.sin(2 * np.pi * 50 * k * t) for k in (1, 2, 3, 5))
    frames = hum.astype(np.float32).reshape(-1, FRAME_LEN)
    nuclei, c = run(frames, np.ones(len(frames), bool))
    assert all(i <= 2 for i in nuclei) and len(nuclei) <= 1
    assert c.rate_sps() < 0.1


def test_syllables_outside_the_callers_speech_are_not_counted() -> None:
    frames, _ = framed(syllable_train(4.0, 40))
    nuclei, c = run(frames, np.zeros(len(frames), bool))
    assert nuclei == [] and c.speech_s == 0.0


def test_same_nuclei_and_rate_under_any_chunking_on_real_speech() -> None:
    """Real speech (codec2 recordings of two talkers) with an energy speech flag, fed in
    blocks of 1, 3, 50 and 250 frames and in random block sizes."""
    x = np.concatenate([voice("hts1"), np.zeros(8000, np.float32), voice("kristoff"),
                        syllable_train(4.0, 20)])
    n = len(x) // FRAME_LEN
    frames = x[: n * FRAME_LEN].reshape(n, FRAME_LEN)
    rms_db = 10 * np.log10(np.mean(frames.astype(np.float64) ** 2, axis=1) + 1e-12)
    speech = rms_db > -45.0
    ref, c_ref = run(frames, speech, [n])
    assert len(ref) > 20
    rng = np.random.default_rng(7)
    for blocks in ([1], [3], [50], [250], rng.integers(1, 40, size=50).tolist()):
        nuclei, c = run(frames, speech, blocks)
        assert nuclei == ref
        assert c.speech_s == c_ref.speech_s
        assert c.rate_sps() == c_ref.rate_sps()
        assert c.rate_sps(5.0) == c_ref.rate_sps(5.0)


def _speech_frames() -> tuple[np.ndarray, np.ndarray]:
    """Two real talkers and a syllable train as frames, with an energy speech flag."""
    x = np.concatenate([voice("hts1"), np.zeros(8000, np.float32), voice("kristoff"),
                        syllable_train(4.0, 20)])
    n = len(x) // FRAME_LEN
    frames = x[: n * FRAME_LEN].reshape(n, FRAME_LEN)
    rms_db = 10 * np.log10(np.mean(frames.astype(np.float64) ** 2, axis=1) + 1e-12)
    return frames, rms_db > -45.0


def test_queued_blocks_give_what_update_gives_at_every_read() -> None:
    """``add`` queues blocks; whatever is read between them (speech time, syllables, rates)
    and the final counts are exactly those of ``update`` on the same blocks."""
    frames, speech = _speech_frames()
    assert len(frames) > 2 * QUEUE_FRAMES
    direct, queued = SyllableCounter(), SyllableCounter()
    nuclei: list[int] = []
    reads = 0
    for a in range(0, len(frames), 37):
        b = min(len(frames), a + 37)
        nuclei += direct.update(frames[a:b], speech[a:b], a)
        queued.add(frames[a:b], speech[a:b], a)
        if a % 5 == 0:  # read now and then, mid-queue
            reads += 1
            assert queued.speech_s == direct.speech_s
            assert queued.syllables == direct.syllables
            assert queued.rate_sps(5.0) == direct.rate_sps(5.0)
    assert reads > 3 and len(nuclei) > 20
    nuclei += direct.finish()
    tail = queued.finish()  # the nuclei of what was still queued, and the last one
    assert tail and tail == nuclei[len(nuclei) - len(tail) :]
    assert queued.syllables == direct.syllables
    assert queued.speech_s == direct.speech_s
    assert queued.rate_sps() == direct.rate_sps()


def test_voicings_are_each_frames_voicing_bit_for_bit() -> None:
    """The batched voicing equals the one-frame voicing exactly, for any batch size, on
    speech, tones, noise at any level, silence and DC."""
    frames, _ = _speech_frames()
    rng = np.random.default_rng(3)
    noise = rng.standard_normal((200, FRAME_LEN)) * rng.uniform(1e-6, 1.0, (200, 1))
    t = np.arange(FRAME_LEN) / ANALYSIS_RATE
    tones = np.stack([np.sin(2 * np.pi * f0 * t) for f0 in (80.0, 130.0, 220.0, 350.0)])
    rows = np.concatenate([frames[::2], noise.astype(np.float32), tones.astype(np.float32),
                           np.zeros((1, FRAME_LEN), np.float32),
                           np.full((1, FRAME_LEN), 0.1, np.float32)])
    one = np.array([voicing(r) for r in rows])
    assert one[-1] == 0.0 and one[-2] == 0.0 and one.max() > 0.95
    for size in (1, 2, 7, 64, len(rows)):
        batched = np.concatenate([voicings(rows[i : i + size])
                                  for i in range(0, len(rows), size)])
        assert np.array_equal(batched, one)
    assert voicings(np.zeros((0, FRAME_LEN))).shape == (0,)


def test_pauses_are_left_out_of_speech_time() -> None:
    """The same syllables with a 3 s pause in the middle: the same rate."""
    a = syllable_train(4.0, 40)
    pause = np.zeros(3 * ANALYSIS_RATE, np.float32)
    frames, speech = framed(np.concatenate((a, pause, a)))
    pause_frames = slice(25 + len(a) // FRAME_LEN, 25 + (len(a) + len(pause)) // FRAME_LEN)
    speech[pause_frames] = False
    nuclei, c = run(frames, speech)
    assert len(nuclei) == 80
    assert c.rate_sps() == pytest.approx(4.0, rel=0.05)
    assert c.speech_s == pytest.approx(20.0, rel=0.05)


def test_window_follows_a_speaker_who_speeds_up() -> None:
    x = np.concatenate((syllable_train(3.0, 60), syllable_train(6.0, 120)))
    _, c = run(*framed(x))
    assert c.rate_sps(10.0) == pytest.approx(6.0, rel=0.06)
    assert c.rate_sps() == pytest.approx(180 / 40, rel=0.06)
    # The last 30 s of speech: 10 s at 3/s and 20 s at 6/s.
    assert c.rate_sps(30.0) == pytest.approx((30 + 120) / 30, rel=0.06)


def test_quieter_speaker_is_followed_after_the_loud_reference_decays() -> None:
    """Speech 30 dB quieter than before is under the 20 dB loud range at first; the
    reference decays 3 dB/s over speech, and the quiet syllables count again after about
    (30 - 20) / 3 = 3.3 s."""
    loud = syllable_train(4.0, 20, level=0.3)
    quiet = syllable_train(4.0, 40, level=0.3 * 10 ** (-30 / 20))
    nuclei, _ = run(*framed(np.concatenate((loud, quiet))))
    quiet_nuclei = [i for i in nuclei if i >= 25 + 250]
    assert 24 <= len(quiet_nuclei) <= 30  # the first ~3.3 s are missed, the rest counted


def test_start_call_restarts_the_counts_not_the_detector() -> None:
    frames, speech = framed(syllable_train(4.0, 80))
    c = SyllableCounter()
    half = len(frames) // 2
    first = c.update(frames[:half], speech[:half], 0)
    c.start_call()
    assert c.syllables == 0 and c.speech_s == 0.0 and c.rate_sps() is None
    second = c.update(frames[half:], speech[half:], half) + c.finish()
    assert len(first) + len(second) == 80
    assert c.syllables == len(second)
    assert c.rate_sps() == pytest.approx(4.0, rel=0.08)


def test_voicing_tells_periodic_from_noise() -> None:
    t = np.arange(FRAME_LEN) / ANALYSIS_RATE
    for f0 in (80.0, 130.0, 220.0, 350.0):
        tone = sum(np.sin(2 * np.pi * k * f0 * t) / k for k in range(1, 6))
        assert voicing(tone) > 0.95
    rng = np.random.default_rng(0)
    assert max(voicing(rng.standard_normal(FRAME_LEN)) for _ in range(200)) < 0.45
    assert voicing(np.zeros(FRAME_LEN)) == 0.0


def test_bad_input_is_refused_with_the_fix() -> None:
    c = SyllableCounter()
    with pytest.raises(ValueError, match=r"\(n, 320\)"):
        c.update(np.zeros((4, 160), np.float32), np.ones(4, bool), 0)
    with pytest.raises(ValueError, match="one flag per frame"):
        c.update(np.zeros((4, FRAME_LEN), np.float32), np.ones(3, bool), 0)
    c.update(np.zeros((4, FRAME_LEN), np.float32), np.ones(4, bool), 10)
    with pytest.raises(ValueError, match="expected frame 14, got 20"):
        c.update(np.zeros((4, FRAME_LEN), np.float32), np.ones(4, bool), 20)
    with pytest.raises(ValueError, match="max_window_s"):
        c.rate_sps(500.0)
    c.finish()
    with pytest.raises(ValueError, match="after finish"):
        c.update(np.zeros((4, FRAME_LEN), np.float32), np.ones(4, bool), 14)
    with pytest.raises(ValueError, match="more than"):
        voicing(np.zeros(100))
