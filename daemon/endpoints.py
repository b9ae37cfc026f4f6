"""The daemon's three listening endpoints: the nudge page's alert server, the Prometheus
exporter and the call-control socket.

Each starts on its configured address. A replay (``make run``'s demo, a test, an auditor's
check) is not the workstation's monitor: with ``borrow`` set, when another callwatch already
holds the configured port or socket, the endpoint starts on a free port or a socket of its
own instead, and the starter returns a sentence saying what it took, for the replay to print.
A live daemon does not borrow: two monitors of one headset are a mistake to report.
"""

from __future__ import annotations

import dataclasses
import errno
import os
import queue
from collections.abc import Callable, Mapping
from typing import Any

from alerts.server import AlertServer
from alerts.server_settings import ServerSettings
from daemon.config import ControlSettings
from daemon.control import ControlServer, ControlSocketInUse, Request, socket_path
from daemon.logjson import EventLog
from daemon.metrics import Metrics, MetricsSettings, PublishedStats, default_registry
from daemon.metrics_hearing import HearingCollector, HearingReading
from daemon.metrics_server import MetricsServerError, start_metrics_server
from daemon.state import DaemonState
from dsp.events import Kind

__all__ = ["port_taken", "start_alert_server", "start_control", "start_metrics", "stop_metrics"]

Borrowed = str | None
"""What a replay took instead of the configured endpoint, in words (``None``: nothing)."""


def port_taken(exc: BaseException) -> bool:
    """Whether a server failed to start because its port is in use."""
    cause = exc.__cause__
    return isinstance(cause, OSError) and cause.errno == errno.EADDRINUSE


def start_alert_server(settings: ServerSettings, hello_info: Mapping[str, Any],
                       on_snooze: Callable[[Kind, float], object],
                       borrow: bool) -> tuple[AlertServer, Borrowed]:
    """The nudge page's WebSocket server, started; raises RuntimeError if it cannot listen."""

    def started(s: ServerSettings) -> AlertServer:
        server = AlertServer(s, hello_info=hello_info, on_snooze=on_snooze)
        server.start()
        return server

    try:
        return started(settings), None
    except RuntimeError as exc:
        if not (borrow and port_taken(exc)):
            raise
    server = started(dataclasses.replace(settings, port=0))
    return server, (f"the nudge page on port {server.port} ([server] port {settings.port} is "
                    "in use)")


def start_metrics(settings: MetricsSettings, state: DaemonState, published: PublishedStats,
                  hearing: Callable[[], HearingReading | None],
                  borrow: bool) -> tuple[Metrics, Borrowed]:
    """The Prometheus collectors and, if enabled, their HTTP endpoint (``metrics.http``).

    Collectors read at scrape time, from what the loop hands over (``published``, the
    ``hearing`` reading): the pipeline is not thread-safe. Raises OSError if the endpoint
    cannot start."""
    registry = default_registry()
    metrics = Metrics(registry, state, pipeline_stats=published)
    registry.register(HearingCollector(hearing))
    if not settings.enabled:
        return metrics, None
    try:
        try:
            metrics.http = start_metrics_server(settings, registry)
        except MetricsServerError as exc:
            if not (borrow and port_taken(exc)):
                raise
            metrics.http = start_metrics_server(dataclasses.replace(settings, port=0),
                                                registry)
    except MetricsServerError as exc:
        raise OSError(str(exc)) from None
    port = settings.port
    if port and metrics.http.port != port:
        return metrics, f"metrics on port {metrics.http.port} ([metrics] port {port} is in use)"
    return metrics, None


def stop_metrics(metrics: Metrics) -> None:
    if metrics.http is not None:
        metrics.http.stop()


def start_control(settings: ControlSettings, requests: queue.SimpleQueue[Request],
                  log: EventLog, borrow: bool, wake: Callable[[], None] | None = None
                  ) -> tuple[ControlServer, Borrowed]:
    """The call-control socket, listening; raises ControlSocketInUse (an OSError) when
    another daemon answers on it and ``borrow`` is not set. ``wake``: see
    :class:`ControlServer`."""
    path = socket_path(settings)
    control = ControlServer(path, requests, log, wake)
    try:
        control.start()
        return control, None
    except ControlSocketInUse:
        if not borrow:
            raise
    own = path.with_name(f"replay-{os.getpid()}.sock")
    control = ControlServer(own, requests, log, wake)
    control.start()
    return control, f"the control socket {own} (another callwatch answers on {path})"
