"""The control socket.

The control API is a Unix stream socket (mode 0600, in ``$XDG_RUNTIME_DIR``: only this user
can reach it, no port to allocate or firewall): one line in, one JSON line out.

    start [ID]  -> {"ok": true, "call_id": "..."}   (ends a running call first)
    end         -> {"ok": true, "call_id": "...", "summary": {...}}
    status      -> {"ok": true, "call_id": "..."|null, "auto_calls": true, ...}

``callwatch call start|end|status`` (:mod:`daemon.call_cli`) is the command-line client and
``callwatch tail`` asks ``status`` where the daemon's nudge page really is; both send their
line with :func:`send_request`.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import queue
import socket
import stat
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from daemon.calls import CALL_ID
from daemon.config import ControlSettings


class ControlSocketInUse(OSError):
    """Another running callwatch answers on the control socket's path."""


ACCEPT_BACKLOG = socket.SOMAXCONN
"""Connections the kernel queues before refusing: a burst of ``callwatch call status`` from
scripts must wait, not be told the daemon is not running."""

MAX_PENDING = 32
"""Connections being served at once; more wait in the backlog (each holds a thread and an fd
for up to the 5 s request timeout)."""

ACCEPT_RETRY_MIN_S = 0.05
ACCEPT_RETRY_MAX_S = 2.0
"""Backoff after a failed accept (EMFILE: out of file descriptors, ...): the thread retries
for as long as the daemon runs, since the condition clears when other connections close."""

CLIENT_RETRY_S = 3.0
"""A client retries a refused connection this long while the socket exists (a full backlog
refuses; the daemon is there)."""


def socket_path(settings: ControlSettings) -> Path:
    """The configured path, else ``$XDG_RUNTIME_DIR/callwatch/control.sock``, else (no
    runtime directory, e.g. a cron job) ``/tmp/callwatch-<uid>/callwatch/control.sock``."""
    if settings.socket_path:
        return Path(settings.socket_path)
    return _private_base() / "callwatch" / "control.sock"


def _private_base() -> Path:
    return Path(os.environ.get("XDG_RUNTIME_DIR") or f"/tmp/callwatch-{os.getuid()}")


def private_dir(path: Path, base: Path) -> None:
    """Create ``path`` (under ``base``) so that it and every directory from ``base`` down are
    directories, not symlinks, owned by this user with mode 0700; raise ``OSError`` with the fix
    if one already exists and is not. In a shared ``/tmp`` another user can create
    ``/tmp/callwatch-<uid>`` first and read, replace or squat on the control socket."""
    uid = os.getuid()
    parts = [base, *(base / p for p in path.relative_to(base).parts)]
    for i, d in enumerate(parts):
        if i == 0 and os.environ.get("XDG_RUNTIME_DIR"):
            # The session's runtime directory: logind makes it, 0700. Missing, it is a stale
            # setting (a `su`, a container, an ssh session without a login manager).
            if not d.is_dir():
                raise OSError(f"XDG_RUNTIME_DIR={d}: no such directory, so there is nowhere "
                              "to put the control socket; log in again so that it is made, "
                              "unset XDG_RUNTIME_DIR, or set [control] socket_path")
            continue
        with contextlib.suppress(FileExistsError):
            os.mkdir(d, 0o700)
        st = os.lstat(d)
        if not stat.S_ISDIR(st.st_mode):
            raise OSError(f"{d}: exists and is not a directory (a symlink?); remove it or set "
                          "[control] socket_path")
        if st.st_uid != uid:
            raise OSError(f"{d}: belongs to uid {st.st_uid}, not to you (uid {uid}); refusing "
                          "to put the control socket there: remove it, set XDG_RUNTIME_DIR or "
                          "set [control] socket_path")
        if st.st_mode & 0o077:
            raise OSError(f"{d}: mode {stat.S_IMODE(st.st_mode):04o} lets other users in; "
                          f"run `chmod 700 {d}` or remove it")


def send_request(path: Path, line: str, retry_s: float = CLIENT_RETRY_S) -> str:
    """Send one request line to the daemon at ``path``, return its reply line. A refused
    connection (a full backlog) or EAGAIN is retried for ``retry_s`` while the socket file
    exists; raises ``OSError`` when no daemon answers."""
    deadline = time.monotonic() + retry_s
    delay = 0.01
    while True:
        try:
            with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
                s.settimeout(10.0)
                s.connect(str(path))
                s.sendall(line.encode() + b"\n")
                return s.makefile("r", encoding="utf-8").readline()
        except (ConnectionRefusedError, BlockingIOError):
            if not path.exists() or time.monotonic() + delay > deadline:
                raise
            time.sleep(delay)
            delay = min(2 * delay, 0.2)


@dataclass
class Request:
    command: str
    arg: str | None
    reply: queue.SimpleQueue[dict[str, Any]] = field(default_factory=queue.SimpleQueue)


class ControlServer:
    """Accepts control connections on a thread; requests go to the processing loop, which
    answers them between two blocks of audio (so calls start and end on the audio timeline)."""

    def __init__(self, path: Path, requests: queue.SimpleQueue[Request],
                 log: Any = None, wake: Callable[[], None] | None = None) -> None:
        """``log``: an :class:`daemon.logjson.EventLog` for accept failures (or ``None``).
        ``wake``: called after a request is queued, so the loop answers it now instead of
        after its sleep."""
        self.path = path
        self.requests = requests
        self.log = log
        self.wake = wake
        self.accept_errors = 0
        self._sock: socket.socket | None = None
        self._thread: threading.Thread | None = None
        self._slots = threading.BoundedSemaphore(MAX_PENDING)

    def start(self) -> None:
        if self.path.parent.is_relative_to(_private_base()):
            private_dir(self.path.parent, _private_base())
        else:
            self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        if self.path.exists() or self.path.is_symlink():
            probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            try:
                probe.connect(str(self.path))
            except OSError:
                self.path.unlink()  # stale socket of a daemon that died
            else:
                probe.close()
                raise ControlSocketInUse(
                    f"{self.path}: another callwatch is running (control socket in use); stop "
                    "it or set [control] socket_path")
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        old = os.umask(0o177)
        try:
            s.bind(str(self.path))
        finally:
            os.umask(old)
        s.listen(ACCEPT_BACKLOG)
        s.settimeout(0.5)
        self._sock = s
        self._thread = threading.Thread(target=self._serve, name="control", daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        delay = ACCEPT_RETRY_MIN_S
        while (sock := self._sock) is not None:
            if not self._slots.acquire(timeout=0.5):
                continue  # MAX_PENDING requests in progress: the rest wait in the backlog
            try:
                conn, _ = sock.accept()
            except TimeoutError:
                self._slots.release()
                continue
            except OSError as exc:
                self._slots.release()
                if self._sock is None or exc.errno == errno.EBADF:
                    return  # stop() closed the socket
                self._accept_failed(exc, delay)
                time.sleep(delay)
                delay = min(2 * delay, ACCEPT_RETRY_MAX_S)
                continue
            delay = ACCEPT_RETRY_MIN_S
            try:
                threading.Thread(target=self._handle_slot, args=(conn,), daemon=True).start()
            except RuntimeError:  # no thread to be had: drop this one, keep accepting
                conn.close()
                self._slots.release()

    def _accept_failed(self, exc: OSError, delay: float) -> None:
        """Log the first failure of a run, then every 64th (EMFILE can repeat fast)."""
        self.accept_errors += 1
        if self.log is not None and (self.accept_errors - 1) % 64 == 0:
            self.log.emit("control_accept_error", error=exc.strerror or str(exc),
                          errno=exc.errno, failures=self.accept_errors, retry_s=delay)

    def _handle_slot(self, conn: socket.socket) -> None:
        try:
            self._handle(conn)
        finally:
            self._slots.release()

    def _handle(self, conn: socket.socket) -> None:
        with conn:
            conn.settimeout(5.0)
            try:
                line = conn.makefile("r", encoding="utf-8", errors="replace").readline(256)
            except OSError:
                return
            parts = line.split()
            cmd = parts[0].lower() if parts else ""
            arg = parts[1] if len(parts) > 1 else None
            if cmd not in ("start", "end", "status"):
                reply: dict[str, Any] = {"ok": False, "error": f"unknown command {cmd!r}; "
                                         "use start [ID], end or status"}
            elif cmd == "start" and arg is not None and not CALL_ID.match(arg):
                reply = {"ok": False, "error": "call id: 1-64 letters, digits, _ . : -"}
            else:
                req = Request(cmd, arg)
                self.requests.put(req)
                if self.wake is not None:
                    self.wake()
                try:
                    reply = req.reply.get(timeout=5.0)
                except queue.Empty:
                    reply = {"ok": False, "error": "daemon busy; try again"}
            with contextlib.suppress(OSError):
                conn.sendall((json.dumps(reply, separators=(",", ":")) + "\n").encode())

    def stop(self) -> None:
        s, self._sock = self._sock, None
        if s is not None:
            s.close()
            with contextlib.suppress(OSError):
                self.path.unlink()
