"""Speaking rate without speech recognition: syllable nuclei from the envelope and voicing.

A syllable has one vowel at its core, and a vowel is the loudest, voiced part of it. Counting
the peaks of the intensity envelope that are *voiced* and *stand out of the dips around them*
therefore counts syllables, the method of de Jong & Wempe (2009, "Praat script to detect
syllable nuclei and measure speech rate automatically", Behavior Research Methods 41(2)). It
needs no language model and costs a few microseconds per frame, so it runs on both parties
live and inside ``callwatch analyze``.

The estimator here is the streaming form of that method:

* **Envelope.** The power of every 10 ms half-frame, smoothed by a 50 ms triangular window,
  in dB. The half-frame hop keeps two syllables at 8/s apart; the smoothing removes the
  pitch-period ripple and the short bursts of plosives.
* **Peaks.** Hysteresis peak picking (a peak must rise ``min_dip_db`` above the dip before it
  and fall ``min_dip_db`` below itself before it counts), the ``mindip`` rule of the Praat
  script, evaluated one value at a time so that the result never depends on block
  boundaries.
* **Filters.** A peak counts only if the party is talking (the caller's per-frame speech
  decision, the pipeline's noise- and leak-gated VAD, held for :data:`HOLD_S` so a gate that
  drops a word's quiet end does not cut it), it is voiced (normalised autocorrelation at a
  lag in the 70-400 Hz pitch range, computed only at peaks so it costs nothing per frame),
  it lies within ``loud_range_db`` of the party's recent loud peaks (the script's silence
  threshold relative to the loud end of the intensity range), and it is at least
  ``min_gap_s`` after the previous nucleus, or ``close_s`` unless it rose ``close_dip_db``
  out of its dip (a vowel's second peak where it runs into a liquid or a nasal).

The rate is *articulation rate*: syllables per second of speech, pauses excluded. Speech time
is the time the party is talking with an envelope within :data:`SPEECH_RANGE_DB` of its loud
peaks; silent runs shorter than :data:`PAUSE_MIN_S` (stop closures, the breaks between
words) count as speech, as a listener hears them, longer ones are pauses. Over a window of
the last *N* seconds of speech the rate follows a speaker's pace whatever the turn-taking
around it. Comfortable English is about 3.3-4.5 syllables per second (120-160 words per
minute, DESIGN.md §5). Validation against syllables counted from transcripts, and the cost:
bench/pace.py and BENCHMARKS.md.

Pure and sans-I/O: frames and speech flags in, nucleus frame indices out.
"""

from __future__ import annotations

import math
from collections import deque

import numpy as np

# numpy.fft is imported by name, at import time: numpy loads it lazily otherwise, on first
# use, and a daemon out of descriptors (a flood of clients) must not fail that import in
# the middle of a call.
from numpy.fft import irfft, rfft

from dsp import ANALYSIS_RATE, FRAME_LEN, FRAME_S

HOP = FRAME_LEN // 2
"""Envelope hop: 10 ms, two values per analysis frame."""

HOP_S = FRAME_S / 2

SMOOTHING = (1.0, 2.0, 3.0, 2.0, 1.0)
"""Triangular 50 ms window over the half-frame powers: long enough to merge a vowel's pitch
ripple, short enough to keep the dip between two syllables at 7 per second."""

_DELAY = len(SMOOTHING) // 2
"""The smoothed envelope lags the input by this many hops (it needs two values ahead)."""

MIN_DIP_DB = 1.0
"""A nucleus rises this far above the dip before it and falls this far after it (the
``mindip`` of de Jong & Wempe's script, whose default is 2 dB). Tuned on the espeak-ng part of
bench/pace.py: 1 dB keeps the shallow dips between fast syllables (2 dB lost a quarter of the
syllables at 280 words per minute) and the voicing test rejects what it adds."""

LOUD_RANGE_DB = 20.0
"""Peaks more than this below the party's recent loud peaks are breaths, clicks, creak and
room noise, not vowels. The script's silence threshold is 25 dB below the loud end; in
recorded speech (bench.pace_sources) the voiced ripples of a phrase's fading end, 20-25 dB
under its loudest vowels, passed at 25 dB and were counted as syllables (with the clean
speech labels, 20 dB alone takes the tuning set from 2 082 to 1 910 nuclei for 1 964
syllables); 20 dB was chosen there and on espeak-ng. The price: after a speaker drops by
30 dB, syllables count again after ~3.3 s of speech (the reference's decay) instead of
~1.7 s."""

LOUD_DECAY_DB_PER_S = 3.0
"""The loud reference decays this fast over speech, so it follows a speaker who turns down."""

MIN_GAP_S = 0.05
"""Two nuclei closer than this are one syllable (a vowel's double peak): 20 per second is
beyond any speech; the dips and the voicing test do the real work."""

CLOSE_S = 0.10
CLOSE_DIP_DB = 2.0
"""A peak less than ``CLOSE_S`` after the last nucleus counts only if it rose at least
``CLOSE_DIP_DB`` out of the dip before it. In recorded speech a vowel running into a liquid,
a nasal or a glide ("please", "Stella") often carries a second envelope peak 60-120 ms after
the first, over a dip of only 1-2 dB, which the 1 dB ``MIN_DIP_DB`` counts as a syllable;
two real syllables that close (ten per second) are rarer, and their dip is deeper. Chosen on
the recorded tuning set with espeak-ng, whose 280 words-per-minute syllables (~8 per second,
127 ms apart) lose little (bias -2.7 -> -3.2 %)."""

VOICING_MIN = 0.40
"""Normalised autocorrelation a peak needs at some pitch lag to count as voiced. A loud
vowel in creaky voice (a phrase-final syllable of a low male voice) can read just under 0.45
on one 20 ms frame and was lost at 0.45. White-noise frames read 0.21 (median) and 0.33
(99th percentile); about one in 1 500 passes 0.40, and a nucleus also needs its envelope
peak, dips and loud range."""

PITCH_MIN_HZ = 70.0
PITCH_MAX_HZ = 400.0
"""Pitch range searched for voicing: low male to high female and child voices."""

HOLD_S = 0.3
"""The party counts as talking for this long after the caller's last speech frame, so a
gated VAD that drops the quiet end of a word does not cut the word's nucleus or its time."""

SPEECH_RANGE_DB = 30.0
"""While talking, envelope values within this of the loud peaks are speech time; lower ones
are silence (pauses, the hold after the last word)."""

SILENCE_DBFS = -70.0
"""An envelope below this is silence whatever the caller says (digital silence, a dead mic):
no speech time, no nucleus."""

PAUSE_MIN_S = 0.25
"""Non-speech runs this long or longer are pauses and are left out of speech time; shorter
ones are part of speaking (the usual articulation-rate cut, Goldman-Eisler's 250 ms)."""

QUEUE_FRAMES = 250
"""Frames :meth:`SyllableCounter.add` queues before analysing them (5 s)."""

_FLOOR_POWER = 1e-12
_LAG_MIN = int(ANALYSIS_RATE / PITCH_MAX_HZ)
_LAG_MAX = int(ANALYSIS_RATE / PITCH_MIN_HZ)
_FFT_LEN = 1024
"""Zero-padded length for the autocorrelation: at least frame + largest lag, no wrap."""


def voicing(frame: np.ndarray) -> float:
    """Strength of periodicity of one frame: the largest normalised autocorrelation at a lag
    in the pitch range (1.0 for a pure periodic signal, near 0 for noise).

    Each lag is normalised by the energies of the two overlapping parts, so a frame's decay
    does not read as aperiodicity and a short overlap at long lags is not favoured.
    """
    x = np.asarray(frame, dtype=np.float64)
    x = x - x.mean()
    n = x.size
    if n <= _LAG_MAX:
        raise ValueError(f"a voicing frame needs more than {_LAG_MAX} samples, got {n}")
    spec = rfft(x, _FFT_LEN)
    r = irfft(spec.real**2 + spec.imag**2, _FFT_LEN)[_LAG_MIN : _LAG_MAX + 1]
    sq = np.concatenate(([0.0], np.cumsum(x * x)))
    lags = np.arange(_LAG_MIN, _LAG_MAX + 1)
    head = sq[n - lags]  # energy of x[0 : n-lag]
    tail = sq[n] - sq[lags]  # energy of x[lag : n]
    denom = np.sqrt(head * tail)
    ok = denom > 1e-12
    if not ok.any():
        return 0.0
    return float(np.max(r[ok] / denom[ok]))


def voicings(frames: np.ndarray) -> np.ndarray:
    """:func:`voicing` of every row of ``frames`` ``(m, n)``, in a handful of numpy calls
    instead of a dozen per frame; each value is bit for bit what :func:`voicing` gives for
    its row (each row is transformed, summed and reduced on its own, as a single frame is)."""
    x = np.asarray(frames, dtype=np.float64)
    if x.ndim != 2:
        raise ValueError(f"voicings takes (frames, samples), got shape {x.shape}")
    m, n = x.shape
    if n <= _LAG_MAX:
        raise ValueError(f"a voicing frame needs more than {_LAG_MAX} samples, got {n}")
    if m == 0:
        return np.zeros(0)
    x = x - x.mean(axis=1, keepdims=True)
    spec = rfft(x, _FFT_LEN, axis=1)
    r = irfft(spec.real**2 + spec.imag**2, _FFT_LEN, axis=1)[:, _LAG_MIN : _LAG_MAX + 1]
    sq = np.zeros((m, n + 1))
    np.cumsum(x * x, axis=1, out=sq[:, 1:])
    lags = np.arange(_LAG_MIN, _LAG_MAX + 1)
    head = sq[:, n - lags]
    tail = sq[:, n : n + 1] - sq[:, lags]
    denom = np.sqrt(head * tail)
    ok = denom > 1e-12
    ratio = np.full(r.shape, -np.inf)
    np.divide(r, denom, out=ratio, where=ok)
    best = np.max(ratio, axis=1)
    best[~ok.any(axis=1)] = 0.0
    return best


class SyllableCounter:
    """Streaming syllable-nucleus detector and articulation-rate meter for one party.

    Feed consecutive blocks of 20 ms frames with the party's speech decision per frame (the
    pipeline's talk-spurt activity, or its gated per-frame VAD flags: the hold covers the
    difference); :meth:`update` returns the frame indices of the nuclei it confirmed, once
    the envelope has fallen ``min_dip_db`` after each (a few tens of ms after a vowel's peak,
    later for a long-held one). The same input gives the same nuclei whatever the block
    sizes. :attr:`syllables`, :attr:`speech_s` and :meth:`rate_sps` count from the last
    :meth:`start_call`.
    """

    def __init__(
        self,
        min_dip_db: float = MIN_DIP_DB,
        loud_range_db: float = LOUD_RANGE_DB,
        min_gap_s: float = MIN_GAP_S,
        voicing_min: float = VOICING_MIN,
        speech_range_db: float = SPEECH_RANGE_DB,
        hold_s: float = HOLD_S,
        max_window_s: float = 120.0,
        close_s: float = CLOSE_S,
        close_dip_db: float = CLOSE_DIP_DB,
    ) -> None:
        self.min_dip_db = min_dip_db
        self.loud_range_db = loud_range_db
        self.min_gap_hops = max(1, round(min_gap_s / HOP_S))
        self.close_hops = round(close_s / HOP_S)
        self.close_dip_db = close_dip_db
        self.voicing_min = voicing_min
        self.speech_range_db = speech_range_db
        self._hold_hops = round(hold_s / HOP_S)
        self.max_window_hops = max(1, round(max_window_s / HOP_S))
        self._loud_decay = LOUD_DECAY_DB_PER_S * HOP_S
        self._pause_hops = round(PAUSE_MIN_S / HOP_S)
        self._next_frame: int | None = None
        self._finished = False
        self._queue: list[tuple[np.ndarray, np.ndarray]] = []
        """Blocks :meth:`add` took and no result has been asked of yet (see :meth:`add`)."""
        self._queued = 0
        # Inputs carried from block to block: the last half-frame powers (the smoothing
        # needs them) and the last frame with its speech flag (the envelope lags a frame).
        self._powers = np.zeros(len(SMOOTHING) - 1)
        self._last_frame = np.zeros(FRAME_LEN, dtype=np.float32)
        self._last_speech = False
        # Peak picking (hysteresis), on the envelope's own timeline in hops.
        self._hop = 0
        self._look_for_max = True
        self._max_db = -math.inf
        self._max_hop = -1
        self._max_frame: np.ndarray | None = None
        self._max_speech = False
        self._max_stamp = 0
        self._min_db = math.inf
        self._rise_db = -math.inf  # the dip the pending peak rose from
        self._loud_db = -math.inf
        self._last_nucleus_hop = -(10**9)
        # Speech time, in hops, with short gaps bridged.
        self._speech_hops = 0
        self._gap_hops = 0
        self._seen_speech = False
        self._since_flag = 10**9
        # Per call: nuclei as speech-time stamps, for the windowed rate.
        self._stamps: deque[int] = deque()
        self._call_syllables = 0
        self._call_start_hops = 0

    # -- input ----------------------------------------------------------------------------

    def update(self, frames: np.ndarray, speech: np.ndarray, first_frame: int) -> list[int]:
        """Analyse ``frames`` ``(n, FRAME_LEN)`` whose first row is frame ``first_frame``,
        with ``speech`` ``(n,)`` the party's speech decision per frame. Returns the frame
        indices of the syllable nuclei confirmed by this block (and by any blocks
        :meth:`add` queued before it), in order."""
        f, s = self._take(frames, speech, first_frame)
        self._queue.append((f, s))
        return self._drain()

    def add(self, frames: np.ndarray, speech: np.ndarray, first_frame: int) -> None:
        """:meth:`update` without the nuclei: the block is queued and analysed with the next
        ones once :data:`QUEUE_FRAMES` are waiting, or when a result is read. The counts
        are the same as with :meth:`update` (the analysis does not depend on the block
        sizes); a party whose nuclei nobody waits for (the customer: only their rate is
        reported) pays the per-block numpy calls once per few seconds instead of once per
        segment."""
        f, s = self._take(frames, speech, first_frame)
        self._queue.append((f, s))
        self._queued += f.shape[0]
        if self._queued >= QUEUE_FRAMES:
            self._drain()

    def _take(self, frames: np.ndarray, speech: np.ndarray, first_frame: int
              ) -> tuple[np.ndarray, np.ndarray]:
        """Check a block and move the expected next frame past it."""
        f = np.asarray(frames, dtype=np.float32)
        s = np.asarray(speech, dtype=bool)
        if f.ndim != 2 or f.shape[1] != FRAME_LEN:
            raise ValueError(f"frames must be (n, {FRAME_LEN}) at {ANALYSIS_RATE} Hz, "
                             f"got shape {f.shape}")
        if s.shape != (f.shape[0],):
            raise ValueError(f"speech must hold one flag per frame: {f.shape[0]} frames, "
                             f"speech shape {s.shape}")
        if self._finished:
            raise ValueError("update() after finish(): use a new SyllableCounter")
        if self._next_frame is None:
            self._next_frame = first_frame
            self._hop = 2 * first_frame - _DELAY
        elif first_frame != self._next_frame:
            raise ValueError(f"frames must be consecutive: expected frame {self._next_frame}, "
                             f"got {first_frame} (use a new SyllableCounter for a new stream)")
        self._next_frame = first_frame + f.shape[0]
        return f, s

    def _drain(self) -> list[int]:
        """Analyse the queued blocks as one; the nuclei they confirm."""
        queue = self._queue
        self._queued = 0
        if not queue:
            return []
        if len(queue) == 1:
            f, s = queue[0]
        else:
            f = np.concatenate([b[0] for b in queue])
            s = np.concatenate([b[1] for b in queue])
        queue.clear()
        n = f.shape[0]
        if n == 0:
            return []
        halves = f.reshape(2 * n, HOP).astype(np.float64)
        powers = np.einsum("ij,ij->i", halves, halves) / HOP
        return self._run(powers, f, s)

    def finish(self) -> list[int]:
        """End of input: let the envelope run out over silence and confirm a last nucleus
        whose fall the input ended before."""
        if self._next_frame is None or self._finished:
            return []
        out = self._drain()
        self._finished = True
        return out + self._run(np.zeros(_DELAY), np.zeros((0, FRAME_LEN), np.float32),
                         np.zeros(0, bool))

    def start_call(self) -> None:
        """Restart the per-call counts and the rate window; detector state carries on."""
        self._drain()
        self._stamps.clear()
        self._call_syllables = 0
        self._call_start_hops = self._speech_hops

    # -- results --------------------------------------------------------------------------

    @property
    def syllables(self) -> int:
        """Nuclei counted since the call started."""
        self._drain()
        return self._call_syllables

    @property
    def speech_s(self) -> float:
        """Speech time since the call started, pauses of :data:`PAUSE_MIN_S` or more left out."""
        self._drain()
        return (self._speech_hops - self._call_start_hops) * HOP_S

    def rate_sps(self, window_s: float | None = None) -> float | None:
        """Syllables per second of speech over the last ``window_s`` seconds of speech time
        (the whole call when None); None before any speech."""
        window = None if window_s is None else max(1, round(window_s / HOP_S))
        if window is not None and window > self.max_window_hops:
            raise ValueError(f"window_s={window_s:g} is longer than the max_window_s="
                             f"{self.max_window_hops * HOP_S:g} the counter keeps; give the "
                             "counter a longer max_window_s")
        self._drain()
        speech = self._speech_hops - self._call_start_hops
        if speech <= 0:
            return None
        if window is None:
            return self._call_syllables / (speech * HOP_S)
        span = min(speech, window)
        since = self._speech_hops - span
        count = 0
        for stamp in reversed(self._stamps):
            if stamp <= since:
                break
            count += 1
        return count / (span * HOP_S)

    # -- internals ------------------------------------------------------------------------

    def _run(self, powers: np.ndarray, frames: np.ndarray, speech: np.ndarray) -> list[int]:
        """Step the envelope through the new half-frame powers, one hop at a time.

        The state lives in locals inside the loop (attribute access would double the cost)
        and is stored back at the end; the logic is the same for every hop."""
        allp = np.concatenate((self._powers, powers))
        k = len(SMOOTHING)
        env = np.convolve(allp, np.asarray(SMOOTHING) / sum(SMOOTHING), mode="valid")
        env_db = (10.0 * np.log10(np.maximum(env, _FLOOR_POWER))).tolist()
        self._powers = allp[len(allp) - (k - 1) :]
        # Envelope value j belongs to hop self._hop + j, which lies in frame (hop // 2);
        # that frame is the carried one (row -1) or a row of this block.
        hop = self._hop
        base_frame = hop // 2
        prev_frame, prev_speech = self._last_frame, self._last_speech
        flags = speech.tolist()
        out: list[int] = []
        min_dip = self.min_dip_db
        hold, pause = self._hold_hops, self._pause_hops
        loud_decay, speech_range = self._loud_decay, self.speech_range_db
        since_flag, loud_db = self._since_flag, self._loud_db
        speech_hops, gap_hops, seen = self._speech_hops, self._gap_hops, self._seen_speech
        look_for_max, max_db, min_db = self._look_for_max, self._max_db, self._min_db
        max_hop, max_speech, max_stamp = self._max_hop, self._max_speech, self._max_stamp
        rise_db = self._rise_db
        max_row: int | None = None
        # Confirmed peaks that pass the checks not depending on earlier nuclei, judged after
        # the loop (their voicing at once): (hop, speech-time stamp, speech hops, rise, frame).
        peaks: list[tuple[int, int, int, float, np.ndarray]] = []
        loud_range = self.loud_range_db
        for v in env_db:
            row = hop // 2 - base_frame - 1
            # Talking: within the hold after the caller's last speech frame.
            if flags[row] if row >= 0 else prev_speech:
                since_flag = 0
            else:
                since_flag += 1
            talking = since_flag <= hold
            if talking:
                loud_db -= loud_decay
                if v > loud_db:
                    loud_db = v
            # Speech time: talking hops within the speech range of the loud peaks; a gap
            # shorter than a pause counts too, once speech resumes.
            if talking and v >= loud_db - speech_range and v > SILENCE_DBFS:
                if seen and gap_hops < pause:
                    speech_hops += gap_hops
                gap_hops = 0
                speech_hops += 1
                seen = True
            else:
                gap_hops += 1
            # Hysteresis peak picking.
            if v > max_db:
                max_db, max_hop, max_speech, max_stamp, max_row = (
                    v, hop, talking, speech_hops, row)
            if v < min_db:
                min_db = v
            if look_for_max:
                if v < max_db - min_dip:
                    if max_row is not None:
                        self._max_frame = frames[max_row] if max_row >= 0 else prev_frame
                        max_row = None
                    peak = self._max_frame
                    if (max_speech and peak is not None and max_db > SILENCE_DBFS
                            and max_db >= loud_db - loud_range):
                        peaks.append((max_hop, max_stamp, speech_hops, max_db - rise_db,
                                      peak))
                    look_for_max = False
                    min_db = v
            elif v > min_db + min_dip:
                look_for_max = True
                rise_db = min_db
                max_db, max_hop, max_speech, max_stamp, max_row = (
                    v, hop, talking, speech_hops, row)
            hop += 1
        self._hop = hop
        self._since_flag, self._loud_db = since_flag, loud_db
        self._speech_hops, self._gap_hops, self._seen_speech = speech_hops, gap_hops, seen
        self._look_for_max, self._max_db, self._min_db = look_for_max, max_db, min_db
        self._max_hop, self._max_speech, self._max_stamp = max_hop, max_speech, max_stamp
        self._rise_db = rise_db
        if max_row is not None:
            # The pending peak's frame must outlive the caller's block.
            self._max_frame = (frames[max_row] if max_row >= 0 else prev_frame).copy()
        if frames.shape[0]:
            self._last_frame = frames[-1].copy()
            self._last_speech = bool(flags[-1])
        if peaks:
            self._accept(peaks, out)
        return out

    def _accept(self, peaks: list[tuple[int, int, int, float, np.ndarray]],
                out: list[int]) -> None:
        """Count the confirmed ``peaks`` that are syllable nuclei, in order, and append their
        frames to ``out``. Each peak already passed the checks that do not depend on the
        nuclei before it (talking, not silence, within the loud range); here come the gap
        to the last nucleus and voicing. The voicing of every peak is computed at once
        (:func:`voicings`), including peaks the gap then rejects: one batched call costs less
        than the calls it replaces."""
        voiced = voicings(np.stack([p[4] for p in peaks])).tolist()
        for (hop, stamp, speech_hops, rise, _), v in zip(peaks, voiced, strict=True):
            since = hop - self._last_nucleus_hop
            if since < self.min_gap_hops:
                continue
            if since < self.close_hops and rise < self.close_dip_db:
                continue  # a second peak of the same vowel and the sonorant after it
            if v < self.voicing_min:
                continue
            self._last_nucleus_hop = hop
            self._call_syllables += 1
            self._stamps.append(stamp)
            while self._stamps and self._stamps[0] <= speech_hops - self.max_window_hops:
                self._stamps.popleft()
            out.append(hop // 2)
