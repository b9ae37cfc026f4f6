"""Hearing metrics: golden names and values, nothing in dB(A) while uncalibrated, promtool's
linter."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from daemon.hearing import ExposureSnapshot
from daemon.metrics_hearing import HearingCollector, HearingReading
from tests.exposition import promtool_check_metrics

CALIBRATED = HearingReading(
    ExposureSnapshot("2026-03-02", lex_8h_db=80.97, laeq_db=90.0, uncalibrated_laeq_dbfs=None,
                     calibrated_s=3600.0, uncalibrated_s=0.0, sensitivity=100.0,
                     sensitivity_source="check"),
    acoustic_shocks=2, far_end_laeq_dbfs=-12.5)
UNCALIBRATED = HearingReading(
    ExposureSnapshot("2026-03-02", None, None, -30.0, 0.0, 1800.0, None, "none"),
    acoustic_shocks=0, far_end_laeq_dbfs=-31.0)


def scrape(reading: HearingReading | None) -> tuple[bytes, dict[str, list]]:
    registry = CollectorRegistry()
    registry.register(HearingCollector(lambda: reading))
    text = generate_latest(registry)
    out: dict[str, list] = {}
    for fam in text_string_to_metric_families(text.decode()):
        for s in fam.samples:
            out.setdefault(s.name, []).append((dict(s.labels), s.value))
    return text, out


def test_calibrated_exposition():
    _, m = scrape(CALIBRATED)
    assert m["callwatch_hearing_calibrated"] == [({}, 1.0)]
    assert m["callwatch_hearing_sensitivity_db"] == [({}, 100.0)]
    assert m["callwatch_exposure_lex8h_db"] == [({}, 80.97)]
    assert m["callwatch_far_end_laeq_db"] == [({}, 87.5)]
    assert m["callwatch_far_end_laeq_dbfs"] == [({}, -12.5)]
    assert sorted(m["callwatch_exposure_heard_seconds"], key=lambda x: x[0]["calibrated"]) == [
        ({"calibrated": "false"}, 0.0), ({"calibrated": "true"}, 3600.0)]
    assert m["callwatch_acoustic_shocks_total"] == [({}, 2.0)]


def test_uncalibrated_exports_no_db_spl():
    _, m = scrape(UNCALIBRATED)
    assert m["callwatch_hearing_calibrated"] == [({}, 0.0)]
    for name in ("callwatch_hearing_sensitivity_db", "callwatch_exposure_lex8h_db",
                 "callwatch_far_end_laeq_db"):
        assert name not in m
    assert m["callwatch_far_end_laeq_dbfs"] == [({}, -31.0)]


def test_no_reading_yet_and_a_failing_source_still_scrape():
    _, m = scrape(None)
    assert m["callwatch_hearing_calibrated"] == [({}, 0.0)]
    assert m["callwatch_acoustic_shocks_total"] == [({}, 0.0)]

    def broken() -> HearingReading:
        raise RuntimeError("boom")

    registry = CollectorRegistry()
    registry.register(HearingCollector(broken))
    assert b"callwatch_hearing_calibrated 0.0" in generate_latest(registry)


def test_promtool_accepts_the_exposition():
    for reading in (CALIBRATED, UNCALIBRATED):
        text, _ = scrape(reading)
        r = promtool_check_metrics(text)
        assert r.returncode == 0, r.stdout + r.stderr
