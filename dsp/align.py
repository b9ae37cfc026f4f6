"""Putting two audio streams with two clocks on one timeline.

The headset mic and the far-end source are separate devices (or separate server streams),
each with its own sample clock; 100–200 ppm apart is normal, which is 0.4–0.7 s per hour. If
the two streams were paired by sample count, a talk-over would slide by that much over a
shift. So every block carries its capture timestamp (one host clock for both streams), and
each stream is mapped onto a common output grid: output sample ``k`` of a stream is the audio
captured at ``T0 + k / rate``.

Per stream, a least-squares line ``time = a + n * period`` through the (sample index, capture
time) points of the last ``window_s`` seconds measures where the stream's samples are in host
time, smoothing the callback jitter (a few ms) down to microseconds and its rate to a few ppm.
Before emitting output, the aligner compares the input sample the grid asks for with the next
input sample; when they are a whole sample apart it drops or repeats one (200 ppm at 48 kHz is
one sample every ~100 ms, inaudible to every detector). Gaps (a device down, a stream
reopened) become silence of the right length, so the other stream keeps its timing.

Nothing here reads a clock: time comes in with the data. That keeps it testable faster than
real time, and lets a replayed file (ideal timestamps) pass through unchanged.
"""

from __future__ import annotations

import math
from collections import deque

import numpy as np

MAX_SKEW = 2e-3
"""A rate ratio further than 2000 ppm from nominal is a bad fit, not a real clock."""

MIN_FIT_SPAN_S = 30.0
"""Below this span the rate is taken as nominal (or the previous epoch's): a short line's slope
is dominated by jitter."""

REFIT_EVERY_S = 1.0
"""The line is refitted after this much new capture time."""

YOUNG_POINTS = 8
"""Until a stream has this many points, every new one refits the line: the first second of a
call must not hang on its first capture time alone."""

OFFSET_QUANTILE = 0.1
"""The offset of a stream's line is this low quantile of its points' offsets, not their median:
a capture time taken at a packet's arrival is never early and is late by whatever the scheduler
made the reader wait. On a loaded machine most points are a few ms late, and their median put
one party 8-10 ms against the other; the earliest points are the truest. Not the minimum, so that
one point stamped early (a host API's mis-stamped block) does not move the stream."""

DUPLICATE_MAX = 8
"""A correction of up to this many samples repeats audio; a longer gap is filled with silence."""


class StreamClock:
    """Where one stream's samples are in host time, from its (index, time) points."""

    def __init__(self, rate: float, window_s: float, period: float | None = None) -> None:
        self.rate = float(rate)
        self.window_s = float(window_s)
        self._prior = period if period is not None else 1.0 / self.rate
        self.period = self._prior
        self._n_ref = 0.0
        self._t_ref = 0.0
        self._points: deque[tuple[int, float]] = deque()
        self._fitted_at = -math.inf
        self.ready = False

    def add(self, n: int, t: float) -> None:
        """A block whose first sample ``n`` was captured at host time ``t``."""
        pts = self._points
        pts.append((n, t))
        while pts and t - pts[0][1] > self.window_s:
            pts.popleft()
        if (not self.ready or len(pts) <= YOUNG_POINTS
                or t - self._fitted_at >= REFIT_EVERY_S):
            self._fit()
            self._fitted_at = t

    def _fit(self) -> None:
        """The line through the points: its slope by least squares (once the points span
        :data:`MIN_FIT_SPAN_S`), its offset by a low quantile (:data:`OFFSET_QUANTILE`) of
        the points' offsets from it.

        Not the mean, because a capture time can be a scheduler's delay late (a reader that
        times a packet's arrival, on a loaded machine): with few points, one such point moved
        the whole stream ~10 ms against the other for the first second."""
        arr = np.asarray(self._points, dtype=np.float64)
        n, t = arr[:, 0], arr[:, 1]
        n_mean = float(n.mean())
        period = self._prior
        if t[-1] - t[0] >= MIN_FIT_SPAN_S:
            dn = n - n_mean
            slope = float(dn @ (t - t.mean())) / float(dn @ dn)
            if abs(slope * self.rate - 1.0) <= MAX_SKEW:
                period = slope
        self.period = period
        self._n_ref = n_mean
        self._t_ref = n_mean * period + float(np.quantile(t - n * period, OFFSET_QUANTILE))
        self.ready = True

    def time_of(self, n: float) -> float:
        return self._t_ref + (n - self._n_ref) * self.period

    def index_at(self, t: float) -> float:
        return self._n_ref + (t - self._t_ref) / self.period

    @property
    def skew_ppm(self) -> float:
        """Measured rate minus nominal, in parts per million of the host clock."""
        return (1.0 / (self.period * self.rate) - 1.0) * 1e6


class AlignedStream:
    """One stream's input (samples plus timestamps) re-timed onto the output grid."""

    def __init__(self, rate: int, window_s: float) -> None:
        self.rate = int(rate)
        self.window_s = window_s
        self.clock: StreamClock | None = None
        self._fifo: deque[np.ndarray] = deque()
        self._fifo_len = 0
        self.next_in = 0
        """Epoch index of the first sample still in the FIFO."""
        self.in_end = 0
        """Epoch index just past the last sample received."""
        self.out_k = 0
        """Output-grid index of the next sample to emit."""
        self.dropped = 0
        self.duplicated = 0
        self.filled = 0
        """Samples of silence emitted for gaps (device down, stream reopened late)."""
        self._last = np.float32(0.0)

    # -- input ------------------------------------------------------------------------------

    def new_epoch(self) -> None:
        """The stream was (re)opened: sample indices restart at 0, the clock is refitted
        (keeping the device's measured rate as the starting estimate)."""
        period = self.clock.period if self.clock is not None and self.clock.ready else None
        self.clock = StreamClock(self.rate, self.window_s, period)
        self._fifo.clear()
        self._fifo_len = 0
        self.next_in = self.in_end = 0

    def add_timestamp(self, n: int, t: float) -> None:
        if self.clock is None:
            self.new_epoch()
        assert self.clock is not None
        self.clock.add(n, t)

    def add_samples(self, x: np.ndarray) -> None:
        if self.clock is None:
            self.new_epoch()
        if len(x):
            self._fifo.append(x)
            self._fifo_len += len(x)
            self.in_end += len(x)

    @property
    def live(self) -> bool:
        """Has timing for its current epoch, so its data can set the horizon."""
        return self.clock is not None and self.clock.ready

    def data_end_time(self) -> float:
        """Host time just past the last sample received."""
        assert self.clock is not None
        return self.clock.time_of(self.in_end)

    def start_time(self) -> float:
        assert self.clock is not None
        return self.clock.time_of(self.next_in)

    # -- output -----------------------------------------------------------------------------

    def _take(self, n: int) -> np.ndarray:
        parts = []
        need = n
        while need > 0 and self._fifo:
            head = self._fifo[0]
            if len(head) <= need:
                parts.append(head)
                self._fifo.popleft()
                need -= len(head)
            else:
                parts.append(head[:need])
                self._fifo[0] = head[need:]
                need = 0
        got = n - need
        self._fifo_len -= got
        self.next_in += got
        if not parts:
            return np.zeros(0, np.float32)
        out = parts[0] if len(parts) == 1 else np.concatenate(parts)
        if len(out):
            self._last = out[-1]
        return out

    def _discard(self, n: int) -> int:
        n = min(n, self._fifo_len)
        self._take(n)
        return n

    def pull(self, t0: float, k_end: int, live: bool) -> np.ndarray:
        """Output samples ``out_k .. k_end``: audio where there is some, silence where the
        stream is down or has not started yet."""
        count = k_end - self.out_k
        if count <= 0:
            return np.zeros(0, np.float32)
        if not live or self.clock is None or not self.clock.ready:
            # The stream is down: whatever it had buffered is stale by now.
            self._discard(self._fifo_len)
            self.out_k = k_end
            self.filled += count
            return np.zeros(count, np.float32)
        wanted = self.clock.index_at(t0 + self.out_k / self.rate)
        diff = wanted - self.next_in
        pieces: list[np.ndarray] = []
        if diff >= 1.0:  # the input is ahead of the grid: skip samples
            skip = int(diff)
            done = self._discard(skip)
            self.dropped += done if skip <= DUPLICATE_MAX else 0
        elif diff <= -1.0:  # the input is behind: repeat one sample, or silence for a gap
            fill = min(int(-diff), count)
            if fill <= DUPLICATE_MAX:
                pieces.append(np.full(fill, self._last, np.float32))
                self.duplicated += fill
            else:
                pieces.append(np.zeros(fill, np.float32))
                self.filled += fill
            count -= fill
        x = self._take(count)
        pieces.append(x)
        out = pieces[0] if len(pieces) == 1 else np.concatenate(pieces)
        self.out_k += len(out)
        return out


class Aligner:
    """Both streams of a call on one timeline; feeds the pipeline equal stretches of time."""

    SAFETY_S = 0.005
    """Emit only up to this far before the newest data (the fitted line is not exact)."""

    def __init__(self, agent_rate: int, customer_rate: int, window_s: float = 60.0) -> None:
        self.streams = {
            "agent": AlignedStream(agent_rate, window_s),
            "customer": AlignedStream(customer_rate, window_s),
        }
        self.t0: float | None = None
        self.emitted_until: float | None = None
        """Host time up to which both streams have been emitted."""

    def pull(self, up: dict[str, bool]) -> tuple[np.ndarray, np.ndarray] | None:
        """Everything both streams can give now; ``up`` says which streams are running
        (a stream that is down is emitted as silence, timed by the other one)."""
        live = {name: s.live and up.get(name, False) for name, s in self.streams.items()}
        ends = [s.data_end_time() for name, s in self.streams.items() if live[name]]
        if not ends:
            return None
        if self.t0 is None:
            self.t0 = min(s.start_time() for name, s in self.streams.items() if live[name])
        horizon = min(ends) - self.SAFETY_S
        out = []
        for name, s in self.streams.items():
            k_end = math.floor((horizon - self.t0) * s.rate)
            out.append(s.pull(self.t0, k_end, live[name]))
        self.emitted_until = horizon
        if not len(out[0]) and not len(out[1]):
            return None
        return out[0], out[1]

    def skew_ppm(self) -> dict[str, float | None]:
        return {n: (s.clock.skew_ppm if s.clock is not None and s.clock.ready else None)
                for n, s in self.streams.items()}
