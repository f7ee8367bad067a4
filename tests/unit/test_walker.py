"""Parity: stacks parked in known places read the same from the compiled
core, from the pure twin and from ``traceback.extract_stack``.

Every test runs on both twins (the ``core`` fixture). Stacks are compared as
(function, file, line) triples, outermost first; raw (code, lasti) pairs are
resolved with ``gmr.snapshot.Frame``.
"""

from __future__ import annotations

import sys
import threading
import time
import traceback
from collections.abc import Callable, Iterator
from types import FrameType
from types import SimpleNamespace as ModuleType

import greenlet
import pytest

from conftest import wait_for
from gmr import snapshot

pytestmark = pytest.mark.timeout(60)

Triple = tuple[str, str, int]


def resolved(raw_frames: tuple) -> list[Triple]:  # type: ignore[type-arg]
    """Raw frames (innermost first) as triples, outermost first."""
    frames = [snapshot.Frame(code, lasti) for code, lasti in reversed(raw_frames)]
    return [(frame.code.co_name, frame.filename, frame.line) for frame in frames]


def expected(frame: FrameType | None) -> list[Triple]:
    """What traceback.extract_stack says about a frame and its callers."""
    if frame is None:
        return []
    return [(entry.name, entry.filename, entry.lineno or 0)
            for entry in traceback.extract_stack(frame)]


def thread_stack(raw, ident: int) -> tuple:  # type: ignore[no-untyped-def, type-arg]
    for index in range(raw.threads):
        found, _native, frames = raw.thread(index)
        if found == ident:
            return frames  # type: ignore[no-any-return]
    raise AssertionError(f"thread {ident} not in the capture")


def greenlets_of(raw) -> dict[int, tuple]:  # type: ignore[no-untyped-def, type-arg]
    """id(greenlet) -> (greenlet, parent, state, frames); the columns all
    greenlets come in at once say the same."""
    out = {}
    for index in range(raw.greenlets):
        entry = raw.greenlet(index)
        out[id(entry[0])] = entry
    columns = raw.greenlet_columns()
    assert [len(column) for column in columns] == [raw.greenlets] * 4
    assert {id(row[0]): row for row in zip(*columns, strict=True)} == out
    return out


# ---------------------------------------------------------------------------
# Parked threads
# ---------------------------------------------------------------------------

def park_outer(event: threading.Event, parked: threading.Event) -> None:
    park_middle(event, parked)


def park_middle(event: threading.Event, parked: threading.Event) -> None:
    parked.set()
    event.wait(30)


def park_recursive(depth: int, event: threading.Event, parked: threading.Event) -> None:
    if depth:
        park_recursive(depth - 1, event, parked)
    else:
        parked.set()
        event.wait(30)


@pytest.fixture
def parked_threads() -> Iterator[list[threading.Thread]]:
    """Three threads parked in known functions (one 200 frames deep) until
    the test ends."""
    release = threading.Event()
    threads = []
    for target, args in ((park_outer, ()), (park_recursive, (200,)), (park_recursive, (3,))):
        parked = threading.Event()
        thread = threading.Thread(target=target, args=(*args, release, parked), daemon=True)
        thread.start()
        assert parked.wait(10)
        threads.append(thread)
    # parked.set() is the last thing before event.wait: wait until every
    # thread is really inside the Condition's lock acquire.
    for thread in threads:
        for _ in range(1000):
            frame = sys._current_frames()[thread.ident]  # type: ignore[index]
            if frame.f_code.co_name == "wait" and "threading" in frame.f_code.co_filename:
                break
            release.wait(0.001)
    yield threads
    release.set()
    for thread in threads:
        thread.join(10)


def test_parked_threads_match_traceback(core: ModuleType, parked_threads) -> None:  # type: ignore[no-untyped-def]
    """GIVEN threads parked in known functions
    WHEN the core captures
    THEN each thread's stack is what traceback.extract_stack says, line for line."""
    current = sys._current_frames()
    raw = core.capture()
    try:
        for thread in parked_threads:
            got = resolved(thread_stack(raw, thread.ident))
            want = expected(current[thread.ident])  # type: ignore[index]
            assert got == want
            assert any(name == "park_middle" or name == "park_recursive"
                       for name, _, _ in got)
        deep = resolved(thread_stack(raw, parked_threads[1].ident))
        assert [name for name, _, _ in deep].count("park_recursive") == 201
    finally:
        raw.release()


def test_parked_threads_raw_lasti_is_frame_f_lasti(core: ModuleType, parked_threads) -> None:  # type: ignore[no-untyped-def]
    """The raw pairs are exactly (f_code, f_lasti) of each frame, innermost
    first, on every Python (3.10 keeps an instruction index: the core doubles it)."""
    current = sys._current_frames()
    raw = core.capture()
    try:
        for thread in parked_threads:
            frame: FrameType | None = current[thread.ident]  # type: ignore[index]
            want = []
            while frame is not None:
                want.append((frame.f_code, frame.f_lasti))
                frame = frame.f_back
            assert list(thread_stack(raw, thread.ident)) == want
    finally:
        raw.release()


def test_twins_agree_on_parked_threads(parked_threads) -> None:  # type: ignore[no-untyped-def]
    from conftest import compiled_expected

    if not compiled_expected():
        pytest.skip("the compiled core is not under test")
    import gmr._walker as compiled
    import gmr._walker_py as pure

    one, other = compiled.capture(), pure.capture()
    try:
        for thread in parked_threads:
            assert thread_stack(one, thread.ident) == thread_stack(other, thread.ident)
    finally:
        one.release()
        other.release()


def test_capturing_thread_is_left_out(core: ModuleType) -> None:
    raw = core.capture()
    try:
        idents = [raw.thread(index)[0] for index in range(raw.threads)]
    finally:
        raw.release()
    assert threading.get_ident() not in idents
    assert set(idents) <= set(sys._current_frames())


def test_native_ids_are_the_kernels(core: ModuleType, parked_threads) -> None:  # type: ignore[no-untyped-def]
    """Through the snapshot: native ids, names and is_main come out right
    (3.10 keeps no native id in the thread state; threading gives it)."""
    taken = snapshot.take()
    by_ident = {thread.ident: thread for thread in taken.threads}
    for thread in parked_threads:
        stack = by_ident[thread.ident]
        assert stack.native_id == thread.native_id
        assert stack.name == thread.name
        assert not stack.is_main


# ---------------------------------------------------------------------------
# Greenlets in every state
# ---------------------------------------------------------------------------

def green_park(depth: int) -> None:
    if depth:
        green_park(depth - 1)
    else:
        greenlet.getcurrent().parent.switch("parked")


def green_generator() -> Iterator[int]:
    greenlet.getcurrent().parent.switch("parked")
    yield 1


def green_in_generator() -> None:
    for _ in green_generator():
        pass


async def green_coroutine_body() -> None:
    greenlet.getcurrent().parent.switch("parked")


def green_in_coroutine() -> None:
    coroutine = green_coroutine_body()
    try:
        coroutine.send(None)
    except StopIteration:
        pass


class Parked:
    """Greenlets in every state, created by the current (main) greenlet."""

    def __init__(self) -> None:
        self.not_started = greenlet.greenlet(lambda: None)
        self.dead = greenlet.greenlet(lambda: "done")
        assert self.dead.switch() == "done"
        self.shallow = self._park(lambda: green_park(0))
        self.deep = self._park(lambda: green_park(200))
        self.in_generator = self._park(green_in_generator)
        self.in_coroutine = self._park(green_in_coroutine)
        # A child of a suspended greenlet, itself suspended.
        self.child: greenlet.greenlet | None = None

        def parent_of_child() -> None:
            self.child = greenlet.greenlet(lambda: green_park(2))
            assert self.child.switch() == "parked"
            greenlet.getcurrent().parent.switch("parked")

        self.with_child = self._park(parent_of_child)

    @staticmethod
    def _park(run: Callable[[], None]) -> greenlet.greenlet:
        green = greenlet.greenlet(run)
        assert green.switch() == "parked"
        return green

    def suspended(self) -> list[greenlet.greenlet]:
        assert self.child is not None
        return [self.shallow, self.deep, self.in_generator, self.in_coroutine,
                self.with_child, self.child]

    def finish(self) -> None:
        for green in self.suspended():
            green.throw(greenlet.GreenletExit)


@pytest.fixture
def parked() -> Iterator[Parked]:
    greens = Parked()
    yield greens
    greens.finish()


def test_greenlets_in_every_state(core: ModuleType, parked: Parked) -> None:
    """GIVEN greenlets not started, dead, running and suspended (shallow, 200
    frames deep, inside a generator, inside a coroutine, and one whose parent
    is itself suspended)
    WHEN the core captures with greenlet.greenlet
    THEN each has its state, its parent and, when suspended, the stack that
    traceback.extract_stack gives for its gr_frame."""
    raw = core.capture(greenlet.greenlet)
    try:
        found = greenlets_of(raw)
    finally:
        raw.release()
    main = greenlet.getcurrent()

    def check(green: greenlet.greenlet, state: int, parent: object) -> tuple:  # type: ignore[type-arg]
        entry = found[id(green)]
        assert entry[0] is green
        assert entry[1] is parent
        assert entry[2] == state
        return entry[3]  # type: ignore[no-any-return]

    assert check(parked.not_started, core.GREENLET_NOT_STARTED, main) == ()
    assert check(parked.dead, core.GREENLET_DEAD, main) == ()
    assert check(main, core.GREENLET_RUNNING, None) == ()
    for green in parked.suspended():
        parent = parked.with_child if green is parked.child else main
        frames = check(green, core.GREENLET_SUSPENDED, parent)
        assert resolved(frames) == expected(green.gr_frame)
        assert resolved(frames)[-1][0] in ("green_park", "green_generator",
                                           "green_coroutine_body", "parent_of_child")

    names = [name for name, _, _ in resolved(found[id(parked.deep)][3])]
    assert names.count("green_park") == 201
    names = [name for name, _, _ in resolved(found[id(parked.in_generator)][3])]
    assert names[-2:] == ["green_in_generator", "green_generator"]
    names = [name for name, _, _ in resolved(found[id(parked.in_coroutine)][3])]
    assert names[-2:] == ["green_in_coroutine", "green_coroutine_body"]


def test_twins_agree_on_greenlets(parked: Parked) -> None:
    from conftest import compiled_expected

    if not compiled_expected():
        pytest.skip("the compiled core is not under test")
    import gmr._walker as compiled
    import gmr._walker_py as pure

    one, other = compiled.capture(greenlet.greenlet), pure.capture(greenlet.greenlet)
    try:
        a, b = greenlets_of(one), greenlets_of(other)
    finally:
        one.release()
        other.release()
    assert set(a) == set(b)
    for key, entry in a.items():
        assert entry[1:] == b[key][1:], entry[0]


def test_greenlet_snapshot_model(core: ModuleType, parked: Parked) -> None:
    """The snapshot names each state and parent, frames outermost first."""
    taken = snapshot.take()
    by_id = {green.id: green for green in taken.greenlets}
    deep = by_id[id(parked.deep)]
    assert deep.state == "suspended"
    assert deep.parent_id == id(greenlet.getcurrent())
    assert deep.type_name == "greenlet.greenlet"
    assert deep.frames[-1].function.endswith("green_park")
    assert deep.frames[-1].line == expected(parked.deep.gr_frame)[-1][2]
    assert by_id[id(parked.not_started)].state == "not started"
    assert by_id[id(parked.dead)].state == "dead"
    assert by_id[id(greenlet.getcurrent())].state == "running"
    assert taken.heap_objects > 0


def test_greenlet_subclass_properties_do_not_run(core: ModuleType) -> None:
    """A subclass overriding dead / gr_frame / parent / __bool__ (gevent
    overrides dead) is read through greenlet's own getters."""
    ran = []

    class Sneaky(greenlet.greenlet):  # type: ignore[misc]
        @property
        def dead(self) -> bool:
            ran.append("dead")
            return True

        @property
        def gr_frame(self) -> None:
            ran.append("gr_frame")
            return None

        def __bool__(self) -> bool:
            ran.append("bool")
            return False

    green = Sneaky(lambda: green_park(1))
    assert green.switch() == "parked"
    try:
        raw = core.capture(greenlet.greenlet)
        try:
            entry = greenlets_of(raw)[id(green)]
        finally:
            raw.release()
        assert entry[2] == core.GREENLET_SUSPENDED
        assert [name for name, _, _ in resolved(entry[3])][-1] == "green_park"
        assert ran == []
    finally:
        green.throw(greenlet.GreenletExit)


# ---------------------------------------------------------------------------
# A thread that runs inside a greenlet, and greenlets of another thread
# ---------------------------------------------------------------------------

def test_thread_running_a_greenlet_and_its_greenlets(core: ModuleType) -> None:
    """GIVEN a thread whose current greenlet is not its main greenlet, and a
    greenlet suspended in that thread
    WHEN the core captures
    THEN the thread's stack is what sys._current_frames() shows, the
    suspended one is complete, and the running one is "running"."""
    release = threading.Event()
    ready = threading.Event()
    box: dict[str, greenlet.greenlet] = {}

    def inner() -> None:
        ready.set()
        release.wait(30)

    def worker() -> None:
        box["sleeper"] = greenlet.greenlet(lambda: green_park(3))
        assert box["sleeper"].switch() == "parked"
        box["runner"] = greenlet.greenlet(inner)
        box["runner"].switch()
        box["sleeper"].throw(greenlet.GreenletExit)

    thread = threading.Thread(target=worker, daemon=True)
    thread.start()
    try:
        assert ready.wait(10)
        for _ in range(1000):
            if sys._current_frames()[thread.ident].f_code.co_name == "wait":  # type: ignore[index]
                break
            release.wait(0.001)
        current = sys._current_frames()[thread.ident]  # type: ignore[index]
        raw = core.capture(greenlet.greenlet)
        try:
            stack = resolved(thread_stack(raw, thread.ident))
            found = greenlets_of(raw)
        finally:
            raw.release()
        assert stack == expected(current)
        assert "inner" in [name for name, _, _ in stack]
        runner = found[id(box["runner"])]
        assert runner[2] == core.GREENLET_RUNNING and runner[3] == ()
        sleeper = found[id(box["sleeper"])]
        assert sleeper[2] == core.GREENLET_SUSPENDED
        assert resolved(sleeper[3]) == expected(box["sleeper"].gr_frame)
    finally:
        release.set()
        thread.join(10)


def test_frozen_greenlets_are_found_where_the_walker_sees_frozen_objects(
        core: ModuleType) -> None:
    """gc.freeze() (before forking workers) moves every tracked object out of
    the collector's lists: the compiled walker still finds frozen greenlets;
    a walker that cannot see them says so (SEES_FROZEN) for the report."""
    import gc

    def park() -> None:
        greenlet.getcurrent().parent.switch()

    frozen = [greenlet.greenlet(park) for _ in range(5)]
    for green in frozen:
        green.switch()
    gc.freeze()
    try:
        raw = core.capture(greenlet.greenlet)
        try:
            found = {id(green) for green in raw.greenlet_columns()[0]}
        finally:
            raw.release()
    finally:
        gc.unfreeze()
    want = {id(green) for green in frozen}
    if core.SEES_FROZEN:
        assert want <= found
    else:
        assert not want & found
    for green in frozen:
        green.throw(greenlet.GreenletExit)


def test_a_small_capture_keeps_the_gil(core: ModuleType) -> None:
    """A capture of a few threads touches its few new pages with the GIL
    held (faster than having the GIL back from a busy thread, hurried or
    not): a busy thread beside it never runs while it captures."""
    if core.IMPLEMENTATION != "compiled":
        pytest.skip("the pure twin lets the GIL go wherever Python code may")
    rounds = [0]
    stop = threading.Event()

    def busy() -> None:
        while not stop.is_set():
            rounds[0] += 1
            if rounds[0] % 100 == 0:
                time.sleep(0)  # the GIL let go: the test's thread runs on

    before = sys.getswitchinterval()
    sys.setswitchinterval(60.0)  # no thread is asked to let go meanwhile
    thread = threading.Thread(target=busy)
    thread.start()
    try:
        core.capture(None).release()  # its arrays sized from now on as this one needs
        for _ in range(20):
            seen = rounds[0]
            raw = core.capture(None)
            assert rounds[0] == seen
            raw.release()
            assert wait_for(lambda seen=seen: rounds[0] > seen)  # the busy thread ran again
    finally:
        stop.set()
        sys.setswitchinterval(before)
        thread.join(60)
