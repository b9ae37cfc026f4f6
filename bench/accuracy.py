"""``python -m bench.accuracy --set dev|blind``: callwatch and the naive baselines scored on
an accuracy set, by the definitions of DESIGN.md §4.4 (:mod:`bench.score`).

callwatch is run exactly as a user runs it, ``callwatch analyze --json`` in a subprocess (the
files split over ``--jobs`` processes), and scored only through the ``callwatch.analysis/1``
JSON, so the figures do not depend on pipeline internals. The naive "VAD AND" baselines
(:mod:`bench.baseline`: ``baseline`` with WebRTC's VAD, ``baseline-silero`` with silero's)
are scored by the same code. The set is built first if missing (:mod:`bench.dataset`).

Prints a markdown report (overall, then by condition) and writes the full results to
``bench/results/accuracy-<set>.json``.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from bench.score import aggregate, score_call

HERE = Path(__file__).resolve().parent
SETS = ("dev", "blind")
DEFAULT_DATA = HERE / "data" / "dev"
SYSTEMS = ("callwatch", "baseline", "baseline-silero")
BASELINE_VADS = {"baseline": "webrtc", "baseline-silero": "silero"}
TARGETS = {
    "f1": "≥ 0.95", "precision": "≥ 0.95", "recall": "≥ 0.95", "false_per_hour": "≤ 3",
    "initiator_accuracy": "≥ 0.95", "level": "≤ 0.3 dB mean", "floor": "≤ 3 dB",
    "speech": "≤ 10 %", "hits": "all", "false_alarms": "0",
}


def callwatch_command() -> list[str]:
    """The installed ``callwatch`` next to this interpreter (the project's venv)."""
    exe = Path(sys.executable).parent / "callwatch"
    if exe.exists():
        return [str(exe)]
    found = shutil.which("callwatch")
    if found:
        return [found]
    raise SystemExit("callwatch: command not found; install the project (make setup) or "
                     "run with the venv's python")


def callwatch_invocation(code: Path | None = None) -> tuple[list[str], dict[str, str] | None]:
    """Command and environment that run callwatch, from ``code`` (a source tree) if given."""
    if code is None:
        return callwatch_command(), None
    # -P: the current directory (often another checkout) must not come before ``code``.
    cmd = [sys.executable, "-P", "-c", "import sys; from daemon.cli import main; sys.exit(main())"]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(
        [str(code.resolve()), *filter(None, [os.environ.get("PYTHONPATH")])])}
    return cmd, env


def run_callwatch(files: list[Path], jobs: int,
                  code: Path | None = None) -> dict[str, dict[str, Any]]:
    """Reports by file name from ``callwatch analyze --json`` over ``jobs`` processes.

    With ``code`` (a source tree, e.g. ``git worktree add /tmp/cw HEAD``) callwatch is run
    from that tree instead of the installed one, so a commit can be measured while the
    working tree holds unfinished changes.
    """
    chunks = [files[i::jobs] for i in range(jobs) if files[i::jobs]]
    cmd, env = callwatch_invocation(code)
    procs = [subprocess.Popen([*cmd, "analyze", "--json", *map(str, c)], env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for c in chunks]
    reports: dict[str, dict[str, Any]] = {}
    for p in procs:
        out, err = p.communicate()
        for line in out.splitlines():
            if line.startswith("{"):
                r = json.loads(line)
                if "error" not in r:  # a file that failed: counted as a missing report
                    reports[Path(r["file"]).name] = r
        if p.returncode not in (0, 1):
            print(f"callwatch analyze exited {p.returncode}: {err.strip()[-500:]}",
                  file=sys.stderr)
    return reports


def _baseline_one(task: tuple[str, str]) -> dict[str, Any]:
    from bench.baseline import analyze

    path, engine = task
    return analyze(path, engine=engine)


def run_baseline(files: list[Path], jobs: int, engine: str = "webrtc"
                 ) -> dict[str, dict[str, Any]]:
    """Reports by file name from the naive baseline with VAD ``engine``, in ``jobs`` worker
    processes."""
    with multiprocessing.get_context("fork").Pool(jobs) as pool:
        reports = pool.map(_baseline_one, [(str(f), engine) for f in files], chunksize=1)
    return {Path(r["file"]).name: r for r in reports}


def code_version(root: Path = HERE.parent) -> str:
    """The commit the measured code came from, marked dirty if dsp/ or daemon/ differ from it."""
    try:
        head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=root,
                              capture_output=True, text=True, check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--", "dsp", "daemon"],
                               cwd=root, capture_output=True, text=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return head + ("+dirty" if dirty else "")


def _fmt(v: float | None, digits: int = 2) -> str:
    return "n/a" if v is None else f"{v:.{digits}f}"


def evaluate(truths: list[dict[str, Any]], reports: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """Overall and per-condition figures of one system."""
    scores = [score_call(t, reports[t["file"]]) for t in truths if t["file"] in reports]
    conditions = sorted({c for s in scores for c in s.conditions})
    return {
        "missing_reports": [t["file"] for t in truths if t["file"] not in reports],
        "overall": aggregate(scores),
        "by_condition": {c: aggregate([s for s in scores if c in s.conditions])
                         for c in conditions},
        "calls": [s.__dict__ for s in scores],
    }


def _row(name: str, target: str, results: dict[str, dict[str, Any]], get) -> str:
    return f"| {name} | " + " | ".join(get(results[s]["overall"]) for s in results) + \
        f" | {target} |"


def markdown(results: dict[str, dict[str, Any]], meta: dict[str, Any]) -> str:
    """The report tables."""
    systems = list(results)
    lines = [
        f"{meta['set']} set: {meta['calls']} calls, {meta['hours'] * 60:.1f} min of audio, "
        f"seed {meta['seed']}; {meta['true_talk_overs']} true talk-overs; "
        f"code {meta['code']}.",
        "",
        "| metric | " + " | ".join(systems) + " | target |",
        "| --- | " + " | ".join("---:" for _ in systems) + " | --- |",
    ]
    lv = lambda key, k: lambda o: _fmt(o[key][k])  # noqa: E731
    pct = lambda k: lambda o: _fmt(None if o["speech_s_rel_error"][k] is None  # noqa: E731
                                   else 100 * o["speech_s_rel_error"][k], 1) + " %"
    per_party = lambda key: lambda o: ", ".join(  # noqa: E731
        f"{p} {o[key.replace('expected', 'hits')][p]}/{o[key][p]}" for p in o[key])
    rows = [
        ("talk-over precision", TARGETS["precision"], lambda o: _fmt(o["precision"])),
        ("talk-over recall", TARGETS["recall"], lambda o: _fmt(o["recall"])),
        ("talk-over F1", TARGETS["f1"], lambda o: _fmt(o["f1"])),
        ("false talk-overs per hour", TARGETS["false_per_hour"],
         lambda o: _fmt(o["false_per_hour"], 1)),
        ("initiator accuracy (matched)", TARGETS["initiator_accuracy"],
         lambda o: _fmt(o["initiator_accuracy"])),
        ("active level error, mean abs dB", TARGETS["level"], lv("level_error_db", "mean_abs")),
        ("active level error, max abs dB", "", lv("level_error_db", "max_abs")),
        ("active level error, mean abs dB (SNR ≥ 20 dB)", TARGETS["level"],
         lv("level_error_db_snr20", "mean_abs")),
        ("active level error, max abs dB (SNR ≥ 20 dB)", "",
         lv("level_error_db_snr20", "max_abs")),
        ("noise floor error, mean abs dB (steady noise, floor ≥ −60 dBFS)", TARGETS["floor"],
         lv("floor_error_db", "mean_abs")),
        ("noise floor error, max abs dB (steady noise, floor ≥ −60 dBFS)", "",
         lv("floor_error_db", "max_abs")),
        ("noise floor error, mean abs dB (quiet room, floor < −60 dBFS)", "",
         lv("quiet_floor_error_db", "mean_abs")),
        ("speech_s error, mean abs", TARGETS["speech"], pct("mean_abs")),
        ("speech_s error, max abs", TARGETS["speech"], pct("max_abs")),
        ("parties with speech_s within 10 %", "all",
         lambda o: f"{o['speech_s_rel_error']['within_10pct']}/{o['speech_s_rel_error']['n']}"),
        ("too_quiet found (party < −39 dBFS)", TARGETS["hits"], per_party("too_quiet_expected")),
        ("false too_quiet (party ≥ −37 dBFS)", TARGETS["false_alarms"],
         lambda o: str(o["too_quiet_false"])),
        ("too_loud found (party > −11 dBFS or clipped)", "",
         lambda o: f"{o['too_loud_hits']}/{o['too_loud_expected']}"),
        ("false too_loud (party ≤ −13 dBFS, not clipped)", TARGETS["false_alarms"],
         lambda o: str(o["too_loud_false"])),
        ("noise alert hits (SNR ≤ 10 dB calls)", TARGETS["hits"],
         lambda o: f"{o['noise_alert_hits']}/{o['noise_alert_expected']}"),
        ("noise false alarms (quiet-room calls)", TARGETS["false_alarms"],
         lambda o: f"{o['noise_false_alarms']}/{o['quiet_room_calls']}"),
        ("false mic_dead", TARGETS["false_alarms"], lambda o: str(o["mic_dead_false"])),
        ("dead air (≥ 5 s) found", TARGETS["hits"],
         lambda o: f"{o['dead_air_hits']}/{o['dead_air_true']}"),
        ("false dead air (a party active > 0.5 s during it)", TARGETS["false_alarms"],
         lambda o: str(o["dead_air_false"])),
    ]
    lines += [_row(name, target, results, get) for name, target, get in rows]
    lines += ["", "By condition (talk-over F1 / false talk-overs per hour / initiator accuracy; "
              "noise alert hits or false alarms):", "",
              "| condition | calls | min | true talk-overs | "
              + " | ".join(systems) + " |",
              "| --- | ---: | ---: | ---: | " + " | ".join("---" for _ in systems) + " |"]
    first = results[systems[0]]["by_condition"]
    for cond in first:
        o0 = first[cond]
        cells = []
        for s in systems:
            o = results[s]["by_condition"][cond]
            cell = (f"{_fmt(o['f1'])} / {_fmt(o['false_per_hour'], 1)} / "
                    f"{_fmt(o['initiator_accuracy'])}")
            if o["noise_alert_expected"]:
                cell += f"; alerts {o['noise_alert_hits']}/{o['noise_alert_expected']}"
            if o["quiet_room_calls"]:
                cell += f"; false alarms {o['noise_false_alarms']}/{o['quiet_room_calls']}"
            cells.append(cell)
        lines.append(f"| {cond} | {o0['calls']} | {o0['hours'] * 60:.1f} | "
                     f"{o0['true_talk_overs']} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.accuracy",
                                 description=__doc__.split("\n")[0])
    ap.add_argument("--set", dest="set_name", choices=SETS, default="dev",
                    help="dev (development set, default) or blind (never tune on it)")
    ap.add_argument("--data", type=Path,
                    help="set folder (default bench/data/<set>; built if it has no manifest)")
    ap.add_argument("--systems", default=",".join(SYSTEMS),
                    help=f"comma-separated: {', '.join(SYSTEMS)} (default all)")
    ap.add_argument("--jobs", type=int, default=2, help="parallel processes (default 2)")
    ap.add_argument("--out", type=Path,
                    help="results JSON path (default bench/results/accuracy-<set>.json)")
    ap.add_argument("--code", type=Path, metavar="DIR",
                    help="run callwatch from this source tree (e.g. a git worktree of a commit)")
    args = ap.parse_args(argv)
    if args.code is not None and not (args.code / "daemon" / "cli.py").exists():
        print(f"python -m bench.accuracy: --code {args.code}: no daemon/cli.py there; pass "
              "the root of a callwatch checkout", file=sys.stderr)
        return 2
    systems = [s.strip() for s in args.systems.split(",") if s.strip()]
    bad = [s for s in systems if s not in SYSTEMS]
    if bad or not systems:
        print(f"python -m bench.accuracy: --systems {args.systems!r}: choose from "
              f"{', '.join(SYSTEMS)}", file=sys.stderr)
        return 2
    default_data = args.data is None
    args.data = args.data or HERE / "data" / args.set_name
    args.out = args.out or HERE / "results" / f"accuracy-{args.set_name}.json"
    from bench.dataset import build, stale

    why = None
    if (args.data / "manifest.json").exists():
        why = stale(args.data)
        if why and not default_data:
            print(f"python -m bench.accuracy: warning: {why}; its figures are not this "
                  f"generator's set (rebuild: python -m bench.dataset --set {args.set_name} "
                  f"--out {args.data} [--seed N])", file=sys.stderr)
            why = None
    if why or not (args.data / "manifest.json").exists():
        print(f"building the {args.set_name} set in {args.data}"
              + (f" ({why})" if why else "") + " ...", file=sys.stderr)
        build(args.data, jobs=args.jobs, set_name=args.set_name)
    manifest = json.loads((args.data / "manifest.json").read_text())
    truths = [json.loads((args.data / f).with_suffix(".truth.json").read_text())
              for f in manifest["calls"]]
    files = [args.data / t["file"] for t in truths]
    version = code_version(args.code or HERE.parent)
    results: dict[str, dict[str, Any]] = {}
    timing: dict[str, float] = {}
    for s in systems:
        t0 = time.monotonic()
        reports = run_callwatch(files, args.jobs, args.code) if s == "callwatch" else \
            run_baseline(files, args.jobs, BASELINE_VADS[s])
        timing[s] = round(time.monotonic() - t0, 1)
        results[s] = evaluate(truths, reports)
        if results[s]["missing_reports"]:
            print(f"{s}: no report for {len(results[s]['missing_reports'])} calls: "
                  f"{', '.join(results[s]['missing_reports'][:5])}", file=sys.stderr)
    first = results[systems[0]]["overall"]
    meta = {"set": manifest.get("set", args.set_name), "code": version, "calls": len(truths),
            "hours": sum(t["duration_s"] for t in truths) / 3600,
            "seed": manifest["seed"], "true_talk_overs": first["true_talk_overs"],
            "run_seconds": timing}
    print(markdown(results, meta))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"meta": meta, "results": results}, indent=1) + "\n")
    print(f"\nresults: {args.out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
