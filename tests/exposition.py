"""What the metrics tests share: a daemon whose every metric is non-default, the scrape read
back as values, and promtool's verdict on an exposition.

One copy, so the golden exposition, the per-collector tests and the HTTP endpoint's tests all
scrape the same busy daemon and read the text the same way.
"""

from __future__ import annotations

import subprocess

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from daemon.metrics import CHECK_FAIL, CHECK_PASS, CHECK_WARN, Metrics
from daemon.state import DaemonState
from dsp.events import Kind, Stream
from dsp.stats import CallStats, StreamStats, TalkOverStats


def stream_stats(level: float | None, noise: float | None, audio_s: float = 60.0) -> StreamStats:
    snr = level - noise if level is not None and noise is not None else None
    return StreamStats(
        audio_s=audio_s, speech_s=audio_s / 3, active_level_dbfs=level, noise_floor_dbfs=noise,
        snr_db=snr, clipped_samples=12, clipped_ratio=12 / (audio_s * 16000), rms_dbfs=-40.0,
        peak_dbfs=-20.0, speaking=False,
    )


def call_stats(level: float | None = -27.5, noise: float | None = -62.0,
               customer: StreamStats | None = None) -> CallStats:
    """A minute of call: the agent at ``level`` over ``noise``, three talk-overs; the customer
    is ``customer``, else unmeasured speech over a -70 dBFS floor."""
    return CallStats(
        agent=stream_stats(level, noise),
        customer=customer if customer is not None else stream_stats(None, -70.0),
        talk_over=TalkOverStats(count=3, seconds=4.2, by_agent=2, by_customer=1,
                                seconds_by_agent=3.0, seconds_by_customer=1.2),
        duration_s=60.0,
    )


def busy_state() -> DaemonState:
    """A daemon that has been running a while: every field non-default."""
    state = DaemonState(agent_id="ana@ws-17", version="0.1.0")
    state.streams[Stream.AGENT].device_name = "Jabra Evolve2 40 Mono"
    state.streams[Stream.CUSTOMER].device_name = "Jabra Evolve2 40 Mono monitor"
    for h in state.streams.values():
        h.device_up, h.restarts, h.overflows, h.dropped_blocks = True, 1, 2, 3
    state.alerts_fired.update({(Kind.NOISE.value, "agent"): 4, (Kind.TALK_OVER.value, "agent"): 2})
    state.alerts_active[Kind.NOISE.value, "agent"] = 1
    state.calls_total, state.call_active = 5, True
    state.ws_clients, state.ws_dropped_messages = 2, 7
    state.check_results = {"mic_device": CHECK_PASS, "noise": CHECK_WARN, "echo": CHECK_FAIL}
    state.check_timestamp = 1_790_000_000.0
    return state


def busy_metrics(registry: CollectorRegistry | None = None) -> Metrics:
    """The daemon's metrics over :func:`busy_state` and :func:`call_stats`, one call ended."""
    registry = registry if registry is not None else CollectorRegistry()
    stats = call_stats()
    m = Metrics(registry, busy_state(), pipeline_stats=lambda: (stats, stats), host="ws-17")
    m.observe_call_end(312.0)
    m.observe_processing(0.0031)
    return m


def scrape(registry: CollectorRegistry) -> dict[str, float]:
    """``{'name{k="v",...}': value}`` from the text exposition."""
    out: dict[str, float] = {}
    for fam in text_string_to_metric_families(generate_latest(registry).decode()):
        for s in fam.samples:
            labels = ",".join(f'{k}="{v}"' for k, v in sorted(s.labels.items()))
            out[f"{s.name}{{{labels}}}"] = s.value
    return out


def promtool_check_metrics(text: bytes) -> subprocess.CompletedProcess[str]:
    """promtool's lint of an exposition (``returncode`` 0: accepted)."""
    return subprocess.run(["promtool", "check", "metrics"], input=text.decode(),
                          capture_output=True, text=True, timeout=30)
