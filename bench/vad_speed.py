"""CPU cost of each VAD engine: µs per 20 ms frame on 10 minutes of speech, and import time.

Every frame is asked (the worst case for webrtc, which the pipeline asks only about frames the
energy gates passed; the neural engines always see every frame). Run:
``.venv/bin/python -m bench.vad_speed``.
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from dsp.resample import Resampler
from dsp.vad import ENGINES, MissingVadPackage, create_vad, to_pcm16

SPEECH = Path("/usr/share/codec2/raw/hts1a.raw")
MINUTES = 10.0
FRAME = 320
IMPORTS = {"webrtc": "_webrtcvad", "webrtc (public wrapper)": "webrtcvad",
           "earshot": "earshot", "silero": "onnxruntime"}


def speech_frames(minutes: float) -> np.ndarray:
    """The codec2 sample looped to ``minutes`` at 16 kHz, as (n, 320) int16 frames."""
    pcm = np.fromfile(SPEECH, "<i2").astype(np.float32) / 32768.0
    x = Resampler(8000, 16000).process(pcm)
    n = int(minutes * 60 * 16000 / FRAME)
    reps = -(-n * FRAME // x.size)
    return to_pcm16(np.tile(x, reps)[: n * FRAME]).reshape(n, FRAME)


def import_ms(module: str) -> float:
    """Wall time of importing ``module`` in a fresh interpreter (best of 3)."""
    code = f"import time; t = time.perf_counter(); import {module}; print(time.perf_counter() - t)"
    runs = [float(subprocess.check_output([sys.executable, "-c", code], text=True))
            for _ in range(3)]
    return min(runs) * 1e3


def main() -> None:
    frames = speech_frames(MINUTES)
    print(f"{len(frames)} frames ({MINUTES:g} min)")
    for name in ENGINES:
        try:
            detector = create_vad(name, 2)
        except MissingVadPackage as exc:
            print(f"{name:>8}: skipped ({exc})")
            continue
        mask = np.ones(len(frames), bool)
        t = time.perf_counter()
        detector.classify(frames, mask)
        dt = time.perf_counter() - t
        print(f"{name:>8}: {dt / len(frames) * 1e6:7.1f} µs/frame, {mask.mean():.0%} speech")
    for label, module in IMPORTS.items():
        print(f"import {module} ({label}): {import_ms(module):.1f} ms")


if __name__ == "__main__":
    main()
