"""The ``[server]`` table and the addresses it gives.

Kept apart from :mod:`alerts.server` so that the config loader and ``callwatch tail`` can
know where the daemon listens without importing the server itself.
"""

from __future__ import annotations

from dataclasses import dataclass

from alerts.token import TOKEN_CHARS, token_chars_ok
from dsp.settings import setting

__all__ = ["ServerSettings", "url_host"]

WILDCARD_HOSTS = ("", "0.0.0.0", "::")
"""Listen addresses that mean "every interface": reached on loopback."""


@dataclass(frozen=True, slots=True)
class ServerSettings:
    """The ``[server]`` table: where the alert server listens and how it protects itself."""

    host: str = setting("127.0.0.1", doc="listen address; keep loopback unless you must")
    port: int = setting(8765, 0, 65535, "TCP port of the WebSocket and the nudge page (0 = any)")
    token: str = setting(
        "", doc="shared secret for clients; \"\" = generated once into "
        "$XDG_CONFIG_HOME/callwatch/token (mode 0600)"
    )
    allowed_origins: tuple[str, ...] = setting(
        (), doc="browser origins allowed to connect; empty = the server's own "
        "http://127.0.0.1:PORT and http://localhost:PORT"
    )
    max_message_bytes: int = setting(
        4096, 256, 1 << 20, "largest client message; bigger closes the connection (1009)"
    )
    queue_max_messages: int = setting(
        256, 8, 100_000, "messages queued per client; a slow client loses its oldest"
    )
    max_clients: int = setting(64, 1, 10_000, "connections beyond this are refused (HTTP 503)")
    ping_interval_s: float = setting(20.0, 1.0, 600.0, "keepalive ping every this many seconds")
    ping_timeout_s: float = setting(20.0, 1.0, 600.0, "close a client that misses a pong this long")
    desktop_notifications: bool = setting(
        False, doc="nudge page also raises desktop notifications (if the agent allows them)"
    )

    def __post_init__(self) -> None:
        if self.token and (len(self.token) < 16 or not token_chars_ok(self.token)):
            raise ValueError(
                f"token: use at least 16 characters of {TOKEN_CHARS} "
                "(or leave it empty to generate one)"
            )


def url_host(host: str) -> str:
    """The host part of a URL for a server listening on ``host``: loopback for a wildcard
    address, brackets around an IPv6 address."""
    if host in WILDCARD_HOSTS:
        return "127.0.0.1"
    return f"[{host}]" if ":" in host and not host.startswith("[") else host
