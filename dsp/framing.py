"""Fixed framing of a stream that arrives in blocks of any size.

Downstream code only ever sees whole frames of :data:`dsp.FRAME_LEN` samples, which is what
makes the pipeline's events independent of how capture or a file reader chunked the audio.
"""

from __future__ import annotations

import numpy as np


class Reframer:
    """Collects 1-D samples and hands them out as whole frames, keeping the remainder."""

    def __init__(self, frame_len: int) -> None:
        self.frame_len = frame_len
        self._buf = np.zeros(0, dtype=np.float32)

    def push(self, x: np.ndarray) -> None:
        """Append samples (already float32 at the analysis rate)."""
        if x.size:
            self._buf = np.concatenate((self._buf, x)) if self._buf.size else x.copy()

    @property
    def frames_available(self) -> int:
        return self._buf.size // self.frame_len

    def pop(self, n_frames: int) -> np.ndarray:
        """Remove and return ``n_frames`` whole frames as an ``(n_frames, frame_len)`` array."""
        n = n_frames * self.frame_len
        out = self._buf[:n].reshape(n_frames, self.frame_len)
        self._buf = self._buf[n:]
        return out

    def peek(self, n_frames: int) -> np.ndarray:
        """The next ``n_frames`` whole frames, without removing them."""
        n = n_frames * self.frame_len
        return self._buf[:n].reshape(n_frames, self.frame_len)

    @property
    def pending_samples(self) -> int:
        return int(self._buf.size)
