"""Too quiet / too loud on the party's speech level window, and reload."""

from __future__ import annotations

import dataclasses

import numpy as np

from dsp import ANALYSIS_RATE
from dsp.detectors.levels import EARLY_QUIET_FRAMES, EARLY_QUIET_MARGIN_DB, Levels
from dsp.events import Kind, Phase, Stream
from dsp.party import Party, frames
from dsp.settings import DetectorSettings

S = DetectorSettings()


def _levels(level_dbfs: float, settings: DetectorSettings = S) -> Levels:
    party = Party(Stream.AGENT, ANALYSIS_RATE, settings)
    party.add_speech_energy(np.full(frames(settings.level_window_s), 10 ** (level_dbfs / 10)))
    return Levels(party, settings)


def test_nothing_until_the_window_is_full_unless_far_under_the_threshold():
    near = 10 ** ((S.too_quiet_dbfs - EARLY_QUIET_MARGIN_DB + 0.5) / 10)
    party = Party(Stream.AGENT, ANALYSIS_RATE, S)
    party.add_speech_energy(np.full(frames(S.level_window_s) - 1, near))
    assert Levels(party, S).judge(1000, 0) == []
    # A second of speech far under the threshold is enough; less is not.
    far = 10 ** ((S.too_quiet_dbfs - EARLY_QUIET_MARGIN_DB - 0.5) / 10)
    party = Party(Stream.AGENT, ANALYSIS_RATE, S)
    party.add_speech_energy(np.full(EARLY_QUIET_FRAMES - 1, far))
    assert Levels(party, S).judge(1000, 0) == []
    party.add_speech_energy(np.full(1, far))
    (begin,) = Levels(party, S).judge(1000, 0)
    assert begin.kind is Kind.TOO_QUIET


def test_too_quiet_below_the_threshold_only():
    (begin,) = _levels(S.too_quiet_dbfs - 0.5).judge(1000, 0)
    assert begin.kind is Kind.TOO_QUIET and begin.phase is Phase.BEGIN
    assert begin.start == (1000 - frames(S.level_window_s)) * 320
    assert _levels(S.too_quiet_dbfs + 0.5).judge(1000, 0) == []


def test_too_loud_and_dated_no_earlier_than_the_call():
    (begin,) = _levels(S.too_loud_dbfs + 1.0).judge(300, 200)
    assert begin.kind is Kind.TOO_LOUD and begin.start == 200 * 320


def test_the_end_carries_the_worst_level_the_condition_held_at():
    """The level at the END has recovered (under the threshold less the hysteresis); the END
    also says how loud it got meanwhile, so a report does not read as a false alarm."""
    det = _levels(S.too_loud_dbfs + 1.0)
    (begin,) = det.judge(1000, 0)
    assert begin.phase is Phase.BEGIN and begin.kind is Kind.TOO_LOUD
    for level, at in ((S.too_loud_dbfs + 4.0, 1050), (S.too_loud_dbfs + 2.0, 1100)):
        det.party.add_speech_energy(np.full(frames(S.level_window_s), 10 ** (level / 10)))
        assert det.judge(at, 0) == []
    det.party.add_speech_energy(
        np.full(frames(S.level_window_s), 10 ** ((S.too_loud_dbfs - 6.0) / 10)))
    (end,) = det.judge(1150, 0)
    assert end.phase is Phase.END
    assert abs(end.data["worst_level_dbfs"] - (S.too_loud_dbfs + 4.0)) < 0.01
    assert abs(end.data["level_dbfs"] - (S.too_loud_dbfs - 6.0)) < 0.01
    # A quiet party's worst is its lowest level; closing at the end of input carries it too.
    det = _levels(S.too_quiet_dbfs - 2.0)
    assert len(det.judge(1000, 0)) == 1
    det.party.add_speech_energy(
        np.full(frames(S.level_window_s), 10 ** ((S.too_quiet_dbfs - 9.0) / 10)))
    assert det.judge(1050, 0) == []
    (end,) = det.close(1060)
    assert abs(end.data["worst_level_dbfs"] - (S.too_quiet_dbfs - 9.0)) < 0.01


def test_reload_resolves_against_the_new_threshold():
    det = _levels(-45.0)
    assert len(det.judge(1000, 0)) == 1
    det.configure(dataclasses.replace(S, too_quiet_dbfs=-50.0))
    (end,) = det.judge(1050, 0)
    assert end.phase is Phase.END and end.kind is Kind.TOO_QUIET
    assert det.close(1100) == []


class _Heard:
    """A VAD that records the first sample of each frame it is asked about, and says "voice"
    to all of them."""

    def __init__(self) -> None:
        self.seen: list[list[int]] = []

    def classify(self, frames_pcm16: np.ndarray, candidates: np.ndarray) -> None:
        self.seen.append([int(frames_pcm16[k, 0]) for k in np.flatnonzero(candidates)])

    def set_mode(self, mode: int) -> None:
        pass


def test_the_vad_hears_a_quiet_party_raised_to_the_reference_level():
    from dsp.party_vad import (
        EARLY_VAD_GAIN_DB,
        EARLY_VAD_LOUD_FRAMES,
        EARLY_VAD_QUIET_MIC_DBFS,
        VAD_MAX_GAIN_DB,
        VAD_REFERENCE_DBFS,
    )

    def gain(db: float) -> int:
        return int(100 * 10 ** (db / 20))

    party = Party(Stream.AGENT, ANALYSIS_RATE, S)
    own, early = _Heard(), _Heard()
    vads = party.vads
    vads.vad, vads.early_vad = own, early
    pcm = np.full((2, 320), 100, dtype=np.int16)
    both = np.ones(2, dtype=bool)
    # Level unknown, nothing loud yet: a second VAD hears the frames raised; the party's own
    # VAD hears them as they are.
    vads.classify(pcm, np.array([-50.0, -45.0]), both.copy(), party.voice_dbfs())
    assert early.seen == [[gain(EARLY_VAD_GAIN_DB)] * 2]
    assert own.seen == [[100, 100]]
    # A quiet voice's stressed syllables reach the quiet limit now and then: one frame short
    # of EARLY_VAD_LOUD_FRAMES such frames, every frame is still heard raised.
    n = EARLY_VAD_LOUD_FRAMES
    many = np.full((n, 320), 100, dtype=np.int16)
    db = np.full(n, EARLY_VAD_QUIET_MIC_DBFS)
    db[0] = -50.0
    vads.classify(many, db, np.ones(n, dtype=bool), party.voice_dbfs())
    assert early.seen[-1] == [gain(EARLY_VAD_GAIN_DB)] * n
    # From the frame that makes them EARLY_VAD_LOUD_FRAMES on, the party is heard as they are
    # (a voice at the nominal level has that many within its first words).
    vads.classify(pcm, np.array([-50.0, EARLY_VAD_QUIET_MIC_DBFS]), both.copy(),
                  party.voice_dbfs())
    assert early.seen[-1] == [gain(EARLY_VAD_GAIN_DB)] and own.seen[-1] == [100, 100]
    vads.classify(pcm, np.array([-50.0, -50.0]), both.copy(), party.voice_dbfs())
    assert len(early.seen) == 3 and own.seen[-1] == [100, 100]
    # Frames under the limit do not count towards it.
    vads.loud_frames = n - 1
    vads.classify(pcm, np.array([EARLY_VAD_QUIET_MIC_DBFS - 0.1, -50.0]), both.copy(),
                  party.voice_dbfs())
    assert early.seen[-1] == [gain(EARLY_VAD_GAIN_DB)] * 2
    vads.loud_frames = n
    # Level known: the party's gain, on every frame.
    party.add_speech_energy(np.full(100, 10 ** (-54 / 10)))
    vads.classify(pcm, np.array([-50.0, -36.0]), both.copy(), party.voice_dbfs())
    assert own.seen[-1] == [gain(VAD_REFERENCE_DBFS + 54)] * 2
    party.add_speech_energy(np.full(frames(S.level_window_s), 10 ** (-90 / 10)))
    vads.classify(pcm, np.array([-50.0, -36.0]), both.copy(), party.voice_dbfs())
    assert own.seen[-1] == [gain(VAD_MAX_GAIN_DB)] * 2


def test_a_loud_frame_the_far_end_may_explain_ends_the_mics_raise_at_once():
    """Before the echo estimator has found a laptop speaker's leak, the customer's voice in
    the mic can reach the quiet limit: a frame the far end is as loud as, at some delay, ends
    the raise at once; one the far end is quieter than counts as one loud frame."""
    from dsp.party_vad import EARLY_VAD_GAIN_DB, EARLY_VAD_LOUD_FRAMES, EARLY_VAD_QUIET_MIC_DBFS

    def fresh() -> tuple[_Heard, Party]:
        party = Party(Stream.AGENT, ANALYSIS_RATE, S)
        early = _Heard()
        party.vads.vad, party.vads.early_vad = _Heard(), early
        return early, party

    pcm = np.full((3, 320), 100, dtype=np.int16)
    db = np.array([-50.0, EARLY_VAD_QUIET_MIC_DBFS, -50.0])
    raised_ = int(100 * 10 ** (EARLY_VAD_GAIN_DB / 20))
    far = np.full((3, 4), -70.0)
    far[1, 2] = EARLY_VAD_QUIET_MIC_DBFS  # the far end, two frames earlier, as loud
    early, party = fresh()
    party.vads.classify(pcm, db, np.ones(3, dtype=bool), None, far)
    assert early.seen == [[raised_]]  # only the frame before it was raised
    assert party.vads.loud_frames >= EARLY_VAD_LOUD_FRAMES
    far[1, 2] = EARLY_VAD_QUIET_MIC_DBFS - 0.5  # quieter than the frame: not its leak
    early, party = fresh()
    party.vads.classify(pcm, db, np.ones(3, dtype=bool), None, far)
    assert early.seen == [[raised_] * 3] and party.vads.loud_frames == 1


def test_the_level_windows_cached_mean_is_the_recomputed_mean_of_a_long_stream():
    """The window's mean, computed once per :meth:`Party.add_speech_energy`, gives exactly the
    levels that averaging a plainly kept ring at every read gives: over a long random stream
    of segment-sized and larger batches (the ring wraps many times), and after a reload that
    changes the window's length."""
    from dsp.levels import power_dbfs

    party = Party(Stream.AGENT, ANALYSIS_RATE, S)
    rng = np.random.default_rng(11)

    def check(ring: np.ndarray, pos: int, count: int, batches: int) -> tuple[int, int]:
        for _ in range(batches):
            e = 10 ** (rng.uniform(-90, -10, size=int(rng.integers(0, ring.size + 80))) / 10)
            party.add_speech_energy(e)
            for v in e[-ring.size:]:  # the ring kept one value at a time
                ring[pos] = v
                pos = (pos + 1) % ring.size
            count += e.size
            n = min(count, ring.size)
            for m in (1, 50, EARLY_QUIET_FRAMES):
                want = power_dbfs(float(ring[:n].mean())) if n >= m and n else None
                assert party.voice_dbfs(m) == want
            full = power_dbfs(float(ring.mean())) if count >= ring.size else None
            assert party.level_dbfs() == full
        return pos, count

    check(np.zeros(frames(S.level_window_s)), 0, 0, 400)
    longer = dataclasses.replace(S, level_window_s=S.level_window_s * 2)
    party.configure(longer)
    assert party.voice_dbfs(1) is None and party.level_dbfs() is None
    check(np.zeros(frames(longer.level_window_s)), 0, 0, 200)
