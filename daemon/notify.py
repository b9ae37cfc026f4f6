"""systemd's notify protocol (``Type=notify``, ``WatchdogSec=``) with the standard library.

The protocol is one datagram of ``KEY=value`` lines to the socket named by ``$NOTIFY_SOCKET``
(a path, or an abstract socket when it starts with ``@``). It is small and stable enough that
a ten-line sender beats a dependency; outside systemd (no ``$NOTIFY_SOCKET``) every call is a
no-op, so the daemon runs the same from a terminal.
"""

from __future__ import annotations

import os
import socket


def notify(*states: str) -> bool:
    """Send ``READY=1``, ``WATCHDOG=1``, ``STATUS=...``, ``STOPPING=1``...; False if not sent."""
    addr = os.environ.get("NOTIFY_SOCKET")
    if not addr:
        return False
    if addr[0] == "@":
        addr = "\0" + addr[1:]
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC) as s:
            s.sendto("\n".join(states).encode(), addr)
    except OSError:
        return False
    return True


def watchdog_interval_s() -> float | None:
    """Half the watchdog timeout systemd asked for (``$WATCHDOG_USEC``), or None."""
    usec = os.environ.get("WATCHDOG_USEC")
    pid = os.environ.get("WATCHDOG_PID")
    if not usec or (pid and pid != str(os.getpid())):
        return None
    try:
        return int(usec) / 2e6
    except ValueError:
        return None
