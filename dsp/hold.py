"""Live input held back from the pipeline until it could bring an event.

On an interpreter a pass of the pipeline costs about the same for 40 ms of audio as for
400 ms: most of it is the working set, cold again after every sleep of the loop. Pushing
each block as it is captured spends most of a live daemon's CPU on passes that cannot
yield an event. :class:`InputHold` keeps the blocks back while the pipeline says no
``BEGIN`` can come of them (:attr:`dsp.pipeline.Pipeline.quiet_s`, and
:meth:`~dsp.pipeline.Pipeline.could_shock` for the far end's samples), and hands them
over, all at once, with the block that could. So every ``BEGIN`` is pushed with the same
block as without holding; the events are the same (they do not depend on chunking), and only
``END`` events and the statistics lag, by at most what the caller allows.
"""

from __future__ import annotations

import numpy as np

from dsp.pipeline import Pipeline

SHOCK_EAGER_S = 0.25
"""After far-end samples that could start an acoustic shock, this much more audio goes in
without holding: the detector needs up to 40 ms more to confirm a tone, and the pipeline
keeps back the part of a frame it was last given."""


class InputHold:
    """Aligned blocks of both parties, held back from ``pipeline`` while nothing can come of
    them. Pure: the caller says how long it may hold at most (its own timers) and pushes what
    :meth:`offer` or :meth:`take` returns."""

    def __init__(self, pipeline: Pipeline) -> None:
        self.pipeline = pipeline
        self._blocks: list[tuple[np.ndarray, np.ndarray]] = []
        self.held_s = 0.0
        """Seconds held now."""
        self.rest_s = 0.0
        """Seconds of audio that can still come before a push is due, after the last
        :meth:`offer` (0 when it returned audio to push)."""
        self._eager_s = 0.0

    def __len__(self) -> int:
        return len(self._blocks)

    def offer(self, agent: np.ndarray, customer: np.ndarray, seconds: float,
              most_s: float) -> tuple[np.ndarray, np.ndarray] | None:
        """A new block of ``seconds``; returns everything held with it when it is time to
        push, else None (held). ``most_s``: the longest the caller lets audio wait (its
        timers, the freshness of its statistics); 0 or less pushes at once."""
        if self.pipeline.could_shock(customer):
            self._eager_s = SHOCK_EAGER_S
        elif self._eager_s > 0.0:
            self._eager_s -= seconds
        held = self.held_s + seconds
        limit = self.holdable_s(most_s)
        self._blocks.append((agent, customer))
        if held >= limit:
            self.rest_s = 0.0
            return self.take()
        self.held_s = held
        self.rest_s = limit - held
        return None

    def holdable_s(self, most_s: float) -> float:
        """How much audio, past what was pushed, may be held in all: until the pipeline
        could bring a ``BEGIN``, at most ``most_s``; nothing just after far-end audio that
        could start an acoustic shock."""
        if self._eager_s > 0.0:
            return 0.0
        return min(self.pipeline.quiet_s, most_s)

    def take(self) -> tuple[np.ndarray, np.ndarray] | None:
        """Everything held (None if nothing), to push now."""
        blocks = self._blocks
        if not blocks:
            return None
        self._blocks, self.held_s = [], 0.0
        if len(blocks) == 1:
            return blocks[0]
        return (np.concatenate([a for a, _ in blocks]),
                np.concatenate([c for _, c in blocks]))
