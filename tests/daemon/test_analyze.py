"""`callwatch analyze` end to end: the JSON contract, batches and every kind of bad input."""

from __future__ import annotations

import json
import subprocess
import sys
import wave
from pathlib import Path

import jsonschema
import numpy as np
import pytest
import soundfile as sf

from tests.speech import two_party_call

ROOT = Path(__file__).resolve().parents[2]
SCHEMA = json.loads((ROOT / "daemon" / "analysis.schema.json").read_text())


def callwatch(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "daemon.cli", "analyze", *args],
                          capture_output=True, text=True, cwd=ROOT, timeout=120)


@pytest.fixture(scope="module")
def call_wav(tmp_path_factory) -> Path:
    agent, customer = two_party_call(
        [("customer", "cq_ref", 1.0), ("agent", "mmt1", 4.0), ("agent", "cq_ref", 12.0),
         ("customer", "mmt1", 14.5)], seconds=24.0)
    path = tmp_path_factory.mktemp("calls") / "call.wav"
    sf.write(path, np.column_stack([agent, customer]), 16000, subtype="PCM_16")
    return path


def test_json_report_validates_and_finds_talk_overs(call_wav):
    out = callwatch(str(call_wav), "--json")
    assert out.returncode == 0, out.stderr
    report = json.loads(out.stdout)
    jsonschema.validate(report, SCHEMA)
    assert report["talk_over"]["count"] == 2
    kinds = [e["kind"] for e in report["events"]]
    assert kinds.count("talk_over") == 2


def test_readable_report(call_wav):
    out = callwatch(str(call_wav))
    assert out.returncode == 0, out.stderr
    assert "talk-over 2" in out.stdout and "talk_over" in out.stdout


def test_swapped_channels_swap_the_initiators(call_wav):
    a = json.loads(callwatch(str(call_wav), "--json").stdout)
    b = json.loads(callwatch(str(call_wav), "--json", "--agent-channel", "1",
                             "--customer-channel", "0").stdout)
    assert a["talk_over"]["by_agent"] == b["talk_over"]["by_customer"]
    assert a["agent"] == b["customer"]


def test_two_mono_files_at_different_rates(tmp_path, call_wav):
    data, rate = sf.read(call_wav, dtype="float32")
    sf.write(tmp_path / "a.wav", data[:, 0], rate, subtype="PCM_16")
    # The customer side as a 48 kHz float file: both are resampled to the analysis rate.
    up = np.repeat(data[:, 1], 3)
    sf.write(tmp_path / "c.wav", up, 48000, subtype="FLOAT")
    out = callwatch("--agent", str(tmp_path / "a.wav"), "--customer", str(tmp_path / "c.wav"),
                    "--json")
    assert out.returncode == 0, out.stderr
    report = json.loads(out.stdout)
    jsonschema.validate(report, SCHEMA)
    assert report["talk_over"]["count"] >= 1


def _bad_files(tmp: Path, good: Path) -> dict[str, tuple[Path, str]]:
    """Each bad file and a fragment its error message must contain."""
    empty = tmp / "empty.wav"
    empty.write_bytes(b"")
    truncated = tmp / "truncated.wav"
    truncated.write_bytes(good.read_bytes()[: 44 + 16000])
    corrupt = tmp / "corrupt.wav"
    corrupt.write_bytes(b"RIFF\x00\x00\x00\x00WAVEjunkjunkjunk" * 10)
    text = tmp / "notes.wav"
    text.write_text("this is not audio\n" * 50)
    mono = tmp / "mono.wav"
    with wave.open(str(mono), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(16000)
        w.writeframes(b"\x00\x00" * 16000)
    header_only = tmp / "header.wav"
    with wave.open(str(header_only), "wb") as w:
        w.setnchannels(2)
        w.setsampwidth(2)
        w.setframerate(16000)
    return {
        "missing": (tmp / "nope.wav", "no such file"),
        "empty": (empty, "empty"),
        "truncated": (truncated, "truncated"),
        "corrupt": (corrupt, "corrupt"),
        "not audio": (text, "cannot decode"),
        "mono": (mono, "--agent"),
        "no frames": (header_only, "no audio"),
    }


def test_each_bad_file_gets_one_clear_line_and_exit_2(tmp_path, call_wav):
    for name, (path, fragment) in _bad_files(tmp_path, call_wav).items():
        out = callwatch(str(path), "--json")
        assert out.returncode == 2, (name, out.stdout, out.stderr)
        lines = out.stderr.strip().splitlines()
        assert len(lines) == 1, (name, out.stderr)
        assert str(path) in lines[0] and fragment in lines[0], (name, lines[0])
        assert "Traceback" not in out.stderr


def test_channel_out_of_range(call_wav):
    out = callwatch(str(call_wav), "--customer-channel", "5")
    assert out.returncode == 2
    assert "out of range" in out.stderr and "2 channel(s)" in out.stderr


def test_batch_goes_on_after_bad_files_and_lists_them(tmp_path, call_wav):
    bad = _bad_files(tmp_path, call_wav)
    files = [str(call_wav), str(bad["truncated"][0]), str(call_wav), str(bad["missing"][0])]
    out = callwatch(*files, "--json")
    assert out.returncode == 2
    reports = [json.loads(line) for line in out.stdout.splitlines()]
    assert len(reports) == 2
    for r in reports:
        jsonschema.validate(r, SCHEMA)
    assert "2 of 4 file(s) failed" in out.stderr
    assert out.stderr.count("truncated") >= 2 and str(bad["missing"][0]) in out.stderr


def test_usage_errors(call_wav, tmp_path):
    assert callwatch().returncode == 2
    out = callwatch("--agent", str(call_wav))
    assert out.returncode == 2 and "--customer" in out.stderr
    out = callwatch(str(call_wav), "--agent-channel", "1", "--customer-channel", "1")
    assert out.returncode == 2 and "must differ" in out.stderr


def test_daemon_package_is_ours():
    import daemon

    assert Path(daemon.__file__).resolve().parent == ROOT / "daemon"


def test_bundled_sample_call_talk_overs_match_its_truth():
    sample = ROOT / "samples" / "sample-call.wav"
    truth = json.loads((ROOT / "samples" / "sample-call.truth.json").read_text())
    out = callwatch(str(sample), "--json")
    assert out.returncode == 0, out.stderr
    report = json.loads(out.stdout)
    jsonschema.validate(report, SCHEMA)
    found = [e for e in report["events"] if e["kind"] == "talk_over"]
    assert len(found) == len(truth["talk_overs"])
    for got, want in zip(found, truth["talk_overs"], strict=True):
        assert got["initiator"] == want["initiator"]
        assert abs(got["start_s"] - want["start_s"]) < 0.3
        assert abs(got["end_s"] - want["end_s"]) < 0.3


def test_progress_bar_only_on_a_terminal(call_wav):
    import fcntl
    import os
    import pty
    import struct
    import termios

    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 80, 0, 0))
    try:
        proc = subprocess.run(
            [sys.executable, "-m", "daemon.cli", "analyze", str(call_wav), str(call_wav),
             "--json"], stdout=subprocess.PIPE, stderr=slave, cwd=ROOT, timeout=120)
        os.close(slave)
        tty = b""
        while True:
            try:
                chunk = os.read(master, 4096)
            except OSError:
                break
            if not chunk:
                break
            tty += chunk
    finally:
        os.close(master)
    assert proc.returncode == 0
    assert len(proc.stdout.splitlines()) == 2
    assert b"2/2" in tty  # the bar reached the end on the terminal
    piped = callwatch(str(call_wav), str(call_wav), "--json")
    assert piped.stderr == ""  # no bar when stderr is not a terminal


def test_thresholds_from_a_config_file(tmp_path, call_wav):
    bad = tmp_path / "bad.toml"
    bad.write_text("[detectors]\nmin_overlap_s = -1\n")
    out = callwatch(str(call_wav), "--config", str(bad))
    assert out.returncode == 2
    assert str(bad) in out.stderr and "min_overlap_s" in out.stderr and "between" in out.stderr
    strict = tmp_path / "strict.toml"
    strict.write_text("[detectors]\nmin_overlap_s = 5.0\n")  # longer than any overlap here
    out = callwatch(str(call_wav), "--config", str(strict), "--json")
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["talk_over"]["count"] == 0
