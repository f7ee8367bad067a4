"""gmr.stall: which loops are late, when, and how often they are reported
(loops made by hand, times given), and the heartbeat in a real asyncio
loop in this process. Real eventlet, gevent and asyncio services blocked
by a synchronous sleep: tests/process/test_stall_reports.py."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from typing import Any

import pytest

from conftest import wait_for
from gmr import _originals, render, report, snapshot, stall, watcher
from gmr.model import Report, StackTableBuilder

pytestmark = pytest.mark.timeout(60)

AFTER = 1.0
PERIOD = AFTER / stall.PERIODS


class LoopObject:
    """Stands for an event loop (a weak reference is kept to it)."""


class HandMade(stall.Loop):
    """A loop whose state and heartbeat the test decides."""

    kind = "asyncio"
    __slots__ = ("running",)

    def __init__(self, loop: LoopObject, now: float) -> None:
        super().__init__(loop, PERIOD, None)
        self.running = True
        self.due = now

    def start(self, here: bool) -> bool:
        return True

    def state(self) -> str:
        if self.ref() is None:
            return stall.GONE
        return stall.RUNNING if self.running else stall.PAUSED

    def beat(self, now: float) -> None:
        self.due = now + self.period


def monitor(interval: float = 0.0) -> stall.Monitor:
    watching = stall.Monitor(AFTER, interval)
    watching._discover = lambda: None  # type: ignore[method-assign]  # only the loops given
    return watching


def watched(watching: stall.Monitor, now: float) -> tuple[HandMade, LoopObject]:
    loop = LoopObject()
    record = HandMade(loop, now)
    watching._watch(record, here=True)
    return record, loop


def late(found: stall.Found | None) -> list[float]:
    return [] if found is None else [round(seconds, 3) for _, _, seconds, _ in found.loops]


def test_a_loop_that_comes_round_is_never_reported() -> None:
    watching = monitor()
    record, _loop = watched(watching, 0.0)
    now = 0.0
    while now < 30:
        record.beat(now)
        now += PERIOD
        assert watching.check(now) is None
    assert watching.checks > 0


def test_a_stall_is_reported_once_at_least_after_seconds_late() -> None:
    """GIVEN a loop whose heartbeat ran at 0 (due at one period)
    WHEN it does not come round
    THEN it is reported at its due time + after, once, however long it stays blocked."""
    watching = monitor()
    record, _loop = watched(watching, 0.0)
    record.beat(0.0)
    assert watching.check(PERIOD + AFTER - 0.01) is None
    found = watching.check(PERIOD + AFTER)
    assert late(found) == [AFTER]
    assert found is not None and found.loops[0][0] is record
    assert [watching.check(t) for t in (2.0, 5.0, 60.0)] == [None, None, None]
    # It comes round, then blocks again: a new stall.
    record.beat(61.0)
    assert watching.check(61.0 + PERIOD + AFTER - 0.01) is None
    assert late(watching.check(61.0 + PERIOD + AFTER + 0.5)) == [AFTER + 0.5]


def test_the_next_check_is_when_the_first_loop_would_be_late_or_after_seconds_away() -> None:
    watching = monitor()
    first, _one = watched(watching, 0.0)
    second, _two = watched(watching, 0.0)
    first.beat(0.0)
    second.beat(0.1)
    watching.check(0.9)
    assert watching.next_check() == pytest.approx(PERIOD + AFTER)
    # Both late and reported: the next look, for new loops, is `after` away.
    watching.check(10.0)
    assert watching.next_check() == pytest.approx(10.0 + AFTER)


def test_across_stalls_the_interval_holds_reports_back_and_counts_what_it_missed() -> None:
    """GIVEN stall_report_interval = 60
    WHEN a second loop stalls 10 s after a stall report, and comes round at 20 s
    THEN it is not reported; a third stall after the interval is, and says one went unreported."""
    watching = monitor(interval=60.0)
    first, _one = watched(watching, 0.0)
    second, _two = watched(watching, 0.0)
    first.beat(0.0)
    second.beat(0.0)
    assert late(watching.check(PERIOD + AFTER)) == [AFTER, AFTER]
    for record in (first, second):
        record.beat(2.0)
    # The second stalls at 10 s: held back by the interval.
    first.beat(11.0)
    assert watching.check(11.5) is None
    second.beat(20.0)  # it came round before a report was allowed
    first.beat(20.0)
    assert watching.check(20.0) is None
    second.beat(79.0)
    # Past the interval, a stall of the first is reported, with the count.
    found = watching.check(80.0)
    assert late(found) == [round(80.0 - 20.0 - PERIOD, 3)]
    assert found is not None and found.unreported == 1
    assert found.loops[0][0] is first


def test_a_stall_held_back_by_the_interval_is_reported_once_it_allows_if_still_blocked() -> None:
    watching = monitor(interval=5.0)
    first, _one = watched(watching, 0.0)
    second, _two = watched(watching, 0.0)
    first.beat(0.0)
    second.beat(1.0)
    assert len(late(watching.check(PERIOD + AFTER))) == 1
    assert watching.check(1.0 + PERIOD + AFTER) is None  # the second: held back
    assert watching.check(5.0) is None  # still held back
    found = watching.check(PERIOD + AFTER + 5.0 + 0.1)
    assert found is not None and found.loops[0][0] is second and found.unreported == 0


def test_a_loop_that_is_not_running_is_not_late_and_counts_from_when_it_runs_again() -> None:
    watching = monitor()
    record, _loop = watched(watching, 0.0)
    record.beat(0.0)
    record.running = False  # stopped (asyncio) or not started yet (a hub never switched to)
    assert watching.check(10.0) is None
    record.running = True
    # Counted from the first check that sees it running again.
    assert watching.check(11.0) is None
    assert late(watching.check(12.0)) == [AFTER]


def test_a_loop_that_is_gone_is_forgotten_and_its_heartbeat_stops() -> None:
    watching = monitor()
    record, loop = watched(watching, 0.0)
    assert len(watching.watched()) == 1
    del loop
    assert watching.check(100.0) is None
    assert watching.watched() == [] and not record.active


def test_a_report_for_a_trigger_shows_every_stalled_loop_and_counts_as_their_report() -> None:
    watching = monitor()
    first, _one = watched(watching, 0.0)
    second, _two = watched(watching, 0.0)
    first.beat(0.0)
    second.beat(0.0)
    assert late(watching.check(PERIOD + AFTER)) == [AFTER, AFTER]
    second.beat(5.0)
    # The first is still blocked (reported already), the second newly.
    shown = watching.current(5.0 + PERIOD + AFTER)
    assert shown is not None and [entry[0] for entry in shown.loops] == [first, second]
    assert watching.check(5.0 + PERIOD + AFTER + 0.5) is None  # the signal's report was its


def test_stop_leaves_no_heartbeat() -> None:
    watching = monitor()
    record, _loop = watched(watching, 0.0)
    watching.stop()
    assert not record.active and watching.watched() == []
    assert watching.check(100.0) is None and watching.current(100.0) is None


# -- a real asyncio loop in this process ----------------------------------------------


def close(loop: asyncio.AbstractEventLoop, thread: threading.Thread) -> None:
    """Its tasks cancelled, the loop stopped and closed."""
    async def cancel_all() -> None:
        others = [task for task in asyncio.all_tasks() if task is not asyncio.current_task()]
        for task in others:
            task.cancel()
        await asyncio.gather(*others, return_exceptions=True)

    asyncio.run_coroutine_threadsafe(cancel_all(), loop).result(10)
    loop.call_soon_threadsafe(loop.stop)
    thread.join(10)
    loop.close()


@pytest.fixture
def running_loop() -> Iterator[asyncio.AbstractEventLoop]:
    """An asyncio loop running in a thread of its own, with a pending task
    (gmr finds 3.10-3.12's loops among their tasks'), closed after."""
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, name="loop-thread", daemon=True)
    thread.start()
    assert wait_for(loop.is_running)
    asyncio.run_coroutine_threadsafe(asyncio.sleep(30), loop)
    try:
        yield loop
    finally:
        close(loop, thread)


def heartbeats(loop: asyncio.AbstractEventLoop) -> list[Any]:
    """gmr's timers in the loop (asyncio keeps its scheduled handles there)."""
    return [handle for handle in list(loop._scheduled)  # type: ignore[attr-defined]
            if isinstance(handle._callback, stall.Loop)]


def test_an_asyncio_loop_found_in_another_thread_beats_and_drops_its_heartbeat(
        running_loop: asyncio.AbstractEventLoop) -> None:
    watching = stall.Monitor(0.4, 0.0)
    try:
        assert wait_for(lambda: watching.check() is None and watching.watched()
                        and watching.watched()[0][3])
        ((kind, loop_id, thread, _, due),) = watching.watched()
        assert (kind, loop_id, thread) == ("asyncio", id(running_loop),
                                           running_loop._thread_id)  # type: ignore[attr-defined]
        assert len(heartbeats(running_loop)) == 1
        assert wait_for(lambda: watching.watched()[0][4] > due)  # it beat again
    finally:
        watching.stop()
    # Forgotten: its last beat schedules nothing.
    assert wait_for(lambda: not heartbeats(running_loop), 5)


def test_a_blocked_asyncio_loop_is_reported_and_a_closed_one_forgotten() -> None:
    loop = asyncio.new_event_loop()
    release = threading.Event()
    thread = threading.Thread(target=loop.run_forever, name="loop-thread", daemon=True)
    thread.start()
    watching = stall.Monitor(0.3, 0.0)
    try:
        asyncio.run_coroutine_threadsafe(asyncio.sleep(30), loop)
        assert wait_for(lambda: watching.check() is None and watching.watched()
                        and watching.watched()[0][3])
        loop.call_soon_threadsafe(release.wait)  # a synchronous wait blocks the loop
        found = wait_for(lambda: watching.check(), 10)
        assert found is not None
        ((record, due, seconds, ident),) = found.loops
        assert record.loop_id == id(loop) and ident == thread.ident and seconds >= 0.3
        (facts,) = found.facts().loops
        assert facts.blocked_after_capture and facts.kind == "asyncio"
    finally:
        release.set()
        close(loop, thread)
    watching._next = 0.0
    watching.check()
    assert watching.watched() == []
    watching.stop()


def test_stall_reports_off_install_nothing(running_loop: asyncio.AbstractEventLoop) -> None:
    reporter = watcher.Watcher(lambda captured: None)
    try:
        reporter.watch_stalls(0.0, 60.0)
        assert reporter.stalls is None
        reporter.watch_stalls(0.5, 60.0)
        assert reporter.stalls is not None
        reporter.start()
        assert wait_for(lambda: heartbeats(running_loop))
        reporter.watch_stalls(0.0, 60.0)  # off again: the heartbeat stops itself
        assert reporter.stalls is None
        assert wait_for(lambda: not heartbeats(running_loop), 5)
    finally:
        assert reporter.stop()


# -- the header -----------------------------------------------------------------------


def test_the_header_names_the_loop_its_thread_and_how_long() -> None:
    thread = snapshot.ThreadStack(ident=140000000000100, native_id=4242,
                                  name="loop\n==== forged ====", is_main=False, frames=())
    facts = snapshot.StallFacts(2.0, (
        snapshot.StalledLoop("asyncio", "asyncio.unix_events._UnixSelectorEventLoop",
                             0x7F0000001000, 140000000000100, 2.0134, True),
        snapshot.StalledLoop("gevent", "gevent.hub.Hub", 0x7F0000002000, 99, 2.5, False),
    ), unreported=3)
    captured = snapshot.Snapshot(captured_at=1.0, pid=1, trigger="stall", coalesced=1,
                                 implementation="compiled", pause_ns=1, heap_objects=0,
                                 threads=(thread,), greenlets=(), stall=facts)
    header = report.header_data(captured, [])
    assert header["stall"]["loops"][0] == {
        "kind": "asyncio", "type": "asyncio.unix_events._UnixSelectorEventLoop",
        "loop_id": 0x7F0000001000, "thread": 140000000000100,
        "thread_name": "loop\n==== forged ====", "native_id": 4242, "seconds": 2.013,
        "blocked_after_capture": True}
    text = render.text(Report(header, [], StackTableBuilder(0).table()))
    lines = text.splitlines()
    at = lines.index("trigger = stall")
    assert lines[at + 1:at + 4] == [
        "stalled = asyncio loop 0x7f0000001000 (asyncio.unix_events._UnixSelectorEventLoop) "
        "in Thread #140000000000100 (loop\\n==== forged ====, native id 4242): has not come "
        "round for at least 2.013 s (stall_report_after = 2 s); still blocked after the capture",
        "stalled = gevent hub 0x7f0000002000 (gevent.hub.Hub) in Thread #99 (not a "
        "threading.Thread): has not come round for at least 2.500 s (stall_report_after = "
        "2 s); it came round during the capture: the stacks may not show what blocked it",
        "stalls unreported = 3 since the last report of a stall: they ended before "
        "stall_report_interval allowed one"]


def test_a_forked_child_keeps_only_the_loops_of_the_thread_that_forked() -> None:
    """After fork only the forking thread exists: a loop of another thread
    would look stalled for ever."""
    watching = monitor()
    here, _one = watched(watching, 0.0)
    there, _two = watched(watching, 0.0)
    here.thread = _originals.get_ident()
    there.thread = here.thread + 1
    watching.after_fork()
    assert [entry[1] for entry in watching.watched()] == [here.loop_id]
    assert here.active and not there.active
