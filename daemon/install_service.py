"""``callwatch install-service``: the systemd user unit, with this installation's paths.

The daemon runs as the agent's own user (a *user* unit), because that is where the audio is:
PulseAudio/PipeWire serve the logged-in user through ``$XDG_RUNTIME_DIR``. ``Type=notify``
with a watchdog that the processing loop pings only while it is processing audio (or
recovering a device), so a wedged daemon is restarted. The hardening keeps what audio needs:
the runtime dir (sound server socket) stays visible, AF_UNIX/AF_INET/AF_INET6/AF_NETLINK stay
allowed, and ``MemoryDenyWriteExecute`` is left off because the PortAudio callback is a cffi
(libffi) closure, which may need writable+executable memory.

The unit pins the config and state directories (``XDG_CONFIG_HOME``, ``XDG_STATE_HOME``) to
the installing shell's, because a user manager does not pass a login shell's on; it is
written under the shell's ``XDG_CONFIG_HOME``, with a warning when that is not where the
manager reads units.
"""

from __future__ import annotations

import argparse
import os
import shlex
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from daemon.command import EXIT_CANNOT_RUN, CommandError, command
from daemon.config import load_config

UNIT_TEMPLATE = """\
# callwatch: live call-quality monitor for the agent's headset (systemd *user* unit).
# Install with `callwatch install-service`; see docs/daemon.md.
[Unit]
Description=callwatch call-quality monitor (talk-over, levels, noise, echo, dead air)
Documentation=https://github.com/callwatch/callwatch/blob/main/docs/daemon.md
# The sound server of this user session (whichever is installed).
After=pipewire-pulse.service pulseaudio.service
StartLimitIntervalSec=300
StartLimitBurst=10

[Service]
Type=notify
NotifyAccess=main
ExecStart={exec_start} $CALLWATCH_ARGS
# More `callwatch run` arguments, for a drop-in to set (see systemd/drop-ins/): an unquoted
# $VAR as a word of its own is split into words, and an empty one into none.
Environment=CALLWATCH_ARGS=
# Where the daemon keeps its config and page token, and its state: the directories of the
# shell that installed the unit, which a user manager does not pass its XDG_CONFIG_HOME or
# XDG_STATE_HOME on to.
Environment={config_env}
Environment={state_env}
ExecReload=/bin/kill -HUP $MAINPID
Restart=on-failure
RestartSec=5
WatchdogSec=30
TimeoutStartSec=30
TimeoutStopSec=5
# JSON event lines on stdout go to the journal: journalctl --user -u callwatch -o cat
StandardOutput=journal
StandardError=journal
# No Nice=: a user manager cannot raise a priority (the unit would fail to start), and the
# audio threads run in the sound server, not here.

# Hardening that keeps audio working: the sound server's socket is in $XDG_RUNTIME_DIR (%t),
# which stays visible and writable (the control socket lives there too); the config dir is
# writable for the generated WebSocket token, the state dir for the daily exposure totals,
# the call journal and the last check. Both are made first, outside the sandbox ("+"): a
# read-only home cannot have them created from inside it. A config file under /tmp is not
# visible to the service (PrivateTmp).
NoNewPrivileges=yes
ProtectSystem=strict
ProtectHome=read-only
ExecStartPre=+/bin/mkdir -p -m 0700 {mkdir}
ReadWritePaths={read_write} -%t
PrivateTmp=yes
RestrictAddressFamilies=AF_UNIX AF_INET AF_INET6 AF_NETLINK
LockPersonality=yes
RestrictSUIDSGID=yes
RestrictNamespaces=yes
SystemCallArchitectures=native
ProtectKernelTunables=yes
ProtectKernelModules=yes
ProtectControlGroups=yes
UMask=0077
# Not set, on purpose: MemoryDenyWriteExecute (the PortAudio callback is a libffi closure),
# RestrictRealtime (PortAudio may raise its callback thread to real-time priority).

[Install]
WantedBy=default.target
"""

REPO_EXEC = "/opt/callwatch/.venv/bin/callwatch run"
"""The command of the unit shipped in ``systemd/callwatch.service`` (an example path); the
unit appends ``$CALLWATCH_ARGS``, which drop-ins set, so they need not know the path."""


PRIVATE_TMP = (Path("/tmp"), Path("/var/tmp"))
"""What ``PrivateTmp=yes`` replaces with an empty directory for the service."""


@dataclass(frozen=True)
class Homes:
    """The base directories the service uses, as the unit names them: ``%h/...`` for the
    XDG defaults, else the installing shell's absolute paths."""

    config: str = "%h/.config"
    state: str = "%h/.local/state"

    @classmethod
    def from_environment(cls) -> Homes:
        """This shell's ``XDG_CONFIG_HOME`` and ``XDG_STATE_HOME``, where they are set to
        something other than the defaults the daemon falls back to."""
        return cls(config=_custom("XDG_CONFIG_HOME", ".config") or cls.config,
                   state=_custom("XDG_STATE_HOME", ".local/state") or cls.state)

    @property
    def custom(self) -> bool:
        return (self.config, self.state) != (Homes.config, Homes.state)

    def shown(self, which: str) -> str:
        """``config`` or ``state`` for a person: ``~/...`` for a default."""
        base: str = getattr(self, which)
        return "~" + base.removeprefix("%h") if base == getattr(Homes, which) else base


def _custom(var: str, default: str) -> str | None:
    value = os.environ.get(var)
    if not value:
        return None
    path = os.path.abspath(value)
    home = os.path.expanduser("~")
    if os.path.realpath(path) == os.path.realpath(os.path.join(home, default)):
        return None
    return path


def unit_word(text: str, command: bool = False) -> str:
    """``text`` as one word of a unit file setting: ``%`` (a specifier) doubled, and in a
    ``command`` line ``$`` (a variable) too; quoted when it holds a blank, quote or
    backslash. Raises ``ValueError`` for a control character, which no setting can hold."""
    if any(ord(c) < 32 or ord(c) == 127 for c in text):
        raise ValueError(f"{text!r}: a systemd unit cannot hold control characters")
    text = text.replace("%", "%%")
    if command:
        text = text.replace("$", "$$")
    if text and not any(c.isspace() or c in "\"'\\" for c in text):
        return text
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _dir(base: str, default: str, prefix: str = "", command: bool = False) -> str:
    """``base/callwatch`` as a unit word: as is for a ``%h`` default, else escaped."""
    if base == default:
        return f"{prefix}{base}/callwatch"
    return unit_word(f"{prefix}{base}/callwatch", command)


def _env(name: str, base: str, default: str) -> str:
    return f"{name}={base}" if base == default else unit_word(f"{name}={base}")


def render(exec_start: str, homes: Homes | None = None) -> str:
    """The unit for ``exec_start`` (already in unit syntax); ``homes``: the directories the
    service uses (default: the XDG defaults, as in ``systemd/callwatch.service``)."""
    h = homes or Homes()
    d = Homes()
    return UNIT_TEMPLATE.format(
        exec_start=exec_start,
        config_env=_env("XDG_CONFIG_HOME", h.config, d.config),
        state_env=_env("XDG_STATE_HOME", h.state, d.state),
        mkdir=" ".join(_dir(b, db, command=True) for b, db in
                       ((h.config, d.config), (h.state, d.state))),
        read_write=" ".join(_dir(b, db, prefix="-") for b, db in
                            ((h.config, d.config), (h.state, d.state))))


def default_exec(config: str | None) -> str:
    """This installation's ``callwatch run`` (the venv's script, else ``python -m``)."""
    script = Path(sys.executable).with_name("callwatch")
    cmd = [str(script)] if script.exists() else [sys.executable, "-m", "daemon.cli"]
    cmd.append("run")
    if config:
        cmd += ["--config", str(Path(config).resolve())]
    return " ".join(unit_word(word, command=True) for word in cmd)


def unit_dir() -> Path:
    base = os.environ.get("XDG_CONFIG_HOME") or os.path.join(os.path.expanduser("~"), ".config")
    return Path(base) / "systemd" / "user"


def manager_unit_dir() -> tuple[Path, bool]:
    """Where the user's systemd manager reads unit files: ``systemd/user`` under *its*
    ``XDG_CONFIG_HOME`` (``~/.config`` when unset), and whether the manager said so; when
    ``systemctl --user show-environment`` cannot ask it (no systemctl, no user manager, no
    bus), the default and ``False``."""
    default = Path(os.path.expanduser("~"), ".config", "systemd", "user")
    try:
        out = subprocess.run(["systemctl", "--user", "show-environment"], capture_output=True,
                             text=True, timeout=10, stdin=subprocess.DEVNULL)
    except (OSError, subprocess.SubprocessError):
        return default, False
    if out.returncode != 0:
        return default, False
    for line in out.stdout.splitlines():
        name, _, value = line.partition("=")
        if name == "XDG_CONFIG_HOME" and value:
            if value.startswith(("'", '"', "$'")):  # shown shell-quoted when it needs to be
                try:
                    words = shlex.split(value.removeprefix("$"))
                except ValueError:
                    return default, False
                value = words[0] if len(words) == 1 else ""
            if os.path.isabs(value):
                return Path(value, "systemd", "user"), True
            return default, False
    return default, True


def _same_dir(a: Path, b: Path) -> bool:
    return os.path.realpath(a) == os.path.realpath(b)


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--config", metavar="TOML", help="config file the service should use "
                   "(default: $XDG_CONFIG_HOME/callwatch/config.toml if present)")
    p.add_argument("--print", action="store_true", help="print the unit instead of writing it")


@command("install-service")
def main(args: argparse.Namespace) -> int:
    if args.config:
        load_config(args.config)  # a bad file is refused now, not when the service starts
        where = Path(args.config).resolve()
        if any(where.is_relative_to(t) for t in PRIVATE_TMP):
            raise CommandError(
                f"--config {args.config}: the service has a private /tmp and would not see "
                f"it; copy it to ~/.config/callwatch/config.toml (or another path outside "
                f"/tmp and /var/tmp) and point --config there", EXIT_CANNOT_RUN)
    homes = Homes.from_environment()
    try:
        text = render(default_exec(args.config), homes)
    except ValueError as exc:
        raise CommandError(f"{exc}; install from a shell whose XDG_CONFIG_HOME, "
                           f"XDG_STATE_HOME and --config have none") from None
    if args.print:
        sys.stdout.write(text)
        return 0
    target = unit_dir() / "callwatch.service"
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        cfg_home = os.environ.get("XDG_CONFIG_HOME") or os.path.join(
            os.path.expanduser("~"), ".config")
        Path(cfg_home, "callwatch").mkdir(parents=True, exist_ok=True, mode=0o700)
        target.write_text(text)
    except OSError as exc:
        raise CommandError(f"cannot write {target}: {exc.strerror}", EXIT_CANNOT_RUN) from None
    print(f"wrote {target}")
    if homes.custom:
        print(f"the service keeps its config and page token in {homes.shown('config')}"
              f"/callwatch and its state in {homes.shown('state')}/callwatch (this shell's "
              f"XDG_CONFIG_HOME and XDG_STATE_HOME)")
    _warn_if_unseen(target)
    print("enable and start it with:")
    print("  systemctl --user daemon-reload && systemctl --user enable --now callwatch")
    print("follow its events with:  journalctl --user -u callwatch -f -o cat")
    return 0


def _warn_if_unseen(target: Path) -> None:
    """Say so when ``target`` is not where the user's systemd manager looks for units (the
    shell's XDG_CONFIG_HOME is not the manager's)."""
    seen, asked = manager_unit_dir()
    if _same_dir(target.parent, seen):
        return
    whose, will = ("", "will") if asked else (
        " (unless its own environment sets XDG_CONFIG_HOME)", "may")
    print(f"callwatch install-service: warning: systemd's user manager reads units from "
          f"{seen}{whose}, not {target.parent}: `systemctl --user` {will} not find "
          f"callwatch.service; copy it there: mkdir -p {shlex.quote(str(seen))} && "
          f"cp {shlex.quote(str(target))} {shlex.quote(str(seen))}/", file=sys.stderr)
