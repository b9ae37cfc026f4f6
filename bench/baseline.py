"""``python -m bench.baseline [--vad ENGINE] FILE.wav``: the naive talk-over detector headset
vendors ship, with any VAD engine.

A VAD (30 ms frames, mode 2) on each channel independently; a talk-over is both channels
flagged as speech for at least 0.3 s, started by whichever party's speech run began later.
Nothing else: no noise floor, no far-end coupling, no hangover. The default engine is the
WebRTC VAD through the public ``webrtcvad`` package, at the file's own rate when it supports
it (8/16/32/48 kHz) and at 16 kHz after resampling otherwise; any other engine of
:func:`dsp.vad.create_vad` (``silero``, ``earshot``) runs on the audio resampled to
:data:`dsp.ANALYSIS_RATE`, so a better VAD can be judged without the rest of callwatch. It
prints the same ``callwatch.analysis/1`` shape as ``callwatch analyze --json`` (levels and
the other detectors are null/empty) so one scorer handles all.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import soundfile as sf
import webrtcvad

from bench.audio import resample, to_int16

MODE = 2
FRAME_S = 0.03
MIN_OVERLAP_S = 0.3
VAD_RATES = (8000, 16000, 32000, 48000)
SCHEMA = "callwatch.analysis/1"


def engine_flags(x: np.ndarray, rate: int, engine: str, mode: int = MODE) -> np.ndarray:
    """Speech flag per 30 ms frame of float audio ``x`` from a :mod:`dsp.vad` engine."""
    from dsp import ANALYSIS_RATE
    from dsp.vad import create_vad

    y = resample(x, rate, ANALYSIS_RATE)
    frame = int(ANALYSIS_RATE * FRAME_S)
    n = len(y) // frame
    flags = np.ones(n, dtype=bool)
    create_vad(engine, mode).classify(to_int16(y[: n * frame]).reshape(n, frame), flags)
    return flags


def vad_flags(x: np.ndarray, rate: int, mode: int = MODE, engine: str = "webrtc"
              ) -> np.ndarray:
    """Speech flag per 30 ms frame of float audio ``x``."""
    if engine != "webrtc":
        return engine_flags(x, rate, engine, mode)
    if rate not in VAD_RATES:
        x, rate = resample(x, rate, 16000), 16000
    vad = webrtcvad.Vad(mode)
    frame = int(rate * FRAME_S)
    pcm = to_int16(x)
    n = len(pcm) // frame
    return np.array(
        [vad.is_speech(pcm[i * frame : (i + 1) * frame].tobytes(), rate) for i in range(n)],
        dtype=bool,
    )


def _run_starts(flags: np.ndarray) -> np.ndarray:
    """For each frame, the index where the current True run began (-1 where False)."""
    idx = np.arange(len(flags))
    starts = np.where(flags & ~np.concatenate([[False], flags[:-1]]), idx, -1)
    run = np.maximum.accumulate(starts) if len(starts) else starts
    return np.where(flags, run, -1)


def talk_overs(agent: np.ndarray, customer: np.ndarray) -> list[dict[str, object]]:
    """Both-active runs of at least MIN_OVERLAP_S; the later starter is the initiator."""
    n = min(len(agent), len(customer))
    a, c = agent[:n], customer[:n]
    both = a & c
    a_start, c_start = _run_starts(a), _run_starts(c)
    events: list[dict[str, object]] = []
    i = 0
    min_frames = round(MIN_OVERLAP_S / FRAME_S)
    while i < n:
        if not both[i]:
            i += 1
            continue
        j = i
        while j < n and both[j]:
            j += 1
        if j - i >= min_frames:
            initiator = "agent" if a_start[i] > c_start[i] else "customer"
            events.append({"kind": "talk_over", "stream": None,
                           "start_s": round(i * FRAME_S, 2), "end_s": round(j * FRAME_S, 2),
                           "initiator": initiator})
        i = j
    return events


def _stream(flags: np.ndarray) -> dict[str, object]:
    return {"speech_s": round(float(flags.sum()) * FRAME_S, 2), "active_level_dbfs": None,
            "noise_floor_dbfs": None, "snr_db": None, "clipped_ratio": 0.0}


def analyze(path: str | Path, agent_channel: int = 0, customer_channel: int = 1,
            engine: str = "webrtc") -> dict:
    """The baseline's report of one stereo call file."""
    x, rate = sf.read(str(path), dtype="float64", always_2d=True)
    a = vad_flags(x[:, agent_channel], rate, engine=engine)
    c = vad_flags(x[:, customer_channel], rate, engine=engine)
    events = talk_overs(a, c)
    return {
        "schema": SCHEMA,
        "file": str(path),
        "duration_s": round(len(x) / rate, 3),
        "sample_rate_hz": rate,
        "agent": _stream(a),
        "customer": _stream(c),
        "talk_over": {
            "count": len(events),
            "seconds": round(sum(e["end_s"] - e["start_s"] for e in events), 2),  # type: ignore[operator]
            "by_agent": sum(e["initiator"] == "agent" for e in events),
            "by_customer": sum(e["initiator"] == "customer" for e in events),
        },
        "events": events,
        "vad": engine,
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.baseline",
                                 description=__doc__.split("\n")[0])
    ap.add_argument("files", nargs="+", metavar="FILE.wav", help="stereo calls (ch0 agent)")
    ap.add_argument("--vad", default="webrtc",
                    help="VAD engine: webrtc (default) or any dsp.vad engine (silero, earshot)")
    args = ap.parse_args(argv)
    status = 0
    for f in args.files:
        try:
            print(json.dumps(analyze(f, engine=args.vad), separators=(",", ":")))
        except (OSError, sf.LibsndfileError, RuntimeError) as exc:
            print(f"python -m bench.baseline: {f}: cannot read ({exc}); pass a WAV file",
                  file=sys.stderr)
            status = 2
    return status


if __name__ == "__main__":
    raise SystemExit(main())
