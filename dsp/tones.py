"""Telephone signalling tones: DTMF key presses and call-progress tones (dial, ringback,
busy, special information), found frame by frame so the speech gate can leave them out.

WebRTC's VAD takes a steady tone for a voice. A customer keying a card number at -9 dBFS
(an ordinary DTMF level) then counts as 3 s of speech 17 dB over their voice: their level
jumps, their real speech no longer reaches it, and the call reads as dead air while they
talk. A ringback tone under the agent's first words reads as the customer talking over them,
and the agent's own key presses as the agent talking over the customer.

A frame is a signalling tone when two tests agree, each of which speech passes on its own
now and then but hardly ever both:

* **the tone plan**: at most two of the frequencies telephone networks signal with
  (:data:`TONE_HZ`: the DTMF rows and columns, and the call-progress tones of the ITU-T
  E.180 plans) hold :data:`PLAN_SHARE` of the frame's energy. A vowel's harmonic can sit
  on one of them; its energy is spread over the others;
* **two sinusoids**: an order-4 linear predictor, fitted to the frame itself (covariance
  method), predicts it to within :data:`PREDICTION_GAIN_DB`, as it predicts any sum of two
  steady sinusoids exactly; a voice's pulses and formants leave a residual.

On the five development draws' audio (824 000 frames over -50 dBFS, mostly speech, 8 kHz
voices resampled among them, which are smoother than wideband ones), about 0.2 % pass both, a
frame or a few in a row, nearly all vowels whose first formant sits on a harmonic at 400-480
Hz: a DTMF-like frame (a row and a column) is therefore left out only from a key's second
frame on, any other tone once it has run 120 ms (:func:`signalling_tones`). Talk-overs,
initiators and speech time on the development draws came out as without the test.

The predictor's residual on a tone is the line's hiss, amplified by the predictor's
coefficients: a key 50 dB over white hiss reads 33-40 dB, one 45 dB over it 28-31 dB, half its
frames under the limit. A softphone's decoded line is quieter than an analogue one.
"""

from __future__ import annotations

import numpy as np

from dsp import ANALYSIS_RATE, FRAME_LEN
from dsp.block import Block

TONE_HZ = (697.0, 770.0, 852.0, 941.0, 1209.0, 1336.0, 1477.0, 1633.0,  # DTMF
           350.0, 400.0, 425.0, 440.0, 450.0, 480.0, 620.0,  # dial, ringback, busy
           950.0, 1400.0, 1800.0)  # special information tone
"""The frequencies signalling tones are made of (ITU-T Q.23 for DTMF; ITU-T E.180 and the
North American precise tone plan for the call-progress tones)."""

PLAN_SHARE = 0.85
"""Share of a frame's energy the two strongest plan frequencies must hold."""

PREDICTION_GAIN_DB = 28.0
"""How well an order-4 predictor must predict the frame (energy over residual)."""

PROGRESS_MIN_FRAMES = 6
"""Tone frames in a row before a tone that is not DTMF-like is left out (see
:func:`signalling_tones`)."""

MIN_TONE_DBFS = -50.0
"""Quieter frames are not looked at: the gates leave them out anyway."""

_ORDER = 4
_ROWS, _DTMF = 4, 8
""":data:`TONE_HZ` starts with the four DTMF rows, then the four columns."""
_HOP = 2
"""The plan frequencies are measured on every second sample (8 kHz, over twice the highest
of them): half the work, and the share is a ratio of energies of the same samples."""
_N = FRAME_LEN // _HOP
_phase = 2.0 * np.pi * np.asarray(TONE_HZ)[None, :] * np.arange(_N)[:, None] * _HOP / ANALYSIS_RATE
_BANK = np.concatenate((np.cos(_phase), np.sin(_phase)), axis=1).astype(np.float32)
"""Cosine then sine of each plan frequency: ``frames @ _BANK`` is each frame's spectrum there
(single precision, one real product: the share needs no more)."""


def _plan_share(frames: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Energy share of the two strongest plan frequencies (a sinusoid's energy over a frame
    is ``2 |X(f)|^2 / N``), and their indices in :data:`TONE_HZ`."""
    x = np.ascontiguousarray(frames[:, ::_HOP], dtype=np.float32)
    y = x @ _BANK
    k = len(TONE_HZ)
    e = (y[:, :k] ** 2 + y[:, k:] ** 2) * (2.0 / _N)
    top = np.argpartition(e, k - 2, axis=1)[:, -2:]
    share = np.take_along_axis(e, top, axis=1).sum(axis=1)
    return share / (np.einsum("ij,ij->i", x, x, dtype=np.float64) + 1e-20), top


def _prediction_gain_db(frames: np.ndarray) -> np.ndarray:
    """Energy over the residual of the order-4 least-squares predictor of each frame."""
    x = frames.astype(np.float64)
    n = x.shape[1]
    lagged = np.stack([x[:, _ORDER - k : n - k] for k in range(_ORDER + 1)], axis=1)
    c = np.einsum("mik,mjk->mij", lagged, lagged)
    e0 = c[:, 0, 0]
    a = np.linalg.solve(c[:, 1:, 1:] + np.eye(_ORDER) * (e0 * 1e-9 + 1e-20)[:, None, None],
                        c[:, 1:, :1])[:, :, 0]
    residual = e0 - np.einsum("mi,mi->m", a, c[:, 1:, 0])
    return 10.0 * np.log10((e0 + 1e-30) / np.maximum(residual, e0 * 1e-9 + 1e-30))


def tone_frames(frames: np.ndarray, rms_dbfs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Which frames ``(n, FRAME_LEN)`` are signalling tones by both tests (see above), and
    which of those are DTMF-like (their two strongest plan frequencies a row and a column)."""
    tone = rms_dbfs >= MIN_TONE_DBFS
    dtmf = np.zeros_like(tone)
    idx = np.flatnonzero(tone)
    if idx.size == 0:
        return tone, dtmf
    share, top = _plan_share(frames[idx])
    keep = share >= PLAN_SHARE
    tone[idx[~keep]] = False
    idx, top = idx[keep], top[keep]
    if idx.size:
        tone[idx[_prediction_gain_db(frames[idx]) < PREDICTION_GAIN_DB]] = False
        lo, hi = top.min(axis=1), top.max(axis=1)
        dtmf[idx] = (lo < _ROWS) & (hi >= _ROWS) & (hi < _DTMF)
        dtmf &= tone
    return tone, dtmf


def signalling_tones(frames: np.ndarray, rms_dbfs: np.ndarray, run_before: int
                     ) -> tuple[np.ndarray, np.ndarray, int]:
    """Frames to leave out of the speech decisions, the tone frames (what holds dead air off:
    a line that rings or beeps is not silent), and how many tone frames end the block in a
    row (the next call's ``run_before``). A DTMF-like frame is left out from a key's
    second frame on (a key lasts 40 ms at least), any other tone frame once
    :data:`PROGRESS_MIN_FRAMES` tone frames have run (a call-progress tone lasts a second or
    more; a vowel whose first formant sits on a harmonic at 400-480 Hz can look like one for
    as long as 100 ms). Per frame and the frames before it, so the same whatever the
    chunking."""
    tone, dtmf = tone_frames(frames, rms_dbfs)
    n = tone.size
    if n == 0:
        return tone, tone, run_before
    # Tone frames in a row up to each frame: its index less that of the last non-tone frame.
    idx = np.arange(1, n + 1)
    last_break = np.maximum.accumulate(np.where(tone, 0, idx))
    run = idx - last_break
    run[last_break == 0] += run_before
    out = tone & ((dtmf & (run >= 2)) | (run >= PROGRESS_MIN_FRAMES))
    return out, tone, int(run[-1])


class LineTones:
    """Both lines' signalling tones, block after block (the runs of tone frames carry over)."""

    __slots__ = ("_runs",)

    def __init__(self) -> None:
        self._runs = [0, 0]

    def mark(self, blk: Block, agent: np.ndarray, customer: np.ndarray) -> None:
        """Add each party's tone frames (:func:`signalling_tones`) to what the speech gates
        leave out of ``blk``, with its clicks, and the frames with a tone on either line to
        ``blk.tones``; ``agent`` and ``customer`` are the block's frames."""
        a_out, a_tone, self._runs[0] = signalling_tones(agent, blk.fa.rms_dbfs, self._runs[0])
        c_out, c_tone, self._runs[1] = signalling_tones(customer, blk.fc.rms_dbfs,
                                                        self._runs[1])
        blk.a_not_speech = blk.a_clicks | a_out
        blk.c_not_speech = blk.c_clicks | c_out
        blk.tones = a_tone | c_tone
