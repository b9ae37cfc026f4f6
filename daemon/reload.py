"""What a config reload (SIGHUP: ``systemctl --user reload callwatch``) changes, worked out
from the old and the new configuration alone, so the loop only applies it and the rule can be
tested without a running daemon."""

from __future__ import annotations

import dataclasses
from typing import Any

from daemon.config import Config

RESTART_FREE_CAPTURE_KEYS = ("capture.auto_calls", "capture.call_start_speech_s",
                             "capture.call_end_silence_s")
"""The ``[capture]`` settings a reload applies at once; the others need the devices reopened,
so a reload reports them (``needs_restart``) and keeps the running values."""

RESTART_TABLES = ("agent", "control", "server", "metrics")
"""Tables read once, at start: the agent id (in every metric and page greeting) and the
endpoints the daemon listens on. A reload cannot move a listening socket without dropping
its clients, so a change there is reported (``needs_restart``), not silently ignored, and the
running values are kept until a restart."""

SECRET_KEYS = frozenset({"server.token", "metrics.basic_auth_password_sha256"})
"""Settings whose values must not reach the log: a change is reported without them."""

HIDDEN = "(hidden)"
"""What a secret's old and new values are logged as."""


def changes(old: Any, new: Any, table: str) -> dict[str, list[Any]]:
    """``{"table.key": [old, new]}`` for every setting of ``table`` that differs (a secret's
    values as ``"(hidden)"``)."""
    if old is None or new is None:
        return {}
    out: dict[str, list[Any]] = {}
    for f in dataclasses.fields(new):
        before, after = getattr(old, f.name), getattr(new, f.name)
        if before != after:
            key = f"{table}.{f.name}"
            out[key] = [HIDDEN, HIDDEN] if key in SECRET_KEYS else [before, after]
    return out


def config_key(key: str) -> str:
    """``"server.port"`` as the config file spells it: ``[server] port``."""
    table, name = key.split(".", 1)
    return f"[{table}] {name}"


@dataclasses.dataclass(frozen=True, slots=True)
class ReloadPlan:
    """The configuration to run with after a reload, and what it changed."""

    config: Config
    """The new configuration, with the capture settings that need a restart kept as they run."""
    changed: dict[str, list[Any]]
    """``{"table.key": [old, new]}`` of every changed setting of the tables the daemon runs
    with (those needing a restart included; secrets as ``"(hidden)"``)."""
    needs_restart: list[str]
    """Changed keys that take effect only at a restart: ``capture.*`` ones that need the
    devices reopened, and every key of :data:`RESTART_TABLES`."""
    hearing_changed: bool

    @property
    def restart_warning(self) -> str | None:
        """One sentence naming the keys that wait for a restart (``None``: none do)."""
        if not self.needs_restart:
            return None
        keys = ", ".join(config_key(k) for k in self.needs_restart)
        return (f"{keys}: changed, but the running daemon keeps the old value until it "
                "restarts (systemctl --user restart callwatch)")


def plan(old: Config, new: Config) -> ReloadPlan:
    """What reloading from ``old`` to ``new`` applies, keeps and reports."""
    changed = {**changes(old.detectors, new.detectors, "detectors"),
               **changes(old.alerts, new.alerts, "alerts"),
               **changes(old.capture, new.capture, "capture")}
    hearing_changed = new.hearing != old.hearing
    if hearing_changed:
        changed.update(changes(old.hearing, new.hearing, "hearing"))
    for table in RESTART_TABLES:
        changed.update(changes(getattr(old, table), getattr(new, table), table))
    restart = [k for k in changed
               if k.split(".", 1)[0] in RESTART_TABLES
               or (k.startswith("capture.") and k not in RESTART_FREE_CAPTURE_KEYS)]
    kept_capture = {k.split(".", 1)[1]: getattr(old.capture, k.split(".", 1)[1])
                    for k in restart if k.startswith("capture.")}
    config = dataclasses.replace(new, capture=dataclasses.replace(new.capture, **kept_capture),
                                 **{table: getattr(old, table) for table in RESTART_TABLES})
    return ReloadPlan(config, changed, restart, hearing_changed)
