"""Greenlet discovery and the capture's holds of the GIL (issue 15).

Discovery: every greenlet is found, at every report, without a scan of the
heap once the walker is set up: greenlets made after set-up, in other
threads, moved by collections of every generation between reports, frozen
by gc.freeze() and thawed again, made by another GC callback; each time the
found set is compared with a full gc.get_objects() scan (and, for what
gc.freeze() hides from it, with the greenlets the test holds).

Holds: the greenlets are copied in holds of bounded time with the GIL let
go between them; the capture states the longest, their number and total,
on both twins alike.
"""

from __future__ import annotations

import gc
import sys
import threading
import time
import weakref
from collections.abc import Callable, Iterator
from types import SimpleNamespace as ModuleType

import greenlet
import pytest

pytestmark = pytest.mark.timeout(120)


def _park(depth: int) -> None:
    if depth:
        _park(depth - 1)
        return
    greenlet.getcurrent().parent.switch()


class Greenlets:
    """Greenlets parked a few frames deep, held by the test."""

    def __init__(self) -> None:
        self.held: list[greenlet.greenlet] = []

    def make(self, count: int, depth: int = 3) -> list[greenlet.greenlet]:
        made = []
        for _ in range(count):
            green = greenlet.greenlet(_park)
            green.switch(depth)
            made.append(green)
        self.held.extend(made)
        return made

    def finish(self) -> None:
        for green in self.held:
            if not green.dead:
                green.throw(greenlet.GreenletExit)
        self.held.clear()


@pytest.fixture
def greenlets() -> Iterator[Greenlets]:
    made = Greenlets()
    try:
        yield made
    finally:
        gc.unfreeze()
        made.finish()


def _heap_greenlets() -> set[int]:
    """Every greenlet gc.get_objects() shows (what gc.freeze() froze is not)."""
    return {id(obj) for obj in gc.get_objects() if isinstance(obj, greenlet.greenlet)}


def _found(core: ModuleType, **options: int) -> tuple[set[int], object]:
    raw = core.capture(greenlet.greenlet, **options)
    try:
        return {id(green) for green in raw.greenlet_columns()[0]}, raw
    finally:
        raw.release()


def _check(core: ModuleType, made: Greenlets, frozen: bool = False) -> object:
    """One capture: it finds every greenlet a full scan finds, and every
    greenlet the test holds (frozen ones where the twin sees them)."""
    found, raw = _found(core)
    heap = _heap_greenlets()
    assert heap <= found, f"missed {len(heap - found)} of {len(heap)}"
    held = {id(green) for green in made.held}
    if not frozen or core.SEES_FROZEN:
        assert held <= found, f"missed {len(held - found)} held greenlets"
    return raw


def _scans(core: ModuleType) -> int:
    return core._discovery_state()[1] if core.DISCOVERY_WITHOUT_HEAP_SCAN else 0


def test_every_greenlet_found_as_the_generations_move(
        core: ModuleType, greenlets: Greenlets) -> None:
    """Greenlets made after set-up, collections of generation 0, 1, 2 between
    reports, new ones after each: every one found, each time, and without a
    scan of the heap where the walker keeps the record."""
    core.prepare()
    _check(core, greenlets)  # settles the record after the other tests
    scans = _scans(core)
    steps: list[Callable[[], object]] = [
        lambda: None,
        lambda: gc.collect(0),
        lambda: gc.collect(1),
        lambda: gc.collect(2),
        lambda: (greenlets.make(30), gc.collect(0)),
        lambda: (greenlets.make(30), gc.collect(1)),
        lambda: (greenlets.make(30), gc.collect(2), greenlets.make(5)),
        lambda: [greenlets.make(1) and gc.collect(generation % 3) for generation in range(20)],
    ]
    greenlets.make(50)
    for step in steps:
        step()
        raw = _check(core, greenlets)
        if core.DISCOVERY_WITHOUT_HEAP_SCAN:
            assert not raw.heap_scanned  # type: ignore[attr-defined]
    assert _scans(core) == scans


def test_automatic_collections_between_reports(
        core: ModuleType, greenlets: Greenlets) -> None:
    """Collections the allocator starts (not gc.collect()), with greenlets made
    among thousands of other objects: every greenlet found each time."""
    core.prepare()
    _check(core, greenlets)
    scans = _scans(core)
    keep = []
    for _ in range(10):
        for _ in range(20):
            greenlets.make(2)
            keep.append([[] for _ in range(500)])  # enough for several collections
        _check(core, greenlets)
    assert gc.get_count() is not None
    if core.DISCOVERY_WITHOUT_HEAP_SCAN and gc.isenabled():
        assert _scans(core) == scans


def test_frozen_and_thawed(core: ModuleType, greenlets: Greenlets) -> None:
    """gc.freeze() after greenlets are made (as before forking workers), new
    ones after it, gc.unfreeze(): every greenlet found each time; a freeze
    costs one scan of the heap, and the reports after it none."""
    core.prepare()
    greenlets.make(20)
    _check(core, greenlets)
    gc.freeze()
    greenlets.make(10)
    raw = _check(core, greenlets, frozen=True)
    raw = _check(core, greenlets, frozen=True)
    if core.DISCOVERY_WITHOUT_HEAP_SCAN:
        assert not raw.heap_scanned  # type: ignore[attr-defined]
    greenlets.make(10)
    gc.collect(1)
    # A freeze and a thaw between two reports, with greenlets made between.
    gc.freeze()
    greenlets.make(5)
    gc.freeze()
    gc.unfreeze()
    _check(core, greenlets)
    gc.collect()
    raw = _check(core, greenlets)
    if core.DISCOVERY_WITHOUT_HEAP_SCAN:
        assert not raw.heap_scanned  # type: ignore[attr-defined]


def test_greenlets_of_other_threads(core: ModuleType, greenlets: Greenlets) -> None:
    """Greenlets made in other threads (each with its own main greenlet),
    while collections run there: every one found."""
    core.prepare()
    made: list[greenlet.greenlet] = []
    lock = threading.Lock()
    ready = threading.Barrier(4)
    release = threading.Event()

    def worker() -> None:
        mine = Greenlets()
        for generation in range(6):
            mine.make(10)
            gc.collect(generation % 3)
        with lock:
            made.extend(mine.held)
            made.append(greenlet.getcurrent())
        ready.wait(60)
        release.wait(60)
        mine.finish()

    threads = [threading.Thread(target=worker) for _ in range(3)]
    for thread in threads:
        thread.start()
    try:
        ready.wait(60)
        found, _ = _found(core)
        assert {id(green) for green in made} <= found
        assert _heap_greenlets() <= found
    finally:
        release.set()
        for thread in threads:
            thread.join(60)
        made.clear()


def test_a_callback_after_the_walker(core: ModuleType, greenlets: Greenlets) -> None:
    """A gc callback registered after the walker's, which makes greenlets at
    the start of collections: none is missed (the walker's hook moves back
    to the end of the list at the next report, one scan of the heap)."""
    core.prepare()
    made: list[greenlet.greenlet] = []

    def other(phase: str, info: dict[str, int]) -> None:
        if phase == "start" and len(made) < 200:
            made.extend(Greenlets().make(2))

    gc.callbacks.append(other)
    try:
        for generation in (1, 2, 1, 0, 1):
            gc.collect(generation)
            found, _ = _found(core)
            assert {id(green) for green in made} <= found
            assert _heap_greenlets() <= found
        if core.DISCOVERY_WITHOUT_HEAP_SCAN:
            assert gc.callbacks[-1] is not other
    finally:
        gc.callbacks.remove(other)
        for green in made:
            green.throw(greenlet.GreenletExit)


def test_hook_taken_off(core: ModuleType, greenlets: Greenlets) -> None:
    """The hook removed from gc.callbacks: reports still find every greenlet
    (by a scan of the heap), and prepare() puts it back."""
    if not core.DISCOVERY_WITHOUT_HEAP_SCAN:
        pytest.skip("this walker scans the heap at every report")
    core.prepare()
    hooks = [cb for cb in gc.callbacks if getattr(cb, "__name__", "") == "_on_collection"]
    assert hooks
    for hook in hooks:
        gc.callbacks.remove(hook)
    try:
        greenlets.make(10)
        gc.collect(1)
        greenlets.make(10)
        raw = _check(core, greenlets)
        assert raw.heap_scanned  # type: ignore[attr-defined]
    finally:
        core.prepare()
    assert any(getattr(cb, "__name__", "") == "_on_collection" for cb in gc.callbacks)
    gc.collect(1)
    _check(core, greenlets)
    raw = _check(core, greenlets)
    assert not raw.heap_scanned  # type: ignore[attr-defined]


def test_between_collections_only_what_is_new_is_looked_at(
        core: ModuleType, greenlets: Greenlets) -> None:
    """A capture looks only at the objects the GC started to track since the
    one before (a cold walk of a young generation of 10,000 objects held the
    GIL about 1 ms), across collections of generation 0 too: greenlets made
    before the first and between them are all found. A collection of
    generation 1 or 2 between two captures makes the next look at the young
    generations whole again."""
    if not core.DISCOVERY_WITHOUT_HEAP_SCAN:
        pytest.skip("this walker scans the heap at every report")
    core.prepare()
    enabled = gc.isenabled()
    gc.disable()  # only the collections the test makes move the young objects
    try:
        young = [[] for _ in range(20_000)]
        greenlets.make(20)
        _check(core, greenlets)  # looks at the young generations whole
        for between in (lambda: None, lambda: gc.collect(0), lambda: None):
            greenlets.make(5)
            between()
            greenlets.make(5)
            raw = _check(core, greenlets)
            looked_at = raw.heap_objects  # type: ignore[attr-defined]
            assert looked_at < 1000, looked_at  # the greenlets and what _check made
        gc.collect(1)  # the mark and everything young move into generation 2
        young.extend([] for _ in range(20_000))
        greenlets.make(5)
        raw = _check(core, greenlets)
        assert raw.heap_objects > 20_000  # type: ignore[attr-defined]
        assert not raw.heap_scanned  # type: ignore[attr-defined]
        greenlets.make(5)
        assert _check(core, greenlets).heap_objects < 1000  # type: ignore[attr-defined]
    finally:
        if enabled:
            gc.enable()


#: What the watchful objects below were asked the ordinary way.
_looked_up: list[str] = []


class _AnswersItsClass:
    """A class that answers __class__ in Python (an oslo.messaging endpoint
    of the service's, typing's deprecated aliases)."""

    @property  # type: ignore[misc]
    def __class__(self) -> type:
        _looked_up.append("__class__")
        return _AnswersItsClass


class _Proxy:
    """A proxy: every attribute it is asked for goes through Python."""

    def __getattribute__(self, name: str) -> object:
        _looked_up.append(name)
        return object.__getattribute__(self, name)


class _Plain:
    """An object like most of the heap's."""


def test_objects_are_judged_by_their_type_alone(
        core: ModuleType, greenlets: Greenlets) -> None:
    """A capture finds the greenlets among objects that answer their
    __class__, or every attribute, in Python, and asks none of them
    anything: a report runs no code of the service's."""
    made = {id(green) for green in greenlets.make(5)}
    watchful = [_AnswersItsClass(), _Proxy()]
    _looked_up.clear()
    found, _ = _found(core)
    assert _looked_up == []
    assert made <= found
    del watchful


def test_what_was_looked_at_is_not_kept(core: ModuleType) -> None:
    """A capture keeps nothing of the heap it looked at: an object or a
    finished greenlet the service drops after it is freed at once, with no
    collection between. (A tee() of the heap list, made before the list,
    was in it: its buffer held itself, a cycle that kept the whole heap of
    that moment, and the report after a big one still found its greenlets.)"""
    enabled = gc.isenabled()
    gc.disable()  # only reference counts may free them
    try:
        green = greenlet.greenlet(_park)
        green.switch(0)
        plain = _Plain()
        found, _ = _found(core)
        assert id(green) in found
        green.throw(greenlet.GreenletExit)
        dropped = [weakref.ref(green), weakref.ref(plain)]
        del green, plain
        assert [ref() for ref in dropped] == [None, None]
    finally:
        if enabled:
            gc.enable()


def test_holds_are_stated(core: ModuleType, greenlets: Greenlets) -> None:
    """Both twins state their holds alike: at least one, the longest no
    longer than their total."""
    greenlets.make(20)
    _, raw = _found(core)
    assert raw.holds >= 1  # type: ignore[attr-defined]
    assert 0 < raw.pause_ns <= raw.held_ns  # type: ignore[attr-defined]


def test_bounded_holds_with_a_busy_thread(core: ModuleType, greenlets: Greenlets) -> None:
    """With a busy thread wanting the GIL, a capture of many greenlets under a
    small bound takes several holds, and every stack is read right."""
    if core.IMPLEMENTATION != "compiled":
        pytest.skip("the pure twin's holds are single C calls it cannot split")
    made = greenlets.make(2000, depth=20)
    running = threading.Event()
    stop = threading.Event()

    def busy() -> None:
        running.set()
        while not stop.is_set():
            sum(range(100))

    thread = threading.Thread(target=busy)
    thread.start()
    try:
        assert running.wait(60)
        raw = core.capture(greenlet.greenlet, max_hold_ns=100_000)
        try:
            assert raw.holds > 1
            assert raw.pause_ns <= raw.held_ns
            columns = raw.greenlet_columns()
            by_id = dict(zip(map(id, columns[0]), columns[3], strict=True))
            for green in made:
                frames = by_id[id(green)]
                frame, expected = green.gr_frame, []
                while frame is not None:
                    expected.append((frame.f_code, frame.f_lasti))
                    frame = frame.f_back
                assert list(frames) == expected
        finally:
            raw.release()
    finally:
        stop.set()
        thread.join(60)


def test_a_capture_in_turns_gives_the_gil_as_long_as_it_held_it(
        core: ModuleType, greenlets: Greenlets) -> None:
    """In turns, each let-go that a busy thread took lasts at least as long
    as the hold before it: the capture lasts at least its holds, plus all
    but the longest of them again. Hurried back at once instead (a watcher
    and its watchdog running, as in a service), the GIL would go to one
    thread of the service for a few microseconds between holds."""
    if core.IMPLEMENTATION != "compiled":
        pytest.skip("the pure twin's holds are single C calls it cannot split")
    from gmr import _impl, watcher

    hurrying = watcher.Watcher(lambda captured: None)
    hurrying.start()
    greenlets.make(6000, depth=20)
    running = threading.Event()
    stop = threading.Event()
    rounds = [0]

    def busy() -> None:
        running.set()
        while not stop.is_set():
            rounds[0] += 1

    thread = threading.Thread(target=busy)
    thread.start()
    try:
        assert running.wait(60)
        assert hurrying.enable_watchdog(60.0, None, "turns")
        assert _impl.hurried()
        before = rounds[0]
        began = time.perf_counter_ns()
        raw = core.capture(greenlet.greenlet, max_hold_ns=1_000_000, turns=True)
        lasted = time.perf_counter_ns() - began
        try:
            assert raw.holds > 1
            assert lasted >= 2 * raw.held_ns - raw.pause_ns
            assert rounds[0] > before
        finally:
            raw.release()
    finally:
        stop.set()
        thread.join(60)
        hurrying.stop()


@pytest.mark.parametrize("turns", [False, True])
def test_one_hold_when_nobody_waits(core: ModuleType, greenlets: Greenlets, turns: bool) -> None:
    """No other thread wants the GIL: the holds between which none took it
    count as one (nobody was stalled by the capture meanwhile), and a
    capture in turns waits for nobody."""
    if core.IMPLEMENTATION != "compiled":
        pytest.skip("the pure twin does not let the GIL go on purpose")
    if threading.active_count() > 1 or sys.version_info < (3, 10):
        pytest.skip("another thread is running")
    greenlets.make(200, depth=10)
    _, raw = _found(core, max_hold_ns=1000, turns=turns)
    assert raw.holds == 1  # type: ignore[attr-defined]
