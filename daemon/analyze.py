"""``callwatch analyze``: the live pipeline run over recorded calls, one report per call.

Quality auditors run it over thousands of files, so a bad file never stops a batch: it is
reported on stderr (file, problem, fix), every other file is still analysed, the failures are
listed at the end, and the exit code is 2 if any file failed.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from daemon.audiofile import AudioFileError, CallReader, CallSource

EXIT_OK = 0
EXIT_BAD_INPUT = 2


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("files", nargs="*", metavar="CALL",
                   help="stereo recordings (channel 0 agent, channel 1 customer by default)")
    p.add_argument("--agent", metavar="FILE", help="mono recording of the agent's side")
    p.add_argument("--customer", metavar="FILE", help="mono recording of the customer's side")
    p.add_argument("--agent-channel", type=int, default=0, metavar="N",
                   help="channel of the agent in stereo files (default 0)")
    p.add_argument("--customer-channel", type=int, default=1, metavar="N",
                   help="channel of the customer in stereo files (default 1)")
    p.add_argument("--json", action="store_true",
                   help="print one callwatch.analysis/1 JSON object per call, one per line")
    p.add_argument("--config", metavar="TOML",
                   help="take detector thresholds from this config file ([detectors] table)")


def analyze_call(source: CallSource, settings: Any = None) -> dict[str, object]:
    """Analyse one call; raises :class:`AudioFileError` for unusable input."""
    from dsp.pipeline import Pipeline
    from dsp.report import build_report

    with CallReader(source) as reader:
        pipeline = Pipeline(settings, reader.agent_rate, reader.customer_rate)
        events = []
        try:
            for agent, customer in reader.blocks():
                events.extend(pipeline.push(agent, customer))
        except (RuntimeError, OSError) as exc:  # libsndfile errors mid-file
            raise AudioFileError(
                f"{source.label}: audio data is corrupt after "
                f"{pipeline.position / 16000:.1f} s ({exc}); re-export the recording"
            ) from None
        events.extend(pipeline.finish())
        stats = pipeline.stats
        return build_report(stats, events, stats.duration_s, reader.agent_rate)


def _sources(args: argparse.Namespace) -> list[CallSource]:
    if args.agent or args.customer:
        if not (args.agent and args.customer):
            raise AudioFileError("--agent and --customer go together: pass both mono files")
        if args.files:
            raise AudioFileError(
                "pass either stereo files or --agent/--customer, not both"
            )
        return [CallSource(args.agent, args.customer, 0, 0)]
    if not args.files:
        raise AudioFileError(
            "no call to analyse: pass stereo files, or --agent A.wav --customer C.wav"
        )
    if args.agent_channel == args.customer_channel:
        raise AudioFileError(
            f"--agent-channel and --customer-channel are both {args.agent_channel}; "
            "they must differ"
        )
    if args.agent_channel < 0 or args.customer_channel < 0:
        raise AudioFileError("channel numbers start at 0; negative values are not channels")
    return [CallSource(f, f, args.agent_channel, args.customer_channel) for f in args.files]


def _settings(args: argparse.Namespace) -> Any:
    if not args.config:
        return None
    from daemon.config import ConfigError, load_config

    try:
        return load_config(args.config).detectors
    except ConfigError as exc:
        raise AudioFileError(str(exc)) from None


def format_report(label: str, report: dict[str, Any]) -> str:
    """A short human-readable report of one call."""
    lines = [f"{label}: {report['duration_s']:.1f} s at {report['sample_rate_hz']} Hz"]
    for side in ("agent", "customer"):
        s = report[side]

        def db(v: float | None, unit: str) -> str:
            return "n/a" if v is None else f"{v:.1f} {unit}"

        lines.append(
            f"  {side:<8} speech {s['speech_s']:.1f} s, level "
            f"{db(s['active_level_dbfs'], 'dBFS')}, noise {db(s['noise_floor_dbfs'], 'dBFS')},"
            f" SNR {db(s['snr_db'], 'dB')}, clipped {100 * s['clipped_ratio']:.3f} %"
        )
    t = report["talk_over"]
    lines.append(
        f"  talk-over {t['count']} ({t['seconds']:.1f} s): started by agent {t['by_agent']},"
        f" by customer {t['by_customer']}"
    )
    for e in report["events"]:
        extra = ", ".join(
            f"{k}={v}" for k, v in e.items() if k not in ("kind", "stream", "start_s", "end_s")
        )
        who = f" [{e['stream']}]" if e["stream"] else ""
        lines.append(
            f"  {e['start_s']:8.2f}-{e['end_s']:8.2f} s  {e['kind']}{who}"
            + (f"  {extra}" if extra else "")
        )
    return "\n".join(lines)


class _NoProgress:
    """Stands in for a tqdm bar when none is shown (not a terminal, or one file), so batch
    runs do not pay tqdm's import time."""

    def __enter__(self) -> _NoProgress:
        return self

    def __exit__(self, *exc: object) -> None:
        return None

    @staticmethod
    def write(line: str, file: Any = None) -> None:
        print(line, file=file)

    def update(self, n: int) -> None:
        return None


def _progress(total: int, show: bool) -> Any:
    if not show:
        return _NoProgress()
    from tqdm import tqdm

    return tqdm(total=total, unit="call", file=sys.stderr)


def main(args: argparse.Namespace) -> int:
    try:
        sources = _sources(args)
        settings = _settings(args)
    except AudioFileError as exc:
        print(f"callwatch analyze: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT

    failures: list[str] = []
    show_bar = len(sources) > 1 and sys.stderr.isatty()
    with _progress(len(sources), show_bar) as bar:
        for source in sources:
            try:
                report = analyze_call(source, settings)
            except AudioFileError as exc:
                failures.append(str(exc))
                bar.write(f"callwatch analyze: {exc}", file=sys.stderr)
            else:
                if args.json:
                    report = {"file": source.label, **report}
                    bar.write(json.dumps(report, separators=(",", ":")), file=sys.stdout)
                else:
                    bar.write(format_report(source.label, report), file=sys.stdout)
            bar.update(1)
    sys.stdout.flush()
    if failures:
        if len(sources) > 1:
            print(f"callwatch analyze: {len(failures)} of {len(sources)} file(s) failed:",
                  file=sys.stderr)
            for line in failures:
                print(f"  {line}", file=sys.stderr)
        return EXIT_BAD_INPUT
    return EXIT_OK
