"""``callwatch check`` refusing input it cannot use, before any device is opened (no sound
server needed): one line on stderr naming the file and the fix, exit 2 as for every command,
and under ``--json`` one ``callwatch.check/1`` object saying so. Real subprocesses."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import jsonschema
import pytest

from daemon.command import EXIT_BAD_INPUT

ROOT = Path(__file__).resolve().parents[2]
SCHEMA = json.loads((ROOT / "daemon" / "check.schema.json").read_text())


def check(*args: str, tmp_path: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "XDG_CONFIG_HOME": str(tmp_path / "config"),
           "XDG_RUNTIME_DIR": str(tmp_path / "run"), "XDG_STATE_HOME": str(tmp_path / "state")}
    return subprocess.run([sys.executable, "-m", "daemon.cli", "check", "--non-interactive",
                           *args], capture_output=True, text=True, timeout=60, env=env,
                          cwd=ROOT, stdin=subprocess.DEVNULL)


def _missing(tmp_path: Path) -> Path:
    return tmp_path / "no-such-sentence.wav"


def _not_audio(tmp_path: Path) -> Path:
    path = tmp_path / "notes.wav"
    path.write_text("these are not samples\n")
    return path


@pytest.mark.parametrize(("make", "problem"), [
    (_missing, "no such file; check the path"),
    (_not_audio, "cannot decode audio (Format not recognised); supported: WAV"),
])
@pytest.mark.parametrize("as_json", [False, True])
def test_an_unusable_speech_file_is_named_with_the_fix(tmp_path, make, problem, as_json):
    path = make(tmp_path)
    out = check("--speech", str(path), *(["--json"] if as_json else []), tmp_path=tmp_path)
    line = f"--speech {path}: {problem}"
    assert out.returncode == EXIT_BAD_INPUT
    assert out.stderr.startswith(f"callwatch check: {line}") and out.stderr.count("\n") == 1
    assert "Error opening" not in out.stderr  # libsndfile's own words
    if as_json:
        result = json.loads(out.stdout)
        jsonschema.validate(result, SCHEMA)
        assert result["result"] == "error" and result["exit_code"] == EXIT_BAD_INPUT
        assert result["error"].startswith(line) and result["items"] == []
    else:
        assert out.stdout == ""
    assert not (tmp_path / "state").exists()  # nothing measured: no result saved


def test_a_bad_config_under_json_is_an_error_object_too(tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text("[detectors]\nmin_overlap_s = -1\n")
    out = check("--config", str(bad), "--json", tmp_path=tmp_path)
    assert out.returncode == EXIT_BAD_INPUT
    result = json.loads(out.stdout)
    jsonschema.validate(result, SCHEMA)
    assert result["result"] == "error" and "min_overlap_s" in result["error"]
    assert out.stderr == f"callwatch check: {result['error']}\n"


@pytest.mark.parametrize(("args", "error"), [
    (("--silence-s", "abc"), "argument --silence-s: invalid float value: 'abc'"),
    (("--bogus",), "unrecognized arguments: --bogus"),
])
def test_a_flag_argparse_refuses_is_a_json_object_too(tmp_path, args, error):
    """Fleet scripts read stdout: a flag of the wrong type gives the same error object as a
    value out of range, with the usage still on stderr."""
    out = check("--json", *args, tmp_path=tmp_path)
    assert out.returncode == EXIT_BAD_INPUT
    result = json.loads(out.stdout)
    jsonschema.validate(result, SCHEMA)
    assert (result["result"], result["exit_code"], result["error"]) == ("error", 2, error)
    assert out.stderr.startswith("usage: callwatch check ") and error in out.stderr
    plain = check(*args, tmp_path=tmp_path)
    assert plain.returncode == EXIT_BAD_INPUT and plain.stdout == ""


def test_a_speech_file_cut_short_is_played_as_far_as_it_goes_with_a_warning(tmp_path):
    """The reader's warning reaches the user; the file is not refused (the next check, an
    out-of-range sensitivity, is what stops this run before any device is opened)."""
    whole = (ROOT / "samples" / "sample-call.wav").read_bytes()
    cut = tmp_path / "sentence.wav"
    cut.write_bytes(whole[: len(whole) // 2])
    out = check("--speech", str(cut), "--dbspl-at-0dbfs", "10", tmp_path=tmp_path)
    assert out.returncode == EXIT_BAD_INPUT
    warning, error = out.stderr.splitlines()
    assert warning.startswith(f"callwatch check: warning: --speech {cut}: truncated WAV")
    assert error.startswith("callwatch check: --dbspl-at-0dbfs 10: must be between")
