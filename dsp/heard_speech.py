"""silero's view of a party's speech time while they talk in noise.

Speech time counts the frames of a party's talk spurts and their soft edges
(:mod:`dsp.speech_time`). In noise that swells (a street, a train) both come from the noise
too: WebRTC's VAD takes half its frames for a voice and its swells clear every level gate, so
with a recorded town-and-train ambience mixed into one party's channel at 5-10 dB SNR
(``bench.probe_ambience``, the development draws' 50 clean calls) that party's speech time came
out a median 30 % long, 9 of 100 parties within 10 %. In steady noise (a fan, rain) the
gates err the other way and leave out weak words: 10 of 15 fan parties within 10 %.

silero-vad hears neither the train nor the fan as speech, and a voice in them well: counted
from its frames alone, 86 of the 100 train parties and 14 of the 15 fan ones came within
10 %. But it hears office babble and a leaked far-end voice as speech (4 of 45 babble
parties within 10 %). So for a party that silero's talk-over check covers (in noise,
:func:`dsp.voice_confirm.needs_check`) its frames refine the count, never replace it:

- a frame the gates counted counts only if silero hears speech within
  :data:`CONFIRM_FRAMES` of it (babble, heard as speech, loses nothing);
- where silero has heard almost none of the party's background (frames more than
  :data:`FAR_FRAMES` from any counted frame; under :data:`QUIET_SHARE` of them, over at
  least :data:`QUIET_MIN_FRAMES` of this call), the noise is not speech-like, so a frame
  silero hears within :data:`NEAR_FRAMES` of a counted one counts too, and a counted frame
  needs silero within :data:`JOIN_FRAMES`.

Known limit: silero hears some voices poorly in loud noise (the codec2 recordings the tests
use: a third to two thirds of their words at 5-10 dB under a train), and their speech time
then comes out 12-66 % short where the gates alone count it from 5 % short to 125 % long.

Everything depends on frame indices only, so the count does not depend on chunking.
"""

from __future__ import annotations

from collections import deque

import numpy as np

from dsp.vad import NEURAL_HYSTERESIS, SileroVad

UNCHECKED = -1
"""A frame silero did not score (the party was not in noise): the gates decide it alone."""

CONFIRM_FRAMES = 5
"""A counted frame stays counted when silero hears speech this close (0.1 s)."""

JOIN_FRAMES = 2
"""In a background silero does not take for speech, a counted frame needs silero this close."""

NEAR_FRAMES = 15
"""In such a background, a frame silero hears counts when a counted frame is this close
(0.3 s, the spurts' soft edges): the weak words the gates left out of a turn."""

FAR_FRAMES = 12
"""A frame this far (0.24 s) from every counted frame is the party's background."""

QUIET_SHARE = 0.2
"""Share of background frames silero may hear as speech for the background to count as not
speech-like (median 0 in fan, rain, typing, hum and the train; 0.9 in babble; 0.3 with a
far-end voice leaking into the mic)."""

QUIET_MIN_FRAMES = 250
"""Background frames (5 s) of this call scored before that share is trusted."""

TALLY_FRAMES = 500
"""The share is taken over this many (10 s) of the latest background frames."""

LOOKAHEAD_FRAMES = max(NEAR_FRAMES, FAR_FRAMES, CONFIRM_FRAMES) + 1
"""Frames past a frame that its decision reads (:mod:`dsp.speech_time` keeps them)."""

LOOKBACK_FRAMES = LOOKAHEAD_FRAMES
"""Frames before a frame that its decision reads."""


class HeardFrames:
    """silero's speech verdicts on one party's frames, scored while the party is in noise;
    the model is loaded at the first frame scored."""

    def __init__(self) -> None:
        self._model: SileroVad | None = None
        self._speaking = False
        self._running = False

    def hear(self, pcm16_frames: np.ndarray | None, n: int) -> list[int]:
        """Verdicts for the next ``n`` frames: 1 speech, 0 not, :data:`UNCHECKED` when
        ``pcm16_frames`` is None (not in noise: the stream restarts when it is again)."""
        if pcm16_frames is None:
            self._running = False
            return [UNCHECKED] * n
        if self._model is None:
            self._model = SileroVad(2)
        model = self._model
        if not self._running:
            model.reset()
            self._speaking = False
            self._running = True
        on, off = model.on, model.on - NEURAL_HYSTERESIS
        out = []
        speaking = self._speaking
        for score in model.frame_scores(pcm16_frames).tolist():
            speaking = score >= (off if speaking else on)
            out.append(1 if speaking else 0)
        self._speaking = speaking
        return out


class BackgroundTally:
    """How much of a party's recent background silero heard as speech in this call: the
    last :data:`TALLY_FRAMES` background frames (the party's own words the gates missed at
    the start of a call, before their level is known, would otherwise weigh for the whole
    call)."""

    __slots__ = ("_recent", "frames", "heard")

    def __init__(self) -> None:
        self._recent: deque[int] = deque()
        self.frames = 0
        self.heard = 0

    def add(self, heard: int) -> None:
        """One more background frame: 1 if silero heard speech in it, else 0."""
        recent = self._recent
        recent.append(heard)
        self.heard += heard
        if len(recent) > TALLY_FRAMES:
            self.heard -= recent.popleft()
        self.frames = len(recent)

    def quiet(self) -> bool:
        """Whether the background is known not to be speech-like (see the module doc)."""
        return self.frames >= QUIET_MIN_FRAMES and self.heard < QUIET_SHARE * self.frames


def refine(counted: list[bool], heard: list[int], lo: int, hi: int,
           tally: BackgroundTally) -> list[bool]:
    """Whether each frame ``lo .. hi`` of ``counted`` (the gates' verdicts) counts, given
    silero's ``heard`` (aligned with ``counted``; both hold :data:`LOOKBACK_FRAMES` before
    ``lo`` and :data:`LOOKAHEAD_FRAMES` after ``hi`` where the stream has them); frames are
    decided in order and each background frame updates ``tally`` before the next."""
    out = counted[lo:hi]
    for i in range(lo, hi):
        h = heard[i]
        if h == UNCHECKED:
            continue
        if not any(counted[max(i - FAR_FRAMES, 0): i + FAR_FRAMES + 1]):
            tally.add(h)
        c = counted[i]
        if tally.quiet():
            window = heard[max(i - JOIN_FRAMES, 0): i + JOIN_FRAMES + 1]
            out[i - lo] = ((c and any(v != 0 for v in window))
                           or (h == 1 and any(counted[max(i - NEAR_FRAMES, 0):
                                                      i + NEAR_FRAMES + 1])))
        elif c:
            window = heard[max(i - CONFIRM_FRAMES, 0): i + CONFIRM_FRAMES + 1]
            out[i - lo] = any(v != 0 for v in window)
    return out
