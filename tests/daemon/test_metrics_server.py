"""The metrics HTTP endpoint (daemon.metrics_server) on a real socket: plain HTTP, TLS with
and without basic auth, a stalled client, one-line errors; and the ``[metrics]`` table."""

from __future__ import annotations

import base64
import hashlib
import socket
import ssl
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry

from daemon.config import ConfigError, parse
from daemon.metrics import MetricsSettings, default_registry
from daemon.metrics_server import MetricsServerError, start_metrics_server
from tests.exposition import busy_metrics, promtool_check_metrics

PASSWORD = "correct horse battery staple"


@pytest.fixture(scope="module")
def cert(tmp_path_factory) -> tuple[Path, Path]:
    d = tmp_path_factory.mktemp("tls")
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
         "-nodes", "-days", "1", "-subj", "/CN=localhost",
         "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost",
         "-keyout", str(d / "key.pem"), "-out", str(d / "cert.pem")],
        check=True, capture_output=True, timeout=30,
    )
    return d / "cert.pem", d / "key.pem"


def get(url: str, cafile: Path | None = None, auth: tuple[str, str] | None = None):
    req = urllib.request.Request(url)
    if auth:
        token = base64.b64encode(f"{auth[0]}:{auth[1]}".encode()).decode()
        req.add_header("Authorization", f"Basic {token}")
    ctx = ssl.create_default_context(cafile=str(cafile)) if cafile else None
    try:
        with urllib.request.urlopen(req, timeout=5, context=ctx) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()


@pytest.fixture
def busy_registry() -> CollectorRegistry:
    registry = default_registry()
    busy_metrics(registry)
    return registry


def test_plain_http_serves_what_promtool_accepts(busy_registry):
    server = start_metrics_server(MetricsSettings(port=0), busy_registry)
    try:
        assert server.url.startswith("http://127.0.0.1:")
        status, body = get(server.url)
        assert status == 200 and b'callwatch_calls_total 5.0' in body
        r = promtool_check_metrics(body)
        assert r.returncode == 0, r.stdout + r.stderr
        # only /metrics serves them: a mistyped scrape path fails instead of scraping
        root = server.url.removesuffix("metrics")
        assert get(root) == (200, b"callwatch: the metrics are at /metrics\n")
        status, body = get(root + "metric")
        assert status == 404 and b"/metrics" in body
    finally:
        server.stop()


def test_tls_and_basic_auth(busy_registry, cert):
    settings = MetricsSettings(
        port=0, tls_cert_file=str(cert[0]), tls_key_file=str(cert[1]), basic_auth_user="prom",
        basic_auth_password_sha256=hashlib.sha256(PASSWORD.encode()).hexdigest(),
    )
    server = start_metrics_server(settings, busy_registry)
    try:
        url = server.url
        assert url.startswith("https://")
        status, _ = get(url, cert[0])
        assert status == 401
        assert get(url, cert[0], ("prom", "wrong"))[0] == 401
        assert get(url, cert[0], ("other", PASSWORD))[0] == 401
        status, body = get(url, cert[0], ("prom", PASSWORD))
        assert status == 200 and b"callwatch_agent_info" in body
        # Plain HTTP to the TLS port gets nothing.
        with pytest.raises((urllib.error.URLError, ConnectionError, OSError)):
            urllib.request.urlopen(url.replace("https://", "http://"), timeout=5).read()
        # An untrusted certificate is refused by a verifying client.
        with pytest.raises(urllib.error.URLError):
            urllib.request.urlopen(url, timeout=5)
    finally:
        server.stop()


def test_tls_without_auth_and_a_stalled_client_does_not_block_scrapes(busy_registry, cert):
    settings = MetricsSettings(port=0, tls_cert_file=str(cert[0]), tls_key_file=str(cert[1]))
    server = start_metrics_server(settings, busy_registry)
    try:
        silent = socket.create_connection(("127.0.0.1", server.port))  # never says hello
        t0 = time.monotonic()
        status, _ = get(server.url, cert[0])
        assert status == 200 and time.monotonic() - t0 < 2.0
        silent.close()
    finally:
        server.stop()


def test_busy_port_and_bad_certificate_give_one_line_errors(busy_registry, tmp_path):
    server = start_metrics_server(MetricsSettings(port=0), busy_registry)
    try:
        with pytest.raises(MetricsServerError, match=rf"\[metrics\] port = {server.port}: "):
            start_metrics_server(MetricsSettings(port=server.port), busy_registry)
    finally:
        server.stop()
    missing = tmp_path / "nope.pem"
    with pytest.raises(MetricsServerError, match=r"\[metrics\] tls_cert_file = .*nope\.pem"):
        start_metrics_server(
            MetricsSettings(port=0, tls_cert_file=str(missing), tls_key_file=str(missing)),
            busy_registry,
        )


@pytest.mark.parametrize(("table", "message"), [
    ({"tls_cert_file": "/etc/c.pem"}, "tls_cert_file and tls_key_file must be set together"),
    ({"basic_auth_user": "prom"}, "must be set together"),
    ({"basic_auth_user": "prom", "basic_auth_password_sha256": "secret"}, "64 hex digits"),
    ({"port": 70000}, "port = 70000: must be between 0 and 65535"),
])
def test_config_rejects_bad_metrics_tables(table, message):
    with pytest.raises(ConfigError, match=message):
        parse({"metrics": table}, "config.toml")


def test_config_metrics_table_loads():
    digest = hashlib.sha256(b"pw").hexdigest()
    cfg = parse({"metrics": {"listen_address": "0.0.0.0", "port": 9100,
                             "basic_auth_user": "prom", "basic_auth_password_sha256": digest}},
                "config.toml")
    assert cfg.metrics == MetricsSettings(listen_address="0.0.0.0", port=9100,
                                          basic_auth_user="prom",
                                          basic_auth_password_sha256=digest)

