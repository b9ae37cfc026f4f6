"""Background noise: a party's noise while it is silent above ``noise_floor_dbfs``, or its
speech-to-noise ratio below ``min_snr_db``, for ``noise_min_s``. The noise estimates
themselves (:class:`dsp.noise.MinimumFloor`, :class:`dsp.noise.BackgroundLevel`) belong to the
party; this is the verdict."""

from __future__ import annotations

from dsp.condition import BEGIN, NOTHING, Condition
from dsp.detectors import LEVEL_HYSTERESIS_DB, carry, event
from dsp.events import Event, Kind, Phase
from dsp.levels import DBFS_FLOOR
from dsp.party import Party, frames
from dsp.settings import DetectorSettings


class Noise:
    """One party's noise condition, judged on the mostly-silent segments."""

    def __init__(self, party: Party, settings: DetectorSettings) -> None:
        self.party = party
        self.cond: Condition | None = None
        self.worst = DBFS_FLOOR
        """The loudest noise of the condition in progress."""
        self.now: float | None = None
        """The noise level of the latest judged segment."""
        self.configure(settings)

    def configure(self, s: DetectorSettings) -> None:
        self.floor_dbfs = s.noise_floor_dbfs
        self.min_snr_db = s.min_snr_db
        self.cond = carry(self.cond, frames(s.noise_min_s), frames(s.resolve_s))

    def judge(self, first: int, n: int, noise: float, end: int) -> list[Event]:
        """``n`` silent frames from ``first`` with median level ``noise``; ``end`` is the
        frame at which a BEGIN is confirmed."""
        cond = self.cond
        assert cond is not None
        self.now = noise
        level = self.party.level_dbfs()
        snr = level - noise if level is not None else None
        bad = noise > self.floor_dbfs or (snr is not None and snr < self.min_snr_db)
        good = noise <= self.floor_dbfs - LEVEL_HYSTERESIS_DB and (
            snr is None or snr >= self.min_snr_db + LEVEL_HYSTERESIS_DB
        )
        if bad:
            self.worst = max(self.worst, noise) if cond.active else noise
        r = cond.update_many(first, n, bad, good)
        if r is NOTHING:
            return []
        if r is BEGIN:
            return [event(Kind.NOISE, Phase.BEGIN, self.party.stream, cond.start, end,
                          **self._data())]
        return [event(Kind.NOISE, Phase.END, self.party.stream, cond.start, cond.end,
                      **self._data())]

    def close(self, frame: int) -> list[Event]:
        cond = self.cond
        assert cond is not None
        if not cond.close(frame):
            return []
        return [event(Kind.NOISE, Phase.END, self.party.stream, cond.start, cond.end,
                      **self._data())]

    def _data(self) -> dict[str, str | int | float]:
        data: dict[str, str | int | float] = {
            "noise_floor_dbfs": self.worst,
            "threshold_dbfs": self.floor_dbfs,
            "min_snr_db": self.min_snr_db,
        }
        # The SNR at the worst noise, as the floor above: an END's latest segment is the
        # quieter one that ended it (an SNR far over min_snr_db on a noise event).
        level = self.party.level_dbfs()
        if level is not None and self.now is not None:
            data["snr_db"] = level - self.worst
        return data
