"""What one step of the pipeline's frame loop leaves for the work done once a segment.

A live pass covers two frames; the P.56 meters, the syllable and speech-time counters, the
dead-mic and loud-far-end detectors and the parties' segment gatherings give the same results
however their input is chunked, so they take the passes since the last segment end joined
into one (:meth:`dsp.pipeline.Pipeline._catch_up`) rather than paying their numpy calls on
every pass.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from dsp.block import join_features
from dsp.levels import FrameFeatures
from dsp.speech_time import Change


class Pass(NamedTuple):
    """What one step of the frame loop leaves for :meth:`dsp.pipeline.Pipeline._catch_up`."""

    i0: int
    a: np.ndarray
    c: np.ndarray
    fa: FrameFeatures
    fc: FrameFeatures
    a_speech: np.ndarray
    a_act: np.ndarray
    c_speech: np.ndarray
    c_act: np.ndarray
    explained: np.ndarray | None
    """Frames whose level the far end's leak may explain (the agent's echo gate was on:
    the far end active), or None with the gate off."""
    a_held: np.ndarray
    c_held: np.ndarray
    """Each party's speech frames their own level alone held back from starting a spurt
    (:mod:`dsp.voice_drop`)."""

    @staticmethod
    def joined(passes: list[Pass]) -> Pass:
        """Consecutive passes as one."""
        if len(passes) == 1:
            return passes[0]
        cat = np.concatenate
        explained = None
        if any(p.explained is not None for p in passes):
            explained = cat([np.zeros_like(p.c_act) if p.explained is None else p.explained
                             for p in passes])
        return Pass(passes[0].i0, cat([p.a for p in passes]), cat([p.c for p in passes]),
                     join_features([p.fa for p in passes]),
                     join_features([p.fc for p in passes]),
                     cat([p.a_speech for p in passes]), cat([p.a_act for p in passes]),
                     cat([p.c_speech for p in passes]), cat([p.c_act for p in passes]),
                     explained, cat([p.a_held for p in passes]), cat([p.c_held for p in passes]))


class SpeechPass(NamedTuple):
    """What one step of the frame loop leaves for the speech-time counters (and, while the
    echo estimator is undecided, for :class:`dsp.early_leak.EarlyLeakHold`)."""

    i0: int
    a_audible: np.ndarray
    a_act: np.ndarray
    a_changes: list[Change]
    c_audible: np.ndarray
    c_act: np.ndarray
    c_changes: list[Change]
    a_dbfs: np.ndarray
    """The agent's frame levels."""
    far_lagged: np.ndarray
    """The far end's level at every delay, ``(n, lags)``."""

    @staticmethod
    def joined(passes: list[SpeechPass], levels: bool) -> SpeechPass:
        """Consecutive passes as one; the levels (``a_dbfs``, ``far_lagged``) joined only if
        ``levels`` (else the first pass's, unused)."""
        if len(passes) == 1:
            return passes[0]
        first = passes[0]
        return SpeechPass(
            first.i0,
            np.concatenate([p.a_audible for p in passes]),
            np.concatenate([p.a_act for p in passes]),
            [ch for p in passes for ch in p.a_changes],
            np.concatenate([p.c_audible for p in passes]),
            np.concatenate([p.c_act for p in passes]),
            [ch for p in passes for ch in p.c_changes],
            np.concatenate([p.a_dbfs for p in passes]) if levels else first.a_dbfs,
            np.concatenate([p.far_lagged for p in passes]) if levels else first.far_lagged,
        )
