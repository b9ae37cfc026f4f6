"""Every subcommand refuses bad input the same way: ``callwatch NAME: problem and fix`` on
stderr, nothing on stdout, exit 2 (3 when it cannot run here). Real subprocesses."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from daemon.command import EXIT_BAD_INPUT, EXIT_CANNOT_RUN, CommandError, command


def cli(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "daemon.cli", *args], capture_output=True,
                          text=True, timeout=60, env=env, stdin=subprocess.DEVNULL)


@pytest.fixture
def env(tmp_path) -> dict[str, str]:
    return {**os.environ, "XDG_CONFIG_HOME": str(tmp_path / "config"),
            "XDG_RUNTIME_DIR": str(tmp_path / "run"), "XDG_STATE_HOME": str(tmp_path / "state")}


@pytest.mark.parametrize("name", ["call", "check", "demo", "install-service", "tail"])
def test_a_bad_config_is_one_line_under_the_command_name(name, tmp_path, env):
    bad = tmp_path / "bad.toml"
    bad.write_text("[detectors]\nmin_overlap_s = -1\n")
    args = [name, "status"] if name == "call" else [name]
    out = cli(*args, "--config", str(bad), env=env)
    assert out.returncode == EXIT_BAD_INPUT, out.stderr
    assert out.stdout == ""
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"callwatch {name}: ")
    assert "bad.toml" in lines[0] and "min_overlap_s" in lines[0]


def test_a_bad_argument_is_refused_before_anything_runs(env):
    out = cli("check", "--non-interactive", "--silence-s", "0.5", env=env)
    assert (out.returncode, out.stdout) == (EXIT_BAD_INPUT, "")
    assert out.stderr == "callwatch check: --silence-s 0.5: must be between 1 and 30\n"


def test_no_daemon_to_reach_is_cannot_run(env):
    out = cli("call", "status", env=env)
    assert out.returncode == EXIT_CANNOT_RUN and out.stdout == ""
    assert out.stderr.startswith("callwatch call: cannot reach the daemon at ")
    assert "is `callwatch run` running?" in out.stderr


def test_the_decorator_keeps_mains_return_code_and_passes_other_errors_on(capsys):
    @command("thing")
    def main(args):
        if args == "fine":
            return 1
        if args == "refused":
            raise CommandError("--x 3: must be 1 or 2")
        raise KeyError(args)

    assert main("fine") == 1
    assert main("refused") == EXIT_BAD_INPUT
    assert capsys.readouterr().err == "callwatch thing: --x 3: must be 1 or 2\n"
    with pytest.raises(KeyError):
        main("a bug")


@pytest.mark.parametrize("args", [
    ["analyze", "samples/sample-call.wav"],  # `callwatch analyze ... | head -1`
    ["analyze", "--json", "-j", "2", "samples/sample-call.wav", "samples/sample-call.wav"],
    ["tail", "--page-url", "--token", "t0k"],  # `callwatch tail --page-url | head -0`
])
def test_a_reader_that_goes_away_ends_the_command_quietly(args, env):
    root = Path(__file__).resolve().parents[2]
    read_end, write_end = os.pipe()
    os.close(read_end)  # the reader is gone before the first write: no race
    try:
        out = subprocess.run([sys.executable, "-m", "daemon.cli", *args], stdout=write_end,
                             stderr=subprocess.PIPE, cwd=root, text=True, timeout=120, env=env,
                             stdin=subprocess.DEVNULL)
    finally:
        os.close(write_end)
    assert out.returncode == 1
    assert not out.stderr, out.stderr  # no traceback, no "Exception ignored"


def test_a_broken_pipe_that_is_not_stdout_is_not_hidden(monkeypatch):
    from daemon import cli, tail

    def broken(args):
        raise BrokenPipeError(32, "Broken pipe")  # e.g. a socket whose peer went away

    monkeypatch.setattr(tail, "main", broken)
    with pytest.raises(BrokenPipeError):
        cli.main(["tail"])
