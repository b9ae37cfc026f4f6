"""``python -m bench.ablation``: what each gate and veto of the detection core buys.

Each variant switches one mechanism off (by setting the constant that drives it to a neutral
value) and scores the development set (or ``--set blind``) with the same §4.4 definitions as
:mod:`bench.accuracy`. The pipeline runs in-process, so the figures are those of the code in
this tree; the full configuration is the first row. Prints a markdown table and writes
``bench/results/ablation-<set>.json``.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from bench.accuracy import HERE, SETS, code_version
from bench.score import aggregate, score_call


def _set(module: str, name: str, value: object) -> Callable[[], Iterator[None]]:
    """A variant that sets ``module.name`` to ``value`` for its run (imported when run)."""

    @contextmanager
    def patch() -> Iterator[None]:
        import importlib

        with _set_attr(importlib.import_module(module), name, value)():
            yield

    return patch


@contextmanager
def _nothing() -> Iterator[None]:
    yield


def _no_voice_veto() -> Callable[[], Iterator[None]]:
    from dsp.detectors.talkover import TalkOver

    return _set_attr(TalkOver, "_not_a_voice", lambda self, start, end: False)


def _set_attr(obj: object, name: str, value: object) -> Callable[[], Iterator[None]]:
    @contextmanager
    def patch() -> Iterator[None]:
        old = getattr(obj, name)
        setattr(obj, name, value)
        try:
            yield
        finally:
            setattr(obj, name, old)

    return patch


def _both(a: Callable[[], Iterator[None]], b: Callable[[], Iterator[None]]
          ) -> Callable[[], Iterator[None]]:
    @contextmanager
    def patch() -> Iterator[None]:
        with a(), b():
            yield

    return patch


def _settings(**changes: object) -> Callable[[], Iterator[None]]:
    """The pipeline's default settings with ``changes`` (e.g. another VAD engine)."""
    import functools

    from dsp.settings import DetectorSettings

    return _set("dsp.pipeline", "DetectorSettings",
                functools.partial(DetectorSettings, **changes))


def _no_episodes() -> Callable[[], Iterator[None]]:
    """Overlap stretches are not merged: each is judged (and reported) on its own."""
    from dsp.detectors.talkover import TalkOverDetector

    init = TalkOverDetector.__init__
    return _set_attr(init, "__defaults__", (init.__defaults__[0], 0))


def _initiator_by_run() -> Callable[[], Iterator[None]]:
    """The initiator judged on where each activity run began (its first speech frame), not
    on where the party's own voice began in it."""
    from dsp.activity import TalkSpurts

    return _set_attr(TalkSpurts, "voice_start",
                     property(lambda sp: sp.run_start, lambda sp, value: None))


def _no_echo_hold() -> Callable[[], Iterator[None]]:
    from dsp.echo import EchoEstimator

    return _set_attr(EchoEstimator, "undecided", property(lambda self: False))


def _no_clicks() -> Callable[[], Iterator[None]]:
    import numpy as np

    return _set("dsp.pipeline", "impulsive",
                lambda feats, frames: np.zeros(len(feats.rms_dbfs), dtype=bool))


VARIANTS: dict[str, Callable[[], Callable[[], Iterator[None]]]] = {
    "full pipeline": lambda: _nothing,
    "no talk-over episodes (each stretch alone)": _no_episodes,
    "no leak/typing/voicing veto": _no_voice_veto,
    "no voicing veto (unvoiced bursts on the agent's side)":
        lambda: _set("dsp.detectors.talkover", "VETO_VOICED_FRACTION", -1.0),
    "no click gate": _no_clicks,
    "no echo gate": lambda: _set("dsp.echo", "ECHO_MARGIN_DB", -1e9),
    "no background margin": lambda: _set("dsp.party", "NOISE_LEVEL_MARGIN_DB", 0.0),
    "background margin 8 dB in steady noise too":
        lambda: _set("dsp.party", "STEADY_NOISE_MARGIN_DB", 8.0),
    "background over all frames (not between spurts)":
        lambda: _set("dsp.party", "QUIET_MIN_FRAMES", 10**12),
    "no spurt-start peak margin": lambda: _set("dsp.party", "SPURT_PEAK_MARGIN_DB", 0.0),
    "no own-level start/resume": lambda: _both(_set("dsp.party", "START_BELOW_LEVEL_DB", 1e9),
                                               _set("dsp.party", "RESUME_BELOW_LEVEL_DB", 1e9)),
    "no own-level start (resume kept)":
        lambda: _set("dsp.party", "START_BELOW_LEVEL_DB", 1e9),
    "an agent's dropped voice never relearnt": lambda: _set("dsp.voice_drop", "MIN_TURNS", 10**9),
    "no cut of a spurt's weak tail": lambda: _set("dsp.activity", "LOUD_HOLD_FRAMES", 10**9),
    "no mains hum removal": lambda: _settings(remove_hum=False),
    "early background not held near the floor":
        lambda: _set("dsp.party", "EARLY_ABOVE_FLOOR_MAX_DB", 1e9),
    "episodes closed 0.2 s (not 1 s) past the merge distance":
        lambda: _set("dsp.detectors.talkover", "ONSET_LAG_FRAMES", 10),
    "initiator from the activity run's first frame (not the voice's)": _initiator_by_run,
    "no raised VAD input for a quiet party before their level is known":
        lambda: _set("dsp.party_vad", "EARLY_VAD_QUIET_DBFS", -1e9),
    "leak kept only while its edge stays within 4.5 dB (not 6)":
        lambda: _set("dsp.echo", "LEAK_EDGE_KEEP_DB", 4.5),
    "nothing held for the echo estimate (early talk-overs, agent speech time)": _no_echo_hold,
    "a vetoed talk-over revived without 0.3 s of overlap after the agent's voice":
        lambda: _set("dsp.detectors.talkover", "REVIVED_MIN_OVERLAP_FRAMES", -10**9),
    "episodes not kept open by frames both parties are audible in":
        lambda: _set("dsp.detectors.talkover", "EDGE_FRAMES", -1),
    "no VAD listening just above a steady background":
        lambda: _set("dsp.party", "LISTEN_MAX_SPREAD_DB", -1.0),
    "speech time keeps frames with a click's crest":
        lambda: _set("dsp.party", "SPEECH_TIME_MAX_CREST_DB", 1e9),
    "VAD engine earshot (instead of webrtc)": lambda: _settings(vad="earshot"),
    "VAD engine silero (instead of webrtc)": lambda: _settings(vad="silero"),
}
"""Name -> factory of the context manager that switches the mechanism off."""


def _analyze(path: str) -> dict[str, Any]:
    from daemon.analyze import analyze_call
    from daemon.audiofile import CallSource

    report = analyze_call(CallSource(path, path))
    report["file"] = Path(path).name
    return report


def run(files: list[Path], truths: list[dict[str, Any]], jobs: int) -> dict[str, Any]:
    """Score one configuration (the one patched in now) on ``files``."""
    with multiprocessing.get_context("fork").Pool(jobs) as pool:
        reports = pool.map(_analyze, [str(f) for f in files], chunksize=1)
    by_name = {r["file"]: r for r in reports}
    return aggregate([score_call(t, by_name[t["file"]]) for t in truths])


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.ablation",
                                 description=__doc__.split("\n")[0])
    ap.add_argument("--set", dest="set_name", choices=SETS, default="dev")
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--out", type=Path)
    args = ap.parse_args(argv)
    data = HERE / "data" / args.set_name
    if not (data / "manifest.json").exists():
        print(f"python -m bench.ablation: no {args.set_name} set in {data}; build it with "
              f"python -m bench.accuracy --set {args.set_name}")
        return 2
    from bench.dataset import stale

    why = stale(data)
    if why:
        print(f"python -m bench.ablation: {why}; rebuild it with python -m bench.accuracy "
              f"--set {args.set_name}")
        return 2
    manifest = json.loads((data / "manifest.json").read_text())
    truths = [json.loads((data / f).with_suffix(".truth.json").read_text())
              for f in manifest["calls"]]
    files = [data / t["file"] for t in truths]
    rows: dict[str, dict[str, Any]] = {}
    seconds: dict[str, float] = {}
    for name, variant in VARIANTS.items():
        t0 = time.monotonic()
        with variant()():
            rows[name] = run(files, truths, args.jobs)
        seconds[name] = time.monotonic() - t0
    print(f"{args.set_name} set, code {code_version()}: each row switches one mechanism off.\n")
    print("| variant | F1 | precision | recall | false/h | initiator | speech_s err | "
          "false dead air | run time |")
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for name, o in rows.items():
        sp = o["speech_s_rel_error"]["mean_abs"]
        print(f"| {name} | {o['f1']:.2f} | {o['precision']:.2f} | {o['recall']:.2f} | "
              f"{o['false_per_hour']:.1f} | {o['initiator_accuracy']:.2f} | "
              f"{100 * sp:.1f} % | {o['dead_air_false']} | {seconds[name]:.0f} s |")
    out = args.out or HERE / "results" / f"ablation-{args.set_name}.json"
    out.write_text(json.dumps({"code": code_version(), "set": args.set_name, "rows": rows,
                               "seconds": seconds},
                              indent=1) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
