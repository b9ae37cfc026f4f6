"""One opening of a capture stream, and the processing loop's cursor into it.

The audio callback (:meth:`Epoch.callback`) runs on PortAudio's real-time thread. It does only
what cannot wait: copy the block into a preallocated :class:`daemon.ring.RingBuffer`, note the
block's capture time and first sample index in preallocated arrays, OR the status flags into
plain integers and bump counters. No allocation of arrays, no locks, no logging, no
Prometheus: any of those can miss the driver's deadline and cause the very overflows we count.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterable
from typing import Any

import numpy as np

from daemon.ring import RingBuffer

STEER_PASSES = 25
"""Passes (a second of 40 ms blocks) between two steps of :class:`GridPhase`."""

STEER_REST_PASSES = 1500
"""Passes (a minute of 40 ms blocks) without steering after a step that moved nothing."""

STEER_MARGIN_S = 0.004
"""How far past a frame boundary a pass's audio should reach (the packets' jitter)."""

TIMESTAMP_SLOTS = 512
"""Capture timestamps kept per stream (512 blocks: >10 s at 20 ms), read every loop pass."""


class Epoch:
    """One opening of one stream: its ring, its timestamps and its callback counters.

    A reopened stream gets a new epoch (sample indices restart at 0); the processing loop
    notices the new object, keeps the old epoch's counters and aligns the new one afresh.
    """

    def __init__(self, ring_frames: int, rate: int, latency_s: float = 0.0,
                 wake: Callable[[], None] | None = None) -> None:
        self.ring = RingBuffer(ring_frames, 1, np.float32)
        self.rate = rate
        self.wake = wake
        """Called after each stored block (:meth:`daemon.wakeup.Wakeup.set`): the
        processing loop sleeps until audio arrives."""
        self.latency_s = latency_s
        self.ts_n = np.zeros(TIMESTAMP_SLOTS, np.int64)
        self.ts_t = np.zeros(TIMESTAMP_SLOTS, np.float64)
        self.ts_count = 0
        self.n_seen = 0
        self.callbacks = 0
        self.overflows = 0
        self.last_callback = 0.0
        self.finished = False
        self.opened_at = time.monotonic()
        self.grid_s: float | None = None
        """Set when the stream is read on the shared tick grid of this length (the libpulse
        streams, which the processing loop reads itself at each tick:
        :meth:`daemon.monitor.Monitor.next_tick`)."""
        self.grid_phase_s = 0.0
        """Where on the host clock the grid's ticks fall (``t ≡ phase`` modulo ``grid_s``),
        steered by the processing loop (:class:`GridPhase`)."""

    def callback(self, indata: np.ndarray, frames: int, time_info: Any, status: Any) -> None:
        """PortAudio input callback: copy, timestamp, count. Nothing else."""
        now = time.monotonic()
        adc = time_info.inputBufferAdcTime
        cur = time_info.currentTime
        if adc > 0.0 and cur >= adc:
            t = now - (cur - adc)
        else:  # host API without timestamps: the block ended about now
            t = now - frames / self.rate - self.latency_s
        self.ring.write(indata)
        i = self.ts_count
        j = i % TIMESTAMP_SLOTS
        self.ts_n[j] = self.n_seen
        self.ts_t[j] = t
        self.ts_count = i + 1
        self.n_seen += frames
        if status.input_overflow:  # sounddevice's documented CallbackFlags attribute
            self.overflows += 1
        self.callbacks += 1
        self.last_callback = now
        if self.wake is not None:
            self.wake()

    def push(self, block: np.ndarray, t: float | None) -> None:
        """Store a block as the callback would (replayed files use this, with their own
        timestamps). ``t`` None: no capture time of its own; the stream's timing comes from
        its :meth:`mark` calls (the libpulse reader times a sample now and then, not every
        block)."""
        self.ring.write(block)
        if t is not None:
            self.mark(self.n_seen, t)
        self.n_seen += len(block)
        self.callbacks += 1
        self.last_callback = time.monotonic()
        if self.wake is not None:
            self.wake()

    def mark(self, n: int, t: float) -> None:
        """Sample ``n`` of this epoch (stored already, or still to come) was captured at host
        time ``t``."""
        i = self.ts_count
        self.ts_n[i % TIMESTAMP_SLOTS] = n
        self.ts_t[i % TIMESTAMP_SLOTS] = t
        self.ts_count = i + 1

    def finished_callback(self) -> None:
        self.finished = True


class StreamReader:
    """The processing loop's cursor into a stream's current epoch."""

    def __init__(self) -> None:
        self.epoch: Epoch | None = None
        self.ts_read = 0
        self.dropped_seen = 0
        self.base_overflows = 0
        self.base_callbacks = 0
        self.base_dropped = 0

    def switch(self, epoch: Epoch | None) -> bool:
        """Follow the stream to a new epoch; True if it changed (the old one's counters are
        folded into the totals)."""
        if epoch is self.epoch:
            return False
        old = self.epoch
        if old is not None:
            self.base_overflows += old.overflows
            self.base_callbacks += old.callbacks
            self.base_dropped += old.ring.overruns
        self.epoch = epoch
        self.ts_read = 0
        self.dropped_seen = 0
        return True

    def read_timestamps(self) -> list[tuple[int, float]]:
        ep = self.epoch
        if ep is None:
            return []
        end = ep.ts_count
        start = max(self.ts_read, end - TIMESTAMP_SLOTS + 1)
        self.ts_read = end
        if start >= end:
            return []
        idx = np.arange(start, end) % TIMESTAMP_SLOTS
        return list(zip(ep.ts_n[idx].tolist(), ep.ts_t[idx].tolist(), strict=True))

    def read_samples(self) -> np.ndarray:
        """New samples; frames the ring had to drop come back as silence so that sample
        indices keep matching the capture timestamps."""
        ep = self.epoch
        if ep is None:
            return np.zeros(0, np.float32)
        x = ep.ring.read()[:, 0]
        lost = ep.ring.dropped_frames - self.dropped_seen
        if lost:
            self.dropped_seen += lost
            x = np.concatenate([x, np.zeros(lost, np.float32)])
        return x

    def totals(self) -> tuple[int, int, int]:
        """(overflows, callbacks, ring overruns) over every epoch."""
        ep = self.epoch
        if ep is None:
            return self.base_overflows, self.base_callbacks, self.base_dropped
        return (self.base_overflows + ep.overflows, self.base_callbacks + ep.callbacks,
                self.base_dropped + ep.ring.overruns)


def next_grid_tick(now: float, phase_s: float, period_s: float, not_before: float) -> float:
    """The first tick of the grid (``phase_s`` + k * ``period_s``) after ``now`` and at or
    after ``not_before``.

    ``not_before`` is the capture time by which the audio a pass needs can be complete: no
    packet brings it sooner, so a tick before it would only read and wait again."""
    tick = now + period_s - (now - phase_s) % period_s
    if tick < not_before:
        tick += math.ceil((not_before - tick) / period_s) * period_s
    return tick


class GridPhase:
    """Steers the shared tick grid so that the audio of each pass reaches just past a frame
    boundary of the pipeline.

    Why: the pipeline only analyses whole 20 ms frames, so audio beyond the last frame
    boundary waits for the next tick, a whole block later. Where the grid falls against the
    frames is chance (when the call started, how late the server's packets arrive): at worst
    every frame waited up to 20 ms longer than it needs, which was the spread of the latency
    between runs. Once a second this moves the ticks so that, in nine passes out of ten, the
    audio reaches :data:`STEER_MARGIN_S` past a boundary; the blocks stay the same size."""

    def __init__(self, frame_s: float) -> None:
        self.frame_s = frame_s
        self.phase_s = 0.0
        self._past: list[float] = []
        self._expect: float | None = None
        """Where the last step should have brought the audio's end against the frames."""
        self._rest = 0
        """Passes left without steering (after a step that moved nothing)."""

    def observe(self, horizon_s: float, t0: float, epochs: Iterable[Epoch | None]) -> None:
        """One pass emitted audio up to host time ``horizon_s`` on a timeline whose frames
        start at ``t0``; ``epochs``: the streams (only those on the grid are steered)."""
        grid = [ep for ep in epochs if ep is not None and ep.grid_s is not None]
        if not grid:
            self._past.clear()
            return
        for ep in grid:  # a reopened stream joins the grid where the others are
            ep.grid_phase_s = self.phase_s
        if self._rest > 0:
            self._rest -= 1
            return
        self._past.append((horizon_s - t0) % self.frame_s)
        if len(self._past) < STEER_PASSES:
            return
        past = sorted(self._past)[len(self._past) // 10]
        self._past.clear()
        expect, self._expect = self._expect, None
        if expect is not None and abs(past - expect) > STEER_MARGIN_S / 2:
            # Moving the ticks did not move the audio's end: the server sends whole blocks
            # (no other client asks it for smaller ones), so the end is where its packets
            # fall, whatever the tick. Steering would only walk the grid around.
            self._rest = STEER_REST_PASSES
            return
        if past > 2 * STEER_MARGIN_S:
            shift = past - STEER_MARGIN_S  # every pass leaves audio waiting: tick earlier
        elif past < STEER_MARGIN_S / 4:
            shift = -STEER_MARGIN_S  # frames fall just short now and then: tick later
        else:
            return
        period = grid[0].grid_s
        assert period is not None
        self.phase_s = (self.phase_s - shift) % period
        self._expect = past - shift
        for ep in grid:
            ep.grid_phase_s = self.phase_s
