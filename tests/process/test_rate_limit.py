"""The rate of reports is bounded: report_burst reports back to back, then
one each report_interval seconds; the triggers that come meanwhile are
folded into the next report and counted in its header. A real Watcher in
this process (request()), and real services signalled with SIGUSR2."""

from __future__ import annotations

import os
import re
import signal
import threading
import time
from pathlib import Path

import pytest

from conftest import SLEEP_CALLS, in_syscall, next_report, pending, reports, wait_for
from gmr import opts, snapshot, watcher

pytestmark = pytest.mark.timeout(120)


class Recorder:
    """Each report's time and coalesced count, and a semaphore per report."""

    def __init__(self) -> None:
        self.made: list[tuple[float, int]] = []
        self.one = threading.Semaphore(0)

    def __call__(self, captured: snapshot.Snapshot) -> None:
        self.made.append((time.monotonic(), captured.coalesced))
        self.one.release()

    def next(self, timeout: float = 10.0) -> tuple[float, int]:
        assert self.one.acquire(timeout=timeout), self.made
        return self.made[-1]


def started(recorder: Recorder, burst: int, interval: float) -> watcher.Watcher:
    reporter = watcher.Watcher(recorder, min_interval=interval, burst=burst)
    reporter.start()
    return reporter


def test_a_flood_is_the_burst_then_one_report_per_interval() -> None:
    burst, interval = 10, 1.0
    recorder = Recorder()
    reporter = started(recorder, burst, interval)
    try:
        begun = time.monotonic()
        # 50 requests: the first `burst` each answered by a report at once...
        for _ in range(burst):
            reporter.request()
            recorder.next()
        assert len(recorder.made) == burst
        assert recorder.made[-1][0] < begun + interval  # no token was waited for
        assert [count for _, count in recorder.made] == [1] * burst
        # ...the other 40 wait for the next token and are one report.
        for _ in range(50 - burst):
            reporter.request()
        at, count = recorder.next()
        assert at >= begun + interval
        assert count == 50 - burst
        # Then one report per interval, each counting what it folded.
        previous = at
        for _ in range(2):
            for _ in range(5):
                reporter.request()
            at, count = recorder.next()
            assert count == 5
            assert interval - 0.2 <= at - previous <= interval + 5, recorder.made
            previous = at
        assert len(recorder.made) == burst + 3
        assert sum(count for _, count in recorder.made) == 50 + 10  # nothing lost
    finally:
        assert reporter.stop()


def test_report_interval_0_lifts_the_limit() -> None:
    recorder = Recorder()
    reporter = started(recorder, burst=1, interval=0.0)
    try:
        begun = time.monotonic()
        for _ in range(50):
            reporter.request()
            recorder.next()
        assert [count for _, count in recorder.made] == [1] * 50
        assert recorder.made[-1][0] - begun < 30  # each at once, not one per 10 s
        # All at once: however many reports, every request is answered.
        for _ in range(50):
            reporter.request()
        assert wait_for(lambda: sum(count for _, count in recorder.made) == 100)
    finally:
        assert reporter.stop()


def test_a_watcher_waiting_for_a_token_stops_at_once() -> None:
    recorder = Recorder()
    reporter = started(recorder, burst=1, interval=600.0)
    try:
        reporter.request()
        answered, _ = recorder.next()
        reporter.request()  # no token for 600 s: waits, folding this one
        # It has looked at its bucket since: it is waiting for a token.
        assert wait_for(lambda: reporter._refilled > answered)
    finally:
        stopping = time.monotonic()
        assert reporter.stop(timeout=5)
        assert time.monotonic() - stopping < 2
    assert len(recorder.made) == 1


@pytest.mark.parametrize(("name", "value", "bad"), [
    ("report_burst", 1, False),
    ("report_burst", 1000, False),
    ("report_burst", 0, True),
    ("report_burst", 1001, True),
    ("report_interval", 0, False),
    ("report_interval", 0.5, False),
    ("report_interval", 3600, False),
    ("report_interval", -1, True),
    ("report_interval", 3601, True),
    ("report_interval", float("nan"), True),
])
def test_ranges(name: str, value: float, bad: bool) -> None:
    assert (opts.out_of_range(name, value) is not None) == bad


def _header_count(path: Path) -> int:
    """N of "trigger = signal (N coalesced)" (1 when the line has none)."""
    text = path.read_text()
    found = re.search(r"trigger = signal(?: \((\d+) coalesced\))?\n", text)
    assert found, text[:2000]
    return int(found.group(1) or 1)


def test_a_signal_flood_on_a_service(report_service, tmp_path: Path) -> None:
    """SIGUSR2 flood on a real service configured through [oslo_reports]:
    report_burst reports at once, then nothing until the interval has passed,
    then one report whose header counts the signals it folded; every signal
    is counted once."""
    logs = tmp_path / "logs"
    logs.mkdir()
    interval = 5.0
    svc = report_service(conf=f"[oslo_reports]\nlog_dir = {logs}\nreport_burst = 3\n"
                              f"report_interval = {interval}\n")
    begun = time.monotonic()
    for _ in range(3):
        assert _header_count(next_report(svc, logs)) == 1
    # The bucket refills while the burst is made: it must not have a token yet.
    assert time.monotonic() - begun < interval
    # Signals one after another until the folded report comes, each sent once
    # the one before has reached the handler (no longer pending, and main
    # back in its sleep: the pure twin's Python handler has run). The kernel
    # merges a signal still pending with the next, and CPython runs a Python
    # handler once for those that came before it could: so the handler sees
    # each of these, and the count is exact.
    sent = 0
    while len(reports(logs)) < 4:
        assert time.monotonic() - begun < 60, svc.stderr_text()
        svc.kill()
        sent += 1
        assert wait_for(lambda: not pending(svc.pid, signal.SIGUSR2)
                        and in_syscall(svc.pid, None, SLEEP_CALLS))
    assert time.monotonic() - begun >= interval
    assert len(reports(logs)) == 4  # the flood so far is one report
    folded = _header_count(reports(logs)[3])
    assert 1 <= folded <= sent
    if folded < sent:
        # Those sent after its capture began: the next report, one interval on.
        assert wait_for(lambda: len(reports(logs)) == 5, interval + 30)
        assert _header_count(reports(logs)[4]) == sent - folded
    assert len(reports(logs)) <= 5
    assert sum(_header_count(path) for path in reports(logs)) == 3 + sent  # every signal
    assert not [line for line in svc.stderr_lines if line.startswith("gmr:")
                and not line.startswith("gmr: pure-Python ")]
    assert svc.alive()


def test_a_bad_rate_is_one_line_and_the_default(report_service, tmp_path: Path) -> None:
    logs = tmp_path / "logs"
    logs.mkdir()
    svc = report_service(conf=f"[oslo_reports]\nlog_dir = {logs}\nreport_burst = 0\n"
                              "report_interval = 1e9\n")
    for _ in range(3):  # within the default burst of 10: at once
        next_report(svc, logs)
    lines = sorted(line for line in svc.stderr_lines if line.startswith("gmr:")
                   and not line.startswith("gmr: pure-Python "))
    assert lines == [
        "gmr: [oslo_reports] report_burst: 0 is outside 1..1000; using 10",
        "gmr: [oslo_reports] report_interval: 1000000000.0 is outside 0..3600; using 10.0",
    ]
    assert svc.alive()
    os.kill(svc.pid, signal.SIGTERM)
