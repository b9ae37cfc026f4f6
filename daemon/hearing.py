"""The agent's daily noise exposure in the daemon: persisted, reset at the day boundary, and
turned into ``exposure`` events at the EU action values.

The pipeline sums the far end's A-weighted energy (:class:`dsp.detectors.loud_far_end.
LoudFarEnd`); every pass the daemon hands the running totals to :meth:`HearingTracker.feed`,
which adds what is new to today's :class:`dsp.exposure.Exposure` at the sensitivity in force.
The state is saved to ``$XDG_STATE_HOME/callwatch/exposure.json`` (atomically, at most every
``SAVE_EVERY_S`` and at shutdown), so a restart within the same day carries on from it; a file
from another day, or none, starts the day at zero. A file that cannot be read is kept aside
as ``exposure.json.bad`` (nothing is lost) and the day starts anew.

The sensitivity is ``[hearing] dbspl_at_0dbfs`` when set, else the one ``callwatch check
--dbspl-at-0dbfs`` recorded for the far-end device's model (``sensitivity.json``), else none:
then the exposure is uncalibrated and never reported in dB SPL.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import logging
import math
import os
from dataclasses import dataclass
from pathlib import Path

from daemon.state import state_dir, write_json_atomic
from dsp.events import Event, Kind, Phase, Stream
from dsp.exposure import Exposure, ExposureState
from dsp.hearing import MIN_DBSPL_AT_0DBFS, HearingSettings

log = logging.getLogger(__name__)

SCHEMA = "callwatch.exposure/1"
SENSITIVITY_SCHEMA = "callwatch.sensitivity/1"
SAVE_EVERY_S = 10.0
"""At most this much exposure is lost to a crash (a power cut, kill -9)."""
NOTICE_S = 60.0
"""An exposure nudge stays up this long (of audio), then resolves: it is news, not a state."""


# -- sensitivity per headset model ----------------------------------------------------------


def sensitivity_path() -> Path:
    return state_dir() / "sensitivity.json"


def load_sensitivities(path: Path | None = None) -> dict[str, float]:
    """Recorded ``dbspl_at_0dbfs`` per headset model; {} when none (never raises)."""
    try:
        data = json.loads((path or sensitivity_path()).read_text())
    except (OSError, ValueError):
        return {}
    models = data.get("models") if isinstance(data, dict) else None
    if data.get("schema") != SENSITIVITY_SCHEMA or not isinstance(models, dict):
        return {}
    return {str(k): float(v) for k, v in models.items()
            if isinstance(v, int | float) and math.isfinite(v) and v >= MIN_DBSPL_AT_0DBFS}


def record_sensitivity(model: str, dbspl_at_0dbfs: float, path: Path | None = None) -> Path:
    """Record the sensitivity of headset ``model`` (the far-end device's name)."""
    if not (MIN_DBSPL_AT_0DBFS <= dbspl_at_0dbfs <= 140.0):
        raise ValueError(f"dbspl_at_0dbfs = {dbspl_at_0dbfs:g}: must be between "
                         f"{MIN_DBSPL_AT_0DBFS:g} and 140 (dB SPL of a 0 dBFS signal)")
    target = path or sensitivity_path()
    models = load_sensitivities(target)
    models[model] = float(dbspl_at_0dbfs)
    write_json_atomic(target, {"schema": SENSITIVITY_SCHEMA, "models": models})
    return target


def headset_model(source: str | None, label: str | None) -> str | None:
    """The key a sensitivity is recorded under: the far-end source's sound-server name without
    ``.monitor`` (the headset's sink names its model, e.g. ``alsa_output.usb-Jabra_Evolve2_40
    ...``), else the device's label; the same for ``callwatch check`` and the daemon."""
    if source:
        return source.removesuffix(".monitor")
    return label or None


def effective_sensitivity(settings: HearingSettings, model: str | None,
                          recorded: dict[str, float]) -> tuple[float | None, str]:
    """(dbspl_at_0dbfs or None, where it came from: ``config``, ``check`` or ``none``)."""
    if settings.sensitivity is not None:
        return settings.sensitivity, "config"
    if model and model in recorded:
        return recorded[model], "check"
    return None, "none"


# -- the day's exposure ---------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ExposureSnapshot:
    """What the metrics read (a frozen copy, taken by the processing loop)."""

    day: str
    lex_8h_db: float | None
    laeq_db: float | None
    uncalibrated_laeq_dbfs: float | None
    calibrated_s: float
    uncalibrated_s: float
    sensitivity: float | None
    sensitivity_source: str


class HearingTracker:
    """Today's exposure of this workstation's agent; fed by the processing loop only."""

    def __init__(self, settings: HearingSettings, today: dt.date, path: Path | None = None,
                 sensitivity: float | None = None, source: str = "none",
                 keep: bool = True) -> None:
        """``keep``: restore and save the day's state (``path``, by default in the state
        directory). False for a replay: its audio never reached the agent's ears, so it
        neither reads nor adds to their record (it counts from zero, for its own report)."""
        self.path = path or state_dir() / "exposure.json"
        self.keep = keep
        self.settings = settings
        self.sensitivity, self.source = sensitivity, source
        self.day = today.isoformat()
        self.exposure = self._new_exposure(self._restore() if keep else None)
        self._last_totals: tuple[float, float] | None = None
        self._last_save = -math.inf
        self._notice_end: float | None = None
        self._notice_data: dict[str, str | int | float] = {}
        self.snapshot = self._snapshot()

    def configure(self, settings: HearingSettings, sensitivity: float | None,
                  source: str) -> None:
        """New settings or sensitivity (reload, another headset); today's dose is kept."""
        self.settings = settings
        self.sensitivity, self.source = sensitivity, source
        self.exposure = self._new_exposure(self.exposure.state())
        self.snapshot = self._snapshot()

    def feed(self, energy_fs2_s: float, seconds: float, today: dt.date, position: int,
             now: float) -> list[Event]:
        """The far end's running A-weighted totals at pipeline sample ``position``; ``now``
        is any monotonic clock in seconds (for the save cadence). Returns exposure events."""
        out: list[Event] = []
        day = today.isoformat()
        if day != self.day:
            out += self._end_notice(position)
            self.save()
            self.day = day
            self.exposure = self._new_exposure(None)
        last = self._last_totals
        self._last_totals = (energy_fs2_s, seconds)
        if last is not None and seconds >= last[1]:
            reached = self.exposure.add(max(0.0, energy_fs2_s - last[0]), seconds - last[1],
                                        self.sensitivity)
            if reached:
                out += self._end_notice(position)
                out.append(self._notice(max(reached), position, seconds))
        if self._notice_end is not None and seconds >= self._notice_end:
            out += self._end_notice(position)
        if now - self._last_save >= SAVE_EVERY_S:
            self.save()
            self._last_save = now
        self.snapshot = self._snapshot()
        return out

    def save(self) -> None:
        """Write today's state; a failure is logged, never raised (the exposure goes on)."""
        if not self.keep:
            return
        data = {"schema": SCHEMA, "day": self.day, **self.exposure.state().to_json()}
        try:
            write_json_atomic(self.path, data)
        except OSError as exc:
            log.warning("cannot save the exposure state to %s: %s", self.path, exc)

    # -- internals ------------------------------------------------------------------------

    def _new_exposure(self, state: ExposureState | None) -> Exposure:
        s = self.settings
        return Exposure((s.exposure_lower_dba, s.exposure_upper_dba), state)

    def _restore(self) -> ExposureState | None:
        try:
            text = self.path.read_text()
        except FileNotFoundError:
            return None
        except OSError as exc:
            log.warning("cannot read %s (%s): today's exposure starts at zero", self.path, exc)
            return None
        try:
            data = json.loads(text)
            if not isinstance(data, dict) or data.get("schema") != SCHEMA:
                raise ValueError(f"not a {SCHEMA} object")
            if data.get("day") != self.day:
                return None  # another day's exposure: today starts at zero
            return ExposureState.from_json(data)
        except ValueError as exc:
            bad = self.path.with_name(self.path.name + ".bad")
            with contextlib.suppress(OSError):
                os.replace(self.path, bad)
            log.warning("%s: %s; kept as %s, today's exposure starts at zero",
                        self.path, exc, bad)
            return None

    def _notice(self, action_dba: float, position: int, seconds: float) -> Event:
        lex = self.exposure.lex_8h_db
        upper = action_dba >= self.settings.exposure_upper_dba
        self._notice_data = {"lex_8h_db": round(lex, 2) if lex is not None else 0.0,
                             "action": "upper" if upper else "lower",
                             "threshold_dba": action_dba}
        self._notice_end = seconds + NOTICE_S
        return Event(Kind.EXPOSURE, Phase.BEGIN, Stream.CUSTOMER, position, position,
                     dict(self._notice_data))

    def _end_notice(self, position: int) -> list[Event]:
        if self._notice_end is None:
            return []
        self._notice_end = None
        return [Event(Kind.EXPOSURE, Phase.END, Stream.CUSTOMER, position, position,
                      dict(self._notice_data))]

    def _snapshot(self) -> ExposureSnapshot:
        e = self.exposure
        return ExposureSnapshot(self.day, e.lex_8h_db, e.laeq_db, e.uncalibrated_laeq_dbfs,
                                e.calibrated_s, e.uncalibrated_s, self.sensitivity, self.source)
