"""Live-alert delivery benchmark: event-to-client latency and a stalled client's memory cost.

1. Latency: 50 WebSocket clients (in a separate process, like browsers and `callwatch tail`)
   on loopback; the "processing loop" feeds scripted detector events to the real AlertPolicy
   and publishes its alerts (plus 5 Hz level meters) through the real AlertServer. Latency is
   from just before ``policy.update()`` to the client's ``recv()`` returning, per client and
   alert, on the system-wide monotonic clock.
2. Memory: one client that completed the handshake and then never reads, while 10 minutes'
   worth of level meters (5 Hz) and alerts (one every 6 s) are published, compressed in time;
   the server's RSS is sampled every simulated minute.

    .venv/bin/python bench/alerts_delivery.py [--alerts 200] [--minutes 10] [--speedup 40]
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import multiprocessing as mp
import os
import socket
import statistics
import sys
import tempfile
import time
from pathlib import Path

from alerts import protocol
from alerts.policy import AlertPolicy, AlertSettings
from alerts.server import AlertServer, ServerSettings
from dsp import ANALYSIS_RATE
from dsp.events import Event, Kind, Phase, Stream


class Meter:
    """A plausible live meter for the levels messages."""

    def __init__(self, rms: float, speaking: bool) -> None:
        self.rms_dbfs, self.peak_dbfs = rms, rms + 12.0
        self.speaking, self.noise_floor_dbfs = speaking, -61.0


def rss_kib() -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


# -- 1. latency with 50 clients --------------------------------------------------------------


def _clients_proc(url: str, n: int, expected: int, ready, out) -> None:
    from websockets.asyncio.client import connect

    async def one(i: int) -> list[float]:
        lat: list[float] = []
        async with connect(url, max_queue=64) as ws:
            await ws.recv()  # hello
            if i % 2 == 0:   # half of them also watch the meters, like nudge pages
                await ws.send(json.dumps({"v": 1, "type": "subscribe",
                                          "topics": ["alerts", "levels"]}))
            ready.put(i)
            while len(lat) < expected:
                text = await asyncio.wait_for(ws.recv(), 30)
                now = time.monotonic()
                msg = json.loads(text)
                if msg["type"] == "alert" and msg["alert"]["state"] == "firing":
                    lat.append(now - msg["alert"]["values"]["t0"])
        return lat

    async def main() -> None:
        results = await asyncio.gather(*(one(i) for i in range(n)))
        out.put([x for r in results for x in r])

    asyncio.run(main())


def bench_latency(n_clients: int, n_alerts: int, rate_hz: float) -> dict:
    srv = AlertServer(ServerSettings(port=0), {"version": "bench"})
    srv.start()
    ctx = mp.get_context("spawn")
    ready, out = ctx.Queue(), ctx.Queue()
    proc = ctx.Process(target=_clients_proc,
                       args=(f"{srv.url}?token={srv.token}", n_clients, n_alerts, ready, out))
    proc.start()
    for _ in range(n_clients):
        ready.get(timeout=60)
    time.sleep(0.5)
    policy = AlertPolicy(AlertSettings(cooldown_s=0.0, resolve_s=0.0))
    period = 1.0 / rate_hz
    next_levels = time.monotonic()
    for k in range(n_alerts):
        t_call = k * period
        begin = Event(Kind.NOISE, Phase.BEGIN, Stream.AGENT, 0, int(5 * ANALYSIS_RATE),
                      {"noise_floor_dbfs": -38.0, "threshold_dbfs": -45.0})
        t0 = time.monotonic()
        for alert in policy.update([begin], now=1e9 + t_call):
            msg = protocol.alert_message(alert)
            msg["alert"]["values"]["t0"] = t0
            srv.publish(msg, "alerts")
        end = Event(Kind.NOISE, Phase.END, Stream.AGENT, 0, int(6 * ANALYSIS_RATE), {})
        for alert in policy.update([end], now=1e9 + t_call + period / 2):
            srv.publish(protocol.alert_message(alert), "alerts")
        while time.monotonic() < t0 + period:
            if time.monotonic() >= next_levels:
                srv.publish(protocol.levels_message(Meter(-24, True), Meter(-60, False),
                                                    time.time()), "levels")
                next_levels += 0.2
            time.sleep(0.002)
    lat = sorted(out.get(timeout=60))
    proc.join(10)
    srv.stop()
    q = statistics.quantiles(lat, n=100)
    return {"clients": n_clients, "alerts": n_alerts, "deliveries": len(lat),
            "p50_ms": q[49] * 1e3, "p99_ms": q[98] * 1e3, "max_ms": lat[-1] * 1e3,
            "dropped": srv.dropped_messages}


# -- 2. memory with a stalled client ------------------------------------------------------------


def _stalled_socket(srv: AlertServer) -> socket.socket:
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.connect(("127.0.0.1", srv.port))
    key = base64.b64encode(os.urandom(16)).decode()
    sock.sendall(f"GET /?token={srv.token} HTTP/1.1\r\nHost: 127.0.0.1:{srv.port}\r\n"
                 f"Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
                 "Sec-WebSocket-Version: 13\r\n\r\n".encode())
    head = b""
    while b"\r\n\r\n" not in head:
        head += sock.recv(1)
    # The stalled client subscribes to everything, then never reads again.
    payload = json.dumps({"v": 1, "type": "subscribe",
                          "topics": list(protocol.TOPICS)}).encode()
    mask = os.urandom(4)
    masked = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
    sock.sendall(bytes([0x81, 0x80 | len(payload)]) + mask + masked)
    return sock


def bench_stalled(minutes: float, speedup: float) -> dict:
    srv = AlertServer(ServerSettings(port=0), {"version": "bench"})
    srv.start()
    stalled = _stalled_socket(srv)
    while srv.clients < 1:
        time.sleep(0.01)
    time.sleep(0.2)
    policy = AlertPolicy(AlertSettings(cooldown_s=0.0, resolve_s=0.0))
    levels_hz, alert_every_s = 5.0, 6.0
    steps = int(minutes * 60 * levels_hz)
    rss0 = rss_kib()
    samples = [(0.0, rss0)]
    t_start = time.monotonic()
    for k in range(steps):
        t_call = k / levels_hz
        srv.publish(protocol.levels_message(Meter(-24 - k % 7, k % 3 > 0),
                                            Meter(-30 - k % 5, k % 3 == 0), 1e9 + t_call),
                    "levels")
        if k % int(alert_every_s * levels_hz) == 0:
            kind = list(Kind)[(k // 30) % len(Kind)]
            stream = None if kind in (Kind.TALK_OVER, Kind.SILENCE) else Stream.AGENT
            ev = Event(kind, Phase.BEGIN, stream, 0, ANALYSIS_RATE, {"initiator": "agent"})
            end = Event(kind, Phase.END, stream, 0, 2 * ANALYSIS_RATE, {"initiator": "agent"})
            for alert in policy.update([ev], 1e9 + t_call) + policy.update([end], 1e9 + t_call):
                srv.publish(protocol.alert_message(alert), "alerts")
        # Pace the compressed timeline so the loop behaves as in a (fast) real run.
        target = t_start + (k + 1) / levels_hz / speedup
        delay = target - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        if (k + 1) % int(60 * levels_hz) == 0:
            samples.append(((k + 1) / levels_hz / 60, rss_kib()))
    time.sleep(0.5)
    stats = srv.client_stats()
    stalled.close()
    srv.stop()
    return {"minutes": minutes, "published": srv.published_messages,
            "dropped": srv.dropped_messages, "stalled_client": stats,
            "rss_start_kib": rss0, "rss_end_kib": samples[-1][1],
            "rss_growth_kib": samples[-1][1] - rss0,
            "rss_after_1_min_kib": samples[1][1] if len(samples) > 1 else None,
            "rss_growth_after_first_minute_kib":
                samples[-1][1] - samples[1][1] if len(samples) > 1 else None,
            "samples": samples, "wall_s": time.monotonic() - t_start}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--clients", type=int, default=50)
    ap.add_argument("--alerts", type=int, default=200, help="alerts in the latency run")
    ap.add_argument("--rate", type=float, default=20.0, help="alerts per second (latency run)")
    ap.add_argument("--minutes", type=float, default=10.0, help="simulated stalled-client run")
    ap.add_argument("--speedup", type=float, default=40.0, help="time compression of that run")
    ap.add_argument("--json", metavar="PATH", help="also write the results as JSON")
    args = ap.parse_args()
    os.environ["XDG_CONFIG_HOME"] = tempfile.mkdtemp(prefix="callwatch-bench-")
    lat = bench_latency(args.clients, args.alerts, args.rate)
    print(f"delivery, {lat['clients']} clients, {lat['alerts']} alerts at {args.rate:g}/s "
          f"(+ 5 Hz levels to half of them): p50 {lat['p50_ms']:.2f} ms, "
          f"p99 {lat['p99_ms']:.2f} ms, max {lat['max_ms']:.2f} ms over "
          f"{lat['deliveries']} deliveries, dropped {lat['dropped']}")
    mem = bench_stalled(args.minutes, args.speedup)
    print(f"stalled client, {mem['minutes']:g} min of 5 Hz levels + alerts every 6 s "
          f"({mem['published']} messages, {mem['wall_s']:.1f} s wall): RSS "
          f"{mem['rss_start_kib'] / 1024:.1f} -> {mem['rss_end_kib'] / 1024:.1f} MiB "
          f"(+{mem['rss_growth_kib']} KiB; +{mem['rss_growth_after_first_minute_kib']} KiB "
          f"after the first minute), dropped {mem['dropped']} (oldest first)")
    print("RSS per simulated minute (KiB):", " ".join(str(r) for _, r in mem["samples"]))
    if args.json:
        Path(args.json).write_text(json.dumps({"latency": lat, "stalled": mem}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
