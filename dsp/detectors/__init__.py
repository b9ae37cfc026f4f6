"""The detectors: one small state machine per problem, each owning its state, the settings it
reads and the events it emits.

Every detector follows the same shape:

* ``configure(settings)``: take new thresholds; called at construction and on reload, and
  keeps the detector's state (a condition in progress stays in progress);
* an update fed by :class:`dsp.pipeline.Pipeline`: per frame for talk-over and dead air, per
  1-second segment (``judge(...)``) for levels, noise, clipping, echo and dead mic;
* ``close(frame) -> list[Event]``: end whatever is open at frame ``frame`` (call over, input
  ended).

Time is a frame index (20 ms frames at :data:`dsp.ANALYSIS_RATE`); events carry sample
indices (see :func:`event`). Per-party state shared by several detectors (noise estimates,
spurts, the level window) lives in :class:`dsp.party.Party`.
"""

from __future__ import annotations

from dsp import FRAME_LEN
from dsp.condition import Condition
from dsp.events import Event, Kind, Phase, Stream

LEVEL_HYSTERESIS_DB = 2.0
"""A level or noise condition resolves only this far back inside its threshold."""


def event(kind: Kind, phase: Phase, stream: Stream | None, start_frame: int, end_frame: int,
          **data: str | int | float) -> Event:
    """An event from frame indices."""
    return Event(kind, phase, stream, start_frame * FRAME_LEN, end_frame * FRAME_LEN, data)


def carry(old: Condition | None, on: int, off: int) -> Condition:
    """A condition with new durations that keeps the state of the one it replaces."""
    new = Condition(on, off)
    if old is not None:
        for name in ("active", "bad_run", "good_run", "start", "end"):
            setattr(new, name, getattr(old, name))
    return new
