"""A value out of an option's range is one line on stderr naming the
option, the value and the default used; the service and its reports go on
with the default. Real oslo.config files, read by a real service."""

from __future__ import annotations

from pathlib import Path

import pytest

from conftest import next_report, reports, wait_for
from gmr import opts, watcher

pytestmark = pytest.mark.timeout(60)


def _errors(svc) -> list[str]:  # type: ignore[no-untyped-def]
    """gmr's lines on stderr, but the pure twin's line from set-up."""
    return [line for line in svc.stderr_lines if line.startswith("gmr:")
            and not line.startswith("gmr: pure-Python ")]


@pytest.mark.parametrize(("name", "value", "bad"), [
    ("file_event_handler_interval", 1, False),
    ("file_event_handler_interval", 0.01, False),
    ("file_event_handler_interval", 3600, False),
    ("file_event_handler_interval", 0.001, True),
    ("file_event_handler_interval", 2147484, True),
    ("file_event_handler_interval", float("nan"), True),
    ("watchdog_timeout", 0, False),
    ("watchdog_timeout", 1e10, True),
    ("watchdog_timeout", -1, True),
    ("max_reports", -1, True),
    ("max_bytes", 10**12, False),
    ("max_bytes", -5, True),
    ("max_stack_depth", -3, True),
    ("format", "xml", False),  # no range: oslo.config's choices say it
    ("stall_report_after", 0, False),  # off
    ("stall_report_after", 0.1, False),
    ("stall_report_after", 3600, False),
    ("stall_report_after", 0.05, True),
    ("stall_report_after", -1, True),
    ("stall_report_after", 3601, True),
    ("stall_report_interval", 0, False),
    ("stall_report_interval", -1, True),
])
def test_out_of_range(name: str, value: float, bad: bool) -> None:
    assert (opts.out_of_range(name, value) is not None) == bad


def test_the_watcher_clamps_what_the_api_gives() -> None:
    assert watcher.FileTrigger("/nonexistent", 2147484).interval == 3600.0
    assert watcher.FileTrigger("/nonexistent", 0).interval == 0.01
    assert watcher.FileTrigger("/nonexistent", float("nan")).interval == 1.0


def test_a_huge_file_check_interval_is_the_default(report_service, tmp_path: Path) -> None:
    """2147484 s overflowed poll()'s milliseconds and killed the watcher."""
    logs = tmp_path / "logs"
    logs.mkdir()
    trigger = tmp_path / "trigger"
    svc = report_service(conf=f"[oslo_reports]\nlog_dir = {logs}\nfile_event_handler = "
                              f"{trigger}\nfile_event_handler_interval = 2147484\n")
    trigger.write_text("go")
    assert wait_for(lambda: reports(logs), 15), svc.stderr_text()
    (line,) = _errors(svc)
    assert line == ("gmr: [oslo_reports] file_event_handler_interval: 2147484.0 is outside "
                    "0.01..3600; using 1")
    assert svc.alive()


def test_a_huge_watchdog_limit_is_the_default(report_service, tmp_path: Path) -> None:
    """1e10 s overflowed into a tiny limit: a degraded report at every trigger."""
    logs = tmp_path / "logs"
    logs.mkdir()
    svc = report_service(conf=f"[oslo_reports]\nlog_dir = {logs}\nwatchdog_timeout = 1e10\n")
    for _ in range(2):
        next_report(svc, logs)
    assert not [path for path in logs.iterdir() if "_degraded" in path.name]
    (line,) = _errors(svc)
    assert line == ("gmr: [oslo_reports] watchdog_timeout: 10000000000.0 is outside "
                    "0..3600; using 1.0")
    assert svc.alive()


def test_each_bad_value_is_one_line_and_reports_go_on(report_service, tmp_path: Path) -> None:
    logs = tmp_path / "logs"
    logs.mkdir()
    svc = report_service(conf=f"[oslo_reports]\nlog_dir = {logs}\nmax_reports = -1\n"
                              "max_bytes = -5\nmax_stack_depth = -3\n")
    written = [next_report(svc, logs) for _ in range(3)]
    assert reports(logs) == sorted(written)  # no retention: the default
    text = written[-1].read_text()
    assert " Threads " in text
    # The report's Configuration shows each value refused beside the one used.
    assert "  max_reports = -1 <below 0; using 0>\n" in text
    assert "  max_bytes = -5 <below 0; using 0>\n" in text
    assert "  max_stack_depth = -3 <below 0; using 0>\n" in text
    # Said once each, however many reports read them.
    assert sorted(_errors(svc)) == [
        "gmr: [oslo_reports] max_bytes: -5 is below 0; using 0",
        "gmr: [oslo_reports] max_reports: -1 is below 0; using 0",
        "gmr: [oslo_reports] max_stack_depth: -3 is below 0; using 0",
    ]
    assert svc.alive()


def test_a_value_that_is_not_a_number_is_one_line(report_service, tmp_path: Path) -> None:
    logs = tmp_path / "logs"
    logs.mkdir()
    svc = report_service(conf=f"[oslo_reports]\nlog_dir = {logs}\nmax_reports = many\n")
    next_report(svc, logs)
    next_report(svc, logs)
    (line,) = _errors(svc)
    assert line.startswith("gmr: [oslo_reports] max_reports: ") and "'many'" in line
    assert line.endswith("; using 0")
    (shown,) = [line for line in next_report(svc, logs).read_text().splitlines()
                if line.startswith("  max_reports = ")]
    assert shown.startswith("  max_reports = <ConfigFileValueError: ")
    assert shown.endswith("> <using 0>")
