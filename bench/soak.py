"""Soak: hours of calls through the live replay path, compressed in time, with everything a
workstation's daemon serves running throughout; memory, open files, threads and queues must
stay flat and nothing may be logged as an error.

    python -m bench.soak --hours 8                 # the full soak (8 h of calls, ~4-5 min)
    python -m bench.soak --hours 0.25 --json       # a short one, JSON on stdout

The calls: the sample call (31 s, both parties, talk-overs, alerts) followed by 40 s of
silence, repeated for ``--hours``, replayed by ``callwatch run --replay`` as fast as the live
path goes (the reader waits for the rings, so nothing is dropped). Automatic call detection
starts and ends a call for every repetition; the load below ends and starts calls by hand too.

The load, all on loopback, each in its own thread for the whole run:

- a scrape of ``/metrics`` every ``scrape_every_s``;
- WebSocket clients that connect, subscribe to everything (levels too), read for 0.2-2 s and
  leave, every third one by dropping the TCP connection without a close frame; and one client
  that stays connected and reads from start to end;
- control requests: ``status`` with every sample, ``end`` every 15 s, ``start`` every 40 s;
- a config reload (SIGHUP) every 7 s, alternating ``min_overlap_s`` between 0.8 and 0.9.

Sampled every ``sample_every_s`` from ``/proc`` and the control socket: RSS, open fds,
threads, and the daemon's queues (audio in the rings, pending control requests and device
events, messages queued for WebSocket clients) against the media time processed.

Flat means: after a warm-up (the first fifth of the media), the last third's RSS median is
within ``rss_slack_mb`` of the first third's, and the fds and threads floors (minimum per
third: transient request threads and sockets come and go) do not rise; queues stay bounded.
"""

from __future__ import annotations

import argparse
import json
import logging
import random
import signal
import socket
import statistics
import sys
import tempfile
import threading
import time
import urllib.request
from collections import Counter
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import soundfile as sf

from bench.soak_daemon import ROOT, TOKEN, Daemon, config_text, control, look

SAMPLE = ROOT / "samples" / "sample-call.wav"
GAP_S = 40.0
"""Silence after each call: longer than ``call_end_silence_s`` (30 s), so auto calls end."""

ERROR_EVENTS = ("supervisor_error", "control_accept_error", "journal_error", "replay_error",
                "config_reload_failed")
"""Events that report something going wrong: a soak must log none."""
EXPECTED_STDERR = ("callwatch: agent nudge page:", "callwatch: Prometheus metrics:")


@dataclass
class Sample:
    """One look at the daemon."""

    wall_s: float
    media_s: float
    rss_mb: float
    fds: int
    threads: int
    queues: dict[str, Any]


@dataclass
class SoakResult:
    hours: float
    media_s: float = 0.0
    wall_s: float = 0.0
    exit_code: int | None = None
    samples: list[Sample] = field(default_factory=list)
    load: Counter[str] = field(default_factory=Counter)
    events: Counter[str] = field(default_factory=Counter)
    errors: list[str] = field(default_factory=list)
    """Error events and unexpected stderr lines."""


# -- the calls ------------------------------------------------------------------------------


def make_calls(path: Path, hours: float, gap_s: float = GAP_S) -> float:
    """Write ``hours`` of calls (sample call + silence, repeated) as 16-bit stereo WAV; the
    audio's duration in seconds."""
    call, rate = sf.read(SAMPLE, dtype="int16", always_2d=True)
    block = np.concatenate([call, np.zeros((round(gap_s * rate), 2), np.int16)])
    reps = max(1, int(np.ceil(hours * 3600 * rate / len(block))))
    with sf.SoundFile(path, "w", rate, 2, subtype="PCM_16") as f:
        for _ in range(reps):
            f.write(block)
    return reps * len(block) / rate


# -- the load -------------------------------------------------------------------------------


class Load:
    """The threads that use the daemon while it runs; each counts what it did."""

    def __init__(self, d: Daemon, counts: Counter[str], scrape_every_s: float) -> None:
        # The client library logs a traceback for every connection this load drops on purpose.
        logging.getLogger("websockets").setLevel(logging.CRITICAL)
        self.d = d
        self.counts = counts
        self.scrape_every_s = scrape_every_s
        self.stop = threading.Event()
        self.lock = threading.Lock()
        self.failures: list[tuple[float, str]] = []
        """(when, what) of every request that failed; those in the daemon's last moments
        (its servers close as the replay ends) are not held against it."""
        self.threads = [threading.Thread(target=self._guard, args=(f,), daemon=True)
                        for f in (self._scrape, self._churn, self._steady, self._calls,
                                  self._reload)]

    def count(self, what: str) -> None:
        with self.lock:
            self.counts[what] += 1

    def start(self) -> None:
        for t in self.threads:
            t.start()

    def join(self) -> None:
        self.stop.set()
        for t in self.threads:
            t.join(timeout=10)

    def _guard(self, body: Callable[[], None]) -> None:
        while not self.stop.is_set() and self.d.running:
            try:
                body()
            except Exception as exc:
                with self.lock:
                    self.failures.append((time.monotonic(), f"{body.__name__.strip('_')}: "
                                          f"{type(exc).__name__}: {exc}"))
                self.stop.wait(0.1)

    def _scrape(self) -> None:
        with urllib.request.urlopen(self.d.metrics_url, timeout=5) as r:
            if b"callwatch_calls_total" in r.read():
                self.count("scrapes")
        self.stop.wait(self.scrape_every_s)

    def _connect(self) -> Any:
        from websockets.sync.client import connect

        return connect(self.d.ws_url, open_timeout=5,
                       additional_headers={"Authorization": f"Bearer {TOKEN}"})

    @staticmethod
    def _subscribe(ws: Any) -> None:
        ws.send(json.dumps({"v": 1, "type": "subscribe",
                            "topics": ["alerts", "calls", "devices", "levels"]}))

    def _churn(self) -> None:
        with self._connect() as ws:
            self._subscribe(ws)
            self.count("ws_clients")
            end = time.monotonic() + random.uniform(0.2, 2.0)
            while time.monotonic() < end:
                try:
                    ws.recv(timeout=0.2)
                    self.count("ws_messages")
                except TimeoutError:
                    pass
            if self.counts["ws_clients"] % 3 == 0:
                ws.socket.shutdown(socket.SHUT_RDWR)  # gone without a close frame
                self.count("ws_dropped_connections")

    def _steady(self) -> None:
        with self._connect() as ws:
            self._subscribe(ws)
            self.count("ws_steady_connections")
            while not self.stop.is_set() and self.d.running:
                try:
                    ws.recv(timeout=0.5)
                    self.count("ws_steady_messages")
                except TimeoutError:
                    pass

    def _calls(self) -> None:
        """Every 15 s, end the call in progress by hand; after every third call so ended,
        start one by hand (only a control request ends it). An ``end`` that finds no call
        (the replay is between calls) starts nothing: a call started then would hold the
        rest of a short run, and with it the repetitions automatic detection should count,
        whenever the first ``end`` fell in a pause."""
        self.stop.wait(15.0)
        if not control(self.d.socket, "end").get("ok"):
            return
        self.count("calls_ended_by_hand")
        if self.counts["calls_ended_by_hand"] % 3 == 0:
            reply = control(self.d.socket, f"start soak-{self.counts['calls_started_by_hand']}")
            if reply.get("ok"):
                self.count("calls_started_by_hand")

    def _reload(self) -> None:
        self.stop.wait(7.0)
        n = self.counts["reloads"]
        self.d.config.write_text(config_text(self.d.work, 0.9 if n % 2 == 0 else 0.8))
        self.d.proc.send_signal(signal.SIGHUP)
        self.count("reloads")


# -- the run --------------------------------------------------------------------------------


def run_soak(hours: float, work: Path, sample_every_s: float = 1.0,
             scrape_every_s: float = 0.5, timeout_s: float = 7200.0) -> SoakResult:
    """Replay ``hours`` of calls under load; the samples, counts and errors."""
    res = SoakResult(hours)
    calls = work / "calls.wav"
    res.media_s = make_calls(calls, hours)
    t0 = time.monotonic()
    d = Daemon(work, calls)
    load = Load(d, res.load, scrape_every_s)
    # The replay starts one call by hand, which only a control request ends: end it, so that
    # automatic call detection starts and ends one call per repetition from here on.
    control(d.socket, "end")
    load.start()
    try:
        deadline = t0 + timeout_s
        while d.running and time.monotonic() < deadline:
            try:
                status = control(d.socket, "status")
                rss, fds, threads = look(d.proc.pid)
            except (OSError, ValueError, KeyError):
                if d.running:
                    res.load["status_failed"] += 1
            else:
                res.samples.append(Sample(round(time.monotonic() - t0, 2),
                                          status["processed_s"], round(rss, 2), fds, threads,
                                          status["queues"]))
            time.sleep(sample_every_s)
        if d.running:
            d.proc.kill()
            res.errors.append(f"the replay did not finish within {timeout_s:g} s")
        res.exit_code = d.proc.wait()
        ended = time.monotonic()
    finally:
        load.join()
        if d.proc.poll() is None:
            d.proc.kill()
            d.proc.wait()
    res.wall_s = round(time.monotonic() - t0, 1)
    for when, what in load.failures:
        if when < ended - 2.0:
            res.errors.append(f"request failed: {what}")
    for line in d.log.read_text().splitlines():
        event = json.loads(line)["event"]
        res.events[event] += 1
        if event in ERROR_EVENTS:
            res.errors.append(line)
    for line in d.stderr.read_text().splitlines():
        if line.strip() and not line.startswith(EXPECTED_STDERR):
            res.errors.append(f"stderr: {line}")
    if res.exit_code != 0:
        res.errors.append(f"exit code {res.exit_code}")
    return res


def _thirds(samples: list[Sample], media_s: float, warmup: float) -> list[list[Sample]]:
    start = warmup * media_s
    span = (media_s - start) / 3
    return [[s for s in samples if start + i * span <= s.media_s < start + (i + 1) * span]
            for i in range(3)]


def flatness(res: SoakResult, warmup: float = 0.2, rss_slack_mb: float = 1.0,
             fd_slack: int = 2, thread_slack: int = 2) -> dict[str, Any]:
    """The figures per third after the warm-up, and what is not flat."""
    thirds = _thirds(res.samples, res.media_s, warmup)
    problems: list[str] = []
    if any(not t for t in thirds):
        return {"problems": [f"too few samples ({len(res.samples)}) to judge"]}

    def per_third(key: Callable[[Sample], float], how: Callable[[list[float]], float]) -> list:
        return [round(how([key(s) for s in t]), 2) for t in thirds]

    rss_median = per_third(lambda s: s.rss_mb, statistics.median)
    fds_min = per_third(lambda s: s.fds, min)
    threads_min = per_third(lambda s: s.threads, min)
    after = [s for t in thirds for s in t]
    hours = np.array([s.media_s for s in after]) / 3600
    slope = float(np.polyfit(hours, [s.rss_mb for s in after], 1)[0]) if len(after) > 2 else 0.0
    if rss_median[2] - rss_median[0] > rss_slack_mb:
        problems.append(f"RSS grew: median {rss_median[0]} -> {rss_median[2]} MB")
    if fds_min[2] > fds_min[0] + fd_slack:
        problems.append(f"open fds floor rose: {fds_min[0]} -> {fds_min[2]}")
    if threads_min[2] > threads_min[0] + thread_slack:
        problems.append(f"threads floor rose: {threads_min[0]} -> {threads_min[2]}")
    queue_max = {
        "ring_frames": max(max(s.queues["ring_frames"].values()) for s in res.samples),
        "control_requests": max(s.queues["control_requests"] for s in res.samples),
        "device_events": max(s.queues["device_events"] for s in res.samples),
        "websocket_messages": max(s.queues["websocket_messages"] for s in res.samples),
    }
    return {
        "rss_mb_median_per_third": rss_median,
        "rss_mb_min_max": [min(s.rss_mb for s in after), max(s.rss_mb for s in after)],
        "rss_slope_mb_per_media_hour": round(slope, 3),
        "fds_min_per_third": fds_min,
        "fds_max": max(s.fds for s in after),
        "threads_min_per_third": threads_min,
        "threads_max": max(s.threads for s in after),
        "queues_max": queue_max,
        "problems": problems,
    }


def summary(res: SoakResult) -> dict[str, Any]:
    return {
        "hours": res.hours, "media_s": round(res.media_s), "wall_s": res.wall_s,
        "realtime_factor": round(res.media_s / res.wall_s, 1) if res.wall_s else None,
        "exit_code": res.exit_code, "samples": len(res.samples),
        "calls": res.events["call_started"],
        "alerts": res.events["alert"],
        "reloads_applied": res.events["config_reloaded"],
        "load": dict(res.load),
        "flat": flatness(res),
        "errors": res.errors[:20],
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--hours", type=float, default=8.0, help="hours of calls (default 8)")
    p.add_argument("--sample-every-s", type=float, default=1.0)
    p.add_argument("--scrape-every-s", type=float, default=0.5)
    p.add_argument("--samples-out", metavar="JSONL", help="also write every sample here")
    p.add_argument("--json", action="store_true", help="print the summary as JSON")
    args = p.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="callwatch-soak-") as tmp:
        res = run_soak(args.hours, Path(tmp), args.sample_every_s, args.scrape_every_s)
    out = summary(res)
    if args.samples_out:
        with open(args.samples_out, "w") as f:
            for s in res.samples:
                f.write(json.dumps(asdict(s)) + "\n")
    if args.json:
        print(json.dumps(out, indent=2))
    else:
        for k, v in out.items():
            print(f"{k}: {v}")
    return 0 if not out["errors"] and not out["flat"]["problems"] else 1


if __name__ == "__main__":
    sys.exit(main())
