"""The daemon's event log: one JSON object per line, and a readable line for people (times
on the local clock, as ``callwatch tail`` shows them).

Every record has ``ts`` (UTC, ISO 8601 with milliseconds) and ``event`` (``started``,
``call_started``, ``talk_over``..., ``alert``, ``device_lost``, ``device_restored``,
``config_reloaded``, ``call_ended``, ``stopped``...) plus that event's fields. JSON lines go
to ``--log-json FILE`` and, when stdout is not a terminal (systemd's journal, a pipe), to
stdout; a terminal gets the readable form. Writers may be several threads: one lock.
"""

from __future__ import annotations

import json
import os
import stat
import sys
import threading
from datetime import UTC, datetime
from typing import IO, Any

from alerts.protocol import clock
from dsp.events import rounded


def _now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _local_time(ts: str) -> str:
    """A record's ``ts`` (UTC, ISO 8601) as the local ``HH:MM:SS.mmm`` the terminal's reader
    lives in, the clock the alert times beside it are shown on."""
    try:
        when = datetime.fromisoformat(ts.replace("Z", "+00:00")).astimezone()
    except (AttributeError, ValueError):
        return str(ts)[11:23]
    return when.strftime("%H:%M:%S.%f")[:-3]


def _is_time(key: str) -> bool:
    """Fields that hold a Unix time (an alert's ``at`` and ``started_at``, a lost call's
    ``saved_at``): shown as a clock time, not as ten digits since 1970."""
    return key == "at" or key.endswith("_at")


_DETECTION_SHOWN_ELSEWHERE = ("ts", "event", "kind", "phase", "start_s", "end_s", "duration_s",
                              "call_id", "call_start_s")
"""A detection's fields its readable line says in words (or, the call id, in the call's own
lines)."""


def _fields(rest: dict[str, Any]) -> str:
    parts = []
    for k, v in rest.items():
        if v is None:
            continue
        if _is_time(k) and isinstance(v, int | float):
            v = clock(v)
        elif isinstance(v, float):
            v = rounded(v)
        if isinstance(v, dict | list):
            v = json.dumps(v, separators=(",", ":"))
        parts.append(f"{k}={v}")
    return " ".join(parts)


def _nudge(record: dict[str, Any]) -> str:
    """An alert as the agent sees it: shown (with its severity and how long the condition had
    held when it was: a replay's alert clock runs at the replay's pace, so a time of day
    would not match the line's) or resolved, and its wording."""
    state = record.get("state", "?")
    text = str(record.get("message", record.get("kind", "")))
    if state == "firing":
        text = f"{record.get('severity', '?')}: {text}"
        started, at = record.get("started_at"), record.get("at")
        if isinstance(started, int | float) and isinstance(at, int | float):
            text += f" (after {max(0.0, at - started):.1f} s)"
    return f"{'nudge shown' if state == 'firing' else 'nudge ' + str(state):<16} {text}"


def _detection(record: dict[str, Any]) -> str:
    """A detection's begin or end: when (in the call, as its summary counts, during one; in
    the stream otherwise), how long, then its measurements."""
    start, end = record.get("start_s"), record.get("end_s")
    offset, where = 0.0, ""
    if isinstance(record.get("call_start_s"), int | float):
        offset, where = record["call_start_s"], " into the call"
    if record["phase"] == "begin":
        when = f"begins at {start - offset:.2f} s{where}"
    else:
        when = f"ended {start - offset:.2f}-{end - offset:.2f} s{where}"
        if isinstance(record.get("duration_s"), int | float):
            when += f" ({record['duration_s']:.2f} s)"
    rest = _fields({k: v for k, v in record.items() if k not in _DETECTION_SHOWN_ELSEWHERE})
    return f"{record['event']:<16} {when}" + (f": {rest}" if rest else "")


def human(record: dict[str, Any]) -> str:
    """One readable line: local time, event, then the fields that matter. Alerts read as the
    nudge the agent sees, detections as when they began or ended; the JSON record (``--output
    json``, ``--log-json``) keeps every field."""
    ts = _local_time(record.get("ts", ""))
    event = record.get("event", "?")
    if event == "alert" and "message" in record:
        return f"{ts} {_nudge(record)}"
    if record.get("phase") in ("begin", "end") and isinstance(record.get("start_s"),
                                                              int | float):
        return f"{ts} {_detection(record)}"
    rest = {k: v for k, v in record.items() if k not in ("ts", "event", "summary")}
    if rest.get("kind") == event:
        del rest["kind"]
    line = f"{ts} {event:<16} " + _fields(rest)
    summary = record.get("summary")
    if isinstance(summary, dict):
        t = summary.get("talk_over", {})
        line += (f"\n{'':13}summary: {summary.get('duration_s', 0):.1f} s, talk-over "
                 f"{t.get('count', 0)} (agent {t.get('by_agent', 0)}, customer "
                 f"{t.get('by_customer', 0)}), {len(summary.get('events', []))} events")
    return line


def open_private(path: str) -> IO[str]:
    """Open a log file for appending, created 0600: call summaries and agent ids are nobody
    else's business. An existing file this user owns is narrowed to 0600 too."""
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o600)
    try:
        st = os.fstat(fd)
        if stat.S_ISREG(st.st_mode) and st.st_mode & 0o077 and st.st_uid == os.getuid():
            os.fchmod(fd, 0o600)
        return open(fd, "a", encoding="utf-8", buffering=1)
    except BaseException:
        os.close(fd)
        raise


class EventLog:
    """Writes each record to every sink: JSON lines and/or readable text."""

    def __init__(self, json_out: list[IO[str]] | None = None,
                 text_out: list[IO[str]] | None = None) -> None:
        self.json_out = json_out or []
        self.text_out = text_out or []
        self._lock = threading.Lock()

    @classmethod
    def for_cli(cls, log_json: str | None, output: str = "auto") -> EventLog:
        """stdout text on a terminal, JSON lines otherwise; plus ``log_json`` ('-' = stdout)."""
        json_out: list[IO[str]] = []
        text_out: list[IO[str]] = []
        if output == "auto":
            output = "text" if sys.stdout.isatty() else "json"
        if log_json and log_json != "-":
            json_out.append(open_private(log_json))
        if output == "json" or log_json == "-":
            json_out.append(sys.stdout)
        elif output == "text":
            text_out.append(sys.stdout)
        return cls(json_out, text_out)

    def emit(self, event: str, **fields: Any) -> dict[str, Any]:
        record: dict[str, Any] = {"ts": _now_iso(), "event": event, **fields}
        line = json.dumps(record, separators=(",", ":"), default=str)
        with self._lock:
            for f in self.json_out:
                try:
                    f.write(line + "\n")
                    f.flush()
                except (OSError, ValueError):
                    pass  # a full disk or closed pipe must not stop the monitor
            if self.text_out:
                text = human(record)
                for f in self.text_out:
                    try:
                        f.write(text + "\n")
                        f.flush()
                    except (OSError, ValueError):
                        pass
        return record

    def close(self) -> None:
        with self._lock:
            for f in self.json_out:
                if f is not sys.stdout:
                    f.close()
