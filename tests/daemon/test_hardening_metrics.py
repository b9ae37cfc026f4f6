"""The metrics endpoint's failed-connection line: one per interval, with the count of the
ones left out."""

from __future__ import annotations

import ssl

from daemon.metrics_server import ErrorLine


def test_error_line_is_rate_limited_and_counts_what_it_left_out():
    lines: list[str] = []
    now = [100.0]
    report = ErrorLine(lines.append, every_s=10.0, clock=lambda: now[0])
    for _ in range(200):
        report(("10.0.0.7", 5123), ssl.SSLError(1, "[SSL: HTTP_REQUEST] http request"))
        now[0] += 0.01
    assert len(lines) == 1
    assert lines[0].startswith("callwatch: metrics: connection from 10.0.0.7 failed (SSLError")
    now[0] += 10.0
    report(("10.0.0.8", 1), ConnectionResetError(104, "Connection reset by peer"))
    assert len(lines) == 2
    assert lines[1].endswith("; 199 more since the last such line")
    assert report.total == 201 and report.suppressed == 0
    assert all("\n" not in line for line in lines)
