"""The part of ``callwatch check`` the live daemon imports: verdict labels, reading a saved
result defensively, and staying clear of the check's devices and measurements."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from daemon.check.result import SCHEMA, Verdict, check_verdicts, load_last_check


@pytest.mark.parametrize("verdict", list(Verdict))
def test_every_verdict_round_trips_through_its_label(verdict):
    assert Verdict.from_label(verdict.label) is verdict


@pytest.mark.parametrize("label", ["PASS", "Pass", "ok", "", None, 0, 2, ["fail"]])
def test_labels_a_result_file_may_not_hold_are_no_verdict(label):
    assert Verdict.from_label(label) is None


def test_verdict_values_are_the_gauge_values_and_order_by_severity():
    assert [int(v) for v in (Verdict.PASS, Verdict.WARN, Verdict.FAIL)] == [0, 1, 2]
    assert Verdict.SKIP < Verdict.PASS < Verdict.WARN < Verdict.FAIL


def test_check_verdicts_keeps_named_measured_items_only():
    result = {"schema": SCHEMA, "items": [
        {"name": "noise", "verdict": "warn"},
        {"name": "hum", "verdict": "fail"},
        {"name": "snr", "verdict": "skip"},          # not measured: not exported
        {"name": "echo", "verdict": "FAIL"},         # not a label the check writes
        {"name": 7, "verdict": "pass"},              # no name
        "mic_device",                                # not an item at all
    ]}
    verdicts = check_verdicts(result)
    assert verdicts == {"noise": Verdict.WARN, "hum": Verdict.FAIL}
    assert all(type(v) is Verdict for v in verdicts.values())


def test_a_file_of_another_schema_or_shape_is_no_result(tmp_path):
    path = tmp_path / "check.json"
    for text in ("not json", json.dumps([1, 2]), json.dumps({"schema": "other/1", "items": []}),
                 json.dumps({"schema": SCHEMA, "items": {"noise": "pass"}})):
        path.write_text(text)
        assert load_last_check(path) is None, text
    path.write_text(json.dumps({"schema": SCHEMA, "items": []}))
    assert load_last_check(path) == {"schema": SCHEMA, "items": []}


def test_what_the_daemon_imports_leaves_the_check_itself_out():
    probe = ("import json, sys\nfrom daemon.check import LastCheckWatcher\n"
             "print(json.dumps(sorted(m for m in sys.modules if m.startswith('daemon.'))))")
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                         timeout=30, check=True).stdout
    assert json.loads(out) == ["daemon.check", "daemon.check.result", "daemon.state"]
