"""The token file on a real file system, and what ``callwatch tail`` needs of it."""

from __future__ import annotations

import logging
import os
import stat
import subprocess
import sys

import pytest

from alerts.server import AlertServer
from alerts.server_settings import ServerSettings, url_host
from alerts.token import load_or_create_token, new_token, read_token, token_chars_ok, token_path
from tests.alerts.live_server import HELLO


def test_token_path_falls_back_to_dot_config_under_home(tmp_path, monkeypatch):
    monkeypatch.delenv("XDG_CONFIG_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert token_path() == tmp_path / "home" / ".config" / "callwatch" / "token"


def test_missing_and_empty_token_files_are_os_errors(config_home):
    with pytest.raises(FileNotFoundError):
        read_token()
    token_path().parent.mkdir(parents=True)
    token_path().write_text("  \n")
    with pytest.raises(FileNotFoundError, match="empty token file"):
        read_token()


def test_created_token_is_url_safe_private_and_stable(config_home):
    token = load_or_create_token()
    path = token_path()
    assert token_chars_ok(token) and len(token) >= 32
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    assert read_token() == token == load_or_create_token()
    assert [p.name for p in path.parent.iterdir()] == ["token"], "no temporary file left"


def test_a_new_token_never_starts_with_a_dash():
    """``--token -Xy...`` is refused as a missing argument: one token in 64 would start so."""
    tokens = [new_token() for _ in range(2000)]
    assert not any(t.startswith("-") for t in tokens)
    assert all(token_chars_ok(t) and len(t) == 32 for t in tokens)
    assert any("-" in t for t in tokens)  # the alphabet is still the URL-safe one


def test_an_empty_token_file_is_replaced_by_a_new_token(config_home):
    token_path().parent.mkdir(parents=True)
    token_path().write_text("\n")
    token = load_or_create_token()
    assert len(token) >= 32 and read_token() == token


def test_a_loosened_token_file_is_tightened_with_a_warning(config_home, caplog):
    token = load_or_create_token()
    os.chmod(token_path(), 0o644)
    with caplog.at_level(logging.WARNING, "callwatch.alerts"):
        assert load_or_create_token() == token
    assert stat.S_IMODE(token_path().stat().st_mode) == 0o600
    assert "readable by other users" in caplog.text


def test_token_characters_and_length_are_checked_by_the_settings():
    assert token_chars_ok("abc-DEF_123.~")
    assert not token_chars_ok("has space") and not token_chars_ok("ünïcode") \
        and not token_chars_ok("a&b=c")
    with pytest.raises(ValueError, match="A-Z a-z 0-9"):
        ServerSettings(token="sixteen-chars-but&amp")
    assert ServerSettings(token="a-configured-token-123").token == "a-configured-token-123"


def test_url_host_reaches_wildcards_on_loopback_and_brackets_ipv6():
    assert url_host("0.0.0.0") == url_host("::") == url_host("") == "127.0.0.1"
    assert url_host("::1") == "[::1]" and url_host("[::1]") == "[::1]"
    assert url_host("192.168.1.20") == "192.168.1.20"


def test_tail_reads_the_token_file_without_importing_the_server(config_home):
    token = load_or_create_token()
    probe = (
        "import argparse, sys\n"
        "from alerts import tail\n"
        "p = argparse.ArgumentParser(); tail.add_arguments(p)\n"
        "rc = tail.main(p.parse_args(['--page-url']))\n"
        "print('alerts.server' in sys.modules, rc)\n"
    )
    env = {**os.environ, "XDG_CONFIG_HOME": str(config_home)}
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                         env=env, timeout=30, check=True).stdout.splitlines()
    assert out == [f"http://127.0.0.1:8765/?token={token}", "False 0"]


# -- the token file as the server uses it ---------------------------------------------------


def test_token_file_is_created_0600_and_reused(config_home):
    assert token_path() == config_home / "callwatch" / "token"
    srv = AlertServer(ServerSettings(port=0), HELLO)
    srv.start()
    srv.stop()
    path = token_path()
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    assert path.read_text().strip() == srv.token and len(srv.token) >= 32
    again = AlertServer(ServerSettings(port=0), HELLO)
    again.start()
    again.stop()
    assert again.token == srv.token
    os.chmod(path, 0o644)                                   # loosened by hand: tightened again
    assert load_or_create_token() == srv.token
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_configured_token_is_used_and_validated(config_home):
    srv = AlertServer(ServerSettings(port=0, token="a-configured-token-123"), HELLO)
    srv.start()
    srv.stop()
    assert srv.token == "a-configured-token-123"
    assert not token_path().exists()
    with pytest.raises(ValueError, match="16 characters"):
        ServerSettings(token="short")
