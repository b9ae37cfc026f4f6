"""The webrtcvad adapter: the only module that imports webrtcvad.

Kept apart from the talk-spurt state machine (:mod:`dsp.activity`) so the model can be
swapped or tested on its own, as pipecat does with its VAD analyzers.
"""

from __future__ import annotations

import numpy as np
import webrtcvad

from dsp import ANALYSIS_RATE


class WebRtcVad:
    """Frame-level speech/non-speech decisions from WebRTC's GMM voice activity detector."""

    def __init__(self, mode: int) -> None:
        self._vad = webrtcvad.Vad(mode)

    def set_mode(self, mode: int) -> None:
        self._vad.set_mode(mode)

    def is_speech(self, frame_pcm16: bytes) -> bool:
        """One 10/20/30 ms frame of 16-bit little-endian PCM at :data:`dsp.ANALYSIS_RATE`."""
        return self._vad.is_speech(frame_pcm16, ANALYSIS_RATE)


def to_pcm16(frames: np.ndarray) -> np.ndarray:
    """Float frames in [-1, 1) to int16 (saturating), the format webrtcvad takes."""
    return np.clip(np.rint(frames * 32768.0), -32768, 32767).astype("<i2")
