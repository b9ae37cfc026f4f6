"""How long a scrape of one workstation takes to render, and how many series it adds.

The registry is built as the daemon builds it (process, platform and GC collectors plus every
callwatch metric), with every label set populated: a pipeline that has processed the sample
call (so the level gauges exist), both histograms observed, alerts fired, and a ``callwatch
check`` result per item. The render is client_python's ``generate_latest``, exactly what
``/metrics`` returns; the series count is its number of sample lines.

    python -m bench.metrics_render [--repeat 500]

Targets: a median render under 5 ms, at most 150 series per workstation. The p99 is printed
too; on a loaded machine it mostly shows scheduling, not the render.
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

import soundfile as sf
from prometheus_client import generate_latest

from daemon.metrics import (
    CHECK_FAIL,
    CHECK_PASS,
    CHECK_WARN,
    Metrics,
    PublishedStats,
    default_registry,
)
from daemon.metrics_state import ALERT_SERIES
from daemon.state import DaemonState
from dsp.events import Kind, Stream
from dsp.pipeline import Pipeline

SAMPLE = Path(__file__).resolve().parents[1] / "samples" / "sample-call.wav"
RENDER_TARGET_MS = 5.0
SERIES_TARGET = 150
CHECK_ITEMS = ("mic_device", "far_end_device", "speaker_device", "mic_signal", "mic_level",
               "noise", "snr", "echo", "clipping", "dc_offset", "hum", "latency",
               "far_end_route")
"""The 13 items a full ``callwatch check`` reports (one series each)."""


def busy_daemon() -> tuple[Metrics, Pipeline]:
    """A daemon after a call: every series callwatch can export is present."""
    audio, rate = sf.read(SAMPLE, dtype="float32", always_2d=True)
    pipeline = Pipeline(agent_rate=rate, customer_rate=rate)
    pipeline.push(agent=audio[:, 0], customer=audio[:, 1])
    state = DaemonState(agent_id="ana@ws-17", version="0.1.0")
    for stream in Stream:
        h = state.streams[stream]
        h.device_name, h.device_up, h.restarts, h.overflows = f"{stream} device", True, 1, 2
    for key in ALERT_SERIES:
        state.alerts_fired[key] += 1
    state.alerts_active[Kind.NOISE.value, "agent"] = 1
    state.calls_total, state.call_active, state.ws_clients = 12, True, 1
    verdicts = (CHECK_PASS, CHECK_WARN, CHECK_FAIL)
    state.check_results = {item: verdicts[i % 3] for i, item in enumerate(CHECK_ITEMS)}
    state.check_timestamp = time.time()
    published = PublishedStats()
    published.publish(pipeline)
    metrics = Metrics(default_registry(), state, pipeline_stats=published)
    for d in (45.0, 300.0, 1900.0):
        metrics.observe_call_end(d)
    for s in (0.0008, 0.002, 0.004):
        metrics.observe_processing(s)
    return metrics, pipeline


def series(text: bytes) -> list[str]:
    return [line for line in text.decode().splitlines() if line and not line.startswith("#")]


def run(repeat: int) -> dict[str, float]:
    metrics, _ = busy_daemon()
    registry = metrics.registry
    text = generate_latest(registry)
    for _ in range(20):  # warm-up
        generate_latest(registry)
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        generate_latest(registry)
        times.append((time.perf_counter() - t0) * 1000)
    times.sort()
    lines = series(text)
    return {
        "series": len(lines),
        "callwatch_series": sum(1 for line in lines if line.startswith("callwatch_")),
        "bytes": len(text),
        "median_ms": statistics.median(times),
        "p99_ms": times[int(0.99 * (len(times) - 1))],
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=500, help="renders to time (default 500)")
    r = run(ap.parse_args().repeat)
    print(f"series per workstation: {r['series']} ({r['callwatch_series']} callwatch_*, the "
          f"rest process/platform/GC); target <= {SERIES_TARGET}")
    print(f"exposition size: {r['bytes']} bytes")
    print(f"generate_latest: median {r['median_ms']:.2f} ms, p99 {r['p99_ms']:.2f} ms; "
          f"target: median < {RENDER_TARGET_MS} ms")
    ok = r["series"] <= SERIES_TARGET and r["median_ms"] < RENDER_TARGET_MS
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
