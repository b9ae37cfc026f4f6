"""What a ``callwatch check`` run leaves behind, and what the live daemon reads of it.

The daemon exports the last check's verdicts as metrics, so it needs the verdicts, the saved
file and a cheap way to notice a new one, and nothing of the check itself (no devices, no
prompts, no measurements). This module is that part: stdlib only, so importing it costs the
daemon nothing.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import asdict, dataclass, field
from enum import IntEnum
from pathlib import Path
from typing import Any

from daemon.state import DaemonState, state_dir, write_json_atomic

__all__ = [
    "SCHEMA",
    "Item",
    "LastCheckWatcher",
    "Verdict",
    "apply_last_check",
    "check_verdicts",
    "default_result_path",
    "load_last_check",
    "save_result",
]

SCHEMA = "callwatch.check/1"


class Verdict(IntEnum):
    """Per-item outcome; the integer is the ``callwatch_check_result`` gauge value."""

    PASS = 0
    WARN = 1
    FAIL = 2
    SKIP = -1
    """Not measured (no device, or no speech in a non-interactive run); no exit-code effect."""

    @property
    def label(self) -> str:
        """The word in the JSON result and the report: ``pass``, ``warn``, ``fail``, ``skip``."""
        return self.name.lower()

    @classmethod
    def from_label(cls, label: object) -> Verdict | None:
        """The verdict a saved result names, ``None`` for anything else (a result file is
        input: the daemon must not die of a bad one)."""
        if not isinstance(label, str) or label != label.lower():
            return None
        return cls.__members__.get(label.upper())


@dataclass(slots=True)
class Item:
    """One line of the check report: what was measured, the limit and what to do about it."""

    name: str
    verdict: Verdict
    value: float | None
    unit: str | None
    threshold: float | None
    message: str
    fix: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        d = asdict(self)
        d.pop("extra")
        d["verdict"] = self.verdict.label
        if self.value is not None:
            d["value"] = round(float(self.value), 2)
        d.update(self.extra)
        return d


# -- the saved result -----------------------------------------------------------------------


def default_result_path() -> Path:
    """``$XDG_STATE_HOME/callwatch/check.json`` (``~/.local/state`` when unset)."""
    return state_dir() / "check.json"


def save_result(result: dict[str, Any], path: str | os.PathLike[str] | None = None) -> Path:
    """Write atomically: the daemon's watcher never reads half a result."""
    target = Path(path) if path is not None else default_result_path()
    write_json_atomic(target, result)
    return target


def load_last_check(path: str | os.PathLike[str] | None = None) -> dict[str, Any] | None:
    """The last saved check result, or ``None`` if there is none or it is not a valid
    ``callwatch.check/1`` object (never raises: the daemon must not die of a bad file)."""
    p = Path(path) if path is not None else default_result_path()
    try:
        data = json.loads(p.read_text())
    except (OSError, ValueError):
        return None
    if not isinstance(data, dict) or data.get("schema") != SCHEMA:
        return None
    if not isinstance(data.get("items"), list):
        return None
    return data


def check_verdicts(result: dict[str, Any]) -> dict[str, Verdict]:
    """``{item: verdict}`` of a result (pass, warn, fail); skipped items are left out."""
    out: dict[str, Verdict] = {}
    for item in result.get("items", []):
        if not isinstance(item, dict) or not isinstance(item.get("name"), str):
            continue
        verdict = Verdict.from_label(item.get("verdict"))
        if verdict is not None and verdict is not Verdict.SKIP:
            out[item["name"]] = verdict
    return out


class LastCheckWatcher:
    """Keeps :class:`daemon.state.DaemonState` in step with the saved result file.

    ``poll(state)`` costs nothing more than a clock read between ``min_interval_s`` and one
    ``stat()`` after it, so the processing loop can call it every pass; the file is re-read
    only when its modification time or size changes (a check run while the daemon runs shows
    up in the metrics within a second).
    """

    def __init__(self, path: str | os.PathLike[str] | None = None,
                 min_interval_s: float = 1.0) -> None:
        self.path = Path(path) if path is not None else default_result_path()
        self.min_interval_s = min_interval_s
        self._sig: tuple[int, int] | None = None
        self._next = 0.0

    def poll(self, state: DaemonState) -> bool:
        """Update ``state.check_results``/``check_timestamp``; True if they changed."""
        now = time.monotonic()
        if now < self._next:
            return False
        self._next = now + self.min_interval_s
        try:
            st = self.path.stat()
        except OSError:
            return False
        sig = (st.st_mtime_ns, st.st_size)
        if sig == self._sig:
            return False
        self._sig = sig
        return apply_last_check(state, load_last_check(self.path))

    def __call__(self, state: DaemonState) -> bool:
        return self.poll(state)


def apply_last_check(state: DaemonState, result: dict[str, Any] | None) -> bool:
    """Copy a result's verdicts and time into a DaemonState (its metrics hook)."""
    if result is None:
        return False
    ts = result.get("unix_time")
    state.check_results = check_verdicts(result)
    state.check_timestamp = float(ts) if isinstance(ts, int | float) else None
    return True
