"""``callwatch tail``: print the running daemon's live alerts, one line each (or JSON lines).

It is an ordinary protocol-v1 client (docs/protocol.md). The URL is ``--url``, else the one
the running daemon reports it serves, else the daemon's config's ``[server]`` host and port;
the token is ``--token``, else the config's ``[server] token``, else the one the daemon wrote
to ``$XDG_CONFIG_HOME/callwatch/token``. (``daemon.tail`` reads the config and asks the daemon,
then hands the URL and the ``[server]`` settings in: ``alerts`` imports nothing of
``daemon``.) It connects, subscribes and prints. Exit 3 when no daemon is listening or the
token is refused, so scripts can tell "nothing to watch" from "nothing happened".
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from typing import Any, TextIO

from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidStatus

from alerts.protocol import clock
from alerts.server_settings import ServerSettings, url_host
from alerts.token import read_token, token_path

EXIT_OK = 0
EXIT_USAGE = 2
EXIT_CANNOT_RUN = 3
DEFAULT_URL = "ws://127.0.0.1:8765/"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--url", help="the daemon's WebSocket URL (default: the one the running "
                        "daemon serves, else the config's [server] host and port, "
                        f"{DEFAULT_URL} without one)")
    parser.add_argument("--token", help="client token (default: the config's [server] token, "
                        "else the daemon's token file)")
    parser.add_argument("--json", action="store_true",
                        help="print every message as one JSON line, as received")
    parser.add_argument("--levels", action="store_true", help="also print the live level meters")
    parser.add_argument("--count", type=int, default=0, metavar="N",
                        help="exit after N alert messages (default: run until interrupted)")
    parser.add_argument("--page-url", action="store_true",
                        help="print the nudge page's address (with its token) and exit")


def server_url(settings: ServerSettings) -> str | None:
    """The WebSocket URL of a daemon listening as ``settings`` say (a wildcard address is
    reached on loopback); ``None`` for port 0, which the daemon picks at start."""
    if settings.port == 0:
        return None
    return f"ws://{url_host(settings.host)}:{settings.port}/"


def main(args: argparse.Namespace, server: ServerSettings | None = None) -> int:
    """``server``: the ``[server]`` table of the daemon's config (defaults without one)."""
    server = server or ServerSettings()
    if args.url is None:
        args.url = server_url(server)
        if args.url is None:
            print("callwatch tail: [server] port = 0 lets the daemon pick its port at start, "
                  "and no running daemon answered with it; start the daemon, or pass --url "
                  "ws://127.0.0.1:PORT/ with the port of its nudge page (printed at start)",
                  file=sys.stderr)
            return EXIT_USAGE
    if not args.url.startswith(("ws://", "wss://")):
        print(f"callwatch tail: --url {args.url}: must start with ws:// (e.g. {DEFAULT_URL})",
              file=sys.stderr)
        return EXIT_USAGE
    if args.count < 0:
        print(f"callwatch tail: --count {args.count}: must be 0 or more", file=sys.stderr)
        return EXIT_USAGE
    if args.token is not None and not args.token.strip():
        print("callwatch tail: --token is empty (an unset variable?): pass the token, or leave "
              "--token out to use the config's [server] token or the daemon's token file",
              file=sys.stderr)
        return EXIT_USAGE
    token = args.token or server.token
    if not token:
        try:
            token = read_token()
        except OSError:
            print(f"callwatch tail: no token in {token_path()}: the daemon writes it on its "
                  "first start; start it, or pass --token", file=sys.stderr)
            return EXIT_CANNOT_RUN
    base = args.url.split("?", 1)[0]
    if args.page_url:
        http = "http" + base.removeprefix("ws")
        print(f"{http.rstrip('/')}/?token={token}")
        return EXIT_OK
    try:
        return asyncio.run(_tail(base, token, args, sys.stdout))
    except KeyboardInterrupt:
        return EXIT_OK


async def _tail(url: str, token: str, args: argparse.Namespace, out: TextIO) -> int:
    try:
        ws = await connect(url, additional_headers={"Authorization": f"Bearer {token}"},
                           open_timeout=5, max_size=2**22)
    except InvalidStatus as exc:
        status = exc.response.status_code
        why = {401: "the token was refused (check --token or the token file)",
               403: "the daemon refused this client (origin or host not allowed)",
               503: "the daemon has too many clients"}.get(status, f"HTTP {status}")
        print(f"callwatch tail: {url}: {why}", file=sys.stderr)
        return EXIT_CANNOT_RUN
    except (OSError, TimeoutError, InvalidHandshake) as exc:
        refused = isinstance(exc, ConnectionRefusedError) or "Connect call failed" in str(exc)
        reason = "connection refused" if refused else (str(exc) or type(exc).__name__)
        print(f"callwatch tail: no callwatch daemon is listening at {url} ({reason}); "
              "start it with `callwatch run` or `systemctl --user start callwatch`",
              file=sys.stderr)
        return EXIT_CANNOT_RUN
    topics = ["alerts", "calls", "devices"] + (["levels"] if args.levels else [])
    alerts_seen = 0
    async with ws:
        try:
            # The daemon may go away between the handshake and the subscribe: the same end.
            await ws.send(json.dumps({"v": 1, "type": "subscribe", "topics": topics}))
            async for text in ws:
                msg = json.loads(text)
                if args.json:
                    out.write(text if isinstance(text, str) else text.decode())
                    out.write("\n")
                else:
                    line = format_message(msg)
                    if line:
                        out.write(line + "\n")
                out.flush()
                if msg.get("type") == "alert":
                    alerts_seen += 1
                    if args.count and alerts_seen >= args.count:
                        return EXIT_OK
        except ConnectionClosed as exc:
            code = exc.rcvd.code if exc.rcvd else 1006
            print(f"callwatch tail: the daemon closed the connection (code {code})",
                  file=sys.stderr)
            return EXIT_CANNOT_RUN
    # The iteration ends quietly on a normal close (a daemon that stops says "going away",
    # 1001): that is still the daemon gone, not the end a user asked for (--count, Ctrl-C).
    print(f"callwatch tail: the daemon closed the connection (code {ws.close_code}"
          + (f": {ws.close_reason}" if ws.close_reason else "") + ")", file=sys.stderr)
    return EXIT_CANNOT_RUN


def _kv(d: dict[str, Any]) -> str:
    return " ".join(f"{k}={v}" for k, v in d.items())


def format_message(msg: dict[str, Any]) -> str | None:
    """One readable line for a server message (None for those not worth a line)."""
    t = msg.get("type")
    if t == "alert":
        a = msg["alert"]
        where = f" {a['stream']}" if a.get("stream") else ""
        values = _kv(a.get("values", {}))
        limits = _kv(a.get("thresholds", {}))
        extra = " ".join(x for x in (values, f"(limits {limits})" if limits else "") if x)
        return (f"{clock(a.get('at'))}  {a['state'].upper():8} {a['severity']:8} "
                f"{a['kind']}{where}: {a['message']}" + (f"  [{extra}]" if extra else ""))
    if t == "hello":
        return (f"connected to callwatch {msg.get('version') or '?'}"
                f" (agent {msg.get('agent') or '?'})")
    if t == "call_started":
        return f"{clock(msg.get('started_at'))}  CALL     started {msg['call_id']}"
    if t == "call_ended":
        s = msg.get("summary", {})
        talk = s.get("talk_over", {}).get("count", 0)
        return (f"{clock(msg.get('ended_at'))}  CALL     ended {msg['call_id']}: "
                f"{s.get('duration_s', 0):.1f} s, {talk} talk-over(s)")
    if t == "device":
        detail = f" ({msg['detail']})" if msg.get("detail") else ""
        return (f"{clock(msg.get('at'))}  DEVICE   {msg['stream']} {msg['state']}: "
                f"{msg.get('device') or '?'}{detail}")
    if t == "levels":
        parts = []
        for stream in ("agent", "customer"):
            m = msg.get(stream)
            if m:
                talk = " speaking" if m.get("speaking") else ""
                parts.append(f"{stream} {m['rms_dbfs']:.1f} dBFS{talk}")
        return f"{clock(msg.get('at'))}  LEVELS   " + ", ".join(parts)
    if t == "error":
        return f"error from daemon: {msg.get('code')}: {msg.get('message')}"
    return None
