"""Acoustic shock: a sudden far-end sound near full scale, found within 50 ms.

What the agent's ear can be hurt by is a sound that jumps to near full scale faster than they
can pull the headset off (ITU-T P.360 / G.616, the headset vendors' anti-startle limiters).
Three shapes are recognised, each from what speech at normal levels never does:

* **burst**: the 10 ms level reaches ``shock_burst_dbfs`` (a noise burst, a dropped handset,
  a loud tone switched on) after rising ``shock_rise_db`` over the 200 ms before. Speech at
  its loudest normal level (-20 dBFS active) peaks at about -7 dBFS per 10 ms;
* **click**: a sample at the rails (``shock_click_peak_dbfs``, -0.1 dBFS: a clipped click or
  crackle) whose 10 ms level rose ``shock_click_rise_db`` over the 200 ms before. A 1 ms click
  carries too little energy for the burst level, but speech at normal levels never reaches
  the rails (at -20 dBFS active it peaks at -0.6 dBFS), so a clipped sample after a rise is a
  click even in the middle of a word;
* **tone**: two overlapping 20 ms windows 10 ms apart with ``shock_tone_ratio`` of their power
  in the same narrow spectral peak at ``shock_tone_dbfs`` or more (fax and modem tones,
  whistles, a feedback howl as it builds up). A voiced vowel can be that tonal for 30 ms, but
  not at that level.

Each event reports the shock's highest ``level_dbfs`` (10 ms for bursts and clicks, the 20 ms
window for tones) and ``peak_dbfs`` (sample peak, at most 0 dBFS: the pipeline holds samples
to [-1, 1], and a resampler's overshoot past full scale, which no recording has, reads as
full scale) and the thresholds, named after the measure they bound: ``threshold_dbfs`` (the
level's: the burst's, or the tone's for tones) and, for clicks, ``threshold_peak_dbfs``, the
sample peak's they crossed; a click's 10 ms level mostly stays below the burst threshold: that
is what makes it a click.

Detection runs on 5 ms blocks and 10 ms window hops, so a shock is confirmed at most 10 ms
(burst, click) or 40 ms (tone) after it starts. The condition ends after ``shock_release_s``
without any of the three, so a click train or a howl is one event; a tone that starts while
clicks or bursts hold a shock ends it and starts its own. Every window is computed
from the same samples whatever the chunking (the state carries the last 200 ms), so events do
not depend on block sizes.
"""

from __future__ import annotations

import math

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from dsp import ANALYSIS_RATE, FRAME_LEN
from dsp.events import Event, Kind, Phase, Stream
from dsp.hearing import HearingSettings, frame_spectra

BLOCK = 80
"""5 ms blocks for the burst and click level."""
REF_BLOCKS = 40
"""The reference: the 200 ms of blocks before the 10 ms window."""
HOP = 160
"""10 ms between tone windows."""
WIN = FRAME_LEN
"""20 ms tone windows."""
PEAK_HALF_BINS = 2
"""A tone's power is taken in ±2 bins (±100 Hz) around the peak: a Hann window's main lobe."""
_FLOOR = 1e-12
_HANN = np.hanning(WIN)
LOOK_MARGIN_DB = 4.0
"""How far under the thresholds :meth:`AcousticShock.could_begin` looks: its 5 ms blocks
need not line up with the detector's (a 10 ms window over three of them: 1.8 dB), and the
samples it is shown are the capture's, before resampling to the analysis rate."""


_Hit = tuple[int, bool, str, float, float, float]
"""(sample index, can start a shock, trigger, 10 ms level dBFS, peak dBFS, tone Hz). A burst
or click without the rise does not start a shock but holds one that runs (a click train, a
burst that stays loud)."""


class Trigger:
    """What made a shock (the ``trigger`` field of the event)."""

    BURST = "burst"
    CLICK = "click"
    TONE = "tone"


class AcousticShock:
    """Sudden near-full-scale sound on the far end (the customer stream)."""

    def __init__(self, settings: HearingSettings) -> None:
        self._hist = np.full(REF_BLOCKS + 1, _FLOOR)
        """Block powers of the last 205 ms (reference window + the block before)."""
        self._tail = np.zeros(WIN - HOP, dtype=np.float32)
        """The last 10 ms of samples, for the tone window that straddles two chunks."""
        self._tail_sums = np.zeros((WIN - HOP) // BLOCK)
        """The sums of squares of the 5 ms blocks in :attr:`_tail`."""
        self._prev_tone_bin = -10
        """Peak bin of the previous tone window if it was tonal and loud (else -10)."""
        self.active = False
        self._start = 0
        self._last_hit = 0
        self._peak_dbfs = -120.0
        self._level_dbfs = -120.0
        self._trigger = ""
        self._freq_hz = 0.0
        self.count = 0
        """Shocks begun since creation (for counters)."""
        self.emit_frames: list[int] = []
        """For the events of the last :meth:`update`: the frame in which each was decided
        (where a frame-by-frame detector would have emitted it), to merge them in frame order
        with other detectors' events."""
        self.configure(settings)

    def configure(self, s: HearingSettings) -> None:
        self.burst_ms = 10.0 ** (s.shock_burst_dbfs / 10.0)
        self.burst_dbfs = s.shock_burst_dbfs
        self.rise = 10.0 ** (s.shock_rise_db / 10.0)
        self.click_peak = 10.0 ** (s.shock_click_peak_dbfs / 20.0)
        self.click_peak_dbfs = s.shock_click_peak_dbfs
        self.click_rise = 10.0 ** (s.shock_click_rise_db / 10.0)
        self.tone_ms = 10.0 ** (s.shock_tone_dbfs / 10.0)
        self.tone_dbfs = s.shock_tone_dbfs
        self.tone_ratio = s.shock_tone_ratio
        self._level_min = min(self.burst_ms, self.tone_ms)
        self.release = round(s.shock_release_s * ANALYSIS_RATE)
        look = 10.0 ** (-LOOK_MARGIN_DB / 10.0)
        self._look_level = self._level_min * look
        self._look_peak = self.click_peak * math.sqrt(look)

    def could_begin(self, x: np.ndarray) -> bool:
        """Whether far-end samples not yet pushed (at any rate between 8 and 48 kHz) could
        start a shock: a sample near the click level, or a 5 ms block near the burst or tone
        level. False means none of the three can start in them, so a live caller may hold
        them back with the rest of the audio (see :attr:`dsp.pipeline.Pipeline.quiet_s`);
        True for speech only when it is very loud."""
        x = np.asarray(x, dtype=np.float32).reshape(-1)
        if x.size == 0:
            return False
        peak = max(float(_max(x)), -float(_min(x)))
        if peak >= self._look_peak:
            return True
        if peak * peak < self._look_level:
            return False  # no sample, so no block, is loud enough: the usual case
        if x.size <= BLOCK:
            return float(np.mean(np.square(x, dtype=np.float64))) >= self._look_level
        # Whole blocks from the start, and the last BLOCK samples as one more.
        n = x.size // BLOCK * BLOCK
        b = np.concatenate((x[:n], x[-BLOCK:])).astype(np.float64).reshape(-1, BLOCK)
        return float(_max(np.add.reduce(b * b, axis=1))) / BLOCK >= self._look_level

    def update(self, frame: int, frames: np.ndarray) -> list[Event]:
        """Far-end frames ``frames`` (n × 320 samples at 16 kHz) starting at frame ``frame``."""
        x = np.asarray(frames, dtype=np.float32).reshape(-1)
        if x.size == 0:
            return []
        s0 = frame * FRAME_LEN
        # One pass over the samples serves both: the 5 ms blocks' sums of squares, and the
        # tone windows' mean squares added up from them (see _tone_hits).
        b = x.reshape(-1, BLOCK).astype(np.float64)
        sums = np.add.reduce(b * b, axis=1)
        if self._nothing_loud(x, sums):
            hits = []
        else:
            hits = self._level_hits(b, sums, s0) + self._tone_hits(x, sums, s0)
        if len(hits) > 1:
            hits.sort(key=lambda h: h[0])
        out: list[Event] = []
        self.emit_frames = []
        for at, starts, trigger, level, peak, freq in hits:
            self._end_if_released((at - 1) // FRAME_LEN - 1, out)
            if self.active and trigger == Trigger.TONE and self._trigger != Trigger.TONE:
                # A tone (a fax or modem tone, a howl building up) inside a shock of clicks
                # or bursts (a shouting customer on a clipping line) is a new hazard of its
                # own: it ends the running shock and starts one.
                self.active = False
                out.append(self._event(Phase.END, self._last_hit))
                self.emit_frames.append((at - 1) // FRAME_LEN)
            if not self.active:
                if not starts:
                    continue
                self.active = True
                self.count += 1
                # The start of the windows that confirmed it: 10 ms, or two tone windows.
                self._start = max(0, at - (2 * BLOCK if trigger != Trigger.TONE else WIN + HOP))
                self._trigger, self._freq_hz = trigger, freq
                self._peak_dbfs, self._level_dbfs = peak, level
                out.append(self._event(Phase.BEGIN, at))
                self.emit_frames.append((at - 1) // FRAME_LEN)
            self._last_hit = at
            self._peak_dbfs = max(self._peak_dbfs, peak)
            self._level_dbfs = max(self._level_dbfs, level)
        self._end_if_released(frame + x.size // FRAME_LEN - 1, out)
        return out

    def close(self, frame: int) -> list[Event]:
        if not self.active:
            return []
        self.active = False
        end = min(frame * FRAME_LEN, self._last_hit + self.release)
        return [self._event(Phase.END, max(end, self._last_hit))]

    # -- internals ------------------------------------------------------------------------

    def _end_if_released(self, upto: int, out: list[Event]) -> None:
        """End the shock if it was released in frame ``upto`` or before: in the first frame
        whose end is ``shock_release_s`` after the last hit, unless a hit came by that frame's
        end. Decided per frame, so whatever the chunking."""
        if not self.active:
            return
        release_frame = -(-(self._last_hit + self.release) // FRAME_LEN) - 1
        if release_frame <= upto:
            self.active = False
            out.append(self._event(Phase.END, self._last_hit))
            self.emit_frames.append(release_frame)

    def _event(self, phase: Phase, end: int) -> Event:
        data: dict[str, str | int | float] = {
            "trigger": self._trigger, "peak_dbfs": min(self._peak_dbfs, 0.0),
            "level_dbfs": self._level_dbfs}
        data["threshold_dbfs"] = (self.tone_dbfs if self._trigger == Trigger.TONE
                                  else self.burst_dbfs)
        if self._trigger == Trigger.CLICK:
            # The peak crossed the click threshold; next to the burst level's threshold alone
            # (kept: the analysis contract only adds fields), a click's level would read as a
            # shock below its own limit.
            data["threshold_peak_dbfs"] = self.click_peak_dbfs
        if self._trigger == Trigger.TONE:
            data["frequency_hz"] = self._freq_hz
        return Event(Kind.ACOUSTIC_SHOCK, phase, Stream.CUSTOMER, self._start, end, data)

    def _nothing_loud(self, x: np.ndarray, sums: np.ndarray) -> bool:
        """True, with the state moved on as the scans would move it, when no window can be
        loud: bounds from the largest 5 ms sum (a window's mean square is a mean of block
        sums, and float rounding keeps it at or under the bound) and the largest sample.
        Almost every live block, at a third of the scans' numpy calls."""
        top = float(_max(sums))
        if max(float(_max(x)), -float(_min(x))) >= self.click_peak:
            return False
        if max(top / BLOCK, float(self._hist[-1])) >= self._level_min:
            return False  # a 10 ms level: the mean of two 5 ms blocks' mean squares
        if 4.0 * max(top, float(_max(self._tail_sums))) / WIN >= self.tone_ms:
            return False  # a tone window: four 5 ms sums over its 320 samples
        self._hist = np.concatenate((self._hist, sums / BLOCK))[-(REF_BLOCKS + 1):]
        self._tail = x[-(WIN - HOP):].copy()
        self._tail_sums = np.concatenate((self._tail_sums, sums))[-(WIN - HOP) // BLOCK:]
        self._prev_tone_bin = -10
        return True

    def _level_hits(self, b: np.ndarray, sums: np.ndarray, s0: int) -> list[_Hit]:
        """Bursts and clicks: per 5 ms block j, the 10 ms level of blocks j-1..j against the
        power mean of the 40 blocks before them. ``b``: the 5 ms blocks (float64 rows),
        ``sums``: their sums of squares."""
        p = sums / BLOCK  # the blocks' mean squares, bit for bit np.mean(b * b, axis=1)
        hist = np.concatenate((self._hist, p))
        self._hist = hist[-(REF_BLOCKS + 1):]
        r10 = 0.5 * (hist[REF_BLOCKS + 1:] + hist[REF_BLOCKS:-1])
        # Per-block peaks only matter where a sample reaches the click level at all.
        clicks = max(float(_max(b, axis=None)), -float(_min(b, axis=None))) >= self.click_peak
        if not clicks and float(_max(r10)) < self._level_min:
            return []  # the usual case, in two reductions
        loud = r10 >= self._level_min
        peak = None
        if clicks:
            peak = np.abs(b).max(axis=1)
            loud |= peak >= self.click_peak
        cand = np.flatnonzero(loud)
        if cand.size == 0:
            return []
        if peak is None:
            peak = np.abs(b).max(axis=1)
        ref = sliding_window_view(hist[:-2], REF_BLOCKS)[cand].mean(axis=1)
        ref = np.fmax(ref, _FLOOR)
        out = []
        for j, r, lvl in zip(cand.tolist(), ref.tolist(), r10[cand].tolist(), strict=True):
            pk = float(peak[j])
            if lvl >= self.burst_ms:
                trigger, starts = Trigger.BURST, lvl >= r * self.rise
            elif pk >= self.click_peak:
                trigger, starts = Trigger.CLICK, lvl >= r * self.click_rise
            else:
                continue
            out.append((s0 + (j + 1) * BLOCK, starts, trigger, _db(lvl), _db(pk * pk), 0.0))
        return out

    def _tone_hits(self, x: np.ndarray, sums: np.ndarray, s0: int) -> list[_Hit]:
        """Tones: 20 ms windows every 10 ms, ending at each 10 ms boundary of ``x``.

        A window's mean square is added up from the sums of squares of its four 5 ms blocks
        (``sums``, with the two before ``x``), pairwise as numpy's own sum over the window's
        320 samples adds them (halves of 160, quarters of 80), so it is that mean bit for bit
        without a second pass over the samples. The spectrum is only taken of loud windows."""
        tail = self._tail
        self._tail = x[-(WIN - HOP):].copy()
        quarters = np.concatenate((self._tail_sums, sums))
        self._tail_sums = quarters[-(WIN - HOP) // BLOCK:].copy()
        halves = quarters[0::2] + quarters[1::2]
        ms = (halves[:-1] + halves[1:]) / WIN
        out: list[_Hit] = []
        if float(_max(ms)) < self.tone_ms:
            self._prev_tone_bin = -10
            return out
        loud = ms >= self.tone_ms
        prev = self._prev_tone_bin
        wins = sliding_window_view(np.concatenate((tail, x)), WIN)[::HOP]
        idx = np.flatnonzero(loud)
        spec = frame_spectra(wins[idx] * _HANN)
        for w, row, level in zip(idx.tolist(), spec, ms[idx].tolist(), strict=True):
            if w > 0 and not loud[w - 1]:
                prev = -10
            k = int(np.argmax(row))
            lo, hi = max(0, k - PEAK_HALF_BINS), k + PEAK_HALF_BINS + 1
            tonal = float(row[lo:hi].sum()) >= self.tone_ratio * float(row.sum())
            if tonal and abs(k - prev) <= 1:
                end = s0 + (w + 1) * HOP
                peak = float(np.abs(wins[w]).max())
                out.append((end, True, Trigger.TONE, _db(level), _db(peak * peak),
                            k * ANALYSIS_RATE / WIN))
            prev = k if tonal else -10
        self._prev_tone_bin = prev if loud[-1] else -10
        return out


_min, _max = np.minimum.reduce, np.maximum.reduce
"""The reductions without ndarray.min/max's Python wrappers (a live block is 40 ms)."""


def _db(ms: float) -> float:
    return 10.0 * float(np.log10(max(ms, _FLOOR)))
