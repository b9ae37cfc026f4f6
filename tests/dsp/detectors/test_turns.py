"""Turns: backchannels do not take the floor, a long enough answer does, pauses end a turn,
the longest turn, and the agent's monologue at exactly ``monologue_max_s``."""

from __future__ import annotations

import dataclasses

from dsp.activity import SpurtChange, TalkSpurts
from dsp.detectors.turns import Turns
from dsp.events import Kind, Phase, Stream
from dsp.party import SEGMENT_FRAMES, frames
from dsp.settings import DetectorSettings

S = DetectorSettings()


def _run(agent, customer, n: int, settings: DetectorSettings = S) -> tuple[Turns, list]:
    """Step both parties' spurts (hangover 5 frames) over ``n`` frames, as the pipeline does."""
    det = Turns(settings)
    a, c = TalkSpurts(1, 5), TalkSpurts(1, 5)
    events = []
    for i in range(n):
        for stream, sp, talking in ((Stream.AGENT, a, agent), (Stream.CUSTOMER, c, customer)):
            ch = sp.step(i, talking(i))
            if ch is not SpurtChange.NONE:
                events += det.change(stream, ch, sp)
        if (i + 1) % SEGMENT_FRAMES == 0:
            events += det.judge(i + 1, a, c)
    return det, events + det.close(n)


def test_a_backchannel_does_not_end_the_turn_a_real_answer_does():
    # The agent talks 0-10 s with an "mm-hmm" from the customer at 4 s (0.4 s).
    det, _ = _run(lambda i: i < 500, lambda i: 200 <= i < 220, 600)
    assert det.longest_s(Stream.AGENT) == 10.0
    # The customer answers for 2 s at 4 s while the agent talks on: the customer took the
    # floor at 4 s (the agent's turn is 0-4 s), and the agent has it back once the customer
    # stops (6-10 s).
    det, _ = _run(lambda i: i < 500, lambda i: 200 <= i < 300, 600)
    assert det.longest_s(Stream.AGENT) == 4.0
    assert det.turns[Stream.AGENT].start is None  # closed at the end



def test_a_long_pause_ends_the_turn():
    det, _ = _run(lambda i: i < 100 or 300 <= i < 350, lambda i: False, 400)
    assert det.longest_s(Stream.AGENT) == 2.0  # a 4 s pause: two turns, 2 s and 1 s


def test_monologue_at_exactly_the_threshold_and_not_a_segment_before():
    n = frames(S.monologue_max_s)
    _, events = _run(lambda i: i < n + 100, lambda i: False, n + 200)
    begins = [e for e in events if e.kind is Kind.MONOLOGUE and e.phase is Phase.BEGIN]
    assert len(begins) == 1 and begins[0].start == 0 and begins[0].end == n * 320
    ends = [e for e in events if e.kind is Kind.MONOLOGUE and e.phase is Phase.END]
    assert len(ends) == 1 and ends[0].end == (n + 100) * 320
    _, events = _run(lambda i: i < n - SEGMENT_FRAMES, lambda i: False, n + 200)
    assert [e for e in events if e.kind is Kind.MONOLOGUE] == []


def test_customer_monologues_are_measured_not_reported():
    n = frames(S.monologue_max_s) + 500
    det, events = _run(lambda i: False, lambda i: i < n, n + 100)
    assert [e for e in events if e.kind is Kind.MONOLOGUE] == []
    assert det.longest_s(Stream.CUSTOMER) == n * 0.02


def test_reload_takes_the_new_monologue_length():
    det = Turns(S)
    det.configure(dataclasses.replace(S, monologue_max_s=30.0))
    assert det.monologue_frames == frames(30.0)
