"""Device faults and recoveries, as the capture supervisor reports them to the processing loop."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any


class DeviceEventKind(StrEnum):
    """What happened; the value is the event name in the JSON log."""

    DEVICE_UP = "device_up"
    """A stream delivered its first block (once per daemon)."""
    DEVICE_LOST = "device_lost"
    DEVICE_RESTORED = "device_restored"
    DEVICES_RESCANNED = "devices_rescanned"
    """PortAudio's device list was read again because a device was missing from it."""
    SUPERVISOR_ERROR = "supervisor_error"


@dataclass(frozen=True, slots=True)
class DeviceEvent:
    """A device fault or recovery, handed from the supervisor to the processing loop."""

    type: DeviceEventKind
    stream: str
    device: str
    reason: str = ""
    down_s: float = 0.0
    restarts: int = 0
    data: dict[str, Any] = field(default_factory=dict)
