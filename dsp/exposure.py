"""Daily noise exposure at the agent's ear: LEX,8h as EU 2003/10/EC defines it.

LEX,8h = 10·log10( (1/T0) ∫ pA(t)² / p0² dt ) with T0 = 8 h: the A-weighted sound energy of
the working day spread over eight hours. So listening at a steady LAeq for a time T gives
LAeq + 10·log10(T / 8 h), and +3 dB halves the time allowed. The directive's action values
are 80 dB(A) (lower) and 85 dB(A) (upper), the limit 87 dB(A).

The accumulator is pure: it is handed the far end's A-weighted energy in full-scale units
(``Σ ms · seconds``, see :func:`dsp.hearing.a_weighted_power`) with the sensitivity in force
while that audio played, and converts it to ``p²/p0²·s`` then, so a headset swapped mid-day
(another ``dbspl_at_0dbfs``) does not rescale the energy already heard. Audio heard while
uncalibrated is counted apart: the exposure is then reported as uncalibrated (a relative
dBFS figure), never as dB SPL. The day boundary and persistence are the daemon's business
(:mod:`daemon.hearing`): this class only holds the numbers (:meth:`Exposure.state`).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

T0_S = 8 * 3600.0
"""The reference duration of LEX,8h."""

LIMIT_DBA = 87.0
"""The directive's exposure limit value (with hearing protection taken into account)."""


@dataclass(frozen=True, slots=True)
class ExposureState:
    """What an :class:`Exposure` has accumulated (JSON-ready, for persistence)."""

    dose_s: float = 0.0
    """Calibrated A-weighted energy, ∫ pA²/p0² dt in seconds."""
    calibrated_s: float = 0.0
    """Seconds of far-end audio heard with a known sensitivity."""
    uncalibrated_energy_s: float = 0.0
    """A-weighted energy heard without a sensitivity, full-scale units (Σ ms · s)."""
    uncalibrated_s: float = 0.0
    """Seconds of far-end audio heard without a sensitivity."""
    warned_dba: float = 0.0
    """The highest action value already warned about (0: none)."""

    def to_json(self) -> dict[str, float]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, object]) -> ExposureState:
        """From :meth:`to_json`; raises ValueError on missing, non-numeric or negative values."""
        values: dict[str, float] = {}
        for name in ("dose_s", "calibrated_s", "uncalibrated_energy_s", "uncalibrated_s",
                     "warned_dba"):
            v = data.get(name, 0.0)
            if isinstance(v, bool) or not isinstance(v, int | float) or not math.isfinite(v) \
                    or v < 0:
                raise ValueError(f"{name} = {v!r}: must be a finite number >= 0")
            values[name] = float(v)
        return cls(**values)


def lex_8h_db(dose_s: float) -> float | None:
    """LEX,8h in dB(A) of a calibrated dose (None for no sound at all)."""
    return 10.0 * math.log10(dose_s / T0_S) if dose_s > 0 else None


class Exposure:
    """The running daily exposure; :meth:`add` returns the action values newly reached."""

    def __init__(self, action_values_dba: tuple[float, ...] = (80.0, 85.0),
                 state: ExposureState | None = None) -> None:
        self.action_values_dba = tuple(sorted(action_values_dba))
        s = state or ExposureState()
        self.dose_s = s.dose_s
        self.calibrated_s = s.calibrated_s
        self.uncalibrated_energy_s = s.uncalibrated_energy_s
        self.uncalibrated_s = s.uncalibrated_s
        self.warned_dba = s.warned_dba

    def add(self, energy_fs2_s: float, seconds: float,
            dbspl_at_0dbfs: float | None) -> list[float]:
        """Add ``seconds`` of far-end audio whose A-weighted energy is ``energy_fs2_s``
        (full-scale units), heard at ``dbspl_at_0dbfs`` (None: uncalibrated). Returns the
        action values (dB(A)) that LEX,8h reached with this audio, lowest first."""
        if seconds < 0 or energy_fs2_s < 0:
            raise ValueError("energy and seconds must be >= 0")
        if dbspl_at_0dbfs is None:
            self.uncalibrated_energy_s += energy_fs2_s
            self.uncalibrated_s += seconds
            return []
        self.dose_s += energy_fs2_s * 10.0 ** (dbspl_at_0dbfs / 10.0)
        self.calibrated_s += seconds
        lex = self.lex_8h_db
        reached = [v for v in self.action_values_dba
                   if lex is not None and lex >= v and v > self.warned_dba]
        if reached:
            self.warned_dba = reached[-1]
        return reached

    @property
    def lex_8h_db(self) -> float | None:
        """LEX,8h (dB(A)) of the calibrated audio; None if none was heard calibrated. When
        :attr:`uncalibrated_s` is not zero, it leaves that audio out (a lower bound)."""
        return lex_8h_db(self.dose_s)

    @property
    def laeq_db(self) -> float | None:
        """LAeq (dB(A) SPL) over the calibrated audio heard."""
        if self.calibrated_s <= 0 or self.dose_s <= 0:
            return None
        return 10.0 * math.log10(self.dose_s / self.calibrated_s)

    @property
    def uncalibrated_laeq_dbfs(self) -> float | None:
        """A-weighted equivalent level (dBFS, relative) of the audio heard uncalibrated."""
        if self.uncalibrated_s <= 0 or self.uncalibrated_energy_s <= 0:
            return None
        return 10.0 * math.log10(self.uncalibrated_energy_s / self.uncalibrated_s)

    @property
    def uncalibrated(self) -> bool:
        """True when some of today's far-end audio was heard without a sensitivity."""
        return self.uncalibrated_s > 0

    def state(self) -> ExposureState:
        return ExposureState(self.dose_s, self.calibrated_s, self.uncalibrated_energy_s,
                             self.uncalibrated_s, self.warned_dba)
