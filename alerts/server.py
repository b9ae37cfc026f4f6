"""The live alert server: WebSocket protocol v1 plus the agent's nudge page, on one port.

It runs its own asyncio loop in a background thread so the processing loop stays plain,
synchronous code. The only call on the hot path is :meth:`AlertServer.publish`, which is
thread-safe and never waits: it serialises the message once and appends it to an inbox the
loop drains (woken with ``call_soon_threadsafe`` once per batch); the loop appends it to each
subscribed client's bounded queue, and a client that reads too slowly loses its *oldest*
messages (counted in ``dropped_messages``). Nothing a client does can block or kill the daemon::

    server = AlertServer(ServerSettings(), hello_info={"version": "0.1.0", "agent": "ana@ws-17",
                         "devices": {"agent": "Jabra", "customer": "Jabra monitor"}},
                         on_snooze=lambda kind, minutes: snoozes.put((kind, minutes)))
    # on_snooze runs on the server's thread: queue it for the processing loop
    server.start()                                # returns when listening
    server.publish(protocol.alert_message(alert), "alerts")
    server.stop()

Security (docs/protocol.md has the details): it listens on loopback by default; every
WebSocket handshake needs the token (``?token=``, ``Authorization: Bearer`` or a
``callwatch.token.<token>`` subprotocol), browsers must come from the server's own origin, and
the ``Host`` header must name the server (DNS rebinding). The token is generated once into
``$XDG_CONFIG_HOME/callwatch/token`` (mode 0600) unless the config sets one.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import json
import logging
import os
import secrets
import socket
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from http import HTTPStatus
from importlib import resources
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.datastructures import Headers
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request, Response

from alerts import protocol
from alerts.protocol import ProtocolError
from dsp.events import Kind
from dsp.settings import setting

log = logging.getLogger("callwatch.alerts")

SUBPROTOCOL = "callwatch.v1"
TOKEN_SUBPROTOCOL_PREFIX = "callwatch.token."
STATIC_FILES: dict[str, tuple[str, str]] = {
    # URL path -> (file in alerts/static, content type)
    "/": ("index.html", "text/html; charset=utf-8"),
    "/static/app.js": ("app.js", "text/javascript; charset=utf-8"),
    "/static/style.css": ("style.css", "text/css; charset=utf-8"),
}
_WILDCARD_HOSTS = ("", "0.0.0.0", "::")
INBOX_MAX = 10_000
"""Messages published but not yet fanned out; only reached if the server's loop is stuck."""
SEND_BUFFER_BYTES = 64 * 1024
"""Kernel send buffer per connection. Linux would autotune it up to 4 MB for a client that
stopped reading; a fixed size bounds what a stalled client costs and makes the queue (and its
drop counter) take over quickly. At a few messages per second this is seconds of backlog."""


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
        if self.token and (len(self.token) < 16 or not _token_chars_ok(self.token)):
            raise ValueError(
                "token: use at least 16 characters of A-Z a-z 0-9 - _ . ~ "
                "(or leave it empty to generate one)"
            )


def _token_chars_ok(token: str) -> bool:
    return all(c.isascii() and (c.isalnum() or c in "-_.~") for c in token)


# -- token file ---------------------------------------------------------------------------


def token_path() -> Path:
    """``$XDG_CONFIG_HOME/callwatch/token`` (``~/.config`` when unset)."""
    base = os.environ.get("XDG_CONFIG_HOME") or os.path.join(os.path.expanduser("~"), ".config")
    return Path(base) / "callwatch" / "token"


def read_token(path: Path | None = None) -> str:
    """The token stored by a previous start; raises ``OSError`` if there is none."""
    path = path or token_path()
    token = path.read_text("ascii").strip()
    if not token:
        raise FileNotFoundError(f"{path}: empty token file")
    return token


def load_or_create_token(path: Path | None = None) -> str:
    """Read the token file, or create it (0600, directory 0700) with a new random token."""
    path = path or token_path()
    with contextlib.suppress(FileNotFoundError):
        token = read_token(path)
        if path.stat().st_mode & 0o077:
            os.chmod(path, 0o600)
            log.warning("%s was readable by other users; set its mode to 0600", path)
        return token
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    token = secrets.token_urlsafe(24)
    tmp = path.with_name(f".{path.name}.{os.getpid()}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="ascii") as f:
        f.write(token + "\n")
    os.replace(tmp, path)  # atomic: a concurrent reader sees the whole token or none
    return token


# -- server -------------------------------------------------------------------------------


class _Client:
    """One connection: its topics and its bounded outgoing queue (drained by one writer)."""

    __slots__ = ("dropped", "queue", "sent", "topics", "wake", "ws")

    def __init__(self, ws: ServerConnection, maxlen: int) -> None:
        self.ws = ws
        self.queue: deque[str] = deque(maxlen=maxlen)
        self.wake = asyncio.Event()
        self.topics: set[str] = set(protocol.DEFAULT_TOPICS)
        self.dropped = 0
        self.sent = 0


class AlertServer:
    """WebSocket server for alerts, levels, call and device messages; see the module doc."""

    def __init__(
        self,
        settings: ServerSettings | None = None,
        hello_info: Mapping[str, Any] | None = None,
        on_snooze: Callable[[Kind, float], object] | None = None,
    ) -> None:
        """``hello_info``: ``version``, ``agent``, ``devices`` (stream -> device name) for the
        hello message. ``on_snooze(kind, minutes)`` runs on the server's thread when a client
        snoozes a kind: hand it to the processing loop (the policy is not thread-safe)."""
        self.settings = settings or ServerSettings()
        self._hello_info = dict(hello_info or {})
        self._on_snooze = on_snooze
        self._token = self.settings.token or ""
        self._static = _load_static()
        self._clients: set[_Client] = set()
        self._active_alerts: dict[str, str] = {}  # alert id -> serialised firing message
        self._inbox: deque[tuple[str, str, tuple[str, bool] | None]] = deque(maxlen=INBOX_MAX)
        self._wakeup_pending = False
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._thread: threading.Thread | None = None
        self._ready = threading.Event()
        self._error: BaseException | None = None
        self._port = self.settings.port
        self._origins: set[str] = set()
        self._hosts: set[str] = set()
        self.published_messages = 0
        """Messages handed to :meth:`publish` while the server ran."""
        self.dropped_messages = 0
        """Messages a slow client lost (oldest first) because its queue was full."""
        self.refused_connections = 0
        """Handshakes refused (token, origin, host, too many clients)."""
        self.bad_messages = 0
        """Client messages answered with an ``error``."""
        self.stalled_clients_closed = 0
        """Connections dropped because a send could not finish within ping interval + timeout."""

    # -- life cycle ------------------------------------------------------------------------

    def start(self, timeout_s: float = 10.0) -> None:
        """Start listening in a background thread; returns once the port is open."""
        if self._thread is not None:
            raise RuntimeError("AlertServer already started")
        if not self._token:
            self._token = load_or_create_token()
        self._thread = threading.Thread(target=self._run, name="callwatch-alerts", daemon=True)
        self._thread.start()
        if not self._ready.wait(timeout_s):
            raise RuntimeError(f"alert server did not start listening within {timeout_s} s")
        if self._error is not None:
            self._thread.join()
            self._thread = None
            s = self.settings
            raise RuntimeError(
                f"cannot listen on {s.host}:{s.port}: {self._error}; is another callwatch "
                "running? Set another [server] port"
            ) from self._error

    def stop(self, timeout_s: float = 10.0) -> None:
        """Close every connection (code 1001) and the port; safe to call twice."""
        loop, stop, thread = self._loop, self._stop, self._thread
        if loop is not None and stop is not None:
            with contextlib.suppress(RuntimeError):  # loop already closed
                loop.call_soon_threadsafe(stop.set)
        if thread is not None:
            thread.join(timeout_s)
        self._thread = None

    def __enter__(self) -> AlertServer:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def port(self) -> int:
        """The port listened on (the real one when the settings say 0)."""
        return self._port

    @property
    def token(self) -> str:
        return self._token

    @property
    def url(self) -> str:
        """WebSocket URL without the token."""
        return f"ws://{_url_host(self.settings.host)}:{self._port}/"

    @property
    def page_url(self) -> str:
        """The nudge page, with its token: open it in the agent's browser."""
        return f"http://{_url_host(self.settings.host)}:{self._port}/?token={self._token}"

    @property
    def clients(self) -> int:
        """Connections open now."""
        return len(self._clients)

    def set_hello_info(self, **info: Any) -> None:
        """Change what new connections get in ``hello`` (e.g. after a device change)."""
        self._hello_info = {**self._hello_info, **info}

    # -- publishing (any thread) -------------------------------------------------------------

    def publish(self, message: Mapping[str, Any], topic: str) -> None:
        """Send ``message`` to every client subscribed to ``topic``. Never blocks.

        Thread-safe; a no-op while the server is not running. Raises ``ValueError`` for an
        unknown topic or a message that is not JSON (NaN/inf included): those are bugs in
        the caller, not runtime conditions.
        """
        if topic not in protocol.TOPICS:
            raise ValueError(f"topic {topic!r}: must be one of {', '.join(protocol.TOPICS)}")
        text = json.dumps(message, separators=(",", ":"), allow_nan=False)
        loop = self._loop
        if loop is None:
            return
        alert = message.get("alert") if message.get("type") == "alert" else None
        track = (alert["id"], alert["state"] == "firing") if isinstance(alert, dict) else None
        inbox = self._inbox
        if len(inbox) == inbox.maxlen:
            self.dropped_messages += 1  # the loop itself is stuck: shed the oldest
        inbox.append((text, topic, track))
        # One wake-up per batch: most calls are a deque append that never gives up the GIL
        # (a wake-up writes to the loop's self-pipe, a system call).
        if not self._wakeup_pending:
            self._wakeup_pending = True
            with contextlib.suppress(RuntimeError):  # loop closed by a concurrent stop()
                loop.call_soon_threadsafe(self._drain_inbox)

    def _drain_inbox(self) -> None:
        self._wakeup_pending = False  # cleared before draining: a later append wakes us again
        inbox = self._inbox
        while inbox:
            self._fanout(*inbox.popleft())

    def _fanout(self, text: str, topic: str, track: tuple[str, bool] | None) -> None:
        self.published_messages += 1
        if track is not None:
            alert_id, firing = track
            if firing:
                self._active_alerts[alert_id] = text
            else:
                self._active_alerts.pop(alert_id, None)
        for client in self._clients:
            if topic in client.topics:
                self._push(client, text)

    def _push(self, client: _Client, text: str) -> None:
        if len(client.queue) == client.queue.maxlen:
            client.dropped += 1
            self.dropped_messages += 1
        client.queue.append(text)
        client.wake.set()

    # -- the loop -----------------------------------------------------------------------------

    def _run(self) -> None:
        try:
            asyncio.run(self._main())
        except BaseException as exc:  # reported by start(); the thread must not die silently
            if not self._ready.is_set():
                self._error = exc
                self._ready.set()
            else:
                log.exception("alert server stopped on an error")
        finally:
            self._loop = None

    async def _main(self) -> None:
        s = self.settings
        self._stop = asyncio.Event()
        self._set_port(s.port)
        try:
            server: Server = await serve(
                self._handle,
                s.host,
                s.port,
                process_request=self._process_request,
                select_subprotocol=_select_subprotocol,
                max_size=s.max_message_bytes,
                max_queue=4,
                ping_interval=s.ping_interval_s,
                ping_timeout=s.ping_timeout_s,
                close_timeout=2,
                server_header="callwatch",
            )
        except OSError as exc:
            self._error = exc
            self._ready.set()
            return
        async with server:
            self._set_port(server.sockets[0].getsockname()[1])
            self._loop = asyncio.get_running_loop()
            self._ready.set()
            await self._stop.wait()
            self._loop = None
            server.close(close_connections=True)
            await server.wait_closed()

    def _set_port(self, port: int) -> None:
        self._port = port
        names = {"127.0.0.1", "localhost", "[::1]", _url_host(self.settings.host)}
        self._hosts = {f"{n}:{port}" for n in names}
        self._origins = set(self.settings.allowed_origins) or {
            f"http://127.0.0.1:{port}", f"http://localhost:{port}",
            f"http://{_url_host(self.settings.host)}:{port}",
        }

    # -- HTTP side: static files and handshake checks --------------------------------------------

    def _process_request(self, conn: ServerConnection, request: Request) -> Response | None:
        path, query = _split_path(request.path)
        if self.settings.host not in _WILDCARD_HOSTS and request.headers.get("Host") not in \
                self._hosts:
            return self._refuse(conn, HTTPStatus.FORBIDDEN,
                                "Host header does not name this server")
        upgrade = "websocket" in request.headers.get("Upgrade", "").lower()
        if not upgrade:
            return self._static_response(conn, path, query)
        if path not in ("/", "/ws"):
            return self._refuse(conn, HTTPStatus.NOT_FOUND, "WebSocket endpoint is /")
        origin = request.headers.get("Origin")
        if origin is not None and origin not in self._origins:
            return self._refuse(conn, HTTPStatus.FORBIDDEN,
                                f"origin {origin} is not allowed (server.allowed_origins)")
        token = _request_token(request, query)
        if token is None:
            return self._refuse(conn, HTTPStatus.UNAUTHORIZED, "missing token")
        if not hmac.compare_digest(token.encode(), self._token.encode()):
            return self._refuse(conn, HTTPStatus.UNAUTHORIZED, "wrong token")
        if len(self._clients) >= self.settings.max_clients:
            return self._refuse(conn, HTTPStatus.SERVICE_UNAVAILABLE,
                                f"too many clients (server.max_clients = "
                                f"{self.settings.max_clients})")
        return None

    def _refuse(self, conn: ServerConnection, status: HTTPStatus, why: str) -> Response:
        self.refused_connections += 1
        response = conn.respond(status, f"callwatch: {why}\n")
        if status == HTTPStatus.UNAUTHORIZED:
            response.headers["WWW-Authenticate"] = 'Bearer realm="callwatch"'
        return response

    def _static_response(self, conn: ServerConnection, path: str, query: dict) -> Response:
        entry = STATIC_FILES.get(path)
        if entry is None or entry[0] not in self._static:
            return conn.respond(HTTPStatus.NOT_FOUND, "callwatch: not found\n")
        if path == "/":
            token = (query.get("token") or [""])[0]
            if not hmac.compare_digest(token.encode(), self._token.encode()):
                return self._refuse(
                    conn, HTTPStatus.UNAUTHORIZED,
                    "open the nudge page with its token: `callwatch tail --page-url` prints it",
                )
        body = self._static[entry[0]]
        origin_hosts = " ".join(f"ws://{h}" for h in sorted(self._hosts) if "[" not in h)
        headers = Headers([
            ("Content-Type", entry[1]),
            ("Content-Length", str(len(body))),
            ("Connection", "close"),
            ("Cache-Control", "no-store"),
            ("X-Content-Type-Options", "nosniff"),
            ("Referrer-Policy", "no-referrer"),
            ("X-Frame-Options", "DENY"),
            ("Content-Security-Policy",
             "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
             f"connect-src 'self' {origin_hosts}; base-uri 'none'; form-action 'none'; "
             "frame-ancestors 'none'"),
        ])
        return Response(200, "OK", headers, body)

    # -- WebSocket side ----------------------------------------------------------------------------

    async def _handle(self, ws: ServerConnection) -> None:
        client = _Client(ws, self.settings.queue_max_messages)
        sock = ws.transport.get_extra_info("socket")
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, SEND_BUFFER_BYTES)
        self._clients.add(client)
        self._push(client, json.dumps(self._hello(), separators=(",", ":")))
        for text in list(self._active_alerts.values()):
            self._push(client, text)
        writer = asyncio.create_task(self._write(client))
        try:
            async for frame in ws:
                self._on_frame(client, frame)
        except ConnectionClosed:
            pass
        finally:
            self._clients.discard(client)
            writer.cancel()

    async def _write(self, client: _Client) -> None:
        # A send that cannot finish means the client stopped reading and its socket is full.
        # websockets' keepalive cannot catch that (its ping waits behind the blocked send), so
        # give up after the keepalive's own allowance and drop the connection.
        limit = self.settings.ping_interval_s + self.settings.ping_timeout_s
        with contextlib.suppress(ConnectionClosed):
            while True:
                while client.queue:
                    try:
                        await asyncio.wait_for(client.ws.send(client.queue.popleft()), limit)
                    except TimeoutError:
                        self.stalled_clients_closed += 1
                        log.warning("closing %s: it has not read anything for %.0f s",
                                    client.ws.remote_address, limit)
                        client.ws.transport.abort()
                        return
                    client.sent += 1
                client.wake.clear()
                await client.wake.wait()

    def _hello(self) -> dict[str, Any]:
        info = self._hello_info
        return protocol.hello_message(
            version=str(info.get("version", "")),
            agent=info.get("agent"),
            devices=info.get("devices", {}),
            desktop_notifications=self.settings.desktop_notifications,
            limits={"max_message_bytes": self.settings.max_message_bytes,
                    "queue_max_messages": self.settings.queue_max_messages},
        )

    def _reply(self, client: _Client, message: dict[str, Any]) -> None:
        self._push(client, json.dumps(message, separators=(",", ":")))

    def _on_frame(self, client: _Client, frame: str | bytes) -> None:
        try:
            request = protocol.parse_client_message(frame)
        except ProtocolError as exc:
            self.bad_messages += 1
            self._reply(client, protocol.error_message(exc.code, exc.message))
            return
        if isinstance(request, protocol.Subscribe):
            client.topics = set(request.topics)
            self._reply(client, protocol.subscribed_message(client.topics))
        elif isinstance(request, protocol.Ping):
            self._reply(client, protocol.pong_message(time.time(), request.id))
        elif self._on_snooze is None:
            self._reply(client, protocol.error_message(
                "snooze_unavailable", "this server does not take snoozes"))
        else:
            try:
                self._on_snooze(request.kind, request.minutes)
            except Exception:
                log.exception("snooze handler failed")
                self._reply(client, protocol.error_message("internal", "snooze failed"))
                return
            until = time.time() + request.minutes * 60
            self._reply(client, protocol.snoozed_message(request.kind, request.minutes, until))

    def client_stats(self) -> list[dict[str, Any]]:
        """Per-connection counters (for logs and tests): topics, queued, sent, dropped."""
        return [{"remote": str(c.ws.remote_address), "topics": sorted(c.topics),
                 "queued": len(c.queue), "sent": c.sent, "dropped": c.dropped}
                for c in list(self._clients)]


def _load_static() -> dict[str, bytes]:
    out: dict[str, bytes] = {}
    root = resources.files("alerts").joinpath("static")
    for name, _ in STATIC_FILES.values():
        with contextlib.suppress(FileNotFoundError, NotADirectoryError):
            out[name] = root.joinpath(name).read_bytes()
    return out


def _split_path(target: str) -> tuple[str, dict[str, list[str]]]:
    parts = urlsplit(target)
    return parts.path or "/", parse_qs(parts.query)


def _request_token(request: Request, query: dict[str, list[str]]) -> str | None:
    if "token" in query:
        return query["token"][0]
    auth = request.headers.get("Authorization", "")
    if auth.lower().startswith("bearer "):
        return auth[7:].strip()
    for value in request.headers.get_all("Sec-WebSocket-Protocol"):
        for proto in value.split(","):
            proto = proto.strip()
            if proto.startswith(TOKEN_SUBPROTOCOL_PREFIX):
                return proto[len(TOKEN_SUBPROTOCOL_PREFIX):]
    return None


def _select_subprotocol(conn: ServerConnection, offered: Any) -> str | None:
    """Accept ``callwatch.v1`` when offered; a browser that sent only the token subprotocol
    must get one of its offers back, so echo that one."""
    if SUBPROTOCOL in offered:
        return SUBPROTOCOL
    for proto in offered:
        if proto.startswith(TOKEN_SUBPROTOCOL_PREFIX):
            return proto
    return None


def _url_host(host: str) -> str:
    if host in _WILDCARD_HOSTS:
        return "127.0.0.1"
    return f"[{host}]" if ":" in host and not host.startswith("[") else host
