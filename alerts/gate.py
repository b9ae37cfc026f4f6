"""The alert server's HTTP side: who may open a WebSocket, and the nudge page's files.

Every request reaches :meth:`Gate.check` before websockets upgrades it. Plain HTTP gets the
nudge page's static files (the page itself only with the token); a WebSocket handshake needs
the token (``?token=``, ``Authorization: Bearer`` or a ``callwatch.token.<token>``
subprotocol), an allowed ``Origin`` if a browser sends one, a ``Host`` header naming this
server (DNS rebinding) and a free client slot. docs/protocol.md has the details.
"""

from __future__ import annotations

import contextlib
import hmac
from http import HTTPStatus
from importlib import resources
from typing import Any
from urllib.parse import parse_qs, urlsplit

from websockets.asyncio.server import ServerConnection
from websockets.datastructures import Headers
from websockets.http11 import Request, Response

from alerts.server_settings import WILDCARD_HOSTS, ServerSettings, url_host

SUBPROTOCOL = "callwatch.v1"
TOKEN_SUBPROTOCOL_PREFIX = "callwatch.token."
STATIC_FILES: dict[str, tuple[str, str]] = {
    # URL path -> (file in alerts/static, content type)
    "/": ("index.html", "text/html; charset=utf-8"),
    "/static/app.js": ("app.js", "text/javascript; charset=utf-8"),
    "/static/style.css": ("style.css", "text/css; charset=utf-8"),
}


class Gate:
    """Checks each HTTP request of one server and answers those that are not WebSocket
    handshakes; counts what it refuses."""

    def __init__(self, settings: ServerSettings, token: str = "") -> None:
        self.settings = settings
        self.token = token
        """Set before the server listens (generated or read from the token file if empty)."""
        self.static = load_static()
        self.hosts: set[str] = set()
        self.origins: set[str] = set()
        self.refused = 0
        """Handshakes refused (token, origin, host, too many clients)."""

    def set_port(self, port: int) -> None:
        names = {"127.0.0.1", "localhost", "[::1]", url_host(self.settings.host)}
        self.hosts = {f"{n}:{port}" for n in names}
        self.origins = set(self.settings.allowed_origins) or {
            f"http://127.0.0.1:{port}", f"http://localhost:{port}",
            f"http://{url_host(self.settings.host)}:{port}",
        }

    def check(self, conn: ServerConnection, request: Request, clients: int) -> Response | None:
        """``None`` lets a WebSocket handshake through; anything else is the answer."""
        path, query = split_path(request.path)
        for name in ("Host", "Origin", "Authorization"):
            if len(request.headers.get_all(name)) > 1:  # which one would the checks trust?
                return self.refuse(conn, HTTPStatus.BAD_REQUEST, f"more than one {name} header")
        if self.settings.host not in WILDCARD_HOSTS and request.headers.get("Host") not in \
                self.hosts:
            return self.refuse(conn, HTTPStatus.FORBIDDEN,
                                "Host header does not name this server")
        upgrade = "websocket" in request.headers.get("Upgrade", "").lower()
        if not upgrade:
            return self.static_response(conn, path, query)
        if path not in ("/", "/ws"):
            return self.refuse(conn, HTTPStatus.NOT_FOUND, "WebSocket endpoint is /")
        origin = request.headers.get("Origin")
        if origin is not None and origin not in self.origins:
            return self.refuse(conn, HTTPStatus.FORBIDDEN,
                                f"origin {origin} is not allowed (server.allowed_origins)")
        token = request_token(request, query)
        if token is None:
            return self.refuse(conn, HTTPStatus.UNAUTHORIZED, "missing token")
        if not hmac.compare_digest(token.encode(), self.token.encode()):
            return self.refuse(conn, HTTPStatus.UNAUTHORIZED, "wrong token")
        if clients >= self.settings.max_clients:
            return self.refuse(conn, HTTPStatus.SERVICE_UNAVAILABLE,
                                f"too many clients (server.max_clients = "
                                f"{self.settings.max_clients})")
        return None

    def refuse(self, conn: ServerConnection, status: HTTPStatus, why: str) -> Response:
        self.refused += 1
        response = conn.respond(status, f"callwatch: {why}\n")
        if status == HTTPStatus.UNAUTHORIZED:
            response.headers["WWW-Authenticate"] = 'Bearer realm="callwatch"'
        return response

    def static_response(self, conn: ServerConnection, path: str, query: dict) -> Response:
        entry = STATIC_FILES.get(path)
        if entry is None or entry[0] not in self.static:
            return conn.respond(HTTPStatus.NOT_FOUND, "callwatch: not found\n")
        if path == "/":
            token = (query.get("token") or [""])[0]
            if not hmac.compare_digest(token.encode(), self.token.encode()):
                return self.refuse(
                    conn, HTTPStatus.UNAUTHORIZED,
                    "open the nudge page with its token: `callwatch tail --page-url` prints it",
                )
        body = self.static[entry[0]]
        origin_hosts = " ".join(f"ws://{h}" for h in sorted(self.hosts) if "[" not in h)
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


def load_static() -> dict[str, bytes]:
    out: dict[str, bytes] = {}
    root = resources.files("alerts").joinpath("static")
    for name, _ in STATIC_FILES.values():
        with contextlib.suppress(FileNotFoundError, NotADirectoryError):
            out[name] = root.joinpath(name).read_bytes()
    return out


def split_path(target: str) -> tuple[str, dict[str, list[str]]]:
    parts = urlsplit(target)
    return parts.path or "/", parse_qs(parts.query)


def request_token(request: Request, query: dict[str, list[str]]) -> str | None:
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


def select_subprotocol(conn: ServerConnection, offered: Any) -> str | None:
    """Accept ``callwatch.v1`` when offered; a browser that sent only the token subprotocol
    must get one of its offers back, so echo that one."""
    if SUBPROTOCOL in offered:
        return SUBPROTOCOL
    for proto in offered:
        if proto.startswith(TOKEN_SUBPROTOCOL_PREFIX):
            return proto
    return None
