"""``python -m bench.run_all`` (``make bench``): every benchmark, one after the other.

Each runs as its own process with its default arguments, so one failing benchmark does not
hide the others' figures; the exit code is non-zero if any failed. Results land in
``bench/results/``; BENCHMARKS.md explains them.
"""

from __future__ import annotations

import importlib.util
import subprocess
import sys
import time

BENCHMARKS = (
    "bench.accuracy",  # talk-over F1, levels, noise alerts vs the baseline (dev set)
    "bench.probe_ambience",  # the same on the dev set's clean calls with a real train ambience
    "bench.speed",  # analyze x-real-time and peak RSS on 30/60-minute calls
    "bench.metrics_render",  # Prometheus scrape render time and series count
    "bench.daemon_cpu",  # live daemon CPU, latency and memory on the virtual headset
)


def main() -> int:
    failed = []
    for name in BENCHMARKS:
        if importlib.util.find_spec(name) is None:
            continue
        print(f"\n## {name}\n", flush=True)
        t0 = time.monotonic()
        rc = subprocess.call([sys.executable, "-m", name])
        print(f"\n({name}: exit {rc}, {time.monotonic() - t0:.0f} s)", flush=True)
        if rc != 0:
            failed.append(name)
    if failed:
        print(f"failed: {', '.join(failed)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
