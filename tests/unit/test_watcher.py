"""The switch interval a report lowers, and puts back: in-process watchers
on real pipes and threads, on whichever core gmr runs (the pure one too,
with GMR_NO_EXTENSIONS=1)."""

from __future__ import annotations

import sys
import threading
from collections.abc import Iterator
from types import SimpleNamespace as ModuleType

import pytest

from conftest import wait_for
from gmr import snapshot, watcher

pytestmark = pytest.mark.timeout(60)

SERVICE_INTERVAL = 0.003  # not the default, so that "put back" means this value


@pytest.fixture
def service_interval() -> Iterator[float]:
    before = sys.getswitchinterval()
    sys.setswitchinterval(SERVICE_INTERVAL)
    try:
        yield sys.getswitchinterval()
    finally:
        sys.setswitchinterval(before)


def test_a_trigger_lowers_the_interval_before_the_gil_is_taken_back(
        core: ModuleType, service_interval: float) -> None:
    """The compiled core lowers it while it still waits without the GIL,
    and says from what, once; the pure twin cannot, and says None."""
    channel = core.Channel()
    try:
        channel.post(b"SA")
        assert channel.wait(1.0, watcher.REPORT_SWITCH_INTERVAL) == b"SA"
        if core.IMPLEMENTATION == "compiled":
            assert sys.getswitchinterval() == pytest.approx(watcher.REPORT_SWITCH_INTERVAL)
            assert core.lowered_switch_interval() == pytest.approx(service_interval)
        else:
            assert sys.getswitchinterval() == service_interval
        assert core.lowered_switch_interval() is None
        # Nothing to read: nothing lowered.
        sys.setswitchinterval(service_interval)
        assert channel.wait(0.01, watcher.REPORT_SWITCH_INTERVAL) == b""
        assert sys.getswitchinterval() == service_interval
        assert core.lowered_switch_interval() is None
    finally:
        channel.close()


def started(on_snapshot, min_interval: float = 0.0) -> watcher.Watcher:  # type: ignore[no-untyped-def]
    reporter = watcher.Watcher(on_snapshot, min_interval=min_interval)
    reporter.start()
    return reporter


def test_a_report_runs_with_the_interval_lowered_and_puts_it_back(
        service_interval: float) -> None:
    seen: list[float] = []
    made = threading.Event()

    def on_snapshot(captured: snapshot.Snapshot) -> None:
        seen.append(sys.getswitchinterval())
        made.set()

    reporter = started(on_snapshot)
    try:
        reporter.request()
        assert made.wait(10)
        assert wait_for(lambda: reporter.reports == 1)  # the report is over: put back
    finally:
        assert reporter.stop()
    assert seen == [pytest.approx(watcher.REPORT_SWITCH_INTERVAL)]
    assert sys.getswitchinterval() == service_interval


def test_the_service_changing_the_interval_during_a_report_keeps_its_value(
        service_interval: float) -> None:
    made = threading.Event()

    def on_snapshot(captured: snapshot.Snapshot) -> None:
        sys.setswitchinterval(0.002)  # as a service thread might, meanwhile
        made.set()

    reporter = started(on_snapshot)
    try:
        reporter.request()
        assert made.wait(10)
        assert wait_for(lambda: reporter.reports == 1)  # the report is over
    finally:
        assert reporter.stop()
    assert sys.getswitchinterval() == pytest.approx(0.002)


def test_a_storm_is_waited_out_at_the_service_interval(service_interval: float) -> None:
    """A trigger right after a report waits for min_interval to pass; the
    service runs at its own interval meanwhile, and the report after is
    hurried again."""
    seen: list[float] = []
    reported = threading.Semaphore(0)

    def on_snapshot(captured: snapshot.Snapshot) -> None:
        seen.append(sys.getswitchinterval())
        reported.release()

    reporter = started(on_snapshot, min_interval=1.0)
    try:
        reporter.request()
        assert reported.acquire(timeout=10)
        reporter.request()  # within min_interval: waits it out
        # It has woken for it (and looked at its bucket since the report, so
        # the compiled core has lowered the interval by then), and waits for
        # a token with the service's interval put back.
        answered = reporter._refilled
        assert wait_for(lambda: reporter._refilled > answered
                        and sys.getswitchinterval() == service_interval)
        assert len(seen) == 1
        assert reported.acquire(timeout=10)
    finally:
        assert reporter.stop()
    assert seen == [pytest.approx(watcher.REPORT_SWITCH_INTERVAL)] * 2
    assert sys.getswitchinterval() == service_interval
