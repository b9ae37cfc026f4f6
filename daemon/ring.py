"""Single-producer/single-consumer sample ring between the audio callback and the processing loop.

The PortAudio callback runs on a real-time thread: if it allocates, takes a lock or logs, the
driver misses its deadline and the capture overflows. So the producer side of this ring only
copies into memory allocated up front and bumps plain integer counters.

Thread safety without locks rests on two rules:

* Each index has exactly one writer. ``_written`` (total frames ever written) belongs to the
  producer, ``_consumed`` (total frames ever read) to the consumer. Both grow monotonically as
  Python ints (no wrap-around ambiguity); positions in the storage are the index modulo the
  capacity. Rebinding an attribute to a new int is atomic under the GIL.
* Each side publishes its index only *after* touching the samples, so the other side never
  sees a frame counted that is not there yet (producer) or a slot freed that is still being
  copied out (consumer).

When the consumer falls behind and the ring is full, the *incoming* excess is dropped: the
samples already in the ring are older and the consumer will reach them first, so keeping them
preserves a contiguous stretch of audio, and the producer never has to touch the consumer's
index. Each write call that loses samples counts one ``overruns`` and adds the lost frames to
``dropped_frames`` so the loss is visible in metrics instead of silently shifting the timeline.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import DTypeLike


class RingBuffer:
    """Preallocated SPSC ring of ``capacity_frames`` frames of ``channels`` samples each."""

    def __init__(
        self, capacity_frames: int, channels: int = 1, dtype: DTypeLike = np.float32
    ) -> None:
        if capacity_frames < 1:
            raise ValueError(f"capacity_frames must be >= 1, got {capacity_frames}")
        if channels < 1:
            raise ValueError(f"channels must be >= 1, got {channels}")
        self._buf = np.zeros((capacity_frames, channels), dtype=dtype)
        # A 1-D view of the single channel so mono (n,) blocks copy without reshaping.
        self._mono = self._buf[:, 0] if channels == 1 else None
        self._cap = capacity_frames
        self._channels = channels
        self._written = 0  # producer-owned
        self._consumed = 0  # consumer-owned
        self.overruns = 0  # producer-owned: write calls that lost samples
        self.dropped_frames = 0  # producer-owned: frames lost to a full ring

    @property
    def capacity(self) -> int:
        """Frames the ring holds when full."""
        return self._cap

    @property
    def channels(self) -> int:
        return self._channels

    @property
    def dtype(self) -> np.dtype:
        return self._buf.dtype

    @property
    def frames_written(self) -> int:
        """Frames accepted since creation (excludes dropped frames)."""
        return self._written

    @property
    def frames_read(self) -> int:
        """Frames handed to the consumer since creation."""
        return self._consumed

    def available(self) -> int:
        """Frames ready to read. Safe from either thread (a snapshot; it only grows for the
        consumer until it reads)."""
        return self._written - self._consumed

    def write(self, block: np.ndarray) -> int:
        """Copy ``block`` (``(n, channels)``, or ``(n,)`` for a mono ring) in; return frames kept.

        Producer side, callable from the audio callback: no sample buffer is allocated (only
        numpy's small slice views), no lock, no logging. Frames that do not fit are dropped
        from the end of ``block`` and counted. Values are cast to the ring's dtype with numpy's
        ``same_kind`` rule but never rescaled: give an int16 capture an int16 ring.
        """
        n = block.shape[0]
        if n == 0:
            return 0
        w = self._written
        free = self._cap - (w - self._consumed)
        k = n if n <= free else free
        if k < n:
            self.overruns += 1
            self.dropped_frames += n - k
            if k == 0:
                return 0
        if block.ndim == 1:
            if self._mono is None:
                c = self._channels
                raise ValueError(f"1-D block given to a {c}-channel ring: pass shape (n, {c})")
            dst = self._mono
        else:
            dst = self._buf
        pos = w % self._cap
        first = self._cap - pos
        if k <= first:
            np.copyto(dst[pos : pos + k], block[:k])
        else:
            np.copyto(dst[pos:], block[:first])
            np.copyto(dst[: k - first], block[first:k])
        self._written = w + k  # publish only after the samples are in place
        return k

    def read(self, max_frames: int | None = None) -> np.ndarray:
        """Remove and return up to ``max_frames`` frames (all available if None) as a new
        ``(n, channels)`` array; consumer side. The copy lets the caller keep the data after the
        producer reuses the slots."""
        r = self._consumed
        n = self._written - r
        if max_frames is not None:
            if max_frames < 0:
                raise ValueError(f"max_frames must be >= 0, got {max_frames}")
            n = min(n, max_frames)
        out = np.empty((n, self._channels), dtype=self._buf.dtype)
        if n:
            pos = r % self._cap
            first = self._cap - pos
            if n <= first:
                np.copyto(out, self._buf[pos : pos + n])
            else:
                np.copyto(out[:first], self._buf[pos:])
                np.copyto(out[first:], self._buf[: n - first])
        self._consumed = r + n  # free the slots only after they are copied out
        return out
