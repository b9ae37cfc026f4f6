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
                     explained)
