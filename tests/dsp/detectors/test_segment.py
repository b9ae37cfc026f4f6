"""A party's once-a-second judgments (dsp.detectors.segment): what a segment gathered is folded
into the noise estimates, judged, and cleared."""

from __future__ import annotations

import numpy as np
import pytest

from dsp import ANALYSIS_RATE
from dsp.detectors.segment import PartyJudges
from dsp.events import Kind, Phase, Stream
from dsp.party import SEGMENT_FRAMES, Party
from dsp.settings import DetectorSettings


def silent_segment(party: Party, level_dbfs: float, first: int) -> None:
    levels = np.full(SEGMENT_FRAMES, level_dbfs)
    party.floor.floors(levels)
    party.seg_levels.append(levels)
    party.seg_quiet.add(np.ones(SEGMENT_FRAMES, dtype=bool), first, levels)


def test_a_silent_segment_feeds_the_noise_floor_and_is_cleared():
    party = Party(Stream.AGENT, ANALYSIS_RATE, DetectorSettings())
    judges = PartyJudges(party, DetectorSettings())
    silent_segment(party, -52.0, 0)
    party.seg_clipped = 3
    assert judges.end_segment(SEGMENT_FRAMES, 0) == []
    assert party.noise.call_dbfs == pytest.approx(-52.0)
    assert party.noise_all.live_dbfs == pytest.approx(-52.0)
    assert party.floor.settled_dbfs == -52.0
    assert (party.seg_quiet.count, party.seg_clipped, party.seg_levels,
            party.seg_quiet.levels) == (0, 0, [], [])


def test_a_noisy_room_is_reported_after_noise_min_s():
    s = DetectorSettings()
    party = Party(Stream.AGENT, ANALYSIS_RATE, s)
    judges = PartyJudges(party, s)
    events = []
    for k in range(int(s.noise_min_s) + 1):
        silent_segment(party, -35.0, k * SEGMENT_FRAMES)
        events += judges.end_segment((k + 1) * SEGMENT_FRAMES, 0)
    begins = [e for e in events if e.kind is Kind.NOISE and e.phase is Phase.BEGIN]
    assert len(begins) == 1 and begins[0].stream is Stream.AGENT
    assert begins[0].start == 0
