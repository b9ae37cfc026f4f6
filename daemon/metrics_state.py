"""The daemon's own metrics, one collector per concern, read from :class:`DaemonState`.

Who the workstation is, the alerts, the calls, the capture devices, the WebSocket clients
and the last headset check: each is read at scrape time from the counters the processing
loop keeps, and each fails alone (:class:`daemon.metrics_scrape.ScrapeCollector`).
"""

from __future__ import annotations

import socket
from collections.abc import Iterator

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, InfoMetricFamily, Metric

from alerts.alert import ALERT_PARTIES, Party
from daemon.metrics_scrape import ScrapeCollector
from daemon.state import DaemonState
from dsp.events import Stream

__all__ = [
    "AlertsCollector",
    "CallsCollector",
    "CheckCollector",
    "DevicesCollector",
    "IdentityCollector",
    "WebSocketCollector",
    "party_label",
    "state_collectors",
]


def party_label(party: Party) -> str:
    """The ``stream`` label of an alert series: its party, empty for the call's own."""
    return party.value if party is not None else ""


ALERT_SERIES: list[tuple[str, str]] = sorted(
    (kind.value, party_label(p)) for kind, parties in ALERT_PARTIES.items() for p in parties)
"""Every (kind, stream) an alert can have, exported from the start at 0: an alert rule or a
panel that filters on a series sees it before the first alert of its kind."""


class IdentityCollector(ScrapeCollector):
    """Version, agent, host and device names, as ``*_info`` series to join on."""

    concern = "identity"

    def __init__(self, state: DaemonState, host: str | None = None) -> None:
        self._state = state
        self._host = host if host is not None else socket.gethostname()

    def families(self) -> Iterator[Metric]:
        s = self._state
        yield InfoMetricFamily(
            "callwatch_build", "callwatch version running on this workstation",
            value={"version": s.version or "unknown"},
        )
        yield InfoMetricFamily(
            "callwatch_agent",
            "Who this workstation is: join on instance to label any series with the agent",
            value={
                "agent": s.agent_id,
                "host": self._host,
                "mic_device": s.streams[Stream.AGENT].device_name,
                "far_end_device": s.streams[Stream.CUSTOMER].device_name,
            },
        )


class AlertsCollector(ScrapeCollector):
    """Alerts fired and firing now, by kind (every kind from the start)."""

    concern = "alert"

    def __init__(self, state: DaemonState) -> None:
        self._state = state

    def families(self) -> Iterator[Metric]:
        s = self._state
        about = ("; stream: whose side it is about (a talk-over's: who started it), empty for "
                 "dead air")
        fired = CounterMetricFamily(
            "callwatch_alerts_fired", "Alerts that reached firing, by kind" + about,
            labels=["kind", "stream"])
        active = GaugeMetricFamily(
            "callwatch_alerts_active", "Alerts firing now, by kind" + about,
            labels=["kind", "stream"])
        keys = ALERT_SERIES + sorted((set(s.alerts_fired) | set(s.alerts_active))
                                     - set(ALERT_SERIES))
        for key in keys:
            fired.add_metric(list(key), s.alerts_fired.get(key, 0))
            active.add_metric(list(key), s.alerts_active.get(key, 0))
        yield fired
        yield active


class CallsCollector(ScrapeCollector):
    """Calls started and whether one is in progress."""

    concern = "call"

    def __init__(self, state: DaemonState) -> None:
        self._state = state

    def families(self) -> Iterator[Metric]:
        s = self._state
        yield CounterMetricFamily("callwatch_calls", "Calls started", value=s.calls_total)
        yield GaugeMetricFamily(
            "callwatch_call_active", "1 while a call is in progress", value=int(s.call_active)
        )


class DevicesCollector(ScrapeCollector):
    """Capture health per stream: up, restarts, input overflows, blocks the ring dropped."""

    concern = "device"

    def __init__(self, state: DaemonState) -> None:
        self._state = state

    def families(self) -> Iterator[Metric]:
        up = GaugeMetricFamily(
            "callwatch_device_up", "1 while the stream's device delivers audio", labels=["stream"]
        )
        counters = (
            ("callwatch_device_restarts", "Times the stream was reopened after a fault",
             "restarts"),
            ("callwatch_input_overflows",
             "Capture overflows: audio the device or sound server lost (PortAudio overflow "
             "flags, holes in a PulseAudio stream)", "overflows"),
            ("callwatch_dropped_blocks",
             "Blocks the ring buffer had no room for (processing fell behind)", "dropped_blocks"),
        )
        families = [CounterMetricFamily(n, d, labels=["stream"]) for n, d, _ in counters]
        for stream in Stream:
            h = self._state.streams[stream]
            up.add_metric([stream.value], int(h.device_up))
            for fam, (_, _, attr) in zip(families, counters, strict=True):
                fam.add_metric([stream.value], getattr(h, attr))
        yield up
        yield from families


class WebSocketCollector(ScrapeCollector):
    """Clients of the nudge server and the messages slow ones lost."""

    concern = "WebSocket"

    def __init__(self, state: DaemonState) -> None:
        self._state = state

    def families(self) -> Iterator[Metric]:
        s = self._state
        yield GaugeMetricFamily(
            "callwatch_websocket_clients", "Connected WebSocket clients", value=s.ws_clients
        )
        yield CounterMetricFamily(
            "callwatch_websocket_dropped_messages",
            "Messages dropped for clients that read too slowly", value=s.ws_dropped_messages,
        )


class CheckCollector(ScrapeCollector):
    """The last ``callwatch check``: a verdict per measured item and when it ran."""

    concern = "headset check"

    def __init__(self, state: DaemonState) -> None:
        self._state = state

    def families(self) -> Iterator[Metric]:
        s = self._state
        result = GaugeMetricFamily(
            "callwatch_check_result",
            "Last callwatch check verdict per item: 0 pass, 1 warn, 2 fail",
            labels=["check"],
        )
        for item, verdict in sorted(s.check_results.items()):
            result.add_metric([item], int(verdict))
        yield result
        ts = GaugeMetricFamily(
            "callwatch_check_timestamp_seconds", "Unix time of the last callwatch check"
        )
        if s.check_timestamp is not None:
            ts.add_metric([], s.check_timestamp)
        yield ts


def state_collectors(state: DaemonState, host: str | None = None) -> list[ScrapeCollector]:
    """Every collector of this module, in exposition order, for one daemon's state."""
    return [IdentityCollector(state, host), AlertsCollector(state), CallsCollector(state),
            DevicesCollector(state), WebSocketCollector(state), CheckCollector(state)]
