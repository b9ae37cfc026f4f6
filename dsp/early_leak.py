"""The agent's speech time in a daemon's first seconds of far-end speech, before the echo
estimator can say whether the mic carries the far end.

Until it can (:attr:`dsp.echo.EchoEstimator.undecided`, usually one to three seconds after the
customer first talks), nothing takes speaker leak out of the agent's speech gate: the far end
leaking from laptop speakers into a mic that is otherwise silent counts as the agent talking,
up to two seconds of it on a leaking call (measured on the development set's leak calls). The
talk-over detector holds its reports back for the same reason.

So from shortly before the customer's first talk spurt, the agent's speech-time decisions are
held (:meth:`dsp.speech_time.SpeechTime.hold`), with the levels the leak test needs. When the
estimator decides, the held frames the leak explains (under the floor the speech gate would
have asked of them: :meth:`~dsp.echo.EchoEstimator.leak_floor`) are dropped and the rest
decided as before. A hold the estimator leaves undecided for :data:`HOLD_MAX_FRAMES` ends
with nothing dropped. It happens once in a pipeline's life: later calls have the estimate.

Held frames are judged at segment ends only, where the estimate changes, so the count is the
same however the audio is chunked.
"""

from __future__ import annotations

from enum import Enum

import numpy as np

from dsp.activity import SpurtChange
from dsp.detectors.talkover import LEAK_EXPLAINS_FRACTION
from dsp.echo import EchoEstimator
from dsp.speech_time import DELAY_FRAMES, EDGE_FRAMES, Change, SpeechTime

HOLD_MAX_FRAMES = 750
"""A hold the echo estimator has not decided in 15 s ends with nothing dropped (memory stays
bounded when the customer says a word and then nothing for a long while)."""


class HoldState(Enum):
    WATCHING = "watching"
    """The customer has not started a spurt yet: only the last frames' levels are kept."""
    HOLDING = "holding"
    """The agent's decisions are held from shortly before the customer's first spurt."""
    DONE = "done"
    """The estimator decided (or the hold grew too old): nothing more is held, ever."""


class EarlyLeakHold:
    """Holds the agent's speech-time decisions from the customer's first spurt until the echo
    estimator decides whether the mic carries the far end."""

    __slots__ = ("_audible", "_db", "_far", "_start", "state")

    def __init__(self) -> None:
        self.state = HoldState.WATCHING
        self._start = 0
        """First held frame (HOLDING), or the first frame the kept levels are of (WATCHING)."""
        self._audible: list[np.ndarray] = []
        self._db: list[np.ndarray] = []
        self._far: list[np.ndarray] = []
        """The agent's speech-time decisions (``audible``), frame levels and the far end's at
        every delay, from ``_start`` on."""

    def feed(self, i0: int, audible: np.ndarray, agent_db: np.ndarray, far_lagged: np.ndarray,
             customer_changes: list[Change], speech_time: SpeechTime) -> None:
        """Frames ``i0 ..``: the agent's ``audible`` decisions and levels and the far end's,
        with the customer's spurt changes among them; called before ``speech_time`` is fed
        those frames."""
        if self.state is HoldState.DONE:
            return
        self._audible.append(audible)
        self._db.append(agent_db)
        self._far.append(far_lagged)
        end = i0 + len(agent_db)
        if self.state is HoldState.WATCHING:
            first = next((ch for ch in customer_changes if ch[1] is SpurtChange.START), None)
            if first is None:
                self._keep(end - DELAY_FRAMES, end)
                return
            frame, spurt_start = first[0], first[2]
            # The agent's leak spurt starts no earlier than the customer's, and marks frames
            # up to EDGE_FRAMES before its start. Frames before DELAY_FRAMES before the
            # customer's start was confirmed are decided already, however the input came.
            start = max(spurt_start - EDGE_FRAMES, frame - DELAY_FRAMES, 0)
            self._keep(start, end)
            self.state = HoldState.HOLDING
            speech_time.hold(start)

    def judge(self, frame: int, echo: EchoEstimator, speech_time: SpeechTime) -> None:
        """At a segment end ``frame``, after the estimate was refreshed: end the hold when the
        estimator has decided (dropping the frames the leak explains) or the hold is too old."""
        if self.state is HoldState.WATCHING:
            if not echo.undecided:
                self._end()
            return
        if self.state is HoldState.DONE:
            return
        if not echo.undecided:
            self.release(echo, speech_time)
        elif frame - self._start >= HOLD_MAX_FRAMES:
            speech_time.release(self._start)
            self._end()

    def release(self, echo: EchoEstimator, speech_time: SpeechTime) -> None:
        """End a hold with the estimate as it stands (also at the end of input). The held
        frames are dropped only when the leak explains :data:`LEAK_EXPLAINS_FRACTION` of the
        audible ones, the rule the talk-over detector applies to a talk-over it held back: a
        first estimate made on double talk can find a leak that is not there (a fan call
        whose parties start together: 0.78 correlation), and an agent really talking stands
        over it in most frames of their speech."""
        if self.state is not HoldState.HOLDING:
            return
        drop = None
        if echo.present:
            audible = np.concatenate(self._audible)
            leak = np.concatenate(self._db) < echo.leak_floor(np.concatenate(self._far))
            heard = np.count_nonzero(audible)
            if heard and np.count_nonzero(leak & audible) >= LEAK_EXPLAINS_FRACTION * heard:
                drop = leak
        speech_time.release(self._start, drop)
        self._end()

    def _keep(self, start: int, end: int) -> None:
        """Keep the levels of frames ``start .. end`` only (the kept ones end at ``end``)."""
        kept = [np.concatenate(k) if len(k) > 1 else k[0]
                for k in (self._audible, self._db, self._far)]
        cut = max(0, start - (end - len(kept[0])))
        self._audible, self._db, self._far = ([k[cut:]] for k in kept)
        self._start = end - len(self._db[0])

    def _end(self) -> None:
        self.state = HoldState.DONE
        self._audible.clear()
        self._db.clear()
        self._far.clear()
