"""A real Prometheus server (Debian's ``prometheus``) for tests, scraping one callwatch target.

Prometheus syncs its scrape targets on a fixed 5 s tick, so the first sample is queryable
5-6 s after the server starts whatever the scrape interval: the fixture is session-scoped so
that it starts once, and the target port is chosen up front so that whatever exports the
metrics (an in-process :func:`daemon.metrics_server.start_metrics_server`, or a whole daemon)
simply binds ``target_port`` when it is ready; until
then the target is down (``up == 0``), as a workstation that is off would be.

The job is ``callwatch`` with the target labels ``site`` and ``team`` that service discovery
would add in a fleet (docs/fleet.md), and the repository's rule file is loaded, so recording
rules and alerts evaluate against the scraped data. A second job, ``callwatch-replay``, scrapes
``replay_port``: a separate target for a whole ``callwatch run --replay`` daemon, kept out of
the ``callwatch`` job so that a daemon which has exited does not count as a workstation down.

Use it by importing the fixture into a test module:
``from tests.integration.prometheus_server import prometheus  # noqa: F401``.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.ports import free_port

REPO = Path(__file__).resolve().parents[2]
RULE_FILES = (REPO / "prometheus" / "callwatch.rules.yml",)
SCRAPE_INTERVAL = "200ms"
TARGET_LABELS = {"site": "test-site", "team": "test-team"}


class PromQLError(Exception):
    """Prometheus rejected a query (the message is Prometheus's own)."""


@dataclass
class PrometheusServer:
    url: str
    target_port: int
    """Port on 127.0.0.1 that the ``callwatch`` job scrapes (``/metrics``)."""
    replay_port: int
    """Port on 127.0.0.1 that the ``callwatch-replay`` job scrapes."""
    directory: Path
    process: subprocess.Popen[bytes]

    def query(self, expr: str, at: float | None = None) -> list[dict[str, Any]]:
        """Instant query: the result vector (``[{"metric": {...}, "value": [t, "v"]}]``)."""
        params = {"query": expr}
        if at is not None:
            params["time"] = f"{at:.3f}"
        url = f"{self.url}/api/v1/query?{urllib.parse.urlencode(params)}"
        try:
            with urllib.request.urlopen(url, timeout=10) as r:
                body = json.load(r)
        except urllib.error.HTTPError as e:
            body = json.load(e)
        if body.get("status") != "success":
            raise PromQLError(f"{expr!r}: {body.get('errorType')}: {body.get('error')}")
        data = body["data"]
        if data["resultType"] == "scalar":
            return [{"metric": {}, "value": data["result"]}]
        return list(data["result"])

    def wait_for(
        self, expr: str, ok: Callable[[list[dict[str, Any]]], bool], timeout_s: float = 20.0
    ) -> list[dict[str, Any]]:
        """Poll ``expr`` until ``ok(result)``; fail with the last result after ``timeout_s``."""
        deadline = time.monotonic() + timeout_s
        result: list[dict[str, Any]] = []
        while time.monotonic() < deadline:
            result = self.query(expr)
            if ok(result):
                return result
            time.sleep(0.1)
        raise AssertionError(f"{expr!r} not as expected after {timeout_s} s: {result}")

    def log(self) -> str:
        return (self.directory / "prometheus.log").read_text(errors="replace")

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=5)


def start_prometheus(directory: Path, ready_timeout_s: float = 20.0) -> PrometheusServer:
    binary = shutil.which("prometheus")
    if binary is None:
        raise RuntimeError("prometheus not found: install Debian's prometheus (make test does)")
    directory.mkdir(parents=True, exist_ok=True)
    port, target_port, replay_port = free_port(), free_port(), free_port()
    labels = ", ".join(f"{k}: {v}" for k, v in TARGET_LABELS.items())
    rules = "\n".join(f"  - {p}" for p in RULE_FILES)
    config = directory / "prometheus.yml"
    config.write_text(
        f"global: {{scrape_interval: {SCRAPE_INTERVAL}, evaluation_interval: {SCRAPE_INTERVAL}}}\n"
        f"rule_files:\n{rules}\n"
        "scrape_configs:\n"
        "  - job_name: callwatch\n"
        f"    scrape_timeout: {SCRAPE_INTERVAL}\n"
        f"    static_configs: [{{targets: ['127.0.0.1:{target_port}'], labels: {{{labels}}}}}]\n"
        "  - job_name: callwatch-replay\n"
        f"    scrape_timeout: {SCRAPE_INTERVAL}\n"
        f"    static_configs: [{{targets: ['127.0.0.1:{replay_port}'], labels: {{{labels}}}}}]\n"
    )
    log = (directory / "prometheus.log").open("wb")
    process = subprocess.Popen(
        [binary, f"--config.file={config}", f"--storage.tsdb.path={directory / 'data'}",
         f"--web.listen-address=127.0.0.1:{port}", "--log.level=warn"],
        stdout=log, stderr=subprocess.STDOUT,
    )
    server = PrometheusServer(f"http://127.0.0.1:{port}", target_port, replay_port, directory,
                              process)
    deadline = time.monotonic() + ready_timeout_s
    while True:
        try:
            with urllib.request.urlopen(f"{server.url}/-/ready", timeout=1) as r:
                if r.status == 200:
                    return server
        except (urllib.error.URLError, ConnectionError):
            pass
        if process.poll() is not None or time.monotonic() > deadline:
            server.stop()
            raise RuntimeError(f"prometheus did not become ready:\n{server.log()}")
        time.sleep(0.05)


@pytest.fixture(scope="session")
def prometheus(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PrometheusServer]:
    server = start_prometheus(tmp_path_factory.mktemp("prometheus"))
    yield server
    server.stop()
