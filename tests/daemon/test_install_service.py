"""``callwatch install-service`` and the drop-in examples: the unit it writes, read the way
systemd reads it (``tests/systemd_unit.py``) and run as a user manager would run it, with the
shipped drop-ins beside it; ``systemd-analyze verify`` when it is installed. Real files, real
subprocesses."""

from __future__ import annotations

import json
import os
import re
import shlex
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
    return installed(home, *args, **xdg)[0]


def installed(home: Path, *args: str, **env: str) -> tuple[Path, subprocess.CompletedProcess[str]]:
    out = cli("install-service", *args, env=shell_env(home, **env))
    assert out.returncode == 0, out.stderr
    unit = Path(env.get("XDG_CONFIG_HOME", home / ".config")) / "systemd/user/callwatch.service"
    assert f"wrote {unit}" in out.stdout
    return unit, out


def with_drop_ins(unit: Path, *names: str) -> Path:
    d = unit.with_name(unit.name + ".d")
    d.mkdir(exist_ok=True)
    for name in names:
        shutil.copy(DROP_INS / name, d / name)
    return unit


def run(argv: list[str], service: Service, *extra: str,
        manager: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*argv, *extra], capture_output=True, text=True, timeout=60,
                          env=service.manager_env(**(manager or {})), cwd=service.home,
                          stdin=subprocess.DEVNULL)


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


# -- the installing shell's XDG_CONFIG_HOME and XDG_STATE_HOME ---------------------------------

SEEN_BY_DAEMON = ("from alerts.token import token_path; from daemon.config import default_path; "
                  "from daemon.state import state_dir; "
                  "print(default_path(), token_path(), state_dir(), sep=chr(10))")


def seen_by_daemon(service: Service, **manager: str) -> list[Path]:
    """Where the daemon, in the service's environment, looks for its config file and page
    token, and keeps its state."""
    out = subprocess.run([sys.executable, "-c", SEEN_BY_DAEMON], capture_output=True, text=True,
                         timeout=60, env=service.manager_env(**manager), cwd=ROOT, check=True)
    return [Path(line) for line in out.stdout.splitlines()]


@pytest.mark.parametrize(("config", "state"), [
    ("cfg", "state"),
    ('my cfg %h 100%', 'st "q" \\x $HOME'),  # what the unit must quote or escape
    ("back\\slash", "dollar$HOME"),
])
def test_the_service_uses_the_installing_shells_config_and_state_homes(home, config, state):
    """The user manager passes on neither variable; the unit sets both, makes both
    directories and lets the service write there, and the daemon finds its config file."""
    cfg, st = home.parent / config, home.parent / state
    unit, out = installed(home, XDG_CONFIG_HOME=str(cfg), XDG_STATE_HOME=str(st))
    assert f"config and page token in {cfg}/callwatch and its state in {st}/callwatch" \
        in out.stdout
    service = Service.load(unit, home, home.parent / "run")
    assert service.environment["XDG_CONFIG_HOME"] == str(cfg)
    assert service.environment["XDG_STATE_HOME"] == str(st)
    service.start_pre()
    config_file, token, state_dir = seen_by_daemon(service)
    assert (config_file, token, state_dir) == (
        cfg / "callwatch" / "config.toml", cfg / "callwatch" / "token", st / "callwatch")
    for d in (token.parent, state_dir):
        assert d.is_dir() and d in service.read_write_paths, d
    config_file.write_text('[agent]\nid = "agent-7"\n')
    out = run(service.exec_start, service, "--check-config")
    assert out.stdout == f"{config_file}: OK\n", out.stderr


def test_the_managers_own_config_home_does_not_move_the_service(home):
    """Installed from a shell with the defaults: the service keeps to ~/.config/callwatch and
    ~/.local/state/callwatch (made and writable) even where the manager's environment sets
    XDG_CONFIG_HOME or XDG_STATE_HOME."""
    service = Service.load(install(home), home, home.parent / "run")
    elsewhere = {"XDG_CONFIG_HOME": str(home.parent / "m-cfg"),
                 "XDG_STATE_HOME": str(home.parent / "m-state")}
    service.start_pre()
    config_file, token, state_dir = seen_by_daemon(service, **elsewhere)
    assert config_file == home / ".config" / "callwatch" / "config.toml"
    assert state_dir == home / ".local" / "state" / "callwatch"
    for d in (token.parent, state_dir):
        assert d.is_dir() and d in service.read_write_paths, d


def test_the_default_homes_spelled_out_give_the_shipped_unit(home):
    unit, out = installed(home, XDG_CONFIG_HOME=str(home / ".config"),
                          XDG_STATE_HOME=str(home / ".local" / "state"))
    shipped = (ROOT / "systemd" / "callwatch.service").read_text()
    assert unit.read_text() == shipped.replace("/opt/callwatch/.venv/bin/callwatch",
                                               str(VENV_CALLWATCH))
    assert "config and page token" not in out.stdout


def test_a_control_character_in_a_home_is_refused(home):
    out = cli("install-service", env=shell_env(home, XDG_STATE_HOME=str(home / "a\tb")))
    assert out.returncode == 2 and out.stdout == "", out.stderr
    assert "cannot hold control characters" in out.stderr
    assert not (home / ".config" / "systemd" / "user" / "callwatch.service").exists()


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="systemd-analyze missing")
def test_systemd_analyze_accepts_a_unit_for_homes_that_need_quoting(home):
    cfg = home.parent / 'my cfg %h "q"'
    unit = install(home, XDG_CONFIG_HOME=str(cfg), XDG_STATE_HOME=str(home.parent / "s t$x"))
    res = subprocess.run(["systemd-analyze", "verify", "--user", str(unit)], capture_output=True,
                         text=True, timeout=60,
                         env=dict(shell_env(home), XDG_RUNTIME_DIR=str(home.parent / "run")))
    assert (res.returncode, res.stderr) == (0, "")


# -- is the unit where the user's systemd manager looks? ----------------------------------------

def fake_systemctl(bin_dir: Path, stdout: str = "", exit_code: int = 0) -> Path:
    """A ``systemctl`` that answers ``--user show-environment`` with ``stdout``."""
    bin_dir.mkdir(exist_ok=True)
    script = bin_dir / "systemctl"
    script.write_text("#!/bin/sh\n"
                      '[ "$1 $2" = "--user show-environment" ] || exit 64\n'
                      f"printf '%s' {shlex.quote(stdout)}\n"
                      "echo 'Failed to connect to bus: No medium found' >&2\n"
                      f"exit {exit_code}\n")
    script.chmod(0o755)
    return bin_dir


MANAGER_ENV = "HOME={home}\nLANG=C.UTF-8\nPATH=/usr/bin:/bin\nXDG_RUNTIME_DIR=/run/user/0\n"


@pytest.mark.parametrize(("systemctl", "warning"), [
    (None, "may"),                      # no systemctl at all
    ("fails", "may"),                   # no user manager or bus to ask
    ("default", "will"),                # a manager without XDG_CONFIG_HOME
    ("same", None),                    # a manager with the shell's XDG_CONFIG_HOME
    ("same-quoted", None),             # ... shown shell-quoted
])
def test_a_unit_the_manager_does_not_read_is_warned_about(home, systemctl, warning):
    cfg = home.parent / "my cfg"
    bin_dir = home.parent / "bin"
    bin_dir.mkdir()
    manager = MANAGER_ENV.format(home=home)
    if systemctl == "fails":
        fake_systemctl(bin_dir, exit_code=1)
    elif systemctl == "default":
        fake_systemctl(bin_dir, manager)
    elif systemctl == "same":
        fake_systemctl(bin_dir, manager + f"XDG_CONFIG_HOME={cfg}\n")
    elif systemctl == "same-quoted":
        fake_systemctl(bin_dir, manager + f"XDG_CONFIG_HOME=$'{cfg}'\n")
    unit, out = installed(home, XDG_CONFIG_HOME=str(cfg), PATH=str(bin_dir))
    assert unit.is_file()
    assert "Failed to connect" not in out.stdout + out.stderr
    assert "Traceback" not in out.stderr
    if warning is None:
        assert out.stderr == ""
        return
    manager_dir = home / ".config" / "systemd" / "user"
    line, = out.stderr.splitlines()
    assert line.startswith("callwatch install-service: warning: systemd's user manager reads "
                           f"units from {manager_dir}")
    assert f"not {unit.parent}: `systemctl --user` {warning} not find callwatch.service" in line
    assert (" (unless its own environment sets XDG_CONFIG_HOME)" in line) == (warning == "may")
    # the command it gives puts the unit where the manager reads it
    fix = line.split("copy it there: ", 1)[1]
    subprocess.run(fix, shell=True, check=True, timeout=30)
    assert (manager_dir / "callwatch.service").read_text() == unit.read_text()


@pytest.mark.parametrize("manager_config_home", [None, "elsewhere"])
def test_the_default_unit_directory(home, manager_config_home):
    """From a shell with the default XDG_CONFIG_HOME: no warning where the manager reads
    ~/.config/systemd/user too, or cannot be asked; one where it reads another directory."""
    bin_dir = home.parent / "bin"
    bin_dir.mkdir()
    if manager_config_home:
        fake_systemctl(bin_dir, MANAGER_ENV.format(home=home)
                       + f"XDG_CONFIG_HOME={home.parent / manager_config_home}\n")
    unit, out = installed(home, PATH=str(bin_dir))
    assert unit == home / ".config" / "systemd" / "user" / "callwatch.service"
    if manager_config_home is None:
        assert out.stderr == ""
    else:
        assert f"reads units from {home.parent / manager_config_home}/systemd/user, not " \
            f"{unit.parent}: `systemctl --user` will not find" in out.stderr


# -- the figures quoted beside the settings -----------------------------------------------------

def measured_cpu() -> list[float]:
    """CPU (% of one core) of the current default-backend, 40 ms rows of BENCHMARKS.md's
    "Live daemon" table (not the "before:" rows)."""
    text = (ROOT / "BENCHMARKS.md").read_text()
    section = text.split("\n## Live daemon\n", 1)[1].split("\n## ", 1)[0]
    cpu = []
    for line in section.splitlines():
        cells = [c.strip() for c in line.strip("|").split("|")]
        if len(cells) > 3 and cells[0].startswith("pulse") and cells[1].startswith("40 ms"):
            cpu.append(float(cells[3].strip("*% ")))
    assert len(cpu) >= 3, section
    return cpu


CPU_RANGE = re.compile(r"(\d+(?:\.\d+)?)-(\d+(?:\.\d+)?) % of one\s+(?:#\s*)?core")
"""A range of CPU figures in prose or a comment, "3-4.5 % of one core" (a line may break)."""


@pytest.mark.parametrize("path", ["systemd/drop-ins/resources.conf", "docs/daemon.md"])
def test_quoted_cpu_figures_match_the_benchmarks(path):
    """The range quoted holds every current measurement and is no more than half a point
    wider on either side: a stale or padded figure fails."""
    found = CPU_RANGE.search((ROOT / path).read_text())
    assert found, path
    low, high = map(float, found.groups())
    cpu = measured_cpu()
    assert low <= min(cpu) <= low + 0.5 and high - 0.5 <= max(cpu) <= high, (low, high, cpu)
