"""Real speech for tests: Debian's codec2-examples recordings, placed on a call timeline.

The recordings are real human speech (8 kHz, 16-bit raw, and one 16 kHz WAV), installed by the
test command's Debian packages, so accuracy tests run on voices rather than synthetic tones.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path

import numpy as np

from dsp import ANALYSIS_RATE, FRAME_LEN
from dsp.resample import Resampler

CODEC2_RAW = Path("/usr/share/codec2/raw")
AGENT_VOICES = ("hts1", "kristoff", "mmt1")
CUSTOMER_VOICES = ("hts2", "cq_ref", "vk5qi")


@cache
def voice(name: str) -> np.ndarray:
    """A codec2 example recording at 16 kHz, float32, normalised to a -26 dBFS RMS-ish level."""
    path = CODEC2_RAW / f"{name}.raw"
    if not path.exists():
        raise FileNotFoundError(f"{path}: install Debian's codec2-examples (make test does)")
    x = np.fromfile(path, dtype="<i2").astype(np.float32) / 32768.0
    r = Resampler(8000, ANALYSIS_RATE)
    y = np.concatenate([r.process(x), r.flush()])
    active = y[np.abs(y) > 0.02]
    rms = float(np.sqrt(np.mean(active**2))) if active.size else 1.0
    return (y * (0.05 / rms)).astype(np.float32)


def voiced(n: int) -> np.ndarray:
    """``n`` 20 ms frames of a 150 Hz sawtooth: periodic at a pitch lag, as a vowel is (for
    tests of what reads a frame's voicing without needing a recording)."""
    t = np.arange(n * FRAME_LEN) * 150.0 / ANALYSIS_RATE
    return (0.05 * (t % 1.0 - 0.5)).astype(np.float32).reshape(n, FRAME_LEN)


def place(track: np.ndarray, clip: np.ndarray, at_s: float, gain_db: float = 0.0) -> None:
    """Add ``clip`` into ``track`` starting at ``at_s`` seconds."""
    i = int(at_s * ANALYSIS_RATE)
    n = min(len(clip), len(track) - i)
    track[i : i + n] += clip[:n] * np.float32(10 ** (gain_db / 20))


def two_party_call(
    turns: list[tuple[str, str, float]], seconds: float, seed: int = 0, noise_dbfs: float = -65.0
) -> tuple[np.ndarray, np.ndarray]:
    """Agent and customer tracks from ``(party, voice, start_s)`` turns plus quiet room noise."""
    n = int(seconds * ANALYSIS_RATE)
    rng = np.random.default_rng(seed)
    amp = 10 ** (noise_dbfs / 20)
    agent = (rng.standard_normal(n) * amp).astype(np.float32)
    customer = (rng.standard_normal(n) * amp).astype(np.float32)
    for party, name, start in turns:
        place(agent if party == "agent" else customer, voice(name), start)
    return agent, customer
