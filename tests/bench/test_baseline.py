"""The naive baseline works as documented: finds real talk-overs and flags backchannels too."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np

from bench.baseline import talk_overs

ROOT = Path(__file__).resolve().parents[2]


def test_overlap_rule_and_initiator():
    a = np.zeros(100, dtype=bool)
    c = np.zeros(100, dtype=bool)
    c[10:40] = True  # customer talks from frame 10
    a[20:35] = True  # agent cuts in at frame 20 for 15 frames (0.45 s)
    a[60:65] = True  # 5 frames (0.15 s) of overlap: too short
    c[61:70] = True
    (e,) = talk_overs(a, c)
    assert (e["start_s"], e["end_s"], e["initiator"]) == (0.6, 1.05, "agent")


def test_sample_call_through_the_cli():
    out = subprocess.run([sys.executable, "-m", "bench.baseline",
                          str(ROOT / "samples" / "sample-call.wav")],
                         capture_output=True, text=True, check=True, cwd=ROOT).stdout
    report = json.loads(out)
    truth = json.loads((ROOT / "samples" / "sample-call.truth.json").read_text())
    events = [e for e in report["events"] if e["kind"] == "talk_over"]
    spans = [(e["start_s"], e["end_s"], e["initiator"]) for e in events]
    for t in truth["talk_overs"]:
        assert any(a < t["end_s"] and b > t["start_s"] and i == t["initiator"]
                   for a, b, i in spans)
    (bc,) = truth["optional_talk_overs"]  # the backchannel
    assert any(a < bc["end_s"] and b > bc["start_s"] for a, b, _ in spans)  # the known trap
    assert report["agent"]["active_level_dbfs"] is None


def test_unreadable_file_is_a_clear_error(tmp_path):
    bad = tmp_path / "bad.wav"
    bad.write_bytes(b"not audio")
    p = subprocess.run([sys.executable, "-m", "bench.baseline", str(bad)],
                       capture_output=True, text=True, cwd=ROOT)
    assert p.returncode == 2
    assert "bad.wav" in p.stderr and p.stderr.count("\n") == 1


def test_speed_measure_reports_wall_time_cpu_time_and_peak_rss():
    from bench.speed import measure

    # A child that allocates ~80 MB, spins for 0.3 s of CPU and prints a JSON line, like
    # analyze does.
    code = "import json, time; b = bytearray(80 * 2**20); b[::4096] = b'x' * len(b[::4096]); " \
           "t = time.process_time()\nwhile time.process_time() - t < 0.3: pass\n" \
           "print(json.dumps({'ok': 1}))"
    r = measure([sys.executable, "-c", code])
    assert r["wall_s"] >= r["cpu_s"] * 0.5 > 0
    assert 0.3 <= r["cpu_s"] < 5.0
    assert 80 <= r["peak_rss_mb"] < 400
