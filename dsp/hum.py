"""Mains hum on the agent's microphone: found, measured and taken out before analysis.

A ground loop or an unshielded headset cable puts 50 or 60 Hz and their harmonics into the
mic, often as loud as the agent's voice. Every speech decision in callwatch asks whether a
frame stands out of the party's background; under hum it never does, so the agent's speech
is missed, talk-overs go unreported and dead air is reported while the agent talks.

Hum is periodic, and 100 ms holds a whole number of periods of both 50 Hz (5) and 60 Hz (6).
While hum is found, :class:`HumCanceller` keeps a running average of the signal folded at
that period (a template): the hum adds up in it, speech and noise, which do not repeat every
100 ms, average out; the template is subtracted. The same method removes power-line
interference from biomedical signals (template or "comb" subtraction); it needs no filter
design and follows any mix of harmonics.

Hum is found once a second from the spectrum of the last second (1 Hz resolution): narrow
lines at the harmonics of 50 or 60 Hz that stand well out of their spectral neighbourhood
and carry a good share of the background. Subtraction is off otherwise: on a clean signal
the template holds only a faint average of the speech, and subtracting it would blur each
syllable into the following 100 ms.

The power taken out is kept (:meth:`HumCanceller.power_at`) so the noise the agent's
customer hears, the noise floor and the SNR still count it: hum is background noise, it
only must not hide the voice.

Pure and chunk-invariant: every decision is made at fixed sample positions, from samples
before them.
"""

from __future__ import annotations

import bisect

import numpy as np

from dsp import ANALYSIS_RATE, FRAME_LEN

PERIOD = ANALYSIS_RATE // 10
"""Samples in 100 ms: five periods of 50 Hz, six of 60 Hz."""

ADAPT = 0.02
"""Template update weight per period: a time constant of 5 s. Hum is steady; a slow template
keeps what a loud syllable leaves in it about 34 dB under the syllable. It starts, when hum
is found, as the mean of the ten periods of the second that found it."""

CLIP = 1.0
"""One sample moves the template by at most :data:`ADAPT` times the hum's RMS (set at each
decision). A phrase many times louder than the hum otherwise leaves its imprint in the
template, and the pause after it then had that imprint subtracted from it: an echo of the
phrase 20 dB over a quiet room for seconds (-52 dBFS after a -26 dBFS phrase, over -45 dBFS
hum and a -75 dBFS room), which the VAD took for speech. Hum itself moves the template by
less than its own RMS, and follows a drift of its level or phase as before."""

DETECT = ANALYSIS_RATE
"""Samples per hum decision (one second, 1 Hz spectral resolution)."""

MAINS_HZ = (50, 60)
HARMONICS = 8
LINE_HALF_WIDTH = 1
"""A line's power is summed over its bin and one each side (the Hann window's main lobe)."""
NEIGHBOURHOOD = (4, 12)
"""Bins on each side of a line (from, to) whose median is the spectrum the line stands in."""

ON_LINES_ABOVE_DB = 20.0
"""Hum is found when its lines stand this far above their neighbourhood, in sum (hum that
fills a pause stands 30-35 dB out; a voice holding a pitch near 100 or 120 Hz for a second
puts its own harmonics on the same bins, up to about 12 dB out) ..."""
ON_SHARE_OF_BACKGROUND_DB = -3.0
"""... and their power is at least half the background's (the 30th percentile of the second's
20 ms frame powers): quieter hum does not hide a voice and is left alone."""
OFF_LINES_ABOVE_DB = 6.0
OFF_AFTER = 3
"""Subtraction stops after this many seconds in a row whose lines stand less than
:data:`OFF_LINES_ABOVE_DB` out."""


def _index() -> tuple[np.ndarray, np.ndarray]:
    """Bins of each family's harmonic lines, (family, harmonic, bin), and of the
    neighbourhood each line stands in, (family, harmonic, bin); 1 Hz bins."""
    lo, hi = NEIGHBOURHOOD
    k = np.arange(1, HARMONICS + 1)
    centres = np.array(MAINS_HZ)[:, None] * k[None, :]
    width = np.arange(-LINE_HALF_WIDTH, LINE_HALF_WIDTH + 1)
    side = np.concatenate((-np.arange(hi, lo - 1, -1), np.arange(lo, hi + 1)))
    return centres[..., None] + width, centres[..., None] + side


MEASURE_SECONDS = 16
"""Seconds of one chunk whose lines are measured in one batch (bounds the memory a long
chunk takes: 16 s of float64, 2 MB)."""

DECIMATE = 8
"""The spectrum is taken of the second averaged over groups of 8 samples (2 kHz): the lines
lie under 500 Hz, where that average passes 90 % or more of the amplitude, and the
transform is 8 times smaller."""

_LINE_BINS, _SIDE_BINS = _index()
_AVERAGE = np.full(DECIMATE, 1.0 / DECIMATE)
_WINDOW = np.hanning(DETECT // DECIMATE)
_SCALE = 2.0 / (_WINDOW.size * float(_WINDOW @ _WINDOW))


def lines(x: np.ndarray) -> tuple[float, float]:
    """Of one second of samples: how far (dB) the strongest mains family's harmonic lines
    stand above their neighbourhood, and their power as a mean square."""
    # einsum, not a BLAS product: a 16,000-sample product wakes BLAS worker threads, which
    # then spin on an otherwise idle core.
    spec = np.fft.rfft(np.einsum("ij,j->i", x.reshape(-1, DECIMATE), _AVERAGE) * _WINDOW)
    power = (spec.real**2 + spec.imag**2) * _SCALE
    line = power[_LINE_BINS].sum(axis=(1, 2))
    side = np.sort(power[_SIDE_BINS], axis=2)
    middle = side.shape[2] // 2
    around = side[..., middle - 1 : middle + 1].mean(axis=2).sum(axis=1) * _LINE_BINS.shape[2]
    above = 10.0 * np.log10(np.maximum(line, 1e-30) / np.maximum(around, 1e-30))
    best = int(np.argmax(above))
    return float(above[best]), float(line[best])


def lines_many(seconds: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """:func:`lines` of every row of ``seconds`` ``(k, DETECT)`` in one set of numpy calls,
    each value bit for bit what :func:`lines` gives for its row: every row is averaged,
    transformed and sorted on its own, and the line and neighbourhood sums run over
    contiguous copies laid out as :func:`lines` has them."""
    k = seconds.shape[0]
    averaged = np.einsum("ij,j->i", seconds.reshape(-1, DECIMATE), _AVERAGE).reshape(k, -1)
    spec = np.fft.rfft(averaged * _WINDOW, axis=1)
    power = (spec.real**2 + spec.imag**2) * _SCALE
    line = np.ascontiguousarray(power[:, _LINE_BINS]).sum(axis=(2, 3))
    side = np.sort(power[:, _SIDE_BINS], axis=3)
    middle = side.shape[3] // 2
    middles = np.ascontiguousarray(side[..., middle - 1 : middle + 1].mean(axis=3))
    around = middles.sum(axis=2) * _LINE_BINS.shape[2]
    above = 10.0 * np.log10(np.maximum(line, 1e-30) / np.maximum(around, 1e-30))
    best = np.argmax(above, axis=1)
    rows = np.arange(k)
    return above[rows, best], line[rows, best]


class HumCanceller:
    """Streaming hum removal for one stream at :data:`dsp.ANALYSIS_RATE`."""

    def __init__(self, start: int = 0) -> None:
        """``start``: the stream position (sample index) of the first sample it will see."""
        self.template = np.zeros(PERIOD)
        self.pos = start
        """Stream position of the next sample."""
        self.active = False
        self._quiet_seconds = 0
        self._recent = np.zeros(DETECT)
        """The current second of input (a whole number of periods from a decision point),
        for the next decision and, when it finds hum, the template's first value."""
        self._changes: list[tuple[int, float]] = [(start, 0.0)]
        self._step = np.inf
        """The largest template move per sample (see :data:`CLIP`), set at each decision."""
        """(sample position, hum power subtracted from there on) at every decision."""

    def process(self, x: np.ndarray) -> np.ndarray:
        """The samples with hum taken out while hum is found (float32, same length).
        Without hum they pass unchanged: ``x`` itself when it is float32 (never written to;
        a copy is made once some of it has hum taken out)."""
        src = np.asarray(x, dtype=np.float32)
        out = src
        r = self.pos % DETECT
        if not self.active and r + src.size < DETECT:
            # No hum and no decision in this chunk (a live block): only keep the samples.
            self._recent[r : r + src.size] = src
            self.pos += src.size
            return out
        # The seconds that end in this chunk are measured together, up to MEASURE_SECONDS at
        # a time: their lines depend on the input alone (what is taken out never enters
        # them), so the decisions need not wait for one another's measurement.
        first_r, seconds, decided = r, (r + src.size) // DETECT, 0
        measured: list[tuple[float, float]] = []
        done = 0
        while done < src.size:
            n = min(src.size - done, DETECT - self.pos % DETECT)
            r = self.pos % DETECT
            if self.active:
                # float64 only where hum is taken out (the template and its update).
                seg = src[done : done + n].astype(np.float64)
                if out is src:
                    out = src.copy()
                out[done : done + n] = self._cancel(seg)
                self._recent[r : r + n] = seg
            else:
                self._recent[r : r + n] = src[done : done + n]
            self.pos += n
            done += n
            if self.pos % DETECT == 0:
                if not measured:
                    measured = self._measure(src, first_r, decided, seconds)
                self._decide(*measured.pop())
                decided += 1
        return out

    def _measure(self, src: np.ndarray, first_r: int, decided: int, seconds: int
                 ) -> list[tuple[float, float]]:
        """The lines (:func:`lines_many`) of the second that just ended, which
        :attr:`_recent` holds, and of the whole seconds of ``src`` after it, up to
        :data:`MEASURE_SECONDS` in all; last second first, for popping. ``src`` began
        ``first_r`` samples into a second, ``seconds`` seconds end in it and ``decided`` of
        them are judged."""
        more = min(MEASURE_SECONDS - 1, seconds - decided - 1)
        begin = (decided + 1) * DETECT - first_r
        rows = np.empty((1 + more, DETECT))
        rows[0] = self._recent
        rows[1:] = src[begin : begin + more * DETECT].reshape(more, DETECT)
        above, power = lines_many(rows)
        return list(zip(above.tolist(), power.tolist(), strict=True))[::-1]

    def _cancel(self, seg: np.ndarray) -> np.ndarray:
        """``seg`` (from :attr:`pos` on) minus the template, which each sample then moves
        toward by :data:`ADAPT` (at most :data:`CLIP`): slot by slot, so the result does not
        depend on chunking."""
        y = np.empty_like(seg)
        i = 0
        while i < seg.size:
            slot = (self.pos + i) % PERIOD
            n = min(seg.size - i, PERIOD - slot)
            t = self.template[slot : slot + n]
            d = seg[i : i + n] - t
            y[i : i + n] = d
            t += ADAPT * np.clip(d, -self._step, self._step)
            i += n
        return y

    def power_at(self, sample: int) -> float:
        """Mean-square hum power being subtracted at ``sample`` (0 while off)."""
        i = bisect.bisect_right(self._changes, (sample, float("inf"))) - 1
        return self._changes[max(0, i)][1]

    def _decide(self, above: float, power: float) -> None:
        """Hum on or off from the second that just ended: its lines stand ``above`` dB out
        of their neighbourhood with ``power`` (see :func:`lines`)."""
        if not self.active:
            # The background share is asked only of lines that stand out: most seconds have
            # no hum, and their decision ends at the spectrum.
            if above >= ON_LINES_ABOVE_DB and self._share_db(power) >= ON_SHARE_OF_BACKGROUND_DB:
                self.active = True
                self._quiet_seconds = 0
                # The second just measured, folded at the period: its ten periods' mean.
                self.template = self._recent.reshape(-1, PERIOD).mean(axis=0)
        elif above < OFF_LINES_ABOVE_DB:
            self._quiet_seconds += 1
            if self._quiet_seconds >= OFF_AFTER:
                self.active = False
        else:
            self._quiet_seconds = 0
        hum = float(self.template @ self.template) / PERIOD if self.active else 0.0
        self._step = CLIP * float(np.sqrt(hum)) if self.active else np.inf
        self._changes.append((self.pos, hum))
        if len(self._changes) > 64:
            del self._changes[:-32]

    def _share_db(self, power: float) -> float:
        """Hum ``power`` over the current second's background (the 30th percentile of its
        20 ms frame powers), dB."""
        frames = self._recent.reshape(-1, FRAME_LEN)
        ms = np.einsum("ij,ij->i", frames, frames) / frames.shape[1]
        k = int(0.3 * (ms.size - 1))
        background = float(np.partition(ms, k)[k])
        return 10.0 * np.log10(max(power, 1e-30) / max(background, 1e-30))
