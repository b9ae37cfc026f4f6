"""The ``callwatch.analysis/1`` report: one call's measurements and events as a JSON object.

Shared by ``callwatch analyze`` and the live daemon's ``call_ended`` summary, so a recorded
call and a live one are described by exactly the same fields. Fields may be added; none may be
renamed or removed without a new schema version.
"""

from __future__ import annotations

from collections.abc import Iterable

from dsp.events import Event, Phase
from dsp.stats import CallStats, StreamStats

SCHEMA = "callwatch.analysis/1"


def _round(value: float | None, digits: int = 2) -> float | None:
    return None if value is None else round(value, digits)


def stream_report(s: StreamStats) -> dict[str, float | None]:
    return {
        "speech_s": round(s.speech_s, 2),
        "active_level_dbfs": _round(s.active_level_dbfs),
        "noise_floor_dbfs": _round(s.noise_floor_dbfs),
        "snr_db": _round(s.snr_db),
        "clipped_ratio": round(s.clipped_ratio, 6),
        "talk_share": _round(s.talk_share, 3),
        "longest_turn_s": round(s.longest_turn_s, 2),
        "speech_rate_sps": _round(s.speech_rate_sps),
    }


def build_report(
    stats: CallStats, events: Iterable[Event], duration_s: float, sample_rate_hz: int
) -> dict[str, object]:
    """The report of one call. Only finished conditions (END events) are listed."""
    finished = sorted((e for e in events if e.phase is Phase.END), key=lambda e: (e.start, e.kind))
    return {
        "schema": SCHEMA,
        "duration_s": round(duration_s, 3),
        "sample_rate_hz": sample_rate_hz,
        "agent": stream_report(stats.agent),
        "customer": stream_report(stats.customer),
        "talk_over": {
            "count": stats.talk_over.count,
            "seconds": round(stats.talk_over.seconds, 2),
            "by_agent": stats.talk_over.by_agent,
            "by_customer": stats.talk_over.by_customer,
            "per_minute": round(stats.talk_over.count / (duration_s / 60.0), 2)
            if duration_s > 0 else 0.0,
            "noise_check": stats.talk_over.noise_check,
        },
        "events": [e.to_json() for e in finished],
    }
