"""A party whose voice drops mid-call, told from a background talker by the conversation.

The spurt gates hold a party to their own level: a spurt starts only on a frame within
:data:`dsp.party.START_BELOW_LEVEL_DB` of it, a limit that relaxes only while the party is
silent. That keeps a colleague's voice 10-15 dB under the agent's from starting spurts. It
also hides an agent whose voice really drops (the boom pushed up, a headset swapped), or a
customer who turns to a speakerphone, by 14 dB or more: their words still stand far out of a
quiet room, so every one of them is a speech frame, which holds the relaxation's clock at
zero, and none reaches the start level. The party vanishes for the rest of the call: no
speech time, no talk-over, and no ``too_quiet``, the very nudge the drop calls for. (Counting
the clock from the last spurt instead would let office babble start spurts after a few
seconds of listening.)

Frame by frame, such a voice and a background talker look alike; the conversation tells them
apart. A party's own words come in turns, in the other party's pauses; a colleague talks
across the customer as often as not. So the speech frames that stood out of the background
enough to start a spurt and were held back only by the party's own level (``held`` of
:meth:`dsp.party.Party.gate`) are tallied per segment, with how many of them fell while the
other party was talking. When the last :data:`WINDOW_SEGMENTS` seconds hold such speech in
at least :data:`MIN_TURNS` segments of the party's own, in the other party's silence (no spurt
of the party, at most :data:`MAX_OVERLAP` of it over the other's speech), adding up to
:data:`MIN_HELD_FRAMES`, and the turns alternated (the party, then the other, then the party
again), the party's level is forgotten: the gates fall back to the background alone, as at a
call's start, until the level window has learnt the new voice (a second of spurt speech).
Tallied and judged once a segment, so the result does not depend on how the audio is chunked.

Line echo of the agent's voice on the far end (a customer's phone with a poor echo
canceller) comes while the agent talks, so it never makes a turn of the customer's. A
colleague who talked only in the customer's pauses, turn after turn, would pass for the
agent's quieter voice; a colleague cannot hear those pauses, so chance alone would have to
line their words up with them.
"""

from __future__ import annotations

from collections import deque

import numpy as np

WINDOW_SEGMENTS = 30
"""The evidence is weighed over the last 30 s: a few turns of each party."""

TURN_MIN_FRAMES = 15
"""Held-back speech frames (0.3 s) that make a segment one of the party's turns."""

MAX_OVERLAP = 0.25
"""At most this share of the held-back speech may fall while the other party talks (turn-end
overlaps and backchannels); a background talker's share follows the other's talk share."""

OTHER_TURN_FRAMES = 25
"""A segment in which the other party talked at least this much (0.5 s) and the party held
back next to nothing is the other's turn."""

MIN_TURNS = 3
MIN_HELD_FRAMES = 100
"""At least three turn segments and 2 s of held-back speech in them."""

MAX_OWN_SHARE = 0.5
"""The party's own spurts in the window stay under half the held-back speech: a party the
gates still hear is learnt from its spurts (the level window follows it) and needs no reset."""


class VoiceDrop:
    """Per party: the held-back speech of the current segment and the last
    :data:`WINDOW_SEGMENTS`, and the judgment whether the party's voice dropped."""

    __slots__ = ("_held", "_other", "_overlap", "_own", "_window")

    def __init__(self) -> None:
        self._window: deque[tuple[int, int, int, int]] = deque(maxlen=WINDOW_SEGMENTS)
        self._held = self._overlap = self._own = self._other = 0

    def add(self, held: np.ndarray, own_act: np.ndarray, other_act: np.ndarray) -> None:
        """Frames of the current segment: which speech frames the party's own level held back,
        and both parties' spurt activity."""
        held = held & ~own_act
        self._held += int(np.count_nonzero(held))
        if self._held:
            self._overlap += int(np.count_nonzero(held & other_act))
        self._own += int(np.count_nonzero(own_act))
        self._other += int(np.count_nonzero(other_act))

    def clear(self) -> None:
        """Forget the evidence (the party's level was forgotten: it starts afresh)."""
        self._window.clear()

    def end_segment(self) -> bool:
        """Close the segment; True when the party's voice dropped (see the module's
        docstring). The window then starts afresh."""
        self._window.append((self._held, self._overlap, self._own, self._other))
        self._held = self._overlap = self._own = self._other = 0
        if self._dropped():
            self._window.clear()
            return True
        return False

    def _dropped(self) -> bool:
        """Weighed from the window's first turn of the party on: what the party said at their
        old level before it is no evidence either way."""
        turns = turn_held = held_all = overlap_all = own_all = 0
        stage = 0  # 1: a turn of the party; 2: then one of the other's; 3: the party's again
        for held, overlap, own, other in self._window:
            turn = held >= TURN_MIN_FRAMES and not own and overlap <= MAX_OVERLAP * held
            if not (turn or stage):
                continue
            held_all += held
            overlap_all += overlap
            own_all += own
            if turn:
                turns += 1
                turn_held += held
                stage = 1 if stage == 0 else 3 if stage == 2 else stage
            elif other >= OTHER_TURN_FRAMES and held < TURN_MIN_FRAMES and stage == 1:
                stage = 2
        return (stage == 3 and turns >= MIN_TURNS and turn_held >= MIN_HELD_FRAMES
                and overlap_all <= MAX_OVERLAP * held_all and own_all <= MAX_OWN_SHARE * turn_held)
