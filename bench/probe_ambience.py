"""``python -m bench.probe_ambience``: a real town ambience with a train in the agent's mic (or
the customer's line) of the development set's clean calls, scored like the sets.

Neither set has such noise: its level swells by several dB over seconds and WebRTC's VAD takes
half of its frames for a voice, unlike the steady fan, the rain or the babble the sets hold.
The probe takes every clean call of the given set folders (no quiet party, leak, clipping or
quiet agent), adds the recording (:func:`bench.noises.train`) to the agent's channel (with
``--party customer``, the customer's: a caller on a platform or in the street) at each SNR in
turn (against that party's active level), and scores callwatch on the result with the
DESIGN.md §4.4 definitions, per SNR. The truth is the clean call's: the noise adds no speech.
A noise alert is expected of the agent's mic only (the customer's line is not scored for it).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import soundfile as sf

from bench.accuracy import _fmt, evaluate, run_baseline, run_callwatch
from bench.noises import train
from bench.render import NOISE_ALERT_SNR_DB

HERE = Path(__file__).resolve().parent
LEFT_OUT = {"quiet_party", "leak", "clipping", "low_agent"}
"""Conditions whose calls are not taken: the probe is about the noise alone."""


def clean_calls(folders: list[Path]) -> list[tuple[Path, dict[str, Any]]]:
    """(wav, truth) of every clean call in ``folders``, in order."""
    out = []
    for folder in folders:
        for truth_path in sorted(folder.glob("*.truth.json")):
            truth = json.loads(truth_path.read_text())
            conditions = set(truth["conditions"])
            if "clean" in conditions and not conditions & LEFT_OUT:
                out.append((folder / truth["file"], truth))
    return out


PARTIES = ("agent", "customer")
"""Whose channel the ambience goes into: the file's channel 0 and 1."""


def mix(wav: Path, truth: dict[str, Any], snr_db: float, rng: np.random.Generator,
        out: Path, party: str = "agent") -> dict[str, Any]:
    """Write ``wav`` with the ambience in ``party``'s channel at ``snr_db`` under ``out``;
    return the truth of the new file."""
    x, rate = sf.read(wav, dtype="float64", always_2d=True)
    side = truth[party]
    noise_dbfs = side["active_level_dbfs"] - snr_db
    x[:, PARTIES.index(party)] += train(rng, len(x), rate) * 10 ** (noise_dbfs / 20)
    name = f"{wav.parent.name}-{wav.stem}-train{snr_db:g}.wav"
    sf.write(out / name, x, rate, subtype="FLOAT")
    floor = 10 * np.log10(10 ** (side["noise_floor_dbfs"] / 10) + 10 ** (noise_dbfs / 10))
    noisy = {"quiet_room": False, "noise_alert_expected": snr_db <= NOISE_ALERT_SNR_DB}
    if party == "customer":
        noisy = {"noise_alert_expected": None}
    return {**truth, "file": name, "conditions": [*truth["conditions"], f"train{snr_db:g}"],
            **noisy, party: {**side, "noise_floor_dbfs": round(float(floor), 2),
                             "snr_db": round(side["active_level_dbfs"] - float(floor), 2)}}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.probe_ambience",
                                 description=__doc__.split("\n")[0])
    ap.add_argument("--data", type=Path, action="append",
                    help="set folder with clean calls (repeatable; default bench/data/dev)")
    ap.add_argument("--snr", default="5,10",
                    help="comma-separated SNRs in dB, taken in turn per call (default 5,10)")
    ap.add_argument("--seed", type=int, default=11, help="where each call's noise starts")
    ap.add_argument("--party", choices=PARTIES, default="agent",
                    help="whose channel takes the ambience (default agent)")
    ap.add_argument("--jobs", type=int, default=2, help="parallel processes (default 2)")
    ap.add_argument("--code", type=Path, metavar="DIR",
                    help="run callwatch from this source tree (e.g. a git worktree of a commit)")
    ap.add_argument("--baseline", action="store_true",
                    help="also score the naive webrtcvad baseline on the same calls")
    args = ap.parse_args(argv)
    prog = "python -m bench.probe_ambience"
    if args.code is not None and not (args.code / "daemon" / "cli.py").exists():
        print(f"{prog}: --code {args.code}: no daemon/cli.py there; pass the root of a "
              "callwatch checkout", file=sys.stderr)
        return 2
    if args.jobs < 1:
        print(f"{prog}: --jobs {args.jobs}: give 1 or more processes", file=sys.stderr)
        return 2
    missing = [str(d) for d in args.data or [] if not d.is_dir()]
    if missing:
        print(f"{prog}: --data {', '.join(missing)}: no such folder; give a set folder (built "
              "with python -m bench.dataset)", file=sys.stderr)
        return 2
    try:
        snrs = [float(v) for v in args.snr.split(",") if v.strip()]
    except ValueError:
        snrs = []
    if not snrs:
        print(f"{prog}: --snr {args.snr!r}: give dB values, e.g. 5,10", file=sys.stderr)
        return 2
    folders = args.data or [HERE / "data" / "dev"]
    calls = clean_calls(folders)
    if not calls:
        print(f"{prog}: no clean calls in {', '.join(map(str, folders))}; build a set first "
              "(python -m bench.accuracy)", file=sys.stderr)
        return 2
    rng = np.random.default_rng(args.seed)
    with tempfile.TemporaryDirectory(prefix="callwatch-probe-") as tmp:
        out = Path(tmp)
        truths = [mix(wav, t, snrs[k % len(snrs)], rng, out, args.party)
                  for k, (wav, t) in enumerate(calls)]
        files = [out / t["file"] for t in truths]
        systems = {"callwatch": run_callwatch(files, args.jobs, args.code)}
        if args.baseline:
            systems["naive webrtcvad"] = run_baseline(files, args.jobs)
    print("| system | calls | TP / FP / FN | precision | recall | false/h | initiator | "
          "speech_s within 10 % (mean) | false dead air | noise alerts |")
    print("| --- | --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    missing = 0
    for system, reports in systems.items():
        results = evaluate(truths, reports)
        missing += len(results["missing_reports"])
        rows = [("all", results["overall"])] + [
            (c, results["by_condition"][c]) for c in sorted(results["by_condition"])
            if c.startswith("train")]
        for name, a in rows:
            sp = a["speech_s_rel_error"]
            mean = None if sp["mean_abs"] is None else 100 * sp["mean_abs"]
            print(f"| {system} | {name}: {a['calls']} | {a['tp']} / {a['fp']} / {a['fn']} | "
                  f"{_fmt(a['precision'], 3)} | {_fmt(a['recall'], 3)} | "
                  f"{_fmt(a['false_per_hour'], 1)} | {_fmt(a['initiator_accuracy'], 3)} | "
                  f"{sp['within_10pct']}/{sp['n']} ({_fmt(mean, 1)} %) | "
                  f"{a['dead_air_false']} | {a['noise_alert_hits']}/{a['noise_alert_expected']} |")
    if missing:
        print(f"no report for {missing} calls", file=sys.stderr)
        return 1
    return 0

if __name__ == "__main__":
    raise SystemExit(main())
