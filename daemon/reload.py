"""What a config reload (SIGHUP, ``callwatch call reload``) changes, worked out from the old and
the new configuration alone, so the loop only applies it and the rule can be tested without
a running daemon."""

from __future__ import annotations

import dataclasses
from typing import Any

from daemon.config import Config

RESTART_FREE_CAPTURE_KEYS = ("capture.auto_calls", "capture.call_start_speech_s",
                             "capture.call_end_silence_s")
"""The ``[capture]`` settings a reload applies at once; the others need the devices reopened,
so a reload reports them (``needs_restart``) and keeps the running values."""


def changes(old: Any, new: Any, table: str) -> dict[str, list[Any]]:
    """``{"table.key": [old, new]}`` for every setting of ``table`` that differs."""
    if old is None or new is None:
        return {}
    return {f"{table}.{f.name}": [getattr(old, f.name), getattr(new, f.name)]
            for f in dataclasses.fields(new) if getattr(old, f.name) != getattr(new, f.name)}


@dataclasses.dataclass(frozen=True, slots=True)
class ReloadPlan:
    """The configuration to run with after a reload, and what it changed."""

    config: Config
    """The new configuration, with the capture settings that need a restart kept as they run."""
    changed: dict[str, list[Any]]
    """``{"table.key": [old, new]}`` of every changed detector, alert, capture and hearing
    setting (those needing a restart included)."""
    needs_restart: list[str]
    """Changed ``capture.*`` keys that take effect only when the devices are reopened."""
    hearing_changed: bool


def plan(old: Config, new: Config) -> ReloadPlan:
    """What reloading from ``old`` to ``new`` applies, keeps and reports."""
    changed = {**changes(old.detectors, new.detectors, "detectors"),
               **changes(old.alerts, new.alerts, "alerts"),
               **changes(old.capture, new.capture, "capture")}
    hearing_changed = new.hearing != old.hearing
    if hearing_changed:
        changed.update(changes(old.hearing, new.hearing, "hearing"))
    restart = [k for k in changed
               if k.startswith("capture.") and k not in RESTART_FREE_CAPTURE_KEYS]
    kept = {k.split(".", 1)[1]: getattr(old.capture, k.split(".", 1)[1]) for k in restart}
    config = dataclasses.replace(new, capture=dataclasses.replace(new.capture, **kept))
    return ReloadPlan(config, changed, restart, hearing_changed)
