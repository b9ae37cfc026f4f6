"""The crash-safe call journal: the running call's summary, saved often enough that a call
cut short by a crash is still reported (as ended with reason ``crashed``) at the next start."""

from __future__ import annotations

import contextlib
import hashlib
import json
import math
import os
import time
from pathlib import Path
from typing import Any

from daemon.calls import Call
from daemon.state import state_dir

JOURNAL_EVERY_S = 2.0
"""The running call's summary is journalled this often (audio seconds): a crash loses at most
this much of the call's summary."""


def journal_path(control: Path) -> Path:
    """``$XDG_STATE_HOME/callwatch/calls-<hash>.jsonl`` (``~/.local/state`` when unset); one
    journal per control socket, since one daemon owns a control socket: two daemons of one user
    (tests, a replay next to the live one) never read each other's calls."""
    tag = hashlib.sha256(os.fsencode(os.path.abspath(control))).hexdigest()[:12]
    return state_dir() / f"calls-{tag}.jsonl"


class CallJournal:
    """The running call's state, appended as one JSON line every :data:`JOURNAL_EVERY_S`.

    A ``kill -9``, an OOM kill or a power cut skips the call's ``call_ended``; the next start
    reads the last complete line and reports that call as ended with reason ``crashed``. Lines
    are written whole with one ``write`` and flushed (the page cache survives the process);
    the file is emptied when a call ends normally and at each call start, so it stays small.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        self._fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_APPEND | os.O_CLOEXEC, 0o600)
        self.last_s = -math.inf

    def recover(self) -> dict[str, Any] | None:
        """The last journalled state of a call that never ended (then the journal is emptied)."""
        with open(self.path, "rb") as f:
            lines = f.read().splitlines()
        last = None
        for line in reversed(lines):
            try:
                last = json.loads(line)
                break
            except ValueError:
                continue  # a line cut short by the crash
        os.ftruncate(self._fd, 0)
        return last if isinstance(last, dict) and "call_id" in last else None

    def checkpoint(self, call: Call, summary: dict[str, Any], now_s: float) -> None:
        self.last_s = now_s
        record = {"call_id": call.id, "auto": call.auto, "wall_start": call.wall_start,
                  "saved_at": time.time(), "summary": summary}
        os.write(self._fd, (json.dumps(record, separators=(",", ":")) + "\n").encode())

    def clear(self) -> None:
        self.last_s = -math.inf
        os.ftruncate(self._fd, 0)

    def close(self) -> None:
        """At shutdown: an empty journal (no call left open) is removed, so the journals of
        daemons run on passing sockets (replays, tests, benchmarks) do not pile up."""
        with contextlib.suppress(OSError):
            if os.fstat(self._fd).st_size == 0:
                os.unlink(self.path)
        os.close(self._fd)
