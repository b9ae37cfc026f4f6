"""Live input held back from the pipeline (:mod:`dsp.hold`): the same events as pushing every
block, every ``BEGIN`` with the same block (so the same latency), in far fewer pushes; and
the bounds it rests on (:meth:`TalkOver.earliest_begin`, :meth:`DeadAir.earliest_begin`,
:meth:`AcousticShock.could_begin`) hold at every frame."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from bench.hearing import BURSTS
from dsp import ANALYSIS_RATE, FRAME_LEN, FRAME_S
from dsp.activity import TalkSpurts
from dsp.detectors.acoustic_shock import AcousticShock
from dsp.detectors.dead_air import DeadAir
from dsp.detectors.talkover import TalkOver
from dsp.echo import EchoEstimator
from dsp.events import Event, Kind, Phase
from dsp.hearing import HearingSettings
from dsp.hold import InputHold
from dsp.party import frames
from dsp.pipeline import Pipeline
from dsp.resample import Resampler
from dsp.settings import DetectorSettings
from tests.speech import voiced

SAMPLE = Path(__file__).resolve().parents[2] / "samples" / "sample-call.wav"
S = DetectorSettings()


def sample_call(rate: int = ANALYSIS_RATE) -> tuple[np.ndarray, np.ndarray]:
    x, sr = sf.read(SAMPLE, dtype="float32")
    a, c = np.ascontiguousarray(x[:, 0]), np.ascontiguousarray(x[:, 1])
    if rate != sr:
        a, c = (np.concatenate((r.process(y), r.flush())) for r, y in
                ((Resampler(sr, rate), a), (Resampler(sr, rate), c)))
    return a, c


def feed(a: np.ndarray, c: np.ndarray, rate: int, held: bool, seed: int | None,
         most_s: float = 0.5) -> tuple[list[tuple[Event, int]], int]:
    """Blocks as a live capture delivers them (40 ms, or 15-70 ms at random), each pushed or
    offered to an :class:`InputHold`; every event with the input position of the push that
    brought it, and the number of pushes."""
    p = Pipeline(agent_rate=rate, customer_rate=rate)
    hold = InputHold(p)
    rng = np.random.default_rng(seed)
    out: list[tuple[Event, int]] = []
    pushes = i = 0
    while i < len(a):
        n = round(0.04 * rate) if seed is None else int(rng.integers(0.015 * rate, 0.07 * rate))
        pa, pc = a[i:i + n], c[i:i + n]
        i += len(pa)
        if held:
            got = hold.offer(pa, pc, len(pa) / rate, most_s)
            if got is None:
                continue
            pa, pc = got
        pushes += 1
        out += [(e, i) for e in p.push(pa, pc)]
    got = hold.take()
    if got is not None:
        out += [(e, len(a)) for e in p.push(*got)]
    out += [(e, len(a)) for e in p.finish()]
    return out, pushes


def late_begins(a: np.ndarray, c: np.ndarray, rate: int, seed: int | None
                ) -> tuple[list[Event], list[Event], int, int]:
    every, n_every = feed(a, c, rate, False, seed)
    held, n_held = feed(a, c, rate, True, seed)
    assert [e for e, _ in held] == [e for e, _ in every]
    late = [e for (e, t0), (_, t1) in zip(every, held, strict=True)
            if e.phase is Phase.BEGIN and t1 != t0]
    return [e for e, _ in every], late, n_every, n_held


@pytest.mark.parametrize("rate", [8000, 16000, 48000])
@pytest.mark.parametrize("seed", [None, 3])
def test_held_input_brings_every_begin_with_the_same_block(rate: int, seed: int | None) -> None:
    a, c = sample_call(rate)
    events, late, n_every, n_held = late_begins(a, c, rate, seed)
    assert {e.kind for e in events if e.phase is Phase.BEGIN} >= {Kind.TALK_OVER, Kind.SILENCE}
    assert late == []
    assert n_held < 0.4 * n_every, (n_held, n_every)


@pytest.mark.parametrize("name", sorted(BURSTS))
def test_acoustic_shocks_are_never_held(name: str) -> None:
    """Bursts on the far end in silence and mid-word: each shock comes with its block."""
    a, c = sample_call()
    burst = BURSTS[name]()
    for at_s in (3.3, 12.71, 21.05):  # a pause, over speech, over speech
        i = int(at_s * ANALYSIS_RATE)
        c[i:i + len(burst)] = np.clip(c[i:i + len(burst)] + burst, -1, 1)
    events, late, _, _ = late_begins(a, c, ANALYSIS_RATE, 7)
    shocks = [e for e in events if e.kind is Kind.ACOUSTIC_SHOCK and e.phase is Phase.BEGIN]
    assert len(shocks) >= 3, name
    assert late == []


def test_nothing_is_held_longer_than_the_caller_allows() -> None:
    a, c = sample_call()
    p = Pipeline()
    hold = InputHold(p)
    n = 640
    longest = 0.0
    for i in range(0, len(a), n):
        got = hold.offer(a[i:i + n], c[i:i + n], n / ANALYSIS_RATE, 0.2)
        longest = max(longest, hold.held_s)
        if got is not None:
            assert hold.held_s == 0.0 and len(hold) == 0
            p.push(*got)
    assert 0.1 < longest < 0.2
    assert hold.offer(a[:n], c[:n], n / ANALYSIS_RATE, 0.0) is not None  # 0: push at once


# -- the bounds, frame by frame ----------------------------------------------------------------


def _echo() -> EchoEstimator:
    """An estimator that found no leak in plenty of far-end speech (nothing is held back)."""
    est = EchoEstimator(15)
    rng = np.random.default_rng(7)
    far = rng.uniform(-50, -20, 300)
    lagged = np.stack([far[15 - d : 15 - d + 285] for d in range(16)], axis=1)
    est.add(rng.uniform(-75, -70, 285), lagged)
    assert est.refresh() and not est.present
    return est


def _script(seed: int, n: int = 3000) -> tuple[np.ndarray, np.ndarray]:
    """Two parties' speech frames: turns of 0.2-4 s with pauses of 0.1-6 s, independently,
    so they overlap now and then, with a sprinkling of lone speech frames (babble)."""
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(2):
        x = np.zeros(n, dtype=bool)
        i = int(rng.integers(0, 100))
        while i < n:
            k = int(rng.integers(10, 200))
            x[i:i + k] = (rng.random(k) > 0.1)[:n - i]
            i += k + int(rng.integers(5, 300))
        x |= rng.random(n) < 0.02
        out.append(x)
    return out[0], out[1]


@pytest.mark.parametrize("seed", range(6))
def test_talk_over_and_dead_air_never_begin_before_their_bound(seed: int) -> None:
    """At every frame, each detector's bound is at most the ``end`` of its next ``BEGIN``;
    and where nothing was going on, it is exactly the shortest way there."""
    s = DetectorSettings(min_overlap_s=0.6, silence_min_s=1.5)
    a_speech, c_speech = _script(seed)
    rng = np.random.default_rng(seed)
    a_strong = a_speech & (rng.random(a_speech.size) > 0.3)
    talkover, dead_air = TalkOver(s, _echo()), DeadAir(s)
    n = a_speech.size
    talkover.record(0, voiced(n), rng.normal(-30, 5, n), rng.normal(-30, 5, n),
                    np.zeros(n, bool), a_strong)
    a, c = TalkSpurts(frames(s.vad_start_s), 15), TalkSpurts(frames(s.vad_start_s), 15)
    bounds: list[tuple[int, int, int | None]] = []
    found = {Kind.TALK_OVER: 0, Kind.SILENCE: 0}
    for i in range(n):
        bounds.append((i, talkover.earliest_begin(i, a, c), dead_air.earliest_begin(i, a, c)))
        a_ch = a.step(i, bool(a_speech[i]), bool(a_strong[i]))
        c_ch = c.step(i, bool(c_speech[i]))
        events: list[Event] = []
        if (a.active and c.active) or talkover.in_overlap:
            events += talkover.step(i, a, c, bool(a_speech[i]), bool(c_speech[i]))
        if a.active or c.active:
            dead_air.any_speech = True
        if dead_air.any_speech:
            ev = dead_air.step(i, a, c, a_ch, c_ch)
            events += [ev] if ev is not None else []
        for e in events:
            if e.phase is not Phase.BEGIN:
                continue
            found[e.kind] += 1
            for at, to, da in bounds:
                bound = to if e.kind is Kind.TALK_OVER else da
                assert bound is None or bound * FRAME_LEN <= e.end, (e, at, bound)
            # the bound was exact one frame before the event (nothing left to decide)
            bound = bounds[-1][1] if e.kind is Kind.TALK_OVER else bounds[-1][2]
            assert bound is not None and bound * FRAME_LEN == e.end, (e, bound)
        if events:
            bounds = bounds[-1:]
    assert found[Kind.TALK_OVER] and found[Kind.SILENCE], found


def test_bounds_from_a_quiet_start() -> None:
    """Nobody has spoken: a talk-over needs both to talk ``min_overlap_s`` from now, dead
    air a first word and ``silence_min_s`` after it; settings changes move both."""
    a, c = TalkSpurts(3, 15), TalkSpurts(3, 15)
    for s in (S, DetectorSettings(min_overlap_s=1.4, silence_min_s=9.0)):
        talkover, dead_air = TalkOver(S, _echo()), DeadAir(S)
        talkover.configure(s, talkover.echo)
        dead_air.configure(s)
        assert talkover.earliest_begin(100, a, c) == 100 + frames(s.min_overlap_s)
        assert dead_air.earliest_begin(100, a, c) == 101 + frames(s.silence_min_s)
        dead_air.start_call(60)
        dead_air.any_speech = True  # someone spoke since: silence_min_s from the call start
        assert dead_air.earliest_begin(100, a, c) == 60 + frames(s.silence_min_s)


def test_pipeline_quiet_s_counts_the_input_it_has_not_processed() -> None:
    """At the start the first segment end is the nearest point; input pushed but not yet
    processed (part of a frame, a resampler's delay) counts as come."""
    s = DetectorSettings(min_overlap_s=1.5)  # beyond the first segment end (1 s)
    p = Pipeline(s)
    assert p.quiet_s == pytest.approx(50 * FRAME_S, abs=1e-5)
    p.push(np.zeros(1000, np.float32), np.zeros(1000, np.float32))
    assert p.position == 0
    assert p.quiet_s == pytest.approx(50 * FRAME_S - 1000 / ANALYSIS_RATE, abs=1e-5)
    q = Pipeline(s, agent_rate=8000, customer_rate=8000)
    q.push(np.zeros(4000, np.float32), np.zeros(4000, np.float32))
    assert q.quiet_s == pytest.approx(50 * FRAME_S - 0.5, abs=1e-5)
    # nobody has spoken: the nearest talk-over is min_overlap_s away, and so follows it
    p.update_settings(DetectorSettings(min_overlap_s=0.4))
    assert p.quiet_s == pytest.approx(0.4 - 1000 / ANALYSIS_RATE, abs=1e-5)


# -- acoustic shocks, before the samples are pushed --------------------------------------------


@pytest.mark.parametrize("rate", [8000, 16000, 48000])
def test_could_shock_sees_every_burst_at_any_rate(rate: int) -> None:
    """Captured at ``rate``, cut in 40 ms blocks: some block of every shock the detector
    confirms (after the pipeline's resampling to 16 kHz) is seen as one that could start."""
    det = AcousticShock(HearingSettings())
    hop = round(0.04 * rate)
    checked = 0
    for name, make in BURSTS.items():
        burst = np.concatenate((np.zeros(ANALYSIS_RATE // 2, np.float32), make()))
        captured = burst
        if rate != ANALYSIS_RATE:
            r = Resampler(ANALYSIS_RATE, rate)
            captured = np.concatenate((r.process(burst), r.flush()))
        p = Pipeline(agent_rate=rate, customer_rate=rate)
        events = p.push(np.zeros_like(captured), captured) + p.finish()
        if not any(e.kind is Kind.ACOUSTIC_SHOCK for e in events):
            assert rate == 8000 and name.startswith("tone_6"), name  # above 4 kHz: gone
            continue
        checked += 1
        assert any(det.could_begin(captured[i:i + hop])
                   for i in range(0, len(captured), hop)), name
    assert checked >= len(BURSTS) - 1


def test_could_shock_is_rare_on_speech_and_never_on_quiet_audio() -> None:
    det = AcousticShock(HearingSettings())
    _, c = sample_call()
    hop = 640
    seen = [det.could_begin(c[i:i + hop]) for i in range(0, len(c), hop)]
    assert sum(seen) <= 0.02 * len(seen), sum(seen)
    assert not det.could_begin(np.zeros(0, np.float32))
    assert not det.could_begin(np.full(hop, 0.1, np.float32))  # -20 dBFS
    assert det.could_begin(np.full(hop, 0.5, np.float32))  # -6 dBFS: near the burst level
    click = np.zeros(hop, np.float32)
    click[17] = 0.99
    assert det.could_begin(click)
    # the limits follow the [hearing] settings
    det.configure(HearingSettings(shock_burst_dbfs=-25.0, shock_tone_dbfs=-25.0))
    assert det.could_begin(np.full(hop, 0.1, np.float32))
