"""``python -m bench.dataset --out bench/data``: the accuracy development set, built by script.

About 50 two-party stereo calls of 60-120 s (over an hour in total) from real speech
(codec2-examples, pocketsphinx-testdata) and synthetic voices (espeak-ng, flite), with turn
taking, real interruptions (0.8-3 s, the interrupted party yields), short overlaps and
backchannels that are not talk-overs, pauses and dead air. Conditions cover the traps of
DESIGN.md §5: babble, typing, rain, mains hum, speaker leak, a quiet agent, and 8/16/48 kHz
files. Every call gets ``<name>.truth.json`` (see :mod:`bench.render` and
:mod:`bench.compose` for what the truth means) and the set gets ``manifest.json``.

The build is deterministic: call *i* is drawn from ``numpy.random.default_rng([seed, i])``
and the speech library is loaded in a fixed order, so the same seed gives identical files.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from bench import noises
from bench.compose import PARTIES, Timeline
from bench.render import Mix, render, speech_at_rate
from bench.sources import Library, Utterance, load_library

DEFAULT_SEED = 1
DEFAULT_OUT = Path(__file__).resolve().parent / "data"


@dataclass(frozen=True)
class CallSpec:
    """One call of the set: its condition, file rate and (for noise) the SNR range."""

    condition: str
    rate: int = 16000
    snr_db: tuple[float, float] | None = None


def _specs() -> list[CallSpec]:
    """The fixed condition plan: each trap appears several times, at several rates."""
    s = CallSpec
    plan = (
        [s("clean")] * 8
        + [s("babble", snr_db=(4, 10))] * 4 + [s("babble", snr_db=(12, 20))] * 4
        + [s("typing", snr_db=(12, 22))] * 5
        + [s("rain", snr_db=(4, 10))] * 3 + [s("rain", snr_db=(15, 25))] * 3
        + [s("hum")] * 5
        + [s("leak")] * 6
        + [s("low_level")] * 4
        + [s("clean", 8000)] * 3 + [s("clean", 48000)] * 3
        + [s("babble", 8000, (4, 10)), s("leak", 48000), s("typing", 8000, (12, 22)),
           s("rain", 48000, (15, 25))]
    )
    # Interleave so that a build of the first N calls already mixes conditions.
    order = np.random.default_rng(12345).permutation(len(plan))
    return [plan[i] for i in order]


SPECS = _specs()


REAL_SOURCES = ("codec2-examples", "pocketsphinx-testdata", "pyannote-sample")
REAL_SHARE = 0.65
"""Chance that a turn's utterance is a real recording when the party has any: synthetic
voices outnumber the real clips in the library, and the set should be mostly real speech."""


def _draw(rng: np.random.Generator, pool: list[Utterance], min_s: float = 0.0) -> Utterance:
    """A random utterance of at least ``min_s`` seconds (the longest if none is), real
    recordings preferred (:data:`REAL_SHARE`)."""
    ok = [u for u in pool if u.duration_s >= min_s]
    if not ok:
        return max(pool, key=lambda u: u.duration_s)
    real = [u for u in ok if u.source in REAL_SOURCES]
    if real and rng.random() < REAL_SHARE:
        ok = real
    return ok[int(rng.integers(len(ok)))]


def _long_spurt(tl: Timeline, party: str, since: float, need_s: float):
    """A talk spurt of ``party`` after ``since`` that lasts at least ``need_s``."""
    for a, b in reversed(tl.spurts(party)):
        if a >= since - 1e-6 and b - a >= need_s:
            return a, b
    return None


def compose(rng: np.random.Generator, lib: Library, duration_s: float,
            voices: dict[str, list[Utterance]]) -> Timeline:
    """A conversation: turns, gaps, pauses, one dead-air gap sometimes, interruptions,
    short overlaps at turn ends and backchannels."""
    tl = Timeline(duration_s)
    cur = PARTIES[int(rng.integers(2))]
    t = float(rng.uniform(0.3, 1.5))
    dead_air_at = duration_s * rng.uniform(0.3, 0.7) if rng.random() < 0.45 else None
    interrupt_from: float | None = None  # set when this turn starts by cutting in
    end_limit = duration_s - 0.8
    while True:
        other = "customer" if cur == "agent" else "agent"
        turn_start = t
        n_utts = int(rng.choice([1, 2, 3], p=[0.45, 0.4, 0.15]))
        placed_any = False
        for k in range(n_utts):
            min_s = interrupt_from + 0.8 if (k == 0 and interrupt_from is not None) else 0.0
            u = _draw(rng, voices[cur], min_s)
            if t + u.duration_s > end_limit:
                break
            end = tl.place(cur, u, t, gain_db=float(rng.uniform(-1.5, 1.5)))
            if k == 0 and interrupt_from is not None:
                tl.cut(other, t + interrupt_from)  # the talked-over party yields
            placed_any = True
            t = end + float(rng.uniform(0.15, 0.45))
        if not placed_any:
            break
        interrupt_from = None
        turn_end = tl.speech_end(cur)
        # A backchannel from the listener in the middle of a long stretch of speech.
        bc = _long_spurt(tl, cur, turn_start, 1.8)
        backchannel = bc is not None and rng.random() < 0.4
        if backchannel and bc is not None:
            u = lib.backchannels[int(rng.integers(len(lib.backchannels)))]
            at = bc[0] + rng.uniform(0.5, bc[1] - bc[0] - 1.2)
            tl.place(other, u, at, gain_db=float(rng.uniform(-3, 0)), kind="backchannel")
        # How the floor passes to the other party.
        mode = rng.choice(["gap", "interrupt", "short", "pause"], p=[0.5, 0.25, 0.13, 0.12])
        if dead_air_at is not None and turn_end >= dead_air_at:
            mode, dead_air_at = "dead_air", None
        if mode == "interrupt" and not backchannel:
            overlap = float(rng.uniform(0.8, 3.0))
            spurt = _long_spurt(tl, cur, turn_start, overlap + 0.6)
            if spurt is None:
                spurt = _long_spurt(tl, cur, turn_start, 1.6)
                overlap = min(overlap, (spurt[1] - spurt[0]) - 0.6) if spurt else 0.0
            if spurt is not None and overlap >= 0.8:
                t = float(rng.uniform(spurt[0] + 0.3, spurt[1] - overlap - 0.2))
                interrupt_from = overlap
                cur = other
                continue
            mode = "gap"
        if mode == "short":
            t = turn_end - float(rng.uniform(0.1, 0.45))
        elif mode == "pause":
            t = turn_end + float(rng.uniform(2.0, 4.0))
        elif mode == "dead_air":
            t = turn_end + float(rng.uniform(6.0, 9.0))
        else:
            t = turn_end + float(rng.uniform(0.15, 1.2))
        cur = other
    return tl


def _split_voices(rng: np.random.Generator, lib: Library):
    """Disjoint speaker sets for the agent, the customer and the babble in the room."""
    speakers = lib.speakers()
    order = [speakers[i] for i in rng.permutation(len(speakers))]
    third = len(order) // 3
    groups = {"agent": order[:third], "customer": order[third : 2 * third],
              "babble": order[2 * third :]}
    by = {k: [u for u in lib.speech if u.speaker in v] for k, v in groups.items()}
    return {k: v for k, v in by.items() if k in PARTIES}, by["babble"]


def build_call(index: int, seed: int, lib: Library, out: Path,
               duration_s: tuple[float, float] = (60.0, 120.0)) -> dict[str, object]:
    """Compose, mix and write call ``index``; returns its truth (also written to disk)."""
    spec = SPECS[index % len(SPECS)]
    rng = np.random.default_rng([seed, index])
    voices, babble_pool = _split_voices(rng, lib)
    tl = compose(rng, lib, float(rng.uniform(*duration_s)), voices)
    rate = spec.rate
    level = {"agent": float(rng.uniform(-30, -22)), "customer": float(rng.uniform(-32, -22))}
    if spec.condition == "low_level":
        level["agent"] = float(rng.uniform(-41, -39))
    gains = {p: level[p] - (-26.0) for p in PARTIES}
    speech = speech_at_rate(tl, rate, gains)
    n = len(speech["agent"])
    room_dbfs = {"agent": float(rng.uniform(-75, -62)), "customer": float(rng.uniform(-78, -65))}
    noise = {p: noises.room(rng, n, rate) * 10 ** (room_dbfs[p] / 20) for p in PARTIES}
    mix = Mix(rate, noise=noise, conditions=[spec.condition, f"{rate // 1000}k"])
    info: dict[str, object] = {"room_noise_dbfs": {p: round(v, 2) for p, v in room_dbfs.items()}}
    cond = spec.condition
    if cond in ("babble", "typing", "rain"):
        from bench.levels import active_level_dbfs

        snr = float(rng.uniform(*spec.snr_db)) if spec.snr_db else 15.0
        agent_level = active_level_dbfs(speech["agent"], rate) or level["agent"]
        if cond == "babble":
            x = noises.babble(rng, babble_pool, n, rate, voices=int(rng.integers(4, 8)))
        elif cond == "typing":
            x = noises.typing(rng, n, rate)
        else:
            x = noises.rain(rng, n, rate)
        mix.noise["agent"] = mix.noise["agent"] + x * 10 ** ((agent_level - snr) / 20)
        mix.quiet_room = False
        info["target_snr_db"] = round(snr, 2)
        mix.conditions.append("snr<=10" if snr <= 10 else "snr>10")
    elif cond == "hum":
        mains = float(rng.choice([50.0, 60.0]))
        hum_dbfs = float(rng.uniform(-50, -40))
        mix.noise["agent"] = mix.noise["agent"] + noises.hum(rng, n, rate, mains) * 10 ** (
            hum_dbfs / 20)
        mix.quiet_room = False
        info["hum"] = {"mains_hz": mains, "level_dbfs": round(hum_dbfs, 2)}
    elif cond == "leak":
        delay = float(rng.uniform(20, 150))
        gain = float(rng.uniform(-25, -15))
        mix.extra["agent"] = noises.leak(speech["customer"], rate, delay, gain)
        info["leak"] = {"delay_ms": round(delay, 1), "gain_db": round(gain, 2)}
    mix.info = info
    name = f"call-{index:03d}-{cond}-{rate // 1000}k"
    truth = render(tl, speech, mix, out / f"{name}.wav", {"seed": seed, "index": index})
    (out / f"{name}.truth.json").write_text(json.dumps(truth, indent=1) + "\n")
    return truth


_LIB: Library | None = None


def _worker(args: tuple[int, int, str, tuple[float, float]]) -> dict[str, object]:
    index, seed, out, durations = args
    assert _LIB is not None
    return build_call(index, seed, _LIB, Path(out), durations)


def build(out: Path, seed: int = DEFAULT_SEED, calls: int = 52, jobs: int = 2,
          duration_s: tuple[float, float] = (60.0, 120.0),
          lib: Library | None = None) -> dict[str, object]:
    """Build ``calls`` calls into ``out`` and write ``manifest.json``; returns the manifest."""
    global _LIB
    out.mkdir(parents=True, exist_ok=True)
    for old in list(out.glob("call-*.wav")) + list(out.glob("call-*.truth.json")):
        old.unlink()
    _LIB = lib or load_library()
    tasks = [(i, seed, str(out), duration_s) for i in range(calls)]
    if jobs > 1 and calls > 1:
        ctx = multiprocessing.get_context("fork")
        with ctx.Pool(jobs) as pool:
            truths = pool.map(_worker, tasks, chunksize=1)
    else:
        truths = [_worker(t) for t in tasks]
    manifest = {
        "schema": "callwatch.bench.dataset/1",
        "seed": seed,
        "calls": [t["file"] for t in truths],
        "total_audio_s": round(sum(float(t["duration_s"]) for t in truths), 1),  # type: ignore[arg-type]
        "sources": _LIB.sources(),
        "speech_utterances": len(_LIB.speech),
        "backchannels": len(_LIB.backchannels),
    }
    (out / "manifest.json").write_text(json.dumps(manifest, indent=1) + "\n")
    return manifest


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.dataset", description=__doc__.split("\n")[0])
    ap.add_argument("--out", type=Path, default=DEFAULT_OUT, help="output folder (bench/data)")
    ap.add_argument("--seed", type=int, default=DEFAULT_SEED, help="random seed (default 1)")
    ap.add_argument("--calls", type=int, default=len(SPECS),
                    help=f"number of calls (default {len(SPECS)}: the full condition plan)")
    ap.add_argument("--jobs", type=int, default=2, help="worker processes (default 2)")
    args = ap.parse_args(argv)
    if args.calls < 1:
        print("python -m bench.dataset: --calls must be at least 1", file=sys.stderr)
        return 2
    t0 = time.monotonic()
    m = build(args.out, args.seed, args.calls, args.jobs)
    print(f"{len(m['calls'])} calls, {m['total_audio_s'] / 60:.1f} min of audio in {args.out} "
          f"({time.monotonic() - t0:.0f} s)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
