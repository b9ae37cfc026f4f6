"""`callwatch analyze` end to end: the JSON contract, batches and every kind of bad input."""

from __future__ import annotations

import errno
import json
import os
import re
import shutil
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


def test_acoustic_shocks_report_the_measure_that_crossed_their_threshold(tmp_path):
    """The sample call turned up 20 dB in a float file (samples far past full scale): every
    acoustic_shock names its threshold after the measure it bounds (a click's sample peak, a
    burst's or a tone's level) and that measure is at or above it, in the JSON and the
    readable report alike."""
    x, rate = sf.read(ROOT / "samples" / "sample-call.wav", dtype="float32", frames=8 * 16000)
    loud = tmp_path / "loud.wav"
    sf.write(loud, x * 10.0, rate, subtype="FLOAT")
    out = callwatch(str(loud), "--json")
    assert out.returncode == 0, out.stderr
    shocks = [e for e in json.loads(out.stdout)["events"] if e["kind"] == "acoustic_shock"]
    assert {e["trigger"] for e in shocks} >= {"click", "tone"}
    for e in shocks:
        measure, limit = (("peak_dbfs", "threshold_peak_dbfs") if e["trigger"] == "click"
                          else ("level_dbfs", "threshold_dbfs"))
        # Every shock keeps threshold_dbfs (the contract only adds fields); clicks add theirs.
        assert "threshold_dbfs" in e, e
        assert ("threshold_peak_dbfs" in e) == (e["trigger"] == "click"), e
        assert e[measure] >= e[limit], e
    text = callwatch(str(loud)).stdout
    clicks = [line for line in text.splitlines() if "trigger=click" in line]
    assert clicks and all("threshold_peak_dbfs=-0.10" in line for line in clicks), clicks


def test_readable_report(call_wav, tmp_path):
    out = callwatch(str(call_wav))
    assert out.returncode == 0, out.stderr
    assert "talk-over 2" in out.stdout and "talk_over" in out.stdout
    # Whether silero checked talk-overs in noise, as the JSON's talk_over.noise_check says.
    assert "silero's check in noise on" in out.stdout
    cfg = tmp_path / "no-check.toml"
    cfg.write_text('[detectors]\nconfirm_vad = "none"\n')
    out = callwatch("--config", str(cfg), str(call_wav))
    assert out.returncode == 0, out.stderr
    assert "silero's check in noise off" in out.stdout


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


@pytest.fixture(scope="module")
def sides(call_wav, tmp_path_factory) -> tuple[Path, Path, Path]:
    """The call's agent and customer as mono files, and the customer cut to its first 10 s."""
    data, rate = sf.read(call_wav, dtype="float32")
    tmp = tmp_path_factory.mktemp("sides")
    sf.write(tmp / "a.wav", data[:, 0], rate, subtype="PCM_16")
    sf.write(tmp / "c.wav", data[:, 1], rate, subtype="PCM_16")
    sf.write(tmp / "c10.wav", data[: 10 * rate, 1], rate, subtype="PCM_16")
    return tmp / "a.wav", tmp / "c.wav", tmp / "c10.wav"


def test_two_files_of_different_lengths_say_which_is_shorter_and_what_was_analysed(sides):
    agent, _, short = sides
    out = callwatch("--agent", str(agent), "--customer", str(short), "--json")
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["duration_s"] == 10.0
    (line,) = out.stderr.splitlines()
    assert line.startswith(f"callwatch analyze: warning: {agent} + {short}: "), line
    assert f"the customer side ({short}, 10.0 s) is 14.0 s shorter than the agent side " \
           "(24.0 s)" in line, line
    assert "only the first 10.0 s of the call are analysed" in line, line
    out = callwatch("--agent", str(short), "--customer", str(agent), "--json")
    assert out.returncode == 0, out.stderr
    assert "the agent side" in out.stderr and "the customer's last 14.0 s" in out.stderr


def test_two_files_a_fraction_of_a_second_apart_need_no_warning(sides, tmp_path):
    agent, customer, _ = sides
    data, rate = sf.read(customer, dtype="float32")
    sf.write(tmp_path / "c.wav", data[: -rate // 2], rate, subtype="PCM_16")
    out = callwatch("--agent", str(agent), "--customer", str(tmp_path / "c.wav"), "--json")
    assert out.returncode == 0 and out.stderr == "", out.stderr


def test_one_mono_file_as_both_sides_is_refused(sides, tmp_path):
    agent, _, _ = sides
    link = tmp_path / "same.wav"
    link.symlink_to(agent)
    for customer in (agent, link):
        out = callwatch("--agent", str(agent), "--customer", str(customer))
        assert out.returncode == 2 and out.stdout == "", out
        (line,) = out.stderr.splitlines()
        assert f"{agent} is both --agent and --customer (channel 0 for both)" in line, line
        assert "agent's own voice" in line and "Traceback" not in out.stderr


def test_a_multichannel_customer_file_names_the_channel_used_and_how_to_pick(sides, call_wav):
    agent, _, _ = sides
    out = callwatch("--agent", str(agent), "--customer", str(call_wav), "--json")
    assert out.returncode == 0, out.stderr
    line, same = out.stderr.splitlines()
    assert line == (f"callwatch analyze: warning: {call_wav}: 2 channels; analysing channel 0 "
                    "as the customer; pick another with --customer-channel N (0..1)")
    # Channel 0 is the agent: the same voice on both sides, which the report says too.
    assert "the agent and customer sides are identical, sample for sample" in same
    stereo = json.loads(callwatch(str(call_wav), "--json").stdout)
    out = callwatch("--agent", str(agent), "--customer", str(call_wav), "--customer-channel",
                    "1", "--json")
    assert out.returncode == 0 and out.stderr == "", out.stderr
    assert json.loads(out.stdout)["customer"] == stereo["customer"]


def test_a_channel_a_mono_side_lacks_is_out_of_range(sides):
    agent, customer, _ = sides
    out = callwatch("--agent", str(agent), "--customer", str(customer), "--customer-channel", "1")
    assert out.returncode == 2
    (line,) = out.stderr.splitlines()
    assert f"{customer}: --customer-channel 1 is out of range: the file has 1 channel(s)" in line


def _bad_files(tmp: Path, good: Path) -> dict[str, tuple[Path, str, str]]:
    """Each bad file, a fragment its error message must contain and its ``--json`` code."""
    empty = tmp / "empty.wav"
    empty.write_bytes(b"")
    truncated = tmp / "truncated.wav"  # cut after 0.25 s: read, but too short to analyse
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
        "missing": (tmp / "nope.wav", "no such file", "not_found"),
        "empty": (empty, "empty", "empty"),
        "truncated": (truncated, "too short to analyse: 0.250 s (4000 sample(s)); a call "
                                 "needs at least 1 s", "too_short"),
        "corrupt": (corrupt, "corrupt", "corrupt"),
        "not audio": (text, "convert anything else first, e.g. ffmpeg -i IN OUT.wav",
                      "not_audio"),
        "mono": (mono, "--agent", "channels"),
        "no frames": (header_only, "no audio frames (a header only): the recorder saved "
                                   "nothing; take the call from the recorder again", "empty"),
    }


def test_each_bad_file_gets_one_clear_line_and_exit_2(tmp_path, call_wav):
    for name, (path, fragment, code) in _bad_files(tmp_path, call_wav).items():
        out = callwatch(str(path), "--json")
        assert out.returncode == 2, (name, out.stdout, out.stderr)
        lines = out.stderr.strip().splitlines()
        assert len(lines) == 1, (name, out.stderr)
        assert str(path) in lines[0] and fragment in lines[0], (name, lines[0])
        assert "Traceback" not in out.stderr
        # stdout holds the same problem as the file's one JSON line, with its code.
        (line,) = out.stdout.splitlines()
        failed = json.loads(line)
        jsonschema.validate(failed, SCHEMA)
        assert failed == {"file": str(path), "schema": "callwatch.analysis/1",
                          "error": {"code": code,
                                    "message": lines[0].removeprefix("callwatch analyze: ")}}
        assert callwatch(str(path)).stdout == ""  # the text report stays reports only


def _error_form(report: dict[str, object]) -> bool:
    """Whether a ``--json`` line is a failed file's (checked against the schema first)."""
    jsonschema.validate(report, SCHEMA)
    return "error" in report


def test_json_gives_every_file_its_line_in_order_a_failed_one_the_error_form(tmp_path,
                                                                             call_wav):
    bad = _bad_files(tmp_path, call_wav)["not audio"][0]
    files = [str(call_wav), str(bad), str(call_wav)]
    for jobs in ("1", "3"):
        out = callwatch(*files, "--json", "--jobs", jobs)
        assert out.returncode == 2, out.stderr
        lines = [json.loads(line) for line in out.stdout.splitlines()]
        assert [r["file"] for r in lines] == files
        assert [_error_form(r) for r in lines] == [False, True, False]
        assert lines[0] == lines[2] and lines[0]["duration_s"] > 20
        assert lines[1]["schema"] == lines[0]["schema"] == "callwatch.analysis/1"
        assert lines[1]["error"]["code"] == "not_audio"
        assert "ffmpeg" in lines[1]["error"]["message"]
        assert "1 of 3 file(s) failed" in out.stderr


def test_the_schema_tells_the_two_forms_apart():
    """An error line is not a report and a report is not an error line: a script can check
    which it holds, and the codes the schema lists are the ones the reader gives."""
    from typing import get_args

    from daemon.audiofile import ErrorCode

    failed = {"file": "a.wav", "schema": "callwatch.analysis/1",
              "error": {"code": "corrupt", "message": "a.wav: ..."}}
    jsonschema.validate(failed, SCHEMA)
    for broken in ({**failed, "error": {"message": "no code"}},
                   {**failed, "error": {"code": "no such code", "message": "m"}},
                   {k: v for k, v in failed.items() if k != "file"},
                   {**failed, "duration_s": 1.0, "sample_rate_hz": 16000, "agent": {},
                    "customer": {}, "talk_over": {}, "events": []}):
        with pytest.raises(jsonschema.ValidationError):
            jsonschema.validate(broken, SCHEMA)
    codes = SCHEMA["properties"]["error"]["properties"]["code"]["enum"]
    assert sorted(codes) == sorted(get_args(ErrorCode))


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
    assert [_error_form(r) for r in reports] == [False, True, False, True]
    assert "2 of 4 file(s) failed" in out.stderr
    assert out.stderr.count("too short") == 2 and out.stderr.count("no such file") == 2


def test_a_folder_is_every_recording_under_it_in_name_order(tmp_path, call_wav):
    """A recorder's tree: days, then queues; notes, hidden uploads and a link back up the
    tree are not calls. Files given by name keep their place among the folders."""
    tree = tmp_path / "recordings"
    for rel in ("2026-12-08/q2/b.WAV", "2026-12-08/q1/c.flac", "2026-12-07/a.wav",
                "2026-12-07/.upload.wav", ".trash/old.wav"):
        (tree / rel).parent.mkdir(parents=True, exist_ok=True)
        data, rate = sf.read(call_wav)
        sf.write(tree / rel, data, rate, format="FLAC" if rel.endswith("flac") else "WAV")
    (tree / "2026-12-07" / "notes.txt").write_text("agent was new\n")
    (tree / "2026-12-08" / "back").symlink_to(tree)
    out = callwatch(str(tree), str(call_wav), "--json", "-j", "2")
    assert out.returncode == 0, out.stderr
    files = [json.loads(line)["file"] for line in out.stdout.splitlines()]
    assert files == [str(tree / "2026-12-07/a.wav"), str(tree / "2026-12-08/q1/c.flac"),
                     str(tree / "2026-12-08/q2/b.WAV"), str(call_wav)]


def test_a_folder_without_recordings_is_refused_before_any_analysis(tmp_path, call_wav):
    (tmp_path / "empty" / "sub").mkdir(parents=True)
    (tmp_path / "empty" / "sub" / "notes.txt").write_text("no calls today\n")
    out = callwatch(str(call_wav), str(tmp_path / "empty"), "--json")
    assert out.returncode == 2 and out.stdout == ""
    (line,) = out.stderr.splitlines()
    assert line.startswith(f"callwatch analyze: {tmp_path / 'empty'}: no recordings in this "
                           "folder or below it (looked for .aif, ")


def test_a_subfolder_that_cannot_be_listed_stops_the_batch(tmp_path, call_wav, monkeypatch):
    """Half a tree analysed would read as the whole of it. The tests run as root, which lists
    any folder, so the refusal another user meets is put into the walk's listing call."""
    from daemon.analyze import expand_dirs
    from daemon.audiofile import AudioFileError

    tree = tmp_path / "recordings"
    (tree / "2026-12-07").mkdir(parents=True)
    (tree / "2026-12-08").mkdir()
    shutil.copy(call_wav, tree / "2026-12-07" / "a.wav")
    locked = str(tree / "2026-12-08")
    real = os.scandir

    def scandir(path: str = ".") -> object:
        if os.fspath(path) == locked:
            raise PermissionError(errno.EACCES, "Permission denied", locked)
        return real(path)

    assert expand_dirs([str(tree)]) == [str(tree / "2026-12-07" / "a.wav")]
    monkeypatch.setattr(os, "scandir", scandir)
    with pytest.raises(AudioFileError) as refused:
        expand_dirs([str(tree)])
    assert str(refused.value) == (f"{locked}: cannot list this folder (Permission denied); "
                                  "make it readable (chmod o+rx) or leave it out")


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


# -- batches in worker processes ------------------------------------------------------------


def test_jobs_give_the_serial_output_in_argument_order(tmp_path, call_wav):
    bad = _bad_files(tmp_path, call_wav)
    sample = ROOT / "samples" / "sample-call.wav"
    files = [str(call_wav), str(sample), str(bad["truncated"][0]), str(call_wav), str(sample)]
    for fmt in (["--json"], []):
        serial = callwatch(*files, *fmt, "--jobs", "1")
        parallel = callwatch(*files, *fmt, "--jobs", "3")
        assert serial.returncode == parallel.returncode == 2
        assert parallel.stdout == serial.stdout
        assert parallel.stderr == serial.stderr
        assert "1 of 5 file(s) failed" in serial.stderr
    lines = [json.loads(line) for line in callwatch(*files, "--json", "-j", "2")
             .stdout.splitlines()]
    assert [r["file"] for r in lines] == files
    assert ["error" in r for r in lines] == [False, False, True, False, False]
    # The text reports of the four calls, one blank line between each two.
    reports = serial.stdout.split("\n\n")
    assert [r.split(":", 1)[0] for r in reports] == [files[0], files[1], files[3], files[4]]


@pytest.mark.parametrize("value", ["0", "-1", "x", "1.5"])
def test_a_bad_jobs_value_is_a_usage_error(call_wav, value):
    out = callwatch(str(call_wav), f"--jobs={value}")
    assert out.returncode == 2
    assert "--jobs" in out.stderr and "1 or more" in out.stderr and "Traceback" not in out.stderr
    assert out.stdout == ""


# -- files the operating system refuses -----------------------------------------------------

NOBODY = 65534


def _run_as_nobody(argv: list[str], warm_up: str) -> subprocess.CompletedProcess[str]:
    """Run ``callwatch argv`` as an unprivileged user, so file permissions really apply.

    Root reads any file, and the interpreter lives where only root may look, so Python starts
    as root, imports what the command needs (by analysing ``warm_up``), then drops to nobody.
    """
    code = (
        "import os, sys, contextlib, io\n"
        "from daemon.analyze import analyze_call\n"
        "from daemon.audiofile import CallSource\n"
        "import daemon.cli, daemon.run, daemon.replay, daemon.logjson, daemon.config\n"
        "with contextlib.redirect_stdout(io.StringIO()):\n"
        f"    analyze_call(CallSource({warm_up!r}, {warm_up!r}))\n"
        f"os.setgroups([]); os.setgid({NOBODY}); os.setuid({NOBODY})\n"
        f"sys.exit(daemon.cli.main({argv!r}))\n"
    )
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          cwd=ROOT, timeout=120, env=_home(Path(warm_up).parent))


def _home(home: Path) -> dict[str, str]:
    """The environment with a home directory the unprivileged user may read."""
    import os

    return {**os.environ, "HOME": str(home), "XDG_CONFIG_HOME": str(home / ".config")}


@pytest.fixture
def locked_call(call_wav):
    """(a readable call, a call this user may not read), in a directory anyone may enter."""
    import os
    import shutil
    import tempfile

    base = Path(tempfile.mkdtemp(prefix="callwatch-perm-"))
    base.chmod(0o755)
    good = base / "good.wav"
    shutil.copy(call_wav, good)
    good.chmod(0o644)
    locked = base / "locked.wav"
    shutil.copy(call_wav, locked)
    locked.chmod(0o000)
    try:
        yield good, locked
    finally:
        os.chmod(locked, 0o644)
        shutil.rmtree(base)


def _as_user(argv: list[str], good: Path) -> subprocess.CompletedProcess[str]:
    import os

    if os.geteuid() == 0:
        return _run_as_nobody(argv, str(good))
    return subprocess.run([sys.executable, "-m", "daemon.cli", *argv], capture_output=True,
                          text=True, cwd=ROOT, timeout=120, env=_home(good.parent))


def test_an_unreadable_file_is_one_line_and_the_batch_goes_on(locked_call):
    good, locked = locked_call
    out = _as_user(["analyze", str(good), str(locked), str(good), "--json", "--jobs", "1"], good)
    assert out.returncode == 2, out.stderr
    assert "Traceback" not in out.stderr
    lines = [json.loads(line) for line in out.stdout.splitlines()]
    # The file after the unreadable one was analysed; the unreadable one has its error line.
    assert [r["file"] for r in lines] == [str(good), str(locked), str(good)]
    assert [_error_form(r) for r in lines] == [False, True, False]
    assert lines[1]["error"]["code"] == "permission"
    first = out.stderr.splitlines()[0]
    assert str(locked) in first and "permission denied" in first and "chmod" in first
    assert lines[1]["error"]["message"] == first.removeprefix("callwatch analyze: ")
    assert "1 of 3 file(s) failed" in out.stderr


def test_replay_of_an_unreadable_file_says_permission_not_portaudio(locked_call):
    good, locked = locked_call
    out = _as_user(["run", "--replay", str(locked)], good)
    assert out.returncode == 2, out.stderr
    assert "permission denied" in out.stderr and str(locked) in out.stderr
    assert "libportaudio2" not in out.stderr and "Traceback" not in out.stderr


def test_file_names_that_are_not_utf8_are_printed_escaped(tmp_path, call_wav):
    import os

    raw = os.fsencode(tmp_path) + b"/call-\xff.wav"
    with open(raw, "wb") as f:
        f.write(call_wav.read_bytes())
    missing = os.fsencode(tmp_path) + b"/gone-\xfe.wav"
    out = subprocess.run([sys.executable, "-m", "daemon.cli", "analyze", raw, missing,
                          str(call_wav), "--json"], capture_output=True, cwd=ROOT, timeout=120)
    stdout, stderr = out.stdout.decode(), out.stderr.decode()
    assert out.returncode == 2, stderr
    assert "Traceback" not in stderr
    files = [json.loads(line)["file"] for line in stdout.splitlines()]
    assert files == [f"{tmp_path}/call-\\xff.wav", f"{tmp_path}/gone-\\xfe.wav", str(call_wav)]
    assert f"{tmp_path}/gone-\\xfe.wav: no such file" in stderr.splitlines()[0]


def test_a_fifo_is_not_a_regular_file(tmp_path, call_wav):
    import os

    fifo = tmp_path / "pipe.wav"
    os.mkfifo(fifo)
    out = callwatch(str(fifo), str(call_wav), "--json")
    assert out.returncode == 2
    first = out.stderr.splitlines()[0]
    assert str(fifo) in first and "not a regular file" in first and "FIFO" in first
    assert "empty" not in first
    assert [json.loads(line).get("error", {}).get("code") for line in out.stdout.splitlines()
            ] == ["unreadable", None]


# -- files with something wrong inside -----------------------------------------------------


def _zero_data_size(good: Path, out: Path) -> None:
    """The file a recorder leaves when it dies before writing the sizes into the header."""
    data = bytearray(good.read_bytes())
    pos = data.index(b"data")
    data[pos + 4 : pos + 8] = b"\x00\x00\x00\x00"
    data[4:8] = b"\x00\x00\x00\x00"
    out.write_bytes(bytes(data))


def test_a_wav_whose_data_size_is_zero_is_read_with_a_warning(tmp_path, call_wav):
    crashed = tmp_path / "crashed.wav"
    _zero_data_size(call_wav, crashed)
    want = json.loads(callwatch(str(call_wav), "--json").stdout)
    out = callwatch(str(crashed), "--json")
    assert out.returncode == 0, out.stderr
    got = json.loads(out.stdout)
    assert got["file"] == str(crashed)
    assert {**got, "file": None, "warnings": []} == {**want, "file": None}
    lines = out.stderr.splitlines()
    assert len(lines) == 1 and "warning" in lines[0] and str(crashed) in lines[0]
    assert "0 bytes of audio" in lines[0]
    assert got["warnings"] == [lines[0].removeprefix("callwatch analyze: warning: ")]


def test_a_truncated_wav_is_analysed_as_far_as_it_goes_with_a_warning(tmp_path):
    """The sample call cut mid-way through its audio, and mid-way through a sample frame (an
    interrupted copy): the report is that of the part present, as if it had been saved whole,
    and says that the file ends early and the report covers only that part."""
    sample = ROOT / "samples" / "sample-call.wav"
    data = sample.read_bytes()
    info = sf.info(sample)
    frame_bytes = info.channels * 2  # PCM_16
    audio_at = data.index(b"data") + 8
    cut = audio_at + (len(data) - audio_at) // 2 + 3  # three bytes into a frame
    truncated = tmp_path / "cut.wav"
    truncated.write_bytes(data[:cut])
    frames = (cut - audio_at) // frame_bytes
    part = tmp_path / "part.wav"  # the same audio, saved whole
    sf.write(part, sf.read(sample, frames=frames, dtype="int16")[0], info.samplerate,
             subtype="PCM_16")

    out = callwatch(str(truncated), "--json")
    assert out.returncode == 0, out.stderr
    got = json.loads(out.stdout)
    jsonschema.validate(got, SCHEMA)
    want = json.loads(callwatch(str(part), "--json").stdout)
    assert got["duration_s"] == pytest.approx(frames / info.samplerate, abs=0.01)
    assert got["duration_s"] < info.duration - 10
    assert {**got, "file": None, "warnings": []} == {**want, "file": None}
    (warning,) = got["warnings"]
    present = f"{frames / info.samplerate:.1f} s"
    assert warning.startswith(f"{truncated}: truncated WAV: the file ends early")
    assert f"after {present} of audio" in warning
    assert f"declares {info.duration:.1f} s" in warning
    assert f"covers only those {present}" in warning
    assert out.stderr == f"callwatch analyze: warning: {warning}\n"
    text = callwatch(str(truncated))
    assert text.returncode == 0 and text.stderr == ""
    assert f"  warning  truncated WAV: the file ends early, after {present}" in text.stdout


def test_an_all_nan_float_file_is_an_error(tmp_path):
    nan = tmp_path / "nan.wav"
    sf.write(nan, np.full((32000, 2), np.nan, dtype=np.float32), 16000, subtype="FLOAT")
    out = callwatch(str(nan), "--json")
    assert out.returncode == 2, out.stdout
    assert json.loads(out.stdout)["error"]["code"] == "corrupt"
    lines = out.stderr.splitlines()
    assert len(lines) == 1 and str(nan) in lines[0] and "NaN" in lines[0]


@pytest.mark.parametrize("frames", [1, 15999])
def test_a_file_shorter_than_a_second_is_too_short(tmp_path, frames):
    short = tmp_path / "short.wav"
    sf.write(short, np.zeros((frames, 2), dtype=np.float32), 16000, subtype="PCM_16")
    out = callwatch(str(short))
    assert out.returncode == 2
    lines = out.stderr.splitlines()
    assert len(lines) == 1 and str(short) in lines[0] and "too short" in lines[0]


def test_readable_report_lists_events_apart_with_precise_thresholds(tmp_path, call_wav):
    data, rate = sf.read(call_wav, dtype="float32")
    data[:, 0] = np.clip(data[:, 0] * 40, -1.0, 1.0)  # a heavily clipped agent
    loud = tmp_path / "clipped.wav"
    sf.write(loud, data, rate, subtype="PCM_16")
    out = callwatch(str(loud))
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    talk = next(i for i, line in enumerate(lines) if line.startswith("  talk-over "))
    assert lines[talk + 1].startswith("  events ")
    events = lines[talk + 2 :]
    assert events and all(line.startswith("    ") and line[4] != " " for line in events)
    clipping = [line for line in events if " clipping" in line]
    assert clipping and all("threshold_ratio=0.001" in line for line in clipping)
    assert "=0.0," not in out.stdout and not out.stdout.rstrip().endswith("=0.0")



def test_a_file_of_more_than_two_channels_says_which_two_are_analysed(tmp_path):
    x = (0.1 * np.random.default_rng(1).standard_normal((16000 * 3, 4))).astype(np.float32)
    four = tmp_path / "four.wav"
    sf.write(four, x, 16000)
    out = callwatch(str(four), "--json")
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["warnings"] == [
        f"{four}: 4 channels; analysing channel 0 as the agent and 1 as the customer, the rest "
        "ignored; pick others with --agent-channel N and --customer-channel N (0..3)"]


def test_readable_report_names_dead_air_as_a_reader_knows_it():
    out = callwatch(str(ROOT / "samples" / "sample-call.wav"))
    assert out.returncode == 0, out.stderr
    assert re.search(r"^    18\.\d\d-24\.\d\d s  silence \(dead air\)  duration_s=", out.stdout,
                     re.M), out.stdout


@pytest.mark.parametrize("two_files", [False, True])
def test_16_bit_wav_is_read_as_libsndfile_scales_it(tmp_path, two_files):
    """16-bit PCM WAV is read as int16 and scaled once: the blocks are bit for bit the
    float32 samples libsndfile itself gives, full scale included, stereo or two mono files."""
    from daemon.audiofile import CallReader, CallSource

    rng = np.random.default_rng(5)
    pcm = rng.integers(-32768, 32768, size=(16000 * 23 + 7, 2), dtype=np.int16)
    pcm[:2] = [[-32768, 32767], [32767, -32768]]
    if two_files:
        paths = [tmp_path / "a.wav", tmp_path / "c.wav"]
        for path, column in zip(paths, pcm.T, strict=True):
            sf.write(path, column, 16000, subtype="PCM_16")
        source = CallSource(str(paths[0]), str(paths[1]), 0, 0)
        want = [sf.read(path, dtype="float32")[0] for path in paths]
    else:
        path = tmp_path / "call.wav"
        sf.write(path, pcm, 16000, subtype="PCM_16")
        source = CallSource(str(path), str(path), 1, 0)  # swapped, to check the columns
        both = sf.read(path, dtype="float32")[0]
        want = [both[:, 1], both[:, 0]]
    with CallReader(source) as reader:
        assert {reader._dtype(f) for f in reader._files} == {"int16"}
        blocks = list(reader.blocks())
    for got, expected in zip(zip(*blocks, strict=True), want, strict=True):
        assert all(b.dtype == np.float32 for b in got)
        assert np.array_equal(np.concatenate(got), expected)


def test_a_copied_or_an_empty_side_is_reported_as_a_warning(tmp_path):
    """A mono recording saved as stereo (one voice on both sides) and an all-zero channel are
    analysed, with one warning line each naming the file and what to do; a real call gets
    none."""
    rng = np.random.default_rng(4)
    x = (0.1 * rng.standard_normal(16000 * 3)).astype(np.float32)
    same, empty = tmp_path / "same.wav", tmp_path / "empty-customer.wav"
    sf.write(same, np.stack([x, x], 1), 16000, subtype="PCM_16")
    sf.write(empty, np.stack([x, 0 * x], 1), 16000, subtype="PCM_16")
    out = callwatch(str(same), str(empty), "--json", "--jobs", "1")
    assert out.returncode == 0, out.stderr
    lines = out.stderr.splitlines()
    assert len(lines) == 2, lines
    assert lines[0].startswith(f"callwatch analyze: warning: {same}: the agent and customer "
                               "sides are identical, sample for sample")
    assert lines[1] == (f"callwatch analyze: warning: {empty}: the customer side is digital "
                        "silence from start to end (every sample 0): an empty channel, or "
                        "pick another with --customer-channel N")
    # The JSON report carries them too: a batch's reports file says which calls to doubt.
    reports = [json.loads(line) for line in out.stdout.splitlines()]
    assert [r["warnings"] for r in reports] == [
        [lines[0].removeprefix("callwatch analyze: warning: ")],
        [lines[1].removeprefix("callwatch analyze: warning: ")]]
    clean = callwatch(str(ROOT / "samples" / "sample-call.wav"), "--json")
    assert clean.stderr == "" and json.loads(clean.stdout)["warnings"] == []
    # A text report holds its warnings (a report saved to a file keeps them), not stderr.
    text = callwatch(str(same), "--jobs", "1")
    assert text.returncode == 0 and text.stderr == "", text.stderr
    assert text.stdout.splitlines()[1] == "  warning  " + reports[0]["warnings"][0].removeprefix(
        f"{same}: ")
