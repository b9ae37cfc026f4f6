"""``callwatch install-service`` and the drop-in examples: the unit it writes, read the way
systemd reads it (``tests/systemd_unit.py``) and run as a user manager would run it, with the
shipped drop-ins beside it; ``systemd-analyze verify`` when it is installed. Real files, real
subprocesses."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.systemd_unit import Service

ROOT = Path(__file__).resolve().parents[2]
DROP_INS = ROOT / "systemd" / "drop-ins"
SAMPLE = ROOT / "samples" / "sample-call.wav"
VENV_CALLWATCH = Path(sys.executable).with_name("callwatch")


def cli(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "daemon.cli", *args], capture_output=True,
                          text=True, timeout=60, env=env, cwd=ROOT, stdin=subprocess.DEVNULL)


def shell_env(home: Path, **xdg: str) -> dict[str, str]:
    """An agent's login shell: ``HOME``, and the XDG variables given (the others unset)."""
    env = {k: v for k, v in os.environ.items()
           if k not in ("XDG_CONFIG_HOME", "XDG_STATE_HOME", "XDG_DATA_HOME")}
    return {**env, "HOME": str(home), **xdg}


@pytest.fixture
def home(tmp_path) -> Path:
    (tmp_path / "home").mkdir()
    (tmp_path / "run").mkdir(mode=0o700)
    return tmp_path / "home"


def install(home: Path, *args: str, **xdg: str) -> Path:
    out = cli("install-service", *args, env=shell_env(home, **xdg))
    assert out.returncode == 0, out.stderr
    unit = Path(xdg.get("XDG_CONFIG_HOME", home / ".config")) / "systemd/user/callwatch.service"
    assert f"wrote {unit}" in out.stdout
    return unit


def with_drop_ins(unit: Path, *names: str) -> Path:
    d = unit.with_name(unit.name + ".d")
    d.mkdir(exist_ok=True)
    for name in names:
        shutil.copy(DROP_INS / name, d / name)
    return unit


def run(argv: list[str], service: Service, *extra: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*argv, *extra], capture_output=True, text=True, timeout=60,
                          env=service.manager_env(), cwd=service.home, stdin=subprocess.DEVNULL)


def test_callwatch_args_left_empty_adds_no_argument(home):
    """The unit's ``$CALLWATCH_ARGS`` is empty: systemd drops the word, and ``callwatch run``
    starts with this installation's script and nothing else (an empty argument, which a
    quoted ``"$CALLWATCH_ARGS"`` or ``${CALLWATCH_ARGS}`` would give, is refused)."""
    service = Service.load(install(home), home, home.parent / "run")
    assert service.environment["CALLWATCH_ARGS"] == ""
    assert service.exec_start == [str(VENV_CALLWATCH), "run"]
    out = run(service.exec_start, service, "--check-config")
    assert out.returncode == 0 and out.stdout == "(defaults): OK\n", out.stderr
    out = run(service.exec_start, service, "", "--check-config")
    assert out.returncode == 2 and "unrecognized arguments" in out.stderr


def test_the_config_path_drop_in_adds_config_to_any_installation(home):
    unit = with_drop_ins(install(home), "config-path.conf")
    service = Service.load(unit, home, home.parent / "run")
    assert service.exec_start == [str(VENV_CALLWATCH), "run", "--config",
                                  "/etc/callwatch/config.toml"]
    assert Path("/etc/callwatch") in service.read_write_paths
    # The daemon's own parser takes them: it goes on to read that file.
    out = run(service.exec_start, service, "--check-config")
    assert "usage:" not in out.stderr
    assert "/etc/callwatch/config.toml" in out.stdout + out.stderr


def test_the_debug_log_drop_in_keeps_a_log_file_for_any_installation(home):
    """Its directory is made first (in a fresh home it is missing, and the service, with
    the home read-only, could not make it), then a call's events land in the file."""
    unit = with_drop_ins(install(home), "debug-log.conf")
    service = Service.load(unit, home, home.parent / "run")
    log = home / ".cache" / "callwatch" / "events.jsonl"
    assert service.exec_start == [str(VENV_CALLWATCH), "run", "--log-json", str(log)]
    assert log.parent in service.read_write_paths
    service.start_pre()
    out = run(service.exec_start, service, "--replay", str(SAMPLE), "--speed", "200",
              "--no-server", "--no-metrics")
    assert out.returncode == 0, out.stderr
    events = [json.loads(line)["event"] for line in log.read_text().splitlines()]
    assert events[0] == "started" and "call_ended" in events


def test_no_drop_in_names_an_installation():
    for path in DROP_INS.glob("*.conf"):
        settings = [line for line in path.read_text().splitlines()
                    if line and not line.startswith("#")]
        assert not any(s.startswith("ExecStart=") for s in settings), path
        assert not any("callwatch run" in s or "/.venv/" in s for s in settings), path


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="systemd-analyze missing")
def test_systemd_analyze_accepts_the_unit_with_every_drop_in(home):
    """Warnings (an unknown key, bad quoting) go to stderr with exit code 0: both are checked."""
    unit = with_drop_ins(install(home), *(p.name for p in DROP_INS.glob("*.conf")))
    res = subprocess.run(["systemd-analyze", "verify", "--user", str(unit)], capture_output=True,
                         text=True, timeout=60,
                         env=dict(shell_env(home), XDG_RUNTIME_DIR=str(home.parent / "run")))
    assert (res.returncode, res.stderr) == (0, "")
