"""A resolved device spec, and the errors resolving one can give.

Kept below :mod:`daemon.devices` because both ways of opening a device use them: PortAudio's
(:func:`daemon.devices.resolve`) and native libpulse's (:mod:`daemon.pulse_streams`), which
``callwatch devices`` itself uses to list the playing applications.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import TypeVar

T = TypeVar("T")


class DeviceError(Exception):
    """A device spec that matches nothing usable; the message lists the candidates."""


class DeviceNotListed(DeviceError):
    """Nothing in PortAudio's device list matches. That list is read once, so it may be out of
    date (read while the sound server was starting, or before the device appeared)."""


class NoInputDevices(DeviceNotListed):
    """No input device at all: the machine (its sound server), not the configuration, is
    the problem, so commands exit "could not run" (3), as ``devices`` and ``check`` do."""


@dataclass(frozen=True, slots=True)
class DeviceChoice:
    """A resolved device spec: what to pass to PortAudio, and the PulseAudio source if any."""

    spec: str
    index: int
    name: str
    pulse_source: str | None = None
    """Set ``PULSE_SOURCE`` to this while opening (``pulse:`` specs and the auto far end)."""

    @property
    def label(self) -> str:
        return f"pulse:{self.pulse_source}" if self.pulse_source else self.name


def by_name(items: Iterable[T], spec: str, name: Callable[[T], str]) -> list[T]:
    """The items named ``spec`` exactly, else those whose name contains it in any case: how
    every device spec picks by name, so a full name always picks its device even when other
    names contain it ("headset_mic" beside "headset_mic (2)")."""
    listed = list(items)
    exact = [i for i in listed if name(i) == spec]
    return exact or [i for i in listed if spec.lower() in name(i).lower()]
