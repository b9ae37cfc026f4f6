"""``callwatch demo``: the main job in one command.

With a headset configured (``[capture] mic_device`` set to a device other than
``"default"``), it is ``callwatch run``: live monitoring. Without one, it replays the bundled
sample call (``samples/sample-call.wav``: agent on channel 0, customer on channel 1) through
the same live path at real-time pace, so talk-overs, alerts and the nudge page can be seen on
any machine, sound card or not.

When the replay ends, the call ends (its summary goes to the page and the log) and the demo
**keeps serving** the nudge page, the metrics and the control socket until Ctrl-C (exit 0).
It holds rather than loops the sample: one replay is one call with one summary, exactly what
the live daemon would show after a real call; a loop would start a second call 31 s after the
first, inside the one-nudge-per-minute allowance, so its talk-overs would not be nudged and a
newcomer would see the demo contradict itself. ``make run`` again replays the call anew.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from daemon import run
from daemon.command import EXIT_CANNOT_RUN, CommandError, command, load_command_config
from daemon.service import Service

SAMPLE = Path(__file__).resolve().parents[1] / "samples" / "sample-call.wav"


class HoldingService(Service):
    """The daemon's processing loop, except that the end of the replay ends the call and
    leaves everything serving until a stop is requested (Ctrl-C, SIGTERM)."""

    held = False

    def _replay_finished(self) -> bool:
        if self.held or not super()._replay_finished():
            return False
        self.held = True
        self.monitor.end_call("replay finished")
        self.log.emit("replay_finished", processed_s=round(self.monitor.processed_s, 2))
        where = ""
        if self.server is not None:
            page = self.server.page_url if sys.stderr.isatty() else self.server.page_address
            where = f" at {page}"
        print(f"callwatch demo: the replay is over; the nudge page stays up{where} "
              "(Ctrl-C to stop)", file=sys.stderr)
        return False


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--config", metavar="TOML",
                   help="config file (default: $XDG_CONFIG_HOME/callwatch/config.toml if present)")
    p.add_argument("--speed", type=float, default=1.0, metavar="N",
                   help="replay pace when no headset is configured (default 1 = real time)")
    p.add_argument("--log-json", metavar="FILE",
                   help="also append every event as one JSON line to FILE ('-' = stdout)")
    p.add_argument("--output", choices=("auto", "text", "json"), default="auto",
                   help="stdout format (default: text on a terminal, JSON lines otherwise)")


@command("demo")
def main(args: argparse.Namespace) -> int:
    cfg = load_command_config(args.config)
    if problem := run.speed_problem(args.speed):
        raise CommandError(problem)  # before the replay is announced
    mic = cfg.capture.mic_device
    live = mic not in ("default", "")
    replay = None
    if not live:
        if not SAMPLE.exists():
            raise CommandError(f"{SAMPLE}: sample call missing; configure a headset "
                               "([capture] mic_device) or run from a source checkout",
                               EXIT_CANNOT_RUN)
        replay = str(SAMPLE)
        print(f"callwatch demo: no headset configured ([capture] mic_device = \"{mic}\"); "
              f"replaying {SAMPLE.name} at {args.speed:g}x through the live path, then "
              "keeping the nudge page up until Ctrl-C", file=sys.stderr)
    else:
        print(f"callwatch demo: monitoring the headset {mic!r} (Ctrl-C to stop)",
              file=sys.stderr)
    ns = argparse.Namespace(config=args.config, check_config=False, replay=replay,
                            speed=args.speed, log_json=args.log_json, output=args.output,
                            no_server=False, no_metrics=False)
    # The demo shares all of `callwatch run`'s start-up, checks and shutdown and changes
    # only what happens when the replay ends.
    return run.main(ns, service_class=None if live else HoldingService, command="demo")

