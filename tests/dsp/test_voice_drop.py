"""The judgment that a party's voice dropped under the level the gates hold them to."""

from __future__ import annotations

import numpy as np

from dsp.events import Stream
from dsp.party import SEGMENT_FRAMES, Party
from dsp.settings import DetectorSettings
from dsp.voice_drop import (
    MAX_OVERLAP,
    MIN_HELD_FRAMES,
    OTHER_TURN_FRAMES,
    TURN_MIN_FRAMES,
    WINDOW_SEGMENTS,
    VoiceDrop,
)


def segment(vd: VoiceDrop, held: int = 0, overlap: int = 0, own: int = 0, other: int = 0
            ) -> bool:
    """One segment: ``held`` held-back frames first, ``overlap`` of them under the other
    party's ``other`` frames, the party's own spurt frames last."""
    n = SEGMENT_FRAMES
    assert held + other - overlap + own <= n
    h = np.zeros(n, bool)
    h[:held] = True
    o = np.zeros(n, bool)
    o[held - overlap : held - overlap + other] = True
    a = np.zeros(n, bool)
    a[n - own :] = own > 0
    vd.add(h, a, o)
    return vd.end_segment()


def turns_then_other(vd: VoiceDrop, first: list[int], then: list[int]) -> list[bool]:
    """The party's held-back turns, one segment of the other party's, the party again."""
    out = [segment(vd, held=h) for h in first]
    out.append(segment(vd, other=OTHER_TURN_FRAMES))
    return out + [segment(vd, held=h) for h in then]


def test_turns_in_the_others_pauses_are_a_dropped_voice():
    vd = VoiceDrop()
    assert turns_then_other(vd, [40, 40], [40]) == [False, False, False, True]


def test_held_back_speech_must_add_up_to_the_minimum():
    assert MIN_HELD_FRAMES == 100
    assert turns_then_other(VoiceDrop(), [34, 33], [33])[-1]
    assert not turns_then_other(VoiceDrop(), [34, 33], [32])[-1]


def test_three_turns_are_needed():
    vd = VoiceDrop()
    assert turns_then_other(vd, [50], [50]) == [False, False, False]
    assert segment(vd, held=TURN_MIN_FRAMES)


def test_a_turn_needs_its_minimum_of_held_back_speech():
    assert not turns_then_other(VoiceDrop(), [45, 45], [TURN_MIN_FRAMES - 1])[-1]
    assert turns_then_other(VoiceDrop(), [45, 45], [TURN_MIN_FRAMES])[-1]


def test_speech_over_the_others_is_no_turn():
    """A colleague talks across the customer: past a quarter of the held-back frames under
    the other's speech, a segment is no turn."""
    limit = int(MAX_OVERLAP * 40)
    vd = VoiceDrop()
    turns_then_other(vd, [40, 40], [])
    assert segment(vd, held=40, overlap=limit, other=limit)
    vd = VoiceDrop()
    turns_then_other(vd, [40, 40], [])
    assert not segment(vd, held=40, overlap=limit + 1, other=limit + 1)


def test_without_the_other_taking_a_turn_there_is_no_conversation():
    """Held-back speech all through the other's silence (a colleague talking while the
    customer waits) never alternated with the other party."""
    vd = VoiceDrop()
    assert not any(segment(vd, held=40) for _ in range(WINDOW_SEGMENTS))
    assert not segment(vd, other=OTHER_TURN_FRAMES - 1)
    assert not segment(vd, held=40)


def test_a_party_still_heard_in_spurts_is_not_reset():
    """Segments with the party's own spurts are no turns, and spurts beside the turns
    (half the held-back speech or more) mean the gates still hear the party."""
    vd = VoiceDrop()
    assert not any(turns_then_other(vd, [40, 20], []))
    assert not segment(vd, held=20, own=10)  # no turn: a spurt of the party's
    assert not segment(vd, own=50)
    assert not segment(vd, held=40)  # 3 turns, 100 frames held back, 60 own: over half
    vd = VoiceDrop()
    assert not any(turns_then_other(vd, [40, 40], []))
    assert not segment(vd, own=20)
    assert segment(vd, held=40)  # 20 own frames against 120 held-back ones


def test_speech_at_the_old_level_before_the_turns_is_no_evidence():
    vd = VoiceDrop()
    for _ in range(10):
        segment(vd, own=50)
    assert turns_then_other(vd, [40, 40], [40])[-1]


def test_old_evidence_leaves_the_window_and_a_judgment_starts_it_afresh():
    vd = VoiceDrop()
    turns_then_other(vd, [40, 40], [])
    for _ in range(WINDOW_SEGMENTS - 1):
        segment(vd)
    assert not segment(vd, held=40)  # the first turns left the window
    vd = VoiceDrop()
    assert turns_then_other(vd, [40, 40], [40])[-1]
    assert not segment(vd, held=40)


def test_forgetting_the_voice_empties_the_level_window():
    party = Party(Stream.AGENT, 16000, DetectorSettings())
    party.add_speech_energy(np.full(300, 10 ** (-26 / 10)))
    assert party.voice_dbfs() is not None and party.level_dbfs() is not None
    party.vads.loud_frames = 50
    party.forget_voice()
    assert party.voice_dbfs() is None and party.level_dbfs() is None
    assert party.vads.loud_frames == 0  # a quiet new voice is heard raised again
    party.add_speech_energy(np.full(60, 10 ** (-40 / 10)))
    assert abs(party.voice_dbfs() - -40.0) < 1e-9


def test_much_held_back_speech_over_the_others_outweighs_the_turns():
    """Turns in the other's pauses, but as much held-back speech again across the other's
    words: a background talker who also fell into a few pauses."""
    vd = VoiceDrop()
    turns_then_other(vd, [40, 40], [])
    for _ in range(3):
        assert not segment(vd, held=40, overlap=25, other=25)
    assert not segment(vd, held=40)  # 75 of 240 frames over the other's: over a quarter
    vd = VoiceDrop()
    turns_then_other(vd, [40, 40], [])
    for _ in range(2):
        segment(vd, held=40, overlap=25, other=25)
    assert segment(vd, held=40)  # 50 of 200
