"""The daemon's state: the live counters in memory, and the directory where what must outlive
the process is kept.

The live counters are plain values that the processing loop updates and that the Prometheus
collectors, the WebSocket ``hello`` and ``callwatch check`` read. Only the processing loop
writes them (the audio callback keeps its own counters in the ring buffers, which the loop
copies in), so there are no locks: a reader may see a value one block old, never a torn one.

What outlives the process (the last check's result, the day's exposure, the call journal)
lives in :func:`state_dir`; whole-file records are written with :func:`write_json_atomic`.
Both are here, stdlib only, so the daemon and ``callwatch check`` find one directory and
write one way.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dsp.events import Stream


@dataclass
class StreamHealth:
    """Capture health of one stream (agent mic or far-end source)."""

    device_name: str = ""
    device_up: bool = False
    restarts: int = 0
    """Times the stream was reopened after a fault."""
    overflows: int = 0
    """Capture overflows: PortAudio input-overflow flags, or holes in a PulseAudio stream."""
    dropped_blocks: int = 0
    """Blocks the ring buffer had no room for (the processing loop fell behind)."""
    callbacks: int = 0


@dataclass
class DaemonState:
    """Everything the metrics and the status views report, in one place."""

    agent_id: str
    version: str = ""
    streams: dict[Stream, StreamHealth] = field(
        default_factory=lambda: {s: StreamHealth() for s in Stream}
    )
    alerts_fired: Counter[tuple[str, str]] = field(default_factory=Counter)
    """Alerts that reached ``firing``, by (kind, party) (a counter; the party as
    :func:`daemon.metrics_state.party_label` writes it)."""
    alerts_active: Counter[tuple[str, str]] = field(default_factory=Counter)
    """Alerts currently firing, by (kind, party) (a gauge)."""
    calls_total: int = 0
    call_active: bool = False
    ws_clients: int = 0
    ws_dropped_messages: int = 0
    check_results: dict[str, int] = field(default_factory=dict)
    """Last ``callwatch check`` verdict per item: 0 pass, 1 warn, 2 fail."""
    check_timestamp: float | None = None
    """Unix time of that check; ``None`` if it never ran."""


def state_dir() -> Path:
    """``$XDG_STATE_HOME/callwatch`` (``~/.local/state/callwatch`` when unset)."""
    base = os.environ.get("XDG_STATE_HOME") or os.path.join(
        os.path.expanduser("~"), ".local", "state")
    return Path(base) / "callwatch"


def write_json_atomic(target: Path, data: dict[str, Any]) -> None:
    """Write ``data`` to ``target`` atomically (temp file + fsync + rename): a reader or a
    crash never sees half a file. A directory it creates is the user's alone (0700): the state
    directory holds a person's noise exposure and call journal, which are nobody else's
    business on a shared workstation."""
    target.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.stem}-", suffix=".json", dir=target.parent)
    try:
        with os.fdopen(fd, "w") as f:
            json.dump(data, f, indent=1)
            f.write("\n")
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
