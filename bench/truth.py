"""Ground truth of a two-party call by the definitions of DESIGN.md §4.4.

Everything here is computed from each party's *clean* signal as it is mixed into the file
(at the file's rate, with the call's gain, before noise, speaker leak and clipping), so the
truth is what is in the audio, not what a composer planned:

* **activity**: 10 ms frames whose RMS is within 30 dB of the party's P.56 active level
  (:mod:`bench.levels`), silent gaps shorter than 0.2 s filled; ``speech_s`` is their total;
* **talk-over**: frames where both parties are active; fragments closer than 0.5 s merge into
  one event from the first to the last fragment. An event spanning >= 1.0 s must be found
  (``must``), one under 0.3 s must not be reported (``must_not``), in between either answer
  is right (``either``);
* **initiator**: at the event's first fragment, the party whose activity run began later;
* **dead air**: both parties inactive for >= 5 s inside the call (``dead_air``); all such
  stretches, including those at the file's start or end where no report is owed, are listed
  in ``quiet_stretches``.
"""

from __future__ import annotations

import itertools

import numpy as np

from bench.levels import active_level_dbfs

PARTIES = ("agent", "customer")
FRAME_S = 0.01
WITHIN_DB = 30.0
FILL_GAP_S = 0.2
MERGE_S = 0.5
MUST_FIND_S = 1.0
MUST_NOT_S = 0.3
DEAD_AIR_S = 5.0
DEFINITIONS = "DESIGN.md §4.4"

Run = tuple[int, int]  # [start, end) frame indices


def runs(mask: np.ndarray) -> list[Run]:
    """[start, end) index pairs of the True runs of a boolean array."""
    m = np.concatenate([[False], np.asarray(mask, dtype=bool), [False]])
    edges = np.flatnonzero(np.diff(m.astype(np.int8)))
    return [(int(a), int(b)) for a, b in zip(edges[::2], edges[1::2], strict=True)]


def frame_rms_db(x: np.ndarray, rate: int) -> np.ndarray:
    """RMS level (dBFS) of each whole 10 ms frame of ``x``."""
    frame = round(rate * FRAME_S)
    n = len(x) // frame
    f = np.asarray(x[: n * frame], dtype=np.float64).reshape(n, frame)
    return 10.0 * np.log10(np.mean(f * f, axis=1) + 1e-20)


def fill_gaps(mask: np.ndarray, max_gap_frames: int) -> np.ndarray:
    """``mask`` with its inner False runs shorter than ``max_gap_frames`` set True."""
    out = np.asarray(mask, dtype=bool).copy()
    active = runs(out)
    for (_, b), (c, _) in itertools.pairwise(active):
        if c - b < max_gap_frames:
            out[b:c] = True
    return out


def activity(x: np.ndarray, rate: int, level_dbfs: float | None) -> np.ndarray:
    """Per-10-ms-frame speech activity of one party's clean signal (see the module docstring)."""
    d = frame_rms_db(x, rate)
    if level_dbfs is None:
        return np.zeros(len(d), dtype=bool)
    return fill_gaps(d >= level_dbfs - WITHIN_DB, round(FILL_GAP_S / FRAME_S))


def _run_starts(mask: np.ndarray) -> np.ndarray:
    """For each frame, the index where its activity run began (-1 where inactive)."""
    idx = np.arange(len(mask))
    onset = mask & ~np.concatenate([[False], mask[:-1]])
    start = np.maximum.accumulate(np.where(onset, idx, -1)) if len(mask) else idx
    return np.where(mask, start, -1)


def classify(span_s: float) -> str:
    """``must`` (>= 1.0 s), ``must_not`` (< 0.3 s) or ``either`` for a talk-over's span."""
    if span_s >= MUST_FIND_S - 1e-9:
        return "must"
    if span_s < MUST_NOT_S - 1e-9:
        return "must_not"
    return "either"


def talk_overs(masks: dict[str, np.ndarray]) -> list[dict[str, object]]:
    """Talk-over events of two activity masks, each with its class and initiator."""
    n = min(len(masks[p]) for p in PARTIES)
    a, c = masks["agent"][:n], masks["customer"][:n]
    frags = runs(a & c)
    merge = round(MERGE_S / FRAME_S)
    groups: list[list[Run]] = []
    for f in frags:
        if groups and f[0] - groups[-1][-1][1] < merge:
            groups[-1].append(f)
        else:
            groups.append([f])
    starts = {"agent": _run_starts(a), "customer": _run_starts(c)}
    events = []
    for g in groups:
        i, j = g[0][0], g[-1][1]
        sa, sc = int(starts["agent"][i]), int(starts["customer"][i])
        initiator = "agent" if sa > sc else "customer" if sc > sa else None
        span = (j - i) * FRAME_S
        events.append({"start_s": round(i * FRAME_S, 2), "end_s": round(j * FRAME_S, 2),
                       "span_s": round(span, 2), "class": classify(span),
                       "initiator": initiator,
                       "overlap_s": round(sum(b - q for q, b in g) * FRAME_S, 2)})
    return events


def quiet_stretches(masks: dict[str, np.ndarray]) -> list[dict[str, object]]:
    """Both parties inactive for >= 5 s; ``inside`` says whether speech lies on both sides."""
    n = min(len(masks[p]) for p in PARTIES)
    either = masks["agent"][:n] | masks["customer"][:n]
    out = []
    for i, j in runs(~either):
        if (j - i) * FRAME_S >= DEAD_AIR_S - 1e-9:
            out.append({"start_s": round(i * FRAME_S, 2), "end_s": round(j * FRAME_S, 2),
                        "inside": bool(i > 0 and j < n)})
    return out


def derive(clean: dict[str, np.ndarray], rate: int) -> dict[str, object]:
    """The §4.4 truth of one call from each party's clean signal at the file's rate."""
    levels = {p: active_level_dbfs(clean[p], rate) for p in PARTIES}
    masks = {p: activity(clean[p], rate, levels[p]) for p in PARTIES}
    events = talk_overs(masks)
    quiet = quiet_stretches(masks)
    keep = ("start_s", "end_s", "span_s", "initiator", "overlap_s")

    def pick(cls: str) -> list[dict[str, object]]:
        return [{k: e[k] for k in keep} for e in events if e["class"] == cls]

    return {
        "definitions": DEFINITIONS,
        "parties": {p: {"active_level_dbfs": None if levels[p] is None else round(levels[p], 2),
                        "speech_s": round(float(masks[p].sum()) * FRAME_S, 2)}
                    for p in PARTIES},
        "talk_overs": pick("must"),
        "optional_talk_overs": pick("either"),
        "short_overlaps": pick("must_not"),
        "dead_air": [{"start_s": q["start_s"], "end_s": q["end_s"]} for q in quiet
                     if q["inside"]],
        "quiet_stretches": quiet,
        "activity": {p: [[round(i * FRAME_S, 2), round(j * FRAME_S, 2)] for i, j in
                         runs(masks[p])] for p in PARTIES},
    }
