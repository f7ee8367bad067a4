"""The switch interval around a report: the compiled core lowers it only
while it takes the GIL back and puts the service's back at once, the pure
one lowers it for the whole report and puts it back after. In-process
watchers on real channels and threads, on whichever core gmr runs (the pure
one too, with GMR_NO_EXTENSIONS=1)."""

from __future__ import annotations

import os
import signal
import sys
import threading
import time
from collections.abc import Iterator
from types import SimpleNamespace as ModuleType
from typing import Any

import pytest

from conftest import wait_for
from gmr import facts, snapshot, watcher

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


@pytest.fixture
def busy_thread() -> Iterator[None]:
    """A thread that holds the GIL whenever it can (a busy service thread)."""
    stop = False

    def spin() -> None:
        while not stop:
            pass

    thread = threading.Thread(target=spin, daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop = True
        thread.join()


def test_a_wake_up_takes_the_gil_back_without_waiting_an_interval(
        core: ModuleType, busy_thread: None) -> None:
    """Beside a busy thread, with a service interval of one second, the
    compiled core is back from a wake-up (a signal after 50 ms of the
    process's CPU time, the busy thread's; pytest-timeout has SIGALRM) long
    before that second: the watchdog's thread asked the busy thread to let
    go, and the interval was not touched (without it, the wait comes back
    after 1.05 s)."""
    if core.IMPLEMENTATION != "compiled":
        pytest.skip("Python cannot ask for the GIL without it")
    before = sys.getswitchinterval()
    sys.setswitchinterval(1.0)
    channel = core.Channel()
    core.arm(signal.SIGPROF, channel)  # the C handler posts without the GIL
    # The watchdog's thread asks the holder (its limit never reached here).
    devnull = os.open(os.devnull, os.O_WRONLY | os.O_CLOEXEC)
    core.start_watchdog(3600.0, watcher._spare_realtime_signal(), devnull)
    try:
        assert core.can_hurry()
        signal.setitimer(signal.ITIMER_PROF, 0.05)
        waited = time.monotonic()
        assert channel.wait(5.0, True) == b"S"
        assert time.monotonic() - waited < 0.5
        assert sys.getswitchinterval() == pytest.approx(1.0)
        # Nothing came: nothing lowered.
        assert channel.wait(0.01, True) == b""
        assert sys.getswitchinterval() == pytest.approx(1.0)
    finally:
        signal.setitimer(signal.ITIMER_PROF, 0)
        core.stop_watchdog()
        os.close(devnull)
        core.disarm(signal.SIGPROF)
        sys.setswitchinterval(before)
        channel.close()


def started(on_snapshot, min_interval: float = 0.0) -> watcher.Watcher:  # type: ignore[no-untyped-def]
    reporter = watcher.Watcher(on_snapshot, min_interval=min_interval)
    reporter.start()
    return reporter


def _during_report(service_interval: float) -> float:
    """The interval a report runs with: the service's own where every
    let-go of the GIL is taken back promptly (the compiled core), else
    lowered for the whole report."""
    return service_interval if watcher.hurried() else watcher.REPORT_SWITCH_INTERVAL


def test_a_report_runs_with_the_interval_it_needs_and_puts_it_back(
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
    assert seen == [pytest.approx(_during_report(service_interval))]
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
    assert seen == [pytest.approx(_during_report(service_interval))] * 2
    assert sys.getswitchinterval() == service_interval


def test_a_big_report_is_made_in_short_turns(service_interval: float) -> None:
    """Past BIG_REPORT threads and greenlets (10,000 greenlets are about
    100 ms of Python after the capture), the rest of the report is made
    with the interval lowered, so the service's threads come round every
    half millisecond; a small one keeps the service's interval."""
    import greenlet

    def park() -> None:
        greenlet.getcurrent().parent.switch()

    parked = [greenlet.greenlet(park) for _ in range(watcher.BIG_REPORT + 1)]
    for each in parked:
        each.switch()
    hurry = watcher._Hurry()
    hurry.size_up(snapshot.take())
    assert sys.getswitchinterval() == pytest.approx(watcher.REPORT_SWITCH_INTERVAL)
    hurry.relax()
    assert sys.getswitchinterval() == service_interval
    for each in parked:
        each.throw(greenlet.GreenletExit)
    del parked
    hurry = watcher._Hurry()
    hurry.size_up(snapshot.take())
    assert sys.getswitchinterval() == service_interval


def test_the_capture_after_a_big_one_is_taken_in_turns(
        monkeypatch: pytest.MonkeyPatch, service_interval: float) -> None:
    """A capture cannot know in time that it is big: the one after a big
    capture (the rehearsal's included) is taken in turns with the service,
    the interval lowered, and the one after a small capture is not."""
    import greenlet

    takes: list[tuple[bool, float]] = []
    take = watcher.pipeline.take

    def recording(*args: Any, **kwargs: Any) -> snapshot.Snapshot:
        takes.append((kwargs.get("turns", False), sys.getswitchinterval()))
        return take(*args, **kwargs)

    monkeypatch.setattr(watcher.pipeline, "take", recording)

    def park() -> None:
        greenlet.getcurrent().parent.switch()

    parked = [greenlet.greenlet(park) for _ in range(watcher.BIG_REPORT + 1)]
    for each in parked:
        each.switch()
    watching = watcher.Watcher(lambda captured: None, rehearse=lambda captured: None)
    watching.start()
    try:
        watching.request()
        wait_for(lambda: watching.reports == 1)
        for each in parked:
            each.throw(greenlet.GreenletExit)
        del parked
        watching.request()
        wait_for(lambda: watching.reports == 2)
        watching.request()
        wait_for(lambda: watching.reports == 3)
    finally:
        watching.stop()
    lowered = pytest.approx(watcher.REPORT_SWITCH_INTERVAL)
    # The rehearsal, then the big report, the small one after it, and the next.
    assert takes == [(False, pytest.approx(_during_report(service_interval))), (True, lowered),
                     (True, lowered), (False, pytest.approx(_during_report(service_interval)))]


def test_the_rehearsal_runs_once_before_start_returns() -> None:
    """At set-up, before start() returns, the watcher captures the process
    and has the report made from it and thrown away (what only a first
    report would do is done then: a whole look at the young generations,
    each source file read): once, counted as no report."""
    rehearsed: list[snapshot.Snapshot] = []
    parked = threading.Event()
    thread = threading.Thread(target=parked.wait, daemon=True)
    thread.start()
    watching = watcher.Watcher(lambda captured: None, rehearse=rehearsed.append)
    watching.start()
    try:
        assert [captured.trigger for captured in rehearsed] == ["rehearsal"]
        assert thread.ident in {each.ident for each in rehearsed[0].threads}
        assert watching.reports == 0
        watching.request()
        wait_for(lambda: watching.reports == 1)
        assert len(rehearsed) == 1
    finally:
        watching.stop()
        parked.set()


def test_the_command_line_is_read_as_the_watcher_wakes(monkeypatch: pytest.MonkeyPatch) -> None:
    """The process's own command line, never read with the GIL held, is read
    by the watcher as it wakes for a report, before it takes the GIL back:
    the report reads it from there, and lets the GIL go once less."""
    reads: list[str] = []
    read_files = facts.files.read_files

    def recording(paths: list[str], *args: Any, **kwargs: Any) -> Any:
        reads.extend(paths)
        return read_files(paths, *args, **kwargs)

    monkeypatch.setattr(facts.files, "read_files", recording)
    entries: list[dict[str, Any]] = []

    def on_snapshot(captured: snapshot.Snapshot) -> None:
        entries.extend(facts.process_entries([os.getpid()]))

    watching = watcher.Watcher(on_snapshot)
    watching.start()
    try:
        watching.request()
        wait_for(lambda: watching.reports == 1)
    finally:
        watching.stop()
    own = f"/proc/{os.getpid()}/cmdline"
    assert entries[0]["cmdline"] == facts.process_entries([os.getpid()])[0]["cmdline"]
    assert own in reads  # by the second process_entries, outside the report
    assert reads.count(own) == 1
    assert facts.READ_AHEAD == {}


def test_the_c_heap_is_trimmed_after_a_big_report_only(monkeypatch: pytest.MonkeyPatch) -> None:
    """A big report frees tens of MB of pieces that the C heap would keep:
    it is trimmed once the report is out; a small one leaves it alone."""
    import greenlet

    trims: list[bool] = []
    trim_heap = watcher.files.trim_heap
    monkeypatch.setattr(watcher.files, "trim_heap", lambda: trims.append(trim_heap()))

    def park() -> None:
        greenlet.getcurrent().parent.switch()

    watching = watcher.Watcher(lambda captured: None)
    watching.start()
    try:
        watching.request()
        wait_for(lambda: watching.reports == 1)
        assert trims == []
        parked = [greenlet.greenlet(park) for _ in range(watcher.BIG_REPORT + 1)]
        for each in parked:
            each.switch()
        watching.request()
        wait_for(lambda: watching.reports == 2)
        assert len(trims) == 1
        for each in parked:
            each.throw(greenlet.GreenletExit)
    finally:
        watching.stop()
