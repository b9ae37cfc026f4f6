"""``callwatch install-service``: the systemd user unit, with this installation's paths.

The daemon runs as the agent's own user (a *user* unit), because that is where the audio is:
PulseAudio/PipeWire serve the logged-in user through ``$XDG_RUNTIME_DIR``. ``Type=notify``
with a watchdog that the processing loop pings only while it is processing audio (or
recovering a device), so a wedged daemon is restarted. The hardening keeps what audio needs:
the runtime dir (sound server socket) stays visible, AF_UNIX/AF_INET/AF_INET6/AF_NETLINK stay
allowed, and ``MemoryDenyWriteExecute`` is left off because the PortAudio callback is a cffi
(libffi) closure, which may need writable+executable memory.
"""

from __future__ import annotations

import argparse
import os
import shlex
import sys
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
ExecStartPre=+/bin/mkdir -p -m 0700 %h/.config/callwatch %h/.local/state/callwatch
ReadWritePaths=-%h/.config/callwatch -%h/.local/state/callwatch -%t
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


def render(exec_start: str) -> str:
    return UNIT_TEMPLATE.format(exec_start=exec_start)


def default_exec(config: str | None) -> str:
    """This installation's ``callwatch run`` (the venv's script, else ``python -m``)."""
    script = Path(sys.executable).with_name("callwatch")
    cmd = [str(script)] if script.exists() else [sys.executable, "-m", "daemon.cli"]
    cmd.append("run")
    if config:
        cmd += ["--config", str(Path(config).resolve())]
    return shlex.join(cmd)


def unit_dir() -> Path:
    base = os.environ.get("XDG_CONFIG_HOME") or os.path.join(os.path.expanduser("~"), ".config")
    return Path(base) / "systemd" / "user"


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
    text = render(default_exec(args.config))
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
    print("enable and start it with:")
    print("  systemctl --user daemon-reload && systemctl --user enable --now callwatch")
    print("follow its events with:  journalctl --user -u callwatch -f -o cat")
    return 0
