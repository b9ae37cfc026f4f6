"""``python -m bench.speed``: how fast ``callwatch analyze`` runs, and its peak memory.

Builds (once, under ``bench/data/speed``) a 30-minute and a 60-minute 16 kHz stereo call by
concatenating the development set's calls (building the set first if needed), then runs
``callwatch analyze --json`` and the baseline (``python -m bench.baseline``) on them, each as
a fresh subprocess, so the wall time includes interpreter start-up and imports, as a user
sees it. Peak RSS is measured by GNU time (see :func:`measure`). Prints a markdown table
and writes ``bench/results/speed.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import soundfile as sf

from bench.accuracy import DEFAULT_DATA, callwatch_invocation, code_version
from bench.audio import resample, to_int16

RATE = 16000
DEFAULT_RESULTS = Path(__file__).resolve().parent / "results" / "speed.json"


def long_call(data: Path, minutes: float) -> Path:
    """A ``minutes``-long call made by looping the development set's calls end to end."""
    out = data / "speed" / f"long-{minutes:g}min.wav"
    if out.exists():
        return out
    manifest = data / "manifest.json"
    if not manifest.exists():
        from bench.dataset import build

        print(f"building the development set in {data} ...", file=sys.stderr)
        build(data)
    calls = json.loads(manifest.read_text())["calls"]
    out.parent.mkdir(parents=True, exist_ok=True)
    need = int(minutes * 60 * RATE)
    written = 0
    tmp = out.with_suffix(".tmp.wav")
    with sf.SoundFile(tmp, "w", RATE, 2, subtype="PCM_16") as f:
        k = 0
        while written < need:
            x, rate = sf.read(data / calls[k % len(calls)], dtype="float64")
            if rate != RATE:
                x = np.stack([resample(x[:, c], rate, RATE) for c in range(2)], axis=1)
            x = x[: need - written]
            f.write(to_int16(x))
            written += len(x)
            k += 1
    tmp.replace(out)
    return out


TIME = Path("/usr/bin/time")


def measure(cmd: list[str], env: dict[str, str] | None = None) -> dict[str, float]:
    """Wall time, CPU time (user + system) and peak RSS of ``cmd`` as a fresh process.

    CPU time is what to compare on a shared machine: another job stretches the wall time of
    both programs by different amounts, but hardly the CPU seconds each needs.

    Peak RSS comes from GNU time (``%M``) when installed: ``ru_maxrss`` of a direct child of
    this process would start from *this* process's RSS at fork time (Linux keeps the high
    water mark across exec), which overstates a small program started from a big one.
    Without GNU time, ``wait4`` of the child is used and that caveat applies.
    """
    t0 = time.monotonic()
    with tempfile.NamedTemporaryFile("r", suffix=".rss") as rss:
        full = [str(TIME), "-f", "%M %U %S", "-o", rss.name, *cmd] if TIME.exists() else cmd
        with open(os.devnull, "wb") as devnull:
            p = subprocess.Popen(full, stdout=subprocess.PIPE, stderr=devnull, env=env)
            assert p.stdout is not None
            first = p.stdout.readline()
            p.stdout.read()
            _, status, usage = os.wait4(p.pid, 0)
        wall = time.monotonic() - t0
        p.returncode = os.waitstatus_to_exitcode(status)
        if TIME.exists():
            kb, user, system = map(float, rss.read().strip().splitlines()[-1].split())
        else:
            kb, user, system = usage.ru_maxrss, usage.ru_utime, usage.ru_stime
    if p.returncode not in (0, 1) or not first.startswith(b"{"):
        raise SystemExit(f"{' '.join(cmd)} failed (exit {p.returncode})")
    json.loads(first)
    return {"wall_s": round(wall, 2), "cpu_s": round(user + system, 2),
            "peak_rss_mb": round(kb / 1024, 1)}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.speed",
                                 description=__doc__.split("\n")[0])
    ap.add_argument("--data", type=Path, default=DEFAULT_DATA, help="development set folder")
    ap.add_argument("--out", type=Path, default=DEFAULT_RESULTS, help="results JSON path")
    ap.add_argument("--code", type=Path, metavar="DIR",
                    help="run callwatch from this source tree (e.g. a git worktree of a commit)")
    args = ap.parse_args(argv)
    cw_cmd, cw_env = callwatch_invocation(args.code)
    files = {30: long_call(args.data, 30), 60: long_call(args.data, 60)}
    systems = {
        "callwatch": lambda f: [*cw_cmd, "analyze", "--json", str(f)],
        "baseline": lambda f: [sys.executable, "-m", "bench.baseline", str(f)],
    }
    rows = []
    for minutes, f in files.items():
        for name, cmd in systems.items():
            r = measure(cmd(f), cw_env if name == "callwatch" else None)
            r.update(system=name, audio_min=minutes,
                     x_real_time=round(minutes * 60 / r["wall_s"], 1))
            rows.append(r)
            print(f"{name} {minutes} min: {r}", file=sys.stderr)
    lines = ["| system | audio | wall time (incl. start-up) | CPU time | × real time | peak RSS |",
             "| --- | ---: | ---: | ---: | ---: | ---: |"]
    lines += [f"| {r['system']} | {r['audio_min']} min | {r['wall_s']:.1f} s | "
              f"{r['cpu_s']:.1f} s | {r['x_real_time']:.0f}× | {r['peak_rss_mb']:.0f} MB |"
              for r in rows]
    for minutes in files:
        cw, base = (next(r for r in rows if r["system"] == n and r["audio_min"] == minutes)
                    for n in systems)
        wall, cpu = cw["wall_s"] / base["wall_s"], cw["cpu_s"] / base["cpu_s"]
        lines.append(f"\n{minutes} min: callwatch / baseline = {wall:.2f}× wall, {cpu:.2f}× CPU")
    print("\n".join(lines))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    code = code_version(args.code) if args.code else code_version()
    args.out.write_text(json.dumps({"code": code,
                                    "files": {k: str(v) for k, v in files.items()},
                                    "cpus": os.cpu_count(), "runs": rows}, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
