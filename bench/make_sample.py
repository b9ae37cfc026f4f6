"""``python -m bench.make_sample``: the repository's sample call, rebuilt byte for byte.

A 31-second two-party call of real voices (Debian codec2-examples recordings, upsampled from
8 kHz) with one espeak-ng backchannel, written as 16 kHz int16 stereo (ch0 agent, ch1
customer) so it stays under 2 MB. The script is fixed, not drawn at random, so the call
always holds exactly: two talk-overs of at least 1.2 s (one started by each party), one
"mm-hmm" backchannel that is not a talk-over, a dead-air gap of about 6 s, and a stretch of
office babble on the agent's side. The truth lands next to it as ``sample-call.truth.json``.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

from bench import noises
from bench.compose import Timeline
from bench.render import Mix, render, speech_at_rate
from bench.sources import codec2_utterances

RATE = 16000
DURATION_S = 31.0
SEED = 20260
BABBLE_S = (16.0, 27.0)
BABBLE_DBFS = -40.0
SAMPLES = Path(__file__).resolve().parent.parent / "samples"


def _by_name(utts: list, name: str):
    for u in utts:
        if u.name == name:
            return u
    sys.exit(f"speech clip {name} not found; is Debian's codec2-examples installed?")


def _backchannel():
    """'mm-hmm' from espeak-ng, trimmed by the labeller to its 0.3-0.7 s of speech."""
    from bench.sources import backchannel

    u = backchannel("espeak-ng", "en-us", "mm-hmm")
    if u is None:
        sys.exit("espeak-ng 'mm-hmm' is not 0.3-0.7 s long with this espeak-ng version")
    return u


def build(out_dir: Path = SAMPLES) -> dict[str, object]:
    """Write the sample call and its truth into ``out_dir``; returns the truth."""
    real = codec2_utterances()
    u = {name: _by_name(real, name) for name in (
        "codec2/hts#0", "codec2/hts#2", "codec2/hts#4", "codec2/hts#6", "codec2/kristoff#0",
        "codec2/cq_ref#0", "codec2/cq_ref#1", "codec2/speech_orig_16k#0", "codec2/big_dog#0",
        "codec2/hts#5")}
    mm = _backchannel()

    tl = Timeline(DURATION_S)
    # Greeting, then the customer explains; the agent says "mm-hmm" in the middle of it.
    end = tl.place("agent", u["codec2/hts#0"], 0.4)
    end = tl.place("customer", u["codec2/cq_ref#0"], end + 0.45)
    tl.place("agent", mm, end - 2.6, kind="backchannel")
    # The agent answers; the customer talks over the agent, who yields after 1.5 s.
    end = tl.place("agent", u["codec2/kristoff#0"], end + 0.5)
    start = end - 2.2
    tl.place("customer", u["codec2/speech_orig_16k#0"], start)
    tl.cut("agent", start + 1.5)
    end = tl.speech_end("customer")
    # The agent replies; later the agent cuts in on the customer for 1.6 s.
    end = tl.place("agent", u["codec2/hts#2"], end + 0.4)
    end = tl.place("customer", u["codec2/cq_ref#1"], end + 0.35)
    start = end - 2.0
    tl.place("agent", u["codec2/hts#4"], start)
    tl.cut("customer", start + 1.6)
    end = tl.speech_end("agent")
    # Dead air while the agent looks something up, then both wrap up.
    end = tl.place("agent", u["codec2/hts#6"], end + 6.2)
    end = tl.place("customer", u["codec2/big_dog#0"], end + 0.5)

    rng = np.random.default_rng(SEED)
    n = int(DURATION_S * RATE)
    speech = speech_at_rate(tl, RATE, {"agent": -1.0, "customer": -3.0})
    pool = [x for x in real if not x.name.startswith(("codec2/hts", "codec2/cq_ref"))]
    # Faded in at 16 s below, so the talkers may join at the first sample (lead_s=0).
    office = noises.babble(rng, pool, n, RATE, voices=5, lead_s=0.0)
    t = np.arange(n) / RATE
    # Babble on the agent's side from 16 s to 27 s (through the dead air), faded over 1 s.
    env = np.clip(np.minimum(t - BABBLE_S[0], BABBLE_S[1] - t), 0.0, 1.0)
    agent_noise = (noises.room(rng, n, RATE) * 10 ** (-68 / 20)
                   + office * env * 10 ** (BABBLE_DBFS / 20))
    customer_noise = noises.room(rng, n, RATE) * 10 ** (-72 / 20)
    mix = Mix(RATE, noise={"agent": agent_noise, "customer": customer_noise},
              conditions=["sample", "babble_segment"], quiet_room=False,
              info={"noise_segments": [{"stream": "agent", "kind": "babble",
                                        "start_s": BABBLE_S[0], "end_s": BABBLE_S[1],
                                        "level_dbfs": BABBLE_DBFS}]})
    truth = render(tl, speech, mix, out_dir / "sample-call.wav",
                   {"seed": SEED, "description": "sample call: real voices, 2 talk-overs, "
                    "1 backchannel, ~6 s dead air, office babble on the agent side 16-27 s"})
    (out_dir / "sample-call.truth.json").write_text(json.dumps(truth, indent=1) + "\n")
    return truth


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.make_sample", description=__doc__)
    ap.add_argument("--out", type=Path, default=SAMPLES, help="output folder (default samples/)")
    args = ap.parse_args(argv)
    truth = build(args.out)
    print(f"wrote {args.out / 'sample-call.wav'}: {truth['duration_s']} s, "
          f"{len(truth['talk_overs'])} talk-overs, dead air {truth['dead_air']}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
