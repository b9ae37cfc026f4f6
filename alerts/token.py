"""The client token's file: where it lives, how it is read, and how it is made.

Kept apart from :mod:`alerts.server` because two programs need it: the daemon's server,
which creates the token on its first start, and ``callwatch tail``, which only reads it and
must not pay for importing the server (websockets, asyncio, the nudge page) to do so.
"""

from __future__ import annotations

import contextlib
import logging
import os
import secrets
from pathlib import Path

__all__ = ["TOKEN_CHARS", "load_or_create_token", "new_token", "read_token", "token_chars_ok",
           "token_path"]

log = logging.getLogger("callwatch.alerts")

TOKEN_CHARS = "A-Z a-z 0-9 - _ . ~"
"""What a configured token may hold: URL-safe characters, so it can ride in ``?token=``."""


def token_chars_ok(token: str) -> bool:
    """True when every character of ``token`` is one of :data:`TOKEN_CHARS`."""
    return all(c.isascii() and (c.isalnum() or c in "-_.~") for c in token)


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


def new_token() -> str:
    """A random URL-safe token (32 characters) that does not start with ``-``: on a command
    line, ``--token -Xy...`` reads as another option and is refused, so one install in 64
    would have a token that a script cannot pass as ``--token "$TOKEN"``."""
    while True:
        token = secrets.token_urlsafe(24)
        if not token.startswith("-"):
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
    token = new_token()
    tmp = path.with_name(f".{path.name}.{os.getpid()}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="ascii") as f:
        f.write(token + "\n")
    os.replace(tmp, path)  # atomic: a concurrent reader sees the whole token or none
    return token
