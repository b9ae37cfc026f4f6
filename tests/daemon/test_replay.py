"""``callwatch run --replay`` when the replay thread dies of a bug: the run must not pass for a
finished replay (exit 0 with a partial call summary) - it exits 1 with the traceback.

No real input makes the reader raise anything but :class:`AudioFileError` or an OS/decoder
error (those exit 2, tested with real files); this guards against the next bug, so the bug is
injected: the file reader raises an unexpected exception after its first blocks.
"""

from __future__ import annotations

import argparse
import json
import signal
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from daemon import run
from daemon.audiofile import CallReader


@pytest.fixture
def replay_args(tmp_path, monkeypatch) -> Iterator[tuple[argparse.Namespace, Path]]:
    call = tmp_path / "call.wav"
    rng = np.random.default_rng(3)
    sf.write(call, 0.05 * rng.standard_normal((16000 * 25, 2)), 16000, subtype="PCM_16")
    config = tmp_path / "config.toml"
    config.write_text(f'[control]\nsocket_path = "{tmp_path / "control.sock"}"\n')
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))
    log = tmp_path / "events.jsonl"
    args = argparse.Namespace(config=str(config), check_config=False, replay=str(call),
                              speed=1000.0, log_json=str(log), output="json", no_server=True,
                              no_metrics=True)
    handlers = {s: signal.getsignal(s) for s in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)}
    yield args, log
    for s, h in handlers.items():
        signal.signal(s, h)


def test_replay_thread_death_exits_1_with_the_traceback(replay_args, monkeypatch, capsys):
    args, log = replay_args
    real_blocks = CallReader.blocks

    def dying_blocks(self: CallReader) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        for i, block in enumerate(real_blocks(self)):
            if i == 1:  # after the first 10 s
                raise ZeroDivisionError("injected bug in the reader")
            yield block

    monkeypatch.setattr(CallReader, "blocks", dying_blocks)
    rc = run.main(args)
    err = capsys.readouterr().err
    assert rc == 1, err
    assert "internal error" in err and "Traceback" in err
    assert "ZeroDivisionError: injected bug in the reader" in err
    records = [json.loads(line) for line in log.read_text().splitlines()]
    failed = [r for r in records if r["event"] == "replay_error"]
    assert failed and "ZeroDivisionError" in failed[0]["error"]
    assert records[-1]["event"] == "stopped"


def test_a_whole_replay_still_exits_0(replay_args, capsys):
    """The same run without the injected bug: the exit code above comes from the crash."""
    args, log = replay_args
    assert run.main(args) == 0, capsys.readouterr().err
    records = [json.loads(line) for line in log.read_text().splitlines()]
    ended = next(r for r in records if r["event"] == "call_ended")
    assert ended["summary"]["duration_s"] == pytest.approx(25.0, abs=0.1)
