"""``callwatch demo``: the main job in one command.

With a headset configured (``[capture] mic_device`` set to a device other than
``"default"``), it is ``callwatch run``: live monitoring. Without one, it replays the bundled
sample call (``samples/sample-call.wav``: agent on channel 0, customer on channel 1) through
the same live path at real-time pace, so talk-overs, alerts and the nudge page can be seen on
any machine, sound card or not.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

SAMPLE = Path(__file__).resolve().parents[1] / "samples" / "sample-call.wav"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--config", metavar="TOML",
                   help="config file (default: $XDG_CONFIG_HOME/callwatch/config.toml if present)")
    p.add_argument("--speed", type=float, default=1.0, metavar="N",
                   help="replay pace when no headset is configured (default 1 = real time)")
    p.add_argument("--log-json", metavar="FILE", help="also append events as JSON lines to FILE")
    p.add_argument("--output", choices=("auto", "text", "json"), default="auto",
                   help="stdout format (default: text on a terminal, JSON lines otherwise)")


def main(args: argparse.Namespace) -> int:
    from daemon import run
    from daemon.config import ConfigError, load_config, resolve_path

    try:
        cfg = load_config(resolve_path(args.config))
    except ConfigError as exc:
        print(f"callwatch demo: {exc}", file=sys.stderr)
        return 2
    mic = cfg.capture.mic_device
    live = mic not in ("default", "")
    replay = None
    if not live:
        if not SAMPLE.exists():
            print(f"callwatch demo: {SAMPLE}: sample call missing; configure a headset "
                  "([capture] mic_device) or run from a source checkout", file=sys.stderr)
            return 3
        replay = str(SAMPLE)
        print(f"callwatch demo: no headset configured ([capture] mic_device = \"{mic}\"); "
              f"replaying {SAMPLE.name} at {args.speed:g}x through the live path",
              file=sys.stderr)
    else:
        print(f"callwatch demo: monitoring the headset {mic!r} (Ctrl-C to stop)",
              file=sys.stderr)
    ns = argparse.Namespace(config=args.config, check_config=False, replay=replay,
                            speed=args.speed, log_json=args.log_json, output=args.output,
                            no_server=False, no_metrics=False)
    return run.main(ns)
