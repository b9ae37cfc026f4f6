"""The small state machines behind every detector, on scripted frame sequences."""

from __future__ import annotations

import numpy as np
import pytest

from dsp import ANALYSIS_RATE
from dsp.activity import SpurtChange, TalkSpurts
from dsp.condition import BEGIN, END, NOTHING, Condition
from dsp.detectors.talkover import MERGE_FRAMES, ONSET_LAG_FRAMES, TalkOverDetector
from dsp.echo import (
    FAINT_COUPLING_DB,
    LEAK_EDGE_DB,
    LEAK_EDGE_FAINT_DB,
    LEAK_EDGE_KEEP_DB,
    EchoEstimator,
)
from dsp.events import Stream
from dsp.levels import frame_features
from dsp.noise import BackgroundLevel, MinimumFloor
from dsp.party import (
    EARLY_ABOVE_FLOOR_MAX_DB,
    EDGE_MARGIN_DB,
    LISTEN_MAX_SNR_DB,
    LISTEN_MIN_MARGIN_DB,
    LISTEN_QUIET_ROOM_DBFS,
    NOISE_LEVEL_MARGIN_DB,
    STEADY_NOISE_MARGIN_DB,
    Party,
)
from dsp.settings import DetectorSettings
from dsp.vad import to_pcm16


def test_spurt_needs_onset_frames_and_ends_after_hangover():
    sp = TalkSpurts(start_frames=3, hangover_frames=5)
    seq = [1, 1, 0, 1, 1, 1, 1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0]
    changes = [sp.step(i, bool(x)) for i, x in enumerate(seq)]
    # Two frames then a gap: no spurt. Three in a row start one at frame 3.
    assert changes.index(1) == 5 and sp.spurt_start == 3
    # The gap of four frames at 7..10 is bridged; the spurt ends five frames after frame 11.
    assert changes.index(-1) == 16
    assert sp.last_speech == 11


def test_condition_confirms_after_on_frames_and_resolves_after_off_frames():
    c = Condition(on_frames=3, off_frames=2)
    verdicts = [(1, 0), (0, 0), (1, 0), (1, 0), (0, 1), (1, 0), (0, 1), (0, 1)]
    out = [c.update(i, bool(b), bool(g)) for i, (b, g) in enumerate(verdicts)]
    # Frame 1 is neither bad nor good: it holds the run.
    assert out == [NOTHING, NOTHING, NOTHING, BEGIN, NOTHING, NOTHING, NOTHING, END]
    assert c.start == 0 and c.end == 6


def test_condition_update_many_matches_single_steps():
    a, b = Condition(7, 4), Condition(7, 4)
    script = [(5, True, False), (3, True, False), (2, False, True), (6, False, True)]
    i = 0
    single, many = [], []
    for n, bad, good in script:
        single += [a.update(i + k, bad, good) for k in range(n)]
        many.append(b.update_many(i, n, bad, good))
        i += n
    assert [x for x in single if x] == [x for x in many if x] == [BEGIN, END]
    assert (a.start, a.end) == (b.start, b.end)


def _episodes(agent_speech, customer_speech, n: int, hangover: int = 5) -> list:
    agent, customer = TalkSpurts(1, hangover), TalkSpurts(1, hangover)
    det = TalkOverDetector(min_frames=10)
    changes = []
    for i in range(n):
        a, c = agent_speech(i), customer_speech(i)
        agent.step(i, a)
        customer.step(i, c)
        ch = det.step(i, agent, customer, a, c)
        if ch:
            changes.append(ch)
    return changes


def test_talk_over_initiator_is_the_later_starter_and_short_overlap_is_ignored():
    changes = _episodes(lambda i: 20 <= i < 26 or 30 <= i < 45,  # a short burst, then more
                        lambda i: i < 50, 160)
    # The burst at 20..25 and the speech from 30 are one episode (gap < 0.5 s) from 20; it is
    # over once no later stretch can join it (merge distance plus onset lag after the last
    # frame both were heard in).
    assert [c.begin for c in changes] == [True, False]
    assert changes[0].initiator is Stream.AGENT and changes[0].start == 20
    assert changes[1].end == 45


def test_a_pause_in_the_interrupted_turn_does_not_flip_the_initiator():
    # The customer talks with a 0.4 s pause between phrases; the agent cuts in before it and
    # talks on. The customer's next phrase starts after the agent's run, but the episode began
    # with the agent's interruption.
    changes = _episodes(lambda i: 30 <= i < 90, lambda i: i < 40 or 60 <= i < 100, 200)
    assert [c.begin for c in changes] == [True, False]
    assert changes[0].initiator is Stream.AGENT and changes[0].start == 30
    assert changes[1].end == 90


def test_background_talk_before_a_reply_does_not_make_it_the_older_speech():
    # The agent's mic carries a colleague's voice under the agent's own level from frame 0
    # (speech frames, in runs close enough to be one activity run, never at the resume
    # level); the customer talks from frame 30; the agent cuts in at frame 50.
    agent, customer = TalkSpurts(1, 5), TalkSpurts(1, 5)
    det = TalkOverDetector(min_frames=10)
    changes = []
    for i in range(200):
        own = 50 <= i < 90
        a = own or (i < 50 and i % 5 < 3)
        c = 30 <= i < 110
        agent.step(i, a, strong=own, resume=own)
        customer.step(i, c)
        ch = det.step(i, agent, customer, a, c)
        if ch:
            changes.append(ch)
    assert agent.run_start == 0 and agent.voice_start == 50
    assert [c.begin for c in changes] == [True, False]
    assert changes[0].initiator is Stream.AGENT


def test_overlaps_further_apart_than_half_a_second_are_two_episodes():
    changes = _episodes(lambda i: 10 <= i < 30 or 56 <= i < 80, lambda i: i < 100, 160)
    assert [c.begin for c in changes] == [True, False, True, False]
    assert (changes[1].end, changes[2].start) == (30, 56)


def test_overlap_of_speech_tails_is_not_talk_over():
    agent, customer = TalkSpurts(1, 15), TalkSpurts(1, 15)
    det = TalkOverDetector(min_frames=10)
    for i in range(80):
        c_speech = i < 30
        a_speech = i >= 32  # a quick turn change: only the hangovers overlap
        agent.step(i, a_speech)
        customer.step(i, c_speech)
        assert det.step(i, agent, customer, a_speech, c_speech) is None


def test_minimum_floor_follows_the_quietest_frames():
    f = MinimumFloor(history=2)
    floors = f.floors(np.array([-30.0, -50.0, -20.0]))
    assert floors.tolist() == [-30.0, -50.0, -50.0]
    f.end_segment()
    assert f.floors(np.array([-40.0])).tolist() == [-50.0]
    f.end_segment()
    f.end_segment()
    assert f.floors(np.array([-35.0])).tolist() == [-40.0]


def test_background_sits_in_speech_pauses_and_on_babble():
    rng = np.random.default_rng(1)
    bg = BackgroundLevel(window_frames=200, percentile=30.0)
    # Talk with pauses: 60 % of frames speech around -26 dBFS, the rest room noise at -65.
    for _ in range(4):
        speech = rng.random(50) < 0.6
        bg.add_segment(np.where(speech, rng.normal(-26, 6, 50), rng.normal(-65, 1, 50)))
    assert bg.live_dbfs == pytest.approx(-65, abs=3)
    assert bg.call_dbfs is None  # no mostly-silent segment yet
    # Babble: no pauses, level around -44 with dips.
    for _ in range(4):
        bg.add_segment(rng.normal(-44, 4, 50))
    assert bg.live_dbfs == pytest.approx(-46, abs=2)
    bg.add_quiet(1e-4)
    bg.add_quiet(1e-6)
    assert bg.call_dbfs == pytest.approx(10 * np.log10(0.5 * (1e-4 + 1e-6)))


def test_early_background_stays_within_reach_of_the_floor():
    """Before the quiet estimate is trusted, a party who talks without pause from the start
    must not have their own speech taken for the background: the estimate over all frames
    is held within EARLY_ABOVE_FLOOR_MAX_DB of the floor of the finished segments."""
    party = Party(Stream.AGENT, ANALYSIS_RATE, DetectorSettings())
    levels = np.where(np.arange(50) % 10 == 0, -70.0, -25.0)  # speech, a dip every 0.2 s
    party.floor.floors(levels)
    party.noise_all.add_segment(levels)
    assert party.background_dbfs(50) == pytest.approx(-25.0)   # no segment finished yet
    party.floor.end_segment()
    assert party.floor.settled_dbfs == -70.0
    assert party.background_dbfs(50) == pytest.approx(-70.0 + EARLY_ABOVE_FLOOR_MAX_DB)
    steady = np.full(50, -50.0)                                 # steady noise: no limit
    noisy = Party(Stream.AGENT, ANALYSIS_RATE, DetectorSettings())
    noisy.floor.floors(steady - 3.0)
    noisy.floor.end_segment()
    noisy.noise_all.add_segment(steady)
    assert noisy.background_dbfs(50) == pytest.approx(-50.0)


def test_soft_edges_must_clear_how_high_the_background_reaches():
    """Between a party's spurts babble swings well above its 30th percentile: a frame next to
    a spurt counts as the party's soft edge only above the background's 80th percentile."""
    rng = np.random.default_rng(3)
    party = Party(Stream.AGENT, ANALYSIS_RATE, DetectorSettings())
    for _ in range(4):
        babble = rng.normal(-45.0, 4.0, 50)                         # babble between spurts
        party.noise.add_segment(babble)
        party.floor.floors(babble)
        party.floor.end_segment()
    party.add_speech_energy(np.full(250, 10 ** (-25.0 / 10)))      # the party's own level
    assert party.noise.upper_dbfs is not None
    assert party.noise.upper_dbfs > party.noise.live_dbfs + EDGE_MARGIN_DB
    levels = np.array([party.noise.live_dbfs + EDGE_MARGIN_DB + 0.5,
                       party.noise.upper_dbfs + 0.5])
    t = np.arange(320) / ANALYSIS_RATE
    tone = np.sin(2 * np.pi * 200 * t) * np.sqrt(2)
    frames = np.stack([tone * 10 ** (lv / 20) for lv in levels]).astype(np.float32)
    feats = frame_features(frames, 0.99)
    edge = party.gate(feats, to_pcm16(frames), np.zeros(2, bool), None, 200).audible
    assert edge.tolist() == [False, True]


def test_the_background_margin_narrows_in_steady_noise_only():
    """8 dB over the background in babble, whose louder moments reach that far; in steady
    noise the background's own reach plus 3 dB, at least 5 dB."""
    rng = np.random.default_rng(4)
    margins = {}
    for name, spread in (("babble", 4.0), ("rain", 0.7)):
        party = Party(Stream.AGENT, ANALYSIS_RATE, DetectorSettings())
        assert party.noise_margin_db(-40.0) == NOISE_LEVEL_MARGIN_DB   # nothing known yet
        for _ in range(4):
            party.noise.add_segment(rng.normal(-40.0, spread, 50))
        margins[name] = party.noise_margin_db(party.noise.live_dbfs)
    assert margins["babble"] == NOISE_LEVEL_MARGIN_DB
    assert margins["rain"] == STEADY_NOISE_MARGIN_DB


def test_the_vad_listens_just_above_a_steady_background_a_quiet_voice_barely_clears():
    """A fan-like background (steady) under a voice less than 12 dB over it: frames from the
    background's 80th percentile go to the listening VAD. Babble (swinging), a voice well
    clear of the noise, a quiet room before the voice's level is known, or a background not
    yet measured between spurts: the full gate."""
    rng = np.random.default_rng(5)

    def party(spread: float, voice_dbfs: float | None, segments: int = 4,
              room_dbfs: float = -50.0) -> Party:
        p = Party(Stream.AGENT, ANALYSIS_RATE, DetectorSettings())
        for _ in range(segments):
            p.noise.add_segment(rng.normal(room_dbfs, spread, 50))
        if voice_dbfs is not None:
            p.add_speech_energy(np.full(p.level_energy.size, 10 ** (voice_dbfs / 10)))
        return p

    steady = party(0.7, -42.0)
    noise = steady.noise.live_dbfs
    spread = steady.noise.upper_dbfs - noise
    assert steady.listen_dbfs(noise) == pytest.approx(noise + max(LISTEN_MIN_MARGIN_DB, spread))
    assert steady.listen_dbfs(noise) < noise + steady.noise_margin_db(noise)
    assert party(0.7, None).listen_dbfs(noise) is not None   # level not known yet
    # A quiet room: only once the voice's level is known to stand less than 12 dB over it.
    quiet = party(0.7, None, room_dbfs=LISTEN_QUIET_ROOM_DBFS - 5.0)
    assert quiet.listen_dbfs(quiet.noise.live_dbfs) is None
    faint = party(0.7, LISTEN_QUIET_ROOM_DBFS + 5.0, room_dbfs=LISTEN_QUIET_ROOM_DBFS - 5.0)
    assert faint.listen_dbfs(faint.noise.live_dbfs) is not None
    assert party(4.0, -42.0).listen_dbfs(noise) is None      # babble
    clear = party(0.7, noise + LISTEN_MAX_SNR_DB + 1.0)
    assert clear.listen_dbfs(clear.noise.live_dbfs) is None
    assert party(0.7, -42.0, segments=1).listen_dbfs(noise) is None  # not trusted yet
    assert steady.listen_dbfs(None) is None


def _far_lagged(rng: np.random.Generator, n: int, lags: int) -> np.ndarray:
    """``n`` frames of far-end levels at each delay 0 .. ``lags`` - 1, as the pipeline hands
    them to the echo estimator."""
    far = rng.uniform(-50, -20, n + lags)
    return np.stack([far[lags - d : lags - d + n] for d in range(lags)], axis=1)


def test_echo_estimator_finds_delay_and_coupling_and_ignores_independent_audio():
    rng = np.random.default_rng(2)
    n, lags = 600, 16
    lagged = _far_lagged(rng, n, lags)
    leak = EchoEstimator(max_lag_frames=lags - 1)
    leak.add(lagged[:, 4] - 18.0 + rng.normal(0, 0.5, n), lagged)
    assert leak.refresh()
    assert leak.present and leak.delay_frames == 4
    assert leak.coupling_db == pytest.approx(-18.0, abs=0.5)
    clean = EchoEstimator(max_lag_frames=lags - 1)
    clean.add(rng.uniform(-70, -60, n), lagged)
    assert clean.refresh()
    assert not clean.present


def test_echo_coupling_is_the_leak_not_the_agent_talking_over_it():
    """A -18 dB leak while the agent talks over the far end in 60 % of its frames (a heated
    call): agent speech only adds energy, so the coupling is read from the lower part of the
    mic-minus-far-end levels, not their median (which sat at the double talk)."""
    rng = np.random.default_rng(7)
    n, lags = 800, 16
    lagged = _far_lagged(rng, n, lags)
    leak = lagged[:, 4] - 18.0 + rng.normal(0, 0.5, n)
    voice = rng.uniform(-30.0, -15.0, n)
    talking = rng.random(n) < 0.6
    mic = np.where(talking, 10 * np.log10(10 ** (leak / 10) + 10 ** (voice / 10)), leak)
    est = EchoEstimator(max_lag_frames=lags - 1)
    est.add(mic, lagged)
    assert est.refresh()
    assert est.delay_frames == 4
    assert est.coupling_db == pytest.approx(-18.0, abs=1.5)
    assert float(np.median(mic - lagged[:, 4])) > -14.0     # what the median would say


def test_a_run_after_a_pause_carries_a_spurt_on_only_once_it_reaches_the_resume_level():
    sp = TalkSpurts(1, 15)
    for i in range(20):
        sp.step(i, True)
    # A weaker voice after a 0.1 s pause: VAD speech, never at the resume level.
    for i in range(20, 25):
        sp.step(i, False)
    changes = [sp.step(i, True, False, False) for i in range(25, 60)]
    assert SpurtChange.STOP in changes and not sp.active
    assert sp.spurt_end == 20
    # The talker's own next words after a pause: counted from the run's first frame.
    sp2 = TalkSpurts(1, 15)
    for i in range(20):
        sp2.step(i, True)
    for i in range(20, 25):
        sp2.step(i, False)
    sp2.step(25, True, False, False)
    sp2.step(26, True, False, True)
    assert sp2.active and sp2.last_speech == 26 and sp2.active_frames == 27



def test_speech_after_a_cut_goes_on_with_the_same_activity_run():
    """A spurt cut for want of loud frames ends, but the party, still heard without a pause,
    has not started a new activity run: they did not start after the one who talked over
    them."""
    sp = TalkSpurts(start_frames=5, hangover_frames=15)
    changes = [sp.step(i, True, True, True) for i in range(20)]     # loud speech from 0
    assert changes[4] is SpurtChange.START and sp.run_start == 0
    for i in range(20, 70):                                       # softer, never loud again
        if sp.step(i, True, False, False) is SpurtChange.STOP:
            assert sp.was_cut
    assert not sp.active
    for i in range(70, 80):                                       # loud again, no pause
        sp.step(i, True, True, True)
    assert sp.active and sp.run_start == 0
    for i in range(80, 100):                                      # a real pause (0.4 s) ...
        sp.step(i, False)
    sp.step(100, True, True, True)                                # ... starts a new run
    assert sp.run_start == 100


def test_an_episode_closes_only_once_no_later_stretch_can_join_it():
    # A stretch seen late (a soft restart) is backdated to its first frame; the episode waits
    # the merge distance plus that onset lag before it is over.
    agent, customer = TalkSpurts(1, 5), TalkSpurts(1, 5)
    det = TalkOverDetector(min_frames=10)
    closed_at = []
    for i in range(200):
        a, c = 10 <= i < 30, True
        agent.step(i, a)
        customer.step(i, c)
        ch = det.step(i, agent, customer, a, c)
        if ch is not None and not ch.begin:
            closed_at.append((i, ch.end))
    assert closed_at == [(30 + MERGE_FRAMES + ONSET_LAG_FRAMES, 30)]


def test_echo_estimator_needs_a_sharp_lower_edge_not_only_correlation():
    # The mic tracks the far end closely on most frames (the agent's own turns, which can
    # follow the customer's by chance) but sits at its noise floor on the rest: a leak would
    # never let the mic fall below it, so this is no leak.
    rng = np.random.default_rng(3)
    n, lags = 120, 16
    lagged = _far_lagged(rng, n, lags)
    mic = lagged[:, 4] - 2.0 + rng.normal(0, 0.5, n)
    mic[rng.random(n) < 0.2] = -75.0
    est = EchoEstimator(max_lag_frames=lags - 1)
    est.add(mic, lagged)
    assert est.refresh()
    assert est.correlation >= 0.6 and est.edge_db > 3.0
    assert not est.present
    # The same frames with a real leak under the agent's voice: the edge is sharp.
    leak = EchoEstimator(max_lag_frames=lags - 1)
    floor = lagged[:, 4] - 2.0 + rng.normal(0, 0.5, n)
    leak.add(np.maximum(mic, floor), lagged)
    assert leak.refresh()
    assert leak.present and leak.edge_db <= 3.0


def test_a_found_leak_is_kept_through_frames_the_speaker_renders_weaker():
    # Laptop speakers pass 300-5000 Hz: a far-end frame whose energy lies under 300 Hz (a low
    # voice's vowels) reaches the mic several dB weaker than the rest. Once the leak is found on
    # its sharp lower edge, such frames must not lose it; never found, they do not find it.
    rng = np.random.default_rng(4)
    n, lags = 400, 16
    lagged = _far_lagged(rng, 2 * n, lags)
    mic = lagged[:, 4] - 20.0 + rng.normal(0, 0.3, 2 * n)
    weak = rng.random(2 * n) < 0.2
    weak[:n] = False
    mic[weak] -= rng.uniform(3.0, 8.0, int(weak.sum()))
    kept = EchoEstimator(max_lag_frames=lags - 1)
    kept.add(mic[:n], lagged[:n])
    assert kept.refresh() and kept.present
    kept.add(mic[n:], lagged[n:])
    assert kept.refresh()
    assert 4.5 < kept.edge_db <= LEAK_EDGE_KEEP_DB and kept.present
    fresh = EchoEstimator(max_lag_frames=lags - 1)
    fresh.add(mic[n:], lagged[n:])
    assert fresh.refresh() and fresh.edge_db > LEAK_EDGE_DB and not fresh.present


def test_a_faint_leak_is_found_on_a_softer_edge_than_a_leak_as_loud_as_the_far_end():
    # Keystrokes, a fan and the far end's weak low vowels widen the leak's lower edge; a faint
    # leak (-20 dB) is still found on an edge of 3-4.5 dB. The same edge at -3 dB is what the
    # agent's own turns give by chance, and is no leak.
    rng = np.random.default_rng(0)
    n, lags = 300, 16
    lagged = _far_lagged(rng, n, lags)
    mic = lagged[:, 4] + rng.normal(0, 0.3, n)
    weak = rng.random(n) < 0.15
    mic[weak] -= rng.uniform(3.0, 8.0, int(weak.sum()))
    faint, loud = (EchoEstimator(max_lag_frames=lags - 1) for _ in range(2))
    faint.add(mic - 20.0, lagged)
    loud.add(mic - 3.0, lagged)
    assert faint.refresh() and loud.refresh()
    for est in (faint, loud):
        assert LEAK_EDGE_DB < est.edge_db <= LEAK_EDGE_FAINT_DB and est.correlation >= 0.9
    assert faint.coupling_db <= FAINT_COUPLING_DB < loud.coupling_db
    assert faint.present and not loud.present


def test_the_far_end_speech_an_echo_verdict_rests_on_moves_only_at_estimates():
    # What the talk-over detector reads of the estimator must not depend on how the audio
    # was cut into blocks: frames added between estimates do not count yet.
    rng = np.random.default_rng(6)
    n, lags = 120, 16
    lagged = _far_lagged(rng, n, lags)
    est = EchoEstimator(max_lag_frames=lags - 1)
    est.add(rng.uniform(-75, -70, 60), lagged[:60])
    assert est.far_frames == 0 and est.refresh() and est.far_frames == 60
    est.add(rng.uniform(-75, -70, 5), lagged[60:65])
    assert est.far_frames == 60



class _AllVoice:
    """A VAD that calls every candidate frame a voice."""

    def classify(self, frames_pcm16: np.ndarray, candidates: np.ndarray) -> None:
        pass

    def set_mode(self, mode: int) -> None:
        pass


def test_a_segments_start_and_resume_levels_do_not_move_with_the_block_it_comes_in():
    # How long the party has been quiet relaxes the level a run must reach to carry a spurt
    # on. Judged from the spurt state where a block starts, a 10 s block and 40 ms blocks
    # gave the same frame different verdicts; it is judged once a segment.
    party = Party(Stream.AGENT, ANALYSIS_RATE, DetectorSettings())
    party.vads.vad = _AllVoice()
    party.add_speech_energy(np.full(100, 10 ** (-30 / 10)))
    rng = np.random.default_rng(0)
    x = np.concatenate([rng.normal(0, 10 ** (-80 / 20), 320),
                        rng.normal(0, 10 ** (-36.3 / 20), 320)]).astype(np.float32)
    frames = x.reshape(2, 320)
    feats = frame_features(frames, 0.99)
    pcm = to_pcm16(frames)
    clicks = np.zeros(2, dtype=bool)
    party.spurts.last_speech = 0                  # heard 1.2 s before this block ...
    early = party.gate(feats, pcm, clicks, None, 60)
    party.spurts.last_speech = 61                 # ... or just before the next one
    late = party.gate(feats, pcm, clicks, None, 62)
    assert early[0][1] and late[0][1]             # speech both times
    assert [v.tolist() for v in early] == [v.tolist() for v in late]


def test_background_ring_holds_what_an_indexed_scatter_put_there():
    """The background's ring, written as two slices, holds exactly what writing each level at
    (count + i) % size held, and gives the same percentiles: over a long random stream of
    segments shorter and longer than the window, so the ring wraps at every position."""
    bg = BackgroundLevel(window_frames=200, percentile=30.0)
    ring, count = np.zeros(200), 0
    rng = np.random.default_rng(9)
    for _ in range(500):
        levels = rng.normal(-50, 10, int(rng.integers(0, 260)))
        bg.add_segment(levels)
        n = min(levels.size, ring.size)
        if n:
            ring[(count + np.arange(n)) % ring.size] = levels[-n:]
        count += n
        assert np.array_equal(bg._hist, ring) and bg.frames == count
        if count:
            filled = np.sort(ring[: min(count, ring.size)])
            assert bg.live_dbfs == filled[int(0.3 * (filled.size - 1))]
            assert bg.upper_dbfs == filled[int(0.8 * (filled.size - 1))]


def test_echo_rings_hold_what_a_frame_by_frame_write_put_there():
    """The estimator keeps its far-end speech frames in rings written as slices: the rows are
    exactly those of writing one frame at a time at kept % window, over batches of every size
    (empty, one frame, more than the window)."""
    est = EchoEstimator(max_lag_frames=6, window_frames=40)
    far, mic, kept = np.zeros((40, 7)), np.zeros(40), 0
    rng = np.random.default_rng(4)
    for _ in range(300):
        n = int(rng.choice([0, 1, 3, 17, 39, 40, 41, 95]))
        m, f = rng.normal(-40, 9, n), rng.normal(-30, 9, (n, 7))
        est.add(m, f)
        for k in range(n):
            far[kept % 40], mic[kept % 40] = f[k], m[k]
            kept += 1
        assert np.array_equal(est._far, far) and np.array_equal(est._mic, mic)
        assert est._kept == kept
