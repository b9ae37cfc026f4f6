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

Security (:mod:`alerts.gate` checks every request; docs/protocol.md has the details): it
listens on loopback by default; every WebSocket handshake needs the token (``?token=``,
``Authorization: Bearer`` or a ``callwatch.token.<token>`` subprotocol), browsers must come
from the server's own origin, and the ``Host`` header must name the server (DNS rebinding). The
token is generated once into ``$XDG_CONFIG_HOME/callwatch/token`` (mode 0600) unless the config
sets one.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import socket
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping
from typing import Any

from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request, Response

from alerts import protocol
from alerts.gate import Gate, select_subprotocol
from alerts.protocol import ProtocolError
from alerts.server_settings import ServerSettings, url_host
from alerts.token import load_or_create_token
from dsp.events import Kind

log = logging.getLogger("callwatch.alerts")

INBOX_MAX = 10_000
"""Messages published but not yet fanned out; only reached if the server's loop is stuck."""
SEND_BUFFER_BYTES = 64 * 1024
"""Kernel send buffer per connection. Linux would autotune it up to 4 MB for a client that
stopped reading; a fixed size bounds what a stalled client costs and makes the queue (and its
drop counter) take over quickly. At a few messages per second this is seconds of backlog."""


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
        self._gate = Gate(self.settings, self.settings.token or "")
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
        self.published_messages = 0
        """Messages handed to :meth:`publish` while the server ran."""
        self.dropped_messages = 0
        """Messages a slow client lost (oldest first) because its queue was full. Counted by
        the publishing thread (inbox full) and by the server's loop (a client's queue full),
        so every increment goes through :meth:`_count_drop`."""
        self._drop_lock = threading.Lock()
        self.bad_messages = 0
        """Client messages answered with an ``error``."""
        self.stalled_clients_closed = 0
        """Connections dropped because a send could not finish within ping interval + timeout."""

    # -- life cycle ------------------------------------------------------------------------

    def start(self, timeout_s: float = 10.0) -> None:
        """Start listening in a background thread; returns once the port is open."""
        if self._thread is not None:
            raise RuntimeError("AlertServer already started")
        if not self._gate.token:
            self._gate.token = load_or_create_token()
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
        return self._gate.token

    @property
    def url(self) -> str:
        """WebSocket URL without the token."""
        return f"ws://{url_host(self.settings.host)}:{self._port}/"

    @property
    def page_address(self) -> str:
        """The nudge page without its token: what logs may hold (the token opens the page and
        the WebSocket, so it must not reach the journal or log files)."""
        return f"http://{url_host(self.settings.host)}:{self._port}/"

    @property
    def page_url(self) -> str:
        """The nudge page, with its token: open it in the agent's browser."""
        return f"http://{url_host(self.settings.host)}:{self._port}/?token={self._gate.token}"

    @property
    def refused_connections(self) -> int:
        """Handshakes refused (token, origin, host, too many clients)."""
        return self._gate.refused

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
            self._count_drop()  # the loop itself is stuck: shed the oldest
        inbox.append((text, topic, track))
        # One wake-up per batch: most calls are a deque append that never gives up the GIL
        # (a wake-up writes to the loop's self-pipe, a system call).
        if not self._wakeup_pending:
            self._wakeup_pending = True
            with contextlib.suppress(RuntimeError):  # loop closed by a concurrent stop()
                loop.call_soon_threadsafe(self._drain_inbox)

    def _count_drop(self) -> None:
        """``+=`` on an attribute is a read, an add and a store: two threads doing it at
        once can lose a count, so both go through one lock (taken only when dropping)."""
        with self._drop_lock:
            self.dropped_messages += 1

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
            self._count_drop()
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
                select_subprotocol=select_subprotocol,
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
        self._gate.set_port(port)

    # -- HTTP side: handshake checks and static files (alerts.gate) ----------------------

    def _process_request(self, conn: ServerConnection, request: Request) -> Response | None:
        return self._gate.check(conn, request, len(self._clients))

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
