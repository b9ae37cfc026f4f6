"""``python -m bench.hearing [--set dev]``: acoustic-shock detection on real calls.

Two questions, on every call of an accuracy set plus the bundled sample call:

* **false shocks**: run :class:`dsp.detectors.acoustic_shock.AcousticShock` over both
  channels (each is a party's speech, with the set's noises, lines and levels) and count the
  shocks. Speech at normal levels (a party's P.56 level within 6 dB of the nominal -26 dBFS,
  i.e. up to -20 dBFS) must give none; louder parties (the set's clipping calls) are reported
  apart.
* **found bursts**: inject each burst of :data:`BURSTS` into the customer channel at a random
  moment (seeded, so mid-word as often as not) and measure whether it is found and how long
  after its onset (for the howl: when its 20 ms level reaches the tone threshold).

Beside it, in the same run, the floor a simple limiter gives: a **peak trigger** that calls
any sample at or above -1 dBFS a shock (what a fixed anti-shock threshold does). Prints a
markdown report and writes ``bench/results/hearing-<set>.json``.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import soundfile as sf

from dsp import ANALYSIS_RATE, FRAME_LEN
from dsp.detectors.acoustic_shock import AcousticShock
from dsp.events import Phase
from dsp.hearing import HearingSettings
from dsp.resample import Resampler

HERE = Path(__file__).resolve().parent
SAMPLE = HERE.parent / "samples" / "sample-call.wav"
SR = ANALYSIS_RATE
NOMINAL_DBFS = -26.0
NORMAL_MAX_DBFS = NOMINAL_DBFS + 6.0
PEAK_TRIGGER_DBFS = -1.0
LATENCY_LIMIT_MS = 50.0


# -- the bursts ------------------------------------------------------------------------------


def tone(freq: float, seconds: float, rms_dbfs: float) -> np.ndarray:
    t = np.arange(int(seconds * SR)) / SR
    return (np.sqrt(2) * 10 ** (rms_dbfs / 20) * np.sin(2 * np.pi * freq * t)).astype(np.float32)


def click_train(seconds: float, rate_hz: float = 8.0) -> np.ndarray:
    """Clicks of 1 ms driven past full scale, so they come out clipped at ±1."""
    x = np.zeros(int(seconds * SR), dtype=np.float32)
    for k, i in enumerate(range(0, len(x), int(SR / rate_hz))):
        x[i : i + 16] = 1.0 if k % 2 else -1.0
    return x


def howl(seconds: float = 1.5, freq: float = 2500.0) -> np.ndarray:
    """Feedback: a tone growing 30 dB/s from -45 dBFS to near full scale, its pitch drifting
    a little as the loop gain changes, hard-limited at full scale."""
    t = np.arange(int(seconds * SR)) / SR
    gain_db = np.minimum(-45.0 + 30.0 * t, -1.0)
    phase = 2 * np.pi * (freq * t + 3.0 * np.sin(2 * np.pi * 2.0 * t) / (2 * np.pi * 2.0))
    return np.clip(np.sqrt(2) * 10 ** (gain_db / 20) * np.sin(phase), -1, 1).astype(np.float32)


def noise_burst(seconds: float, rms_dbfs: float, seed: int = 5) -> np.ndarray:
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(int(seconds * SR)) * 10 ** (rms_dbfs / 20)
    return np.clip(x, -1, 1).astype(np.float32)


BURSTS: dict[str, Callable[[], np.ndarray]] = {
    **{f"tone_{f}hz": (lambda f=f: tone(f, 1.0, -6.0)) for f in (250, 440, 1000, 2100, 3400,
                                                              6000)},
    "noise_burst": lambda: noise_burst(0.3, -3.0),
    "clipped_click_train": lambda: click_train(1.0),
    "feedback_howl": howl,
}
"""Tones at -6 dBFS RMS (peak -3), a -3 dBFS noise burst, 1 ms clicks at the rails 8 a second,
a feedback howl growing to full scale."""


def onset_of_level(burst: np.ndarray, dbfs: float) -> int:
    """First sample at which the 20 ms RMS ending there reaches ``dbfs``."""
    c = np.concatenate(([0.0], np.cumsum(burst.astype(np.float64) ** 2)))
    ms = (c[FRAME_LEN:] - c[:-FRAME_LEN]) / FRAME_LEN
    return int(np.argmax(ms >= 10 ** (dbfs / 10))) + FRAME_LEN


def true_onset(name: str, burst: np.ndarray, settings: HearingSettings) -> int:
    """Where the burst becomes a shock: its start, or for the howl the moment it gets loud."""
    return onset_of_level(burst, settings.shock_tone_dbfs) if name == "feedback_howl" else 0


def inject(base: np.ndarray, burst: np.ndarray, at: int) -> np.ndarray:
    y = base.copy()
    n = min(len(burst), len(y) - at)
    y[at : at + n] = np.clip(y[at : at + n] + burst[:n], -1, 1)
    return y


# -- running ---------------------------------------------------------------------------------


def shocks(x: np.ndarray, settings: HearingSettings, chunk_frames: int = 50) -> list[Any]:
    """BEGIN events of the detector over ``x`` (16 kHz), fed in 1 s chunks as live."""
    n = len(x) // FRAME_LEN
    frames = x[: n * FRAME_LEN].reshape(n, FRAME_LEN)
    det = AcousticShock(settings)
    out = []
    for i in range(0, n, chunk_frames):
        out += det.update(i, frames[i : i + chunk_frames])
    out += det.close(n)
    return [e for e in out if e.phase is Phase.BEGIN]


def peak_trigger(x: np.ndarray, release_s: float = 0.5) -> list[int]:
    """The floor: every sample at or above -1 dBFS starts a shock unless one began within
    ``release_s`` before. Returns the trigger samples."""
    hits = np.flatnonzero(np.abs(x) >= 10 ** (PEAK_TRIGGER_DBFS / 20))
    out: list[int] = []
    for h in hits.tolist():
        if not out or h - out[-1] >= release_s * SR:
            out.append(h)
    return out


def to_16k(x: np.ndarray, rate: int) -> np.ndarray:
    if rate == SR:
        return x.astype(np.float32)
    r = Resampler(rate, SR)
    return np.concatenate([r.process(x.astype(np.float32)), r.flush()])


def load_calls(set_dir: Path) -> list[tuple[str, np.ndarray, np.ndarray, dict[str, Any]]]:
    """(name, agent 16 kHz, customer 16 kHz, truth) of every call in the set's manifest, then
    the bundled sample call (its parties at the nominal level)."""
    manifest = set_dir / "manifest.json"
    if not manifest.exists():
        raise SystemExit(f"{manifest}: no such set; build it with python -m bench.dataset "
                         f"--set {set_dir.name}")
    out = []
    for name in json.loads(manifest.read_text())["calls"]:
        x, rate = sf.read(set_dir / name, dtype="float32", always_2d=True)
        truth = json.loads((set_dir / name.replace(".wav", ".truth.json")).read_text())
        out.append((name, to_16k(x[:, 0], rate), to_16k(x[:, 1], rate), truth))
    x, rate = sf.read(SAMPLE, dtype="float32", always_2d=True)
    out.append((SAMPLE.name, to_16k(x[:, 0], rate), to_16k(x[:, 1], rate),
                {"active_level_dbfs": None}))
    return out


def party_level(truth: dict[str, Any], party: str) -> float | None:
    level = truth.get(party, {}).get("active_level_dbfs") if party in truth else None
    return float(level) if level is not None else None


def run(set_name: str, seed: int) -> dict[str, Any]:
    settings = HearingSettings()
    calls = load_calls(HERE / "data" / set_name)
    rng = np.random.default_rng(seed)
    speech: list[dict[str, Any]] = []
    found: list[dict[str, Any]] = []
    audio_s = 0.0
    t_detect = 0.0
    for name, agent, customer, truth in calls:
        for party, x in (("agent", agent), ("customer", customer)):
            t0 = time.perf_counter()
            got = shocks(x, settings)
            t_detect += time.perf_counter() - t0
            audio_s += len(x) / SR
            level = party_level(truth, party)
            speech.append({"call": name, "party": party, "level_dbfs": level,
                           "normal": level is None or level <= NORMAL_MAX_DBFS,
                           "shocks": len(got), "shocks_at_s": [round(e.end_s, 3) for e in got],
                           "peak_trigger": len(peak_trigger(x))})
        for burst_name, make in BURSTS.items():
            burst = make()
            at = int(rng.integers(SR, max(SR + 1, len(customer) - len(burst) - SR)))
            y = inject(customer, burst, at)
            onset = at + true_onset(burst_name, burst, settings)
            got = shocks(y, settings)
            near = [e for e in got if onset - SR // 10 <= e.end <= onset + SR]
            latency = (near[0].end - onset) * 1000.0 / SR if near else None
            base = [h for h in peak_trigger(y) if onset - SR // 10 <= h <= onset + SR]
            found.append({"call": name, "burst": burst_name, "at_s": round(at / SR, 3),
                          "found": latency is not None and latency <= LATENCY_LIMIT_MS,
                          "latency_ms": round(latency, 1) if latency is not None else None,
                          "other_shocks": len(got) - len(near),
                          "peak_trigger_found": bool(base),
                          "peak_trigger_latency_ms": round((base[0] - onset) * 1000.0 / SR, 1)
                          if base else None})
    return {"set": set_name, "seed": seed, "calls": len(calls), "audio_s": round(audio_s, 1),
            "detector_s_per_audio_s": t_detect / audio_s, "speech": speech, "bursts": found}


def report(res: dict[str, Any]) -> str:
    sp, bu = res["speech"], res["bursts"]
    normal = [r for r in sp if r["normal"]]
    loud = [r for r in sp if not r["normal"]]

    def count(rows: list[dict[str, Any]], key: str) -> str:
        n = sum(r[key] for r in rows)
        return f"{n} on {sum(1 for r in rows if r[key])} of {len(rows)} channels"

    lines = [
        f"Set `{res['set']}` ({res['calls']} calls incl. the sample call, both channels, "
        f"{res['audio_s'] / 60:.1f} min of channel audio); bursts injected into the customer "
        f"channel at seeded random moments (seed {res['seed']}).",
        "",
        "| | acoustic_shock | peak trigger (≥ -1 dBFS) |",
        "| --- | --- | --- |",
        f"| shocks on speech at normal levels (≤ {NORMAL_MAX_DBFS:g} dBFS) | "
        f"{count(normal, 'shocks')} | {count(normal, 'peak_trigger')} |",
        f"| shocks on louder speech (> {NORMAL_MAX_DBFS:g} dBFS) | {count(loud, 'shocks')} | "
        f"{count(loud, 'peak_trigger')} |",
    ]
    for name in BURSTS:
        rows = [r for r in bu if r["burst"] == name]
        lat = [r["latency_ms"] for r in rows if r["found"]]
        base = sum(r["peak_trigger_found"] for r in rows)
        lat_txt = f", latency median {np.median(lat):.0f} / max {max(lat):.0f} ms" if lat else ""
        late = [r["latency_ms"] for r in rows if not r["found"] and r["latency_ms"] is not None]
        late_ms = ", ".join(f"{x:.0f}" for x in late)
        late_txt = f" (+{len(late)} later: {late_ms} ms)" if late else ""
        lines.append(f"| `{name}` found within {LATENCY_LIMIT_MS:g} ms | "
                     f"{sum(r['found'] for r in rows)}/{len(rows)}{lat_txt}{late_txt} | "
                     f"{base}/{len(rows)} |")
    lines.append(f"| cost | {res['detector_s_per_audio_s'] * 1e3:.2f} ms per s of audio | |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.hearing", description=__doc__.split("\n")[0])
    p.add_argument("--set", default="dev", help="accuracy set under bench/data (default dev)")
    p.add_argument("--seed", type=int, default=11, help="where the bursts land (default 11)")
    args = p.parse_args(argv)
    res = run(args.set, args.seed)
    out = HERE / "results" / f"hearing-{args.set}.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps(res, indent=1) + "\n")
    print(report(res))
    print(f"\nfull results: {out.relative_to(HERE.parent)}", file=sys.stderr)
    missed = [r for r in res["bursts"] if not r["found"]]
    false = [r for r in res["speech"] if r["normal"] and r["shocks"]]
    return 1 if missed or false else 0


if __name__ == "__main__":
    sys.exit(main())
