"""A free loopback TCP port for a server a test starts in another process.

The port is free when this returns and may be taken before the server binds it; tests that
start the server in-process bind port 0 instead and read the port back.
"""

from __future__ import annotations

import socket


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])
