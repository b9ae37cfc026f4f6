"""The ``/metrics`` endpoint: client_python's WSGI app, optionally behind TLS and basic auth.

client_python's ``start_http_server`` does TLS but not basic auth, and it performs the TLS
handshake in the accepting thread, so one client that connects and stays silent stalls every
other scrape. This module serves the same ``make_wsgi_app`` on the same ``ThreadingWSGIServer``
but defers the handshake to the per-request thread (with a timeout) and puts a small basic-auth
check in front. The exposition format itself is entirely client_python's.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import socket
import ssl
import sys
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, make_server

from prometheus_client import make_wsgi_app
from prometheus_client.exposition import ThreadingWSGIServer
from prometheus_client.registry import CollectorRegistry

from daemon.metrics_settings import MetricsSettings

REQUEST_TIMEOUT_S = 10.0
"""A client that stalls (mid-handshake or mid-request) is dropped after this long."""

ERROR_LOG_EVERY_S = 10.0
"""Failed connections (TLS probes, port scanners, a client on plain HTTP) write at most one
line this often; the next line counts the ones left out."""

_WSGIApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]


class MetricsServerError(Exception):
    """The endpoint cannot start; the message names the ``[metrics]`` key and the fix."""


class _QuietHandler(WSGIRequestHandler):
    """No access log on stderr for every scrape; a stalled client times out."""

    timeout = REQUEST_TIMEOUT_S

    def log_message(self, format: str, *args: Any) -> None:
        pass


class ErrorLine:
    """One short stderr line per failed connection, at most one per :data:`ERROR_LOG_EVERY_S`
    (socketserver's default is a ~23-line traceback each: a scanner floods the journal)."""

    def __init__(self, out: Callable[[str], object] | None = None,
                 every_s: float = ERROR_LOG_EVERY_S,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._out = out or (lambda line: print(line, file=sys.stderr, flush=True))
        self._every_s = every_s
        self._clock = clock
        self._last: float | None = None
        self._lock = threading.Lock()
        self.suppressed = 0
        self.total = 0

    def __call__(self, client: Any, exc: BaseException | None) -> None:
        with self._lock:
            self.total += 1
            now = self._clock()
            if self._last is not None and now - self._last < self._every_s:
                self.suppressed += 1
                return
            self._last = now
            more, self.suppressed = self.suppressed, 0
        who = client[0] if isinstance(client, tuple) and client else client
        what = f"{type(exc).__name__}: {exc}" if exc is not None else "error"
        line = f"callwatch: metrics: connection from {who} failed ({' '.join(what.split())})"
        if more:
            line += f"; {more} more since the last such line"
        self._out(line[:300])


def _check_basic_auth(header: str, user: str, password_sha256: str) -> bool:
    """Whether an ``Authorization`` header carries the user and a password with that digest."""
    scheme, _, encoded = header.partition(" ")
    if scheme.lower() != "basic":
        return False
    try:
        decoded = base64.b64decode(encoded.strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        return False
    got_user, sep, got_password = decoded.partition(":")
    if not sep:
        return False
    digest = hashlib.sha256(got_password.encode("utf-8")).hexdigest()
    user_ok = hmac.compare_digest(got_user.encode("utf-8"), user.encode("utf-8"))
    password_ok = hmac.compare_digest(digest, password_sha256.lower())
    return user_ok & password_ok  # both compared every time: no timing hint which one failed


def metrics_path(app: _WSGIApp) -> _WSGIApp:
    """Serve ``app`` at ``/metrics`` only, as exporters do: ``/`` says where the metrics are,
    anything else is 404 (a mistyped scrape path must fail, not scrape the metrics)."""

    def routed(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "") or "/"
        if path == "/metrics":
            return app(environ, start_response)
        status, body = (("200 OK", b"callwatch: the metrics are at /metrics\n") if path == "/"
                        else ("404 Not Found", b"404 Not Found: the metrics are at /metrics\n"))
        start_response(status, [("Content-Type", "text/plain; charset=utf-8"),
                                ("Content-Length", str(len(body)))])
        return [body]

    return routed


def basic_auth(app: _WSGIApp, user: str, password_sha256: str) -> _WSGIApp:
    """Wrap a WSGI app so that it answers 401 unless the request carries valid credentials."""

    def guarded(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        if _check_basic_auth(environ.get("HTTP_AUTHORIZATION", ""), user, password_sha256):
            return app(environ, start_response)
        start_response("401 Unauthorized", [
            ("WWW-Authenticate", 'Basic realm="callwatch metrics", charset="UTF-8"'),
            ("Content-Type", "text/plain; charset=utf-8"),
        ])
        return [b"401 Unauthorized: basic auth required\n"]

    return guarded


def _tls_context(settings: MetricsSettings) -> ssl.SSLContext:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    try:
        ctx.load_cert_chain(settings.tls_cert_file, settings.tls_key_file)
    except (OSError, ssl.SSLError) as exc:
        raise MetricsServerError(
            f"[metrics] tls_cert_file = \"{settings.tls_cert_file}\", tls_key_file = "
            f"\"{settings.tls_key_file}\": cannot load the certificate and key ({exc}); "
            f"point both at readable PEM files that belong together"
        ) from None
    return ctx


@dataclass
class MetricsServer:
    """A running endpoint; :meth:`stop` closes it."""

    httpd: ThreadingWSGIServer
    thread: threading.Thread
    scheme: str

    @property
    def port(self) -> int:
        return int(self.httpd.server_address[1])

    @property
    def url(self) -> str:
        host = self.httpd.server_address[0]
        host = f"[{host}]" if ":" in host else host
        return f"{self.scheme}://{host}:{self.port}/metrics"

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(timeout=5)


def start_metrics_server(settings: MetricsSettings, registry: CollectorRegistry) -> MetricsServer:
    """Serve ``registry`` on ``settings.listen_address:settings.port`` in a daemon thread."""
    app: _WSGIApp = metrics_path(make_wsgi_app(registry))
    if settings.basic_auth_user:
        app = basic_auth(app, settings.basic_auth_user, settings.basic_auth_password_sha256)
    ctx = _tls_context(settings) if settings.tls_cert_file else None
    try:
        family = socket.getaddrinfo(
            settings.listen_address, settings.port, type=socket.SOCK_STREAM
        )[0][0]
    except socket.gaierror as exc:
        raise MetricsServerError(
            f"[metrics] listen_address = \"{settings.listen_address}\": not an address this "
            f"host has ({exc.strerror}); use 127.0.0.1, 0.0.0.0 or one of its own addresses"
        ) from None

    report = ErrorLine()

    class Server(ThreadingWSGIServer):
        address_family = family

        def handle_error(self, request: Any, client_address: Any) -> None:
            report(client_address, sys.exc_info()[1])

    try:
        httpd = make_server(
            settings.listen_address, settings.port, app, Server, handler_class=_QuietHandler
        )
    except OSError as exc:
        raise MetricsServerError(
            f"[metrics] port = {settings.port}: cannot listen on "
            f"{settings.listen_address}:{settings.port} ({exc.strerror}); choose a free port "
            f"or stop what is using it"
        ) from exc  # the cause's errno tells a replay that the port is merely taken
    if ctx is not None:
        # The handshake happens on the first read, in the request's own thread.
        httpd.socket = ctx.wrap_socket(
            httpd.socket, server_side=True, do_handshake_on_connect=False
        )
    thread = threading.Thread(target=httpd.serve_forever, name="callwatch-metrics", daemon=True)
    thread.start()
    return MetricsServer(httpd, thread, "https" if ctx else "http")
