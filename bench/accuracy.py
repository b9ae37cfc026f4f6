"""``python -m bench.accuracy``: callwatch and the naive baseline scored on the development set.

callwatch is run exactly as a user runs it, ``callwatch analyze --json`` in a subprocess (the
files split over ``--jobs`` processes), and scored only through the ``callwatch.analysis/1``
JSON, so the figures do not depend on pipeline internals. The baseline
(:mod:`bench.baseline`) is scored by the same code. The set is built first if missing.

Prints a markdown report (overall, then by condition) and writes the full results to
``bench/results/accuracy.json``.
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
DEFAULT_DATA = HERE / "data"
DEFAULT_RESULTS = HERE / "results" / "accuracy.json"
SYSTEMS = ("callwatch", "baseline")
TARGETS = {
    "f1": "≥ 0.90", "false_per_hour": "≤ 6", "initiator_accuracy": "≥ 0.90",
    "level": "≤ 1 dB", "floor": "≤ 3 dB", "hits": "all", "false_alarms": "0",
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
    cmd = [sys.executable, "-c", "import sys; from daemon.cli import main; sys.exit(main())"]
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
                reports[Path(r["file"]).name] = r
        if p.returncode not in (0, 1):
            print(f"callwatch analyze exited {p.returncode}: {err.strip()[-500:]}",
                  file=sys.stderr)
    return reports


def _baseline_one(path: str) -> dict[str, Any]:
    from bench.baseline import analyze

    return analyze(path)


def run_baseline(files: list[Path], jobs: int) -> dict[str, dict[str, Any]]:
    """Reports by file name from the baseline, in ``jobs`` worker processes."""
    with multiprocessing.get_context("fork").Pool(jobs) as pool:
        reports = pool.map(_baseline_one, [str(f) for f in files], chunksize=1)
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
        f"Development set: {meta['calls']} calls, {meta['hours'] * 60:.1f} min of audio, "
        f"seed {meta['seed']}; {meta['true_talk_overs']} true talk-overs; "
        f"code {meta['code']}.",
        "",
        "| metric | " + " | ".join(systems) + " | target |",
        "| --- | " + " | ".join("---:" for _ in systems) + " | --- |",
    ]
    lv = lambda k: lambda o: _fmt(o["level_error_db"][k])  # noqa: E731
    fl = lambda k: lambda o: _fmt(o["floor_error_db"][k])  # noqa: E731
    ql = lambda k: lambda o: _fmt(o["quiet_floor_error_db"][k])  # noqa: E731
    rows = [
        ("talk-over precision", "", lambda o: _fmt(o["precision"])),
        ("talk-over recall", "", lambda o: _fmt(o["recall"])),
        ("talk-over F1", TARGETS["f1"], lambda o: _fmt(o["f1"])),
        ("false talk-overs per hour", TARGETS["false_per_hour"],
         lambda o: _fmt(o["false_per_hour"], 1)),
        ("initiator accuracy (matched)", TARGETS["initiator_accuracy"],
         lambda o: _fmt(o["initiator_accuracy"])),
        ("active level error, mean abs dB (SNR ≥ 20 dB)", TARGETS["level"], lv("mean_abs")),
        ("active level error, max abs dB (SNR ≥ 20 dB)", TARGETS["level"], lv("max_abs")),
        ("noise floor error, mean abs dB (steady noise, floor ≥ −60 dBFS)", TARGETS["floor"],
         fl("mean_abs")),
        ("noise floor error, max abs dB (steady noise, floor ≥ −60 dBFS)", TARGETS["floor"],
         fl("max_abs")),
        ("noise floor error, mean abs dB (quiet room, floor < −60 dBFS)", "", ql("mean_abs")),
        ("noise floor error, max abs dB (quiet room, floor < −60 dBFS)", "", ql("max_abs")),
        ("noise alert hits (SNR ≤ 10 dB calls)", TARGETS["hits"],
         lambda o: f"{o['noise_alert_hits']}/{o['noise_alert_expected']}"),
        ("noise false alarms (quiet-room calls)", TARGETS["false_alarms"],
         lambda o: f"{o['noise_false_alarms']}/{o['quiet_room_calls']}"),
        ("dead air (≥ 5 s) found", "",
         lambda o: f"{o['dead_air_hits']}/{o['dead_air_true']}"),
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
    ap.add_argument("--data", type=Path, default=DEFAULT_DATA,
                    help="development set folder (built with python -m bench.dataset if empty)")
    ap.add_argument("--systems", default=",".join(SYSTEMS),
                    help="comma-separated: callwatch, baseline (default both)")
    ap.add_argument("--jobs", type=int, default=2, help="parallel processes (default 2)")
    ap.add_argument("--out", type=Path, default=DEFAULT_RESULTS, help="results JSON path")
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
    if not (args.data / "manifest.json").exists():
        from bench.dataset import build

        print(f"building the development set in {args.data} ...", file=sys.stderr)
        build(args.data, jobs=args.jobs)
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
            run_baseline(files, args.jobs)
        timing[s] = round(time.monotonic() - t0, 1)
        results[s] = evaluate(truths, reports)
        if results[s]["missing_reports"]:
            print(f"{s}: no report for {len(results[s]['missing_reports'])} calls: "
                  f"{', '.join(results[s]['missing_reports'][:5])}", file=sys.stderr)
    first = results[systems[0]]["overall"]
    meta = {"code": version, "calls": len(truths),
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
