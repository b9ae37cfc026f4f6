"""Live daemon benchmarks: CPU while capturing, memory over an hour, capture-to-event latency.

    python -m bench.daemon_cpu --seconds 300          # CPU + latency, both backends + floor
    python -m bench.daemon_cpu --memory-hours 1       # memory over an hour of replayed audio
    python -m bench.daemon_cpu --seconds 120 --backends pulse --rounds 2 \
        --code . --code /tmp/cw-before                # two trees alternated, a floor per round

CPU: a private PulseAudio with the virtual headset (tests/integration/pulse.py); ``callwatch
run`` captures ``headset_mic`` and ``speaker_monitor`` (16 kHz by default) with the alert
server and the metrics endpoint on, while the sample call plays into both sides in a loop (so
the VAD and all detectors work as in a call), once per capture backend; then, on the same
server, two bare ``parec`` readers of the same sources at the same rate, format and fragment
size, as the floor. CPU is utime+stime from /proc over the window, as a percentage of one
core. Overflows and dropped blocks come from the daemon's status.

Latency: every BEGIN event logs ``latency_ms``: from the capture timestamp of the sample that
confirmed it to the moment the event was emitted (the part beyond the detector's own window).

Memory: ``callwatch run --replay`` of an hour-long call (the sample call repeated) at high
speed; peak RSS and its growth between the first and the last tenth of the run.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import soundfile as sf

from bench.accuracy import callwatch_invocation, code_version

ROOT = Path(__file__).resolve().parents[1]
SAMPLE = ROOT / "samples" / "sample-call.wav"
CLK_TCK = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def thread_cpu_seconds(pid: int) -> dict[int, float]:
    """CPU seconds of each of the process's threads, by thread id (the main thread's id is
    the process id). Python does not name its threads for the kernel, so ids it is."""
    out = {}
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            fields = (task / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:  # the thread ended meanwhile
            continue
        out[int(task.name)] = (int(fields[11]) + int(fields[12])) / CLK_TCK
    return out


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def control(sock: Path, line: str) -> dict:
    import socket

    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.settimeout(10)
        s.connect(str(sock))
        s.sendall(line.encode() + b"\n")
        return json.loads(s.makefile().readline())


def _play_loop(srv, work: Path, players: list[subprocess.Popen], until: float) -> None:
    """Keep the sample call playing into both sides until ``until``."""
    while time.monotonic() < until:
        if not players or players[0].poll() is not None:
            players[:] = [srv.play("mic_feed", work / "agent.wav"),
                          srv.play("headset_speaker", work / "customer.wav")]
        time.sleep(0.2)


def bench_parec(srv, seconds: float, work: Path, rate: int, block_s: float) -> dict:
    """The floor: two bare ``parec`` readers of the same two sources, at the daemon's rate,
    format and fragment size, while the same call plays."""
    procs = [subprocess.Popen(["parec", "-d", src, f"--rate={rate}", "--channels=1",
                               "--format=float32le", f"--latency-msec={round(block_s * 1000)}"],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                              env=srv.full_env())
             for src in ("headset_mic", "headset_speaker.monitor")]
    players: list[subprocess.Popen] = []
    try:
        time.sleep(1.0)
        c0, t0 = sum(cpu_seconds(p.pid) for p in procs), time.monotonic()
        _play_loop(srv, work, players, t0 + seconds)
        c1, t1 = sum(cpu_seconds(p.pid) for p in procs), time.monotonic()
    finally:
        for p in players + procs:
            p.terminate()
        for p in procs:
            p.wait(5)
    return {"what": "two bare parec readers", "samplerate_hz": rate, "block_s": block_s,
            "seconds": round(t1 - t0, 1),
            "cpu_percent_of_one_core": round(100 * (c1 - c0) / (t1 - t0), 2)}


def bench_cpu(srv, seconds: float, work: Path, rate: int, block_s: float, interval_s: float,
              backend: str = "auto", code: Path | None = None) -> dict:
    """``callwatch run`` with the alert server and metrics on, capturing while the call
    plays; ``srv`` is the running virtual headset; ``code``: run callwatch from that source
    tree (a git worktree of another commit) instead of this one."""
    data, file_rate = sf.read(SAMPLE, dtype="float32")
    sf.write(work / "agent.wav", data[:, 0], file_rate)
    sf.write(work / "customer.wav", data[:, 1], file_rate)
    run = f"{backend}-{time.monotonic_ns()}"  # one event log per run: trees and rounds alternate
    sock = work / f"control-{run}.sock"
    cfg = work / f"config-{run}.toml"
    cfg.write_text(f'[control]\nsocket_path = "{sock}"\n[capture]\nmic_device = "headset_mic"\n'
                   f'far_end_device = "speaker_monitor"\nsamplerate_hz = {rate}\n'
                   f'block_s = {block_s}\nprocess_interval_s = {interval_s}\n'
                   f'backend = "{backend}"\n[server]\nport = 0\n[metrics]\nport = 0\n')
    log = work / f"events-{run}.jsonl"
    env = srv.full_env(XDG_CONFIG_HOME=str(work / "xdg"), XDG_STATE_HOME=str(work / "state"))
    err = work / f"stderr-{run}.txt"
    cmd = [sys.executable, "-m", "daemon.cli"]
    if code is not None:
        cmd, code_env = callwatch_invocation(code)
        env["PYTHONPATH"] = (code_env or {})["PYTHONPATH"]
    proc = subprocess.Popen([*cmd, "run", "--config", str(cfg), "--log-json", str(log)],
                            cwd=code or ROOT, env=env, stdout=subprocess.DEVNULL,
                            stderr=err.open("w"))
    players: list[subprocess.Popen] = []
    try:
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise RuntimeError(f"callwatch run ({backend}) exited with {proc.returncode}: "
                                   f"{err.read_text()[-1500:]}")
            try:
                if all(d["up"] for d in control(sock, "status")["devices"].values()):
                    break
            except OSError:
                pass
            time.sleep(0.1)
        time.sleep(1.0)  # start-up (imports, first fit) is not steady state
        th0, c0, t0 = thread_cpu_seconds(proc.pid), cpu_seconds(proc.pid), time.monotonic()
        _play_loop(srv, work, players, t0 + seconds)
        th1, c1, t1 = thread_cpu_seconds(proc.pid), cpu_seconds(proc.pid), time.monotonic()
        status = control(sock, "status")
    finally:
        for p in players:
            p.terminate()
        proc.terminate()
        proc.wait(10)
    lat = []
    used = None
    for line in log.read_text().splitlines():
        r = json.loads(line)
        if r.get("event") == "started":
            used = r.get("backend")
        if r.get("phase") == "begin" and "latency_ms" in r:
            lat.append(r["latency_ms"])
    devices = status["devices"]
    return {
        "backend": used, "code": code_version(code) if code else code_version(),
        "samplerate_hz": rate, "block_s": block_s,
        "process_interval_s": interval_s,
        "seconds": round(t1 - t0, 1),
        "cpu_percent_of_one_core": round(100 * (c1 - c0) / (t1 - t0), 2),
        "overflows": sum(d["overflows"] for d in devices.values()),
        "dropped_blocks": sum(d["dropped_blocks"] for d in devices.values()),
        "restarts": sum(d["restarts"] for d in devices.values()),
        "latency_events": len(lat),
        "latency_p50_ms": round(statistics.median(lat), 1) if lat else None,
        "latency_p99_ms": round(float(np.percentile(lat, 99)), 1) if lat else None,
        "latency_max_ms": max(lat) if lat else None,
        # The processing loop is the main thread; the others, busiest first (capture
        # callbacks or readers, the supervisor, the servers).
        "main_thread_cpu_percent": round(100 * (th1.get(proc.pid, 0.0)
                                               - th0.get(proc.pid, 0.0)) / (t1 - t0), 2),
        "other_threads_cpu_percent": sorted(
            (round(100 * (c - th0.get(tid, 0.0)) / (t1 - t0), 2)
             for tid, c in th1.items() if tid != proc.pid), reverse=True),
    }


def bench_memory(hours: float, speed: float, work: Path) -> dict:
    data, rate = sf.read(SAMPLE, dtype="int16")
    reps = int(np.ceil(hours * 3600 * rate / len(data)))
    path = work / "long-call.wav"
    with sf.SoundFile(path, "w", rate, 2, subtype="PCM_16") as f:
        for _ in range(reps):
            f.write(data)
    audio_s = reps * len(data) / rate
    cfg = work / "mem.toml"
    cfg.write_text(f'[control]\nsocket_path = "{work / "mem.sock"}"\n')
    t0 = time.monotonic()
    proc = subprocess.Popen([sys.executable, "-m", "daemon.cli", "run", "--config", str(cfg),
                             "--replay", str(path), "--speed", str(speed), "--no-server",
                             "--no-metrics", "--output", "json"], cwd=ROOT,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            env=dict(os.environ, XDG_CONFIG_HOME=str(work / "xdg"),
                                     XDG_STATE_HOME=str(work / "state")))
    samples = []
    while proc.poll() is None:
        try:
            samples.append((time.monotonic() - t0, rss_mb(proc.pid)))
        except OSError:
            break
        time.sleep(0.5)
    took = time.monotonic() - t0
    rss = [m for _, m in samples if m > 0]
    tenth = max(1, len(rss) // 10)
    return {
        "audio_s": round(audio_s),
        "wall_s": round(took, 1),
        "realtime_factor": round(audio_s / took, 1),
        "rss_peak_mb": round(max(rss), 1),
        "rss_first_tenth_mb": round(statistics.mean(rss[tenth:2 * tenth] or rss[:tenth]), 1),
        "rss_last_tenth_mb": round(statistics.mean(rss[-tenth:]), 1),
        "exit_code": proc.returncode,
    }


def main() -> int:
    sys.path.insert(0, str(ROOT))
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--seconds", type=float, default=300.0,
                   help="CPU measurement window (default 300)")
    p.add_argument("--memory-hours", type=float, default=0.0,
                   help="also replay this many hours of audio and track memory (e.g. 1)")
    p.add_argument("--speed", type=float, default=10000.0, help="replay speed for memory")
    p.add_argument("--no-cpu", action="store_true", help="skip the capture benchmark")
    p.add_argument("--samplerate", type=int, default=None,
                   help="capture rate (default: the config default, 16000)")
    p.add_argument("--block-s", type=float, default=None,
                   help="[capture] block_s (default: the config default)")
    p.add_argument("--interval-s", type=float, default=None,
                   help="[capture] process_interval_s (default: the config default)")
    p.add_argument("--backends", default="pulse,portaudio",
                   help="capture backends to measure one after the other, comma-separated "
                        "(default pulse,portaudio)")
    p.add_argument("--no-parec", action="store_true",
                   help="skip the floor: two bare parec readers of the same sources")
    p.add_argument("--code", type=Path, action="append", metavar="DIR",
                   help="run callwatch from this source tree (a git worktree of a commit); "
                        "give it several times to alternate trees in each round, \".\" for "
                        "this one (default: this tree only)")
    p.add_argument("--rounds", type=int, default=1,
                   help="repeat the measurement, each round with its own floor (default 1): "
                        "the machine's load moves single runs by 10-20 %%")
    args = p.parse_args()
    if args.rounds < 1:
        p.error(f"--rounds {args.rounds}: give 1 or more")
    for tree in args.code or []:
        if not (tree / "daemon" / "cli.py").is_file():
            p.error(f"--code {tree}: no daemon/cli.py there; give a callwatch source tree "
                    "(git worktree add /tmp/cw-before <commit>)")
    backends = [b.strip() for b in args.backends.split(",") if b.strip()]
    bad = [b for b in backends if b not in ("auto", "pulse", "portaudio")]
    if bad:
        p.error(f"--backends {args.backends}: {', '.join(bad)} is not one of auto, pulse, "
                "portaudio")
    out: dict = {}
    with tempfile.TemporaryDirectory(prefix="cw-bench-") as tmp:
        work = Path(tmp)
        if not args.no_cpu:
            from daemon.config import CaptureSettings
            from tests.integration.pulse import PulseServer

            d = CaptureSettings()
            rate = args.samplerate or d.samplerate_hz
            block_s = args.block_s or d.block_s
            interval_s = args.interval_s or d.process_interval_s
            srv = PulseServer(work / "pulse").start()
            trees: list[Path | None] = [t.resolve() for t in args.code] if args.code else [None]
            try:
                for _ in range(args.rounds):
                    run: dict = {"capture": [bench_cpu(srv, args.seconds, work, rate, block_s,
                                                       interval_s, b, tree)
                                             for tree in trees for b in backends]}
                    if not args.no_parec:
                        run["floor"] = bench_parec(srv, args.seconds, work, rate, block_s)
                        floor = run["floor"]["cpu_percent_of_one_core"]
                        for r in run["capture"]:
                            r["times_floor"] = round(r["cpu_percent_of_one_core"] / floor, 2) \
                                if floor > 0 else None
                    out.setdefault("rounds", []).append(run)
                if args.rounds == 1:
                    out.update(out.pop("rounds")[0])
            finally:
                srv.stop()
        if args.memory_hours > 0:
            out["memory"] = bench_memory(args.memory_hours, args.speed, work)
    print(json.dumps(out, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
