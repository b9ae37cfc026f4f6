"""Streaming rational resampling to the analysis rate, identical however the input is chunked.

Why this design:

* **Chunk invariance.** The pipeline must give the same events whether a call arrives as one
  file, as 10 ms capture blocks or in random pieces. Input is therefore accumulated into fixed
  blocks at fixed absolute positions, and every block is run through the *same* float
  operations (same shapes, same weights, same order); how the caller sliced the input cannot
  change a single bit of the output.
* **Anti-aliasing.** A Kaiser-windowed sinc low-pass at the lower of the two Nyquist
  frequencies: stopband attenuation >= :data:`STOPBAND_DB` from that Nyquist frequency up, and a
  passband flat to well within ±0.1 dB up to :data:`PASSBAND_EDGE` × that Nyquist frequency.
  Each output sample is a weighted sum of the input samples around its exact (fractional)
  input time, with weights from the continuous kernel, so any pair of integer rates works.
* **Speed.** A direct polyphase FIR costs a few hundred multiply-adds per output; done as a
  numpy gather it is far too slow for a daemon that must leave the CPU to the softphone. The
  outputs are grouped in runs of :data:`_GROUP_OUTPUTS` consecutive samples; each run reads one
  contiguous input window of ``S`` samples and gets its samples from one (S × P) weight matrix.
  The windows are spaced so that a strided *view* of the input buffer is already a valid BLAS
  operand (row stride >= row length): one batched ``np.matmul`` per batch of blocks, with no
  gather copy, writes straight into the output array in time order. Every GEMM has the same
  shape and reads the same window geometry, so it computes the same bits for the same input.
* **Alignment.** The kernel is centred on each output's input time, so the filter delay is
  compensated internally: output sample ``k`` corresponds to input time ``k / out_rate``
  (``delay_samples`` is 0). The price is latency: an output is emitted once the input has
  reached one block plus the kernel half-width past it (:attr:`Resampler.latency_samples`).
"""

from __future__ import annotations

import math

import numpy as np

from dsp.levels import to_float32

STOPBAND_DB = 65.0
"""Design attenuation from the lower Nyquist frequency up (5 dB above the 60 dB requirement,
for the float32 arithmetic and the per-phase DC normalisation)."""

PASSBAND_EDGE = 0.9
"""Fraction of the lower Nyquist frequency up to which the response is flat (±0.01 dB)."""

_GROUP_OUTPUTS = 16
"""Consecutive outputs that share one input window (one GEMM column block)."""

_BLOCK_S = 0.08
"""Target block length: 80 ms bounds the added latency and amortises the per-block numpy
overhead (measured: 40 ms blocks cost ~1.5x more CPU at 48 kHz fed in 10 ms pieces)."""

_MAX_BATCH_BLOCKS = 32
"""Blocks processed per numpy call at most, so a long file does not build a huge matrix."""


def kaiser_sinc(tau: np.ndarray, cutoff: float, half_width: float, beta: float) -> np.ndarray:
    """The continuous low-pass kernel at offsets ``tau`` (input samples).

    ``cutoff`` is the -6 dB frequency as a fraction of the input Nyquist frequency; the window
    is ``I0(beta·sqrt(1-(tau/half_width)²)) / I0(beta)`` and zero beyond ``half_width``.
    """
    x = tau / half_width
    inside = np.abs(x) < 1.0
    win = np.where(inside, np.i0(beta * np.sqrt(np.clip(1.0 - x * x, 0.0, None))), 0.0)
    return cutoff * np.sinc(cutoff * tau) * win / np.i0(beta)


_EMPTY = np.zeros(0, dtype=np.float32)
_EMPTY.flags.writeable = False


def _group_size(up: int) -> int:
    """Outputs per window: a divisor of ``up`` near :data:`_GROUP_OUTPUTS` if there is one, so
    the super-period (and the weight table) stays one period long for odd ratios like
    8000 -> 11025 (441 outputs per period); otherwise :data:`_GROUP_OUTPUTS`."""
    divisors = [d for d in range(_GROUP_OUTPUTS // 2, 2 * _GROUP_OUTPUTS + 1) if up % d == 0]
    return min(divisors, key=lambda d: abs(d - _GROUP_OUTPUTS), default=_GROUP_OUTPUTS)


def _window_geometry(n_out: int, per_group: int, spacing: float, step: int, half: float
                     ) -> tuple[int, int]:
    """Smallest window start ``lo`` (relative to ``g·step``) and length covering every tap.

    Output ``j`` sits at input time ``j·spacing`` and belongs to group ``j // per_group``, whose
    window starts at ``g·step + lo``; one geometry for all groups keeps the view uniform.
    """
    t = np.arange(n_out) * spacing
    first = np.floor(t - half).astype(np.int64) + 1
    last = np.ceil(t + half).astype(np.int64) - 1
    base = (np.arange(n_out) // per_group) * step
    lo = int((first - base).min())
    return lo, int((last - base).max()) - lo + 1


class Resampler:
    """Streaming resampler from ``in_rate`` to ``out_rate`` (any positive integers).

    ``process(x)`` takes 1-D float samples and returns the float32 output samples that are
    complete so far; ``flush()`` ends the stream, returning the rest (the input is zero-padded)
    so that ``ceil(n_in · out_rate / in_rate)`` samples are produced in total, and makes the
    resampler ready for a new stream. Equal rates pass the input through untouched.
    """

    def __init__(self, in_rate: int, out_rate: int = 16000) -> None:
        if in_rate <= 0 or out_rate <= 0 or in_rate != int(in_rate) or out_rate != int(out_rate):
            raise ValueError(f"sample rates must be positive integers, got {in_rate} -> {out_rate}")
        self.in_rate = int(in_rate)
        self.out_rate = int(out_rate)
        g = math.gcd(self.in_rate, self.out_rate)
        self._up = self.out_rate // g  # L: outputs per period
        self._down = self.in_rate // g  # M: inputs per period
        self.passthrough = self.in_rate == self.out_rate
        self.delay_samples = 0.0
        """Group delay at the output rate: 0, the kernel is centred (see the module docs)."""
        self._n_in = 0
        self._n_out = 0
        if self.passthrough:
            self.latency_samples = 0
            return
        self._design()
        self._reset_stream()

    def _design(self) -> None:
        L, M = self._up, self._down
        # Kernel: cutoff halfway through the transition band [PASSBAND_EDGE, 1] × lower Nyquist.
        ratio = min(1.0, L / M)  # lower Nyquist as a fraction of the input Nyquist
        trans = (1.0 - PASSBAND_EDGE) * ratio  # transition width, fraction of input Nyquist
        cutoff = (1.0 + PASSBAND_EDGE) / 2.0 * ratio
        beta = 0.1102 * (STOPBAND_DB - 8.7)
        taps = (STOPBAND_DB - 7.95) / (2.285 * math.pi * trans)  # Kaiser's length formula
        half = taps / 2.0

        # Outputs are grouped in runs of P consecutive samples. A super-period of k periods
        # (k·M inputs, k·L outputs) holds G = k·L/P groups whose windows start ``step`` inputs
        # apart; k is grown until consecutive super-periods are at least one window apart, which
        # is what makes the strided view of windows BLAS-compatible without a copy.
        P = _group_size(L)
        step = max(1, round(P * M / L))  # integer input stride between group windows
        k0 = P // math.gcd(P, L)
        k = k0
        while True:
            lo, width = _window_geometry(k * L, P, M / L, step, half)
            if k * M >= width:
                break
            k += k0
        groups = k * L // P
        period_in = k * M
        t = np.arange(k * L) * (M / L)

        # Weights: W[g, s, q] multiplies window sample s for output q of group g.
        s = np.arange(width)
        g_idx = np.arange(groups)
        pos = (g_idx[:, None] * step + lo + s[None, :]).astype(np.float64)  # (G, S) input index
        t_out = t.reshape(groups, P)  # (G, P)
        tau = t_out[:, None, :] - pos[:, :, None]  # (G, S, P)
        w = kaiser_sinc(tau, cutoff, half, beta)
        w /= w.sum(axis=1, keepdims=True)  # exact unity DC gain for every phase
        self._weights = np.ascontiguousarray(w, dtype=np.float32)

        periods = max(1, round(_BLOCK_S * self.in_rate / period_in))
        self._groups, self._step, self._width = groups, step, width
        self._periods, self._period_in, self._per_group = periods, period_in, P
        self._block_in = periods * period_in
        self._block_out = periods * k * L
        # History before the block start and lookahead past its end, in input samples.
        self._hist = max(0, -lo)
        last_needed = (periods - 1) * period_in + (groups - 1) * step + lo + width  # exclusive
        self._ahead = max(0, last_needed - self._block_in)
        self._offset = self._hist + lo  # window start of group 0 inside the buffer
        self.latency_samples = self._block_in + self._ahead
        """Input samples that can be held back before their outputs are emitted (worst case)."""

    def _reset_stream(self) -> None:
        """Allocate a stream's fixed work buffers; zeros in the history stand for time < 0.

        ``_buf`` holds the current block's history, up to :data:`_MAX_BATCH_BLOCKS` blocks of
        input and the lookahead. ``_view`` is a fixed strided view of it with one row per
        (block, group, period) window: the matmul operand, built once.
        """
        cap = self._hist + _MAX_BATCH_BLOCKS * self._block_in + self._ahead
        self._buf = np.zeros(cap, dtype=np.float32)
        self._fill = self._hist
        item = self._buf.itemsize
        shape = (_MAX_BATCH_BLOCKS, self._groups, self._periods, self._width)
        self._view = np.ndarray(
            shape,
            dtype=np.float32,
            buffer=self._buf,
            offset=self._offset * item,
            strides=(self._block_in * item, self._step * item, self._period_in * item, item),
        )
        self._ready_at = self._hist + self._block_in + self._ahead
        self._n_in = 0
        self._n_out = 0

    @property
    def ratio(self) -> float:
        return self.out_rate / self.in_rate

    def process(self, x: np.ndarray) -> np.ndarray:
        """Add input samples; return every output sample that is now complete (float32).

        Float samples are taken as they are; integer PCM is scaled onto [-1, 1) first (a raw
        int16 block would otherwise come out 90 dB too loud).
        """
        x = np.asarray(x)
        if x.ndim != 1:
            raise ValueError(f"Resampler.process takes 1-D samples, got shape {x.shape}")
        if x.dtype.kind != "f":
            x = to_float32(x)
        self._n_in += x.size
        if self.passthrough:
            return x.astype(np.float32, copy=False)
        return self._feed(x)

    def flush(self) -> np.ndarray:
        """End of stream: zero-pad, return the remaining outputs, and start a fresh stream."""
        if self.passthrough:
            self._n_in = 0
            return _EMPTY
        total = -(-self._n_in * self._up // self._down)  # ceil(n_in · L / M)
        missing = total - self._n_out
        out = _EMPTY
        if missing > 0:
            blocks = -(-missing // self._block_out)
            need = self._hist + blocks * self._block_in + self._ahead
            out = self._feed(np.zeros(max(0, need - self._fill), dtype=np.float32))[:missing]
        self._reset_stream()
        return out

    def _feed(self, x: np.ndarray) -> np.ndarray:
        """Copy ``x`` into the block buffer, resampling whenever it is full and at the end."""
        fill = self._fill
        if fill + x.size < self._ready_at:  # common live case: no block completes yet
            self._buf[fill : fill + x.size] = x
            self._fill = fill + x.size
            return _EMPTY
        parts: list[np.ndarray] = []
        cap = self._buf.size
        pos = 0
        while pos < x.size:
            take = min(cap - self._fill, x.size - pos)
            self._buf[self._fill : self._fill + take] = x[pos : pos + take]
            self._fill += take
            pos += take
            if self._fill == cap:
                parts.append(self._run())
        parts.append(self._run())
        out = parts[0] if len(parts) == 1 else np.concatenate(parts)
        self._n_out += out.size
        return out

    def _run(self) -> np.ndarray:
        """Resample every whole block in the buffer and keep the unprocessed tail.

        Each block is one item of a batched matmul of identical shape ``(periods, S) @ (S, P)``
        per group, so its result does not depend on how many blocks are processed together.
        """
        n = (self._fill - self._hist - self._ahead) // self._block_in
        if n <= 0:
            return _EMPTY
        out = np.empty(n * self._block_out, dtype=np.float32)
        shape = (n, self._periods, self._groups, self._per_group)
        np.matmul(self._view[:n], self._weights, out=out.reshape(shape).transpose(0, 2, 1, 3))
        used = n * self._block_in
        keep = self._fill - used
        self._buf[:keep] = self._buf[used : self._fill]
        self._fill = keep
        return out
