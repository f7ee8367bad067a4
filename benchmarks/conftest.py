"""Workloads for the capture benchmarks: parked threads, parked greenlets and
a heap of objects the cyclic GC tracks.

Every workload is real: threads recurse in a named function to the asked
depth and then block in ``Event.wait``; greenlets recurse, then switch back
to their parent, so each has a saved frame chain; the heap is made of empty
lists, which the GC tracks from birth (empty dicts and tuples of atoms are
untracked and would not be visited).

Markers: ``slow`` (left out of the smoke run), ``huge`` (the 5e6-object heap:
skipped unless ``--run-huge`` or ``GMR_BENCH_HUGE=1``).
"""

from __future__ import annotations

import gc
import importlib
import os
import sys
import threading
from collections.abc import Callable, Iterator
from types import ModuleType
from typing import Any, Protocol, TypeVar

import pytest

sys.setrecursionlimit(max(sys.getrecursionlimit(), 10_000))


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--run-huge",
        action="store_true",
        default=False,
        help="also run the 5e6-object heap (several hundred MB, minutes)",
    )


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "huge: the 5e6-object heap, opt-in (--run-huge)")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if config.getoption("--run-huge") or os.environ.get("GMR_BENCH_HUGE") == "1":
        return
    skip = pytest.mark.skip(reason="5e6-object heap: opt in with --run-huge")
    for item in items:
        if "huge" in item.keywords:
            item.add_marker(skip)


# ---------------------------------------------------------------------------
# The two twins, imported directly (not through gmr._impl) so both run in
# one process.
# ---------------------------------------------------------------------------


@pytest.fixture(params=["gmr._walker", "gmr._walker_py"], ids=["c", "py"])
def core(request: pytest.FixtureRequest) -> ModuleType:
    try:
        return importlib.import_module(request.param)
    except ImportError as error:  # the extension is not built for this Python
        pytest.skip(f"{request.param}: {error}")


# ---------------------------------------------------------------------------
# Parked threads
# ---------------------------------------------------------------------------


def gmr_bench_park_thread(depth: int, ready: threading.Barrier, release: threading.Event) -> None:
    """Recurse until `depth` frames of this function are on the stack, then block."""
    if depth > 1:
        gmr_bench_park_thread(depth - 1, ready, release)
        return
    ready.wait()
    release.wait()


class ParkedThreads:
    def __init__(self, count: int, depth: int) -> None:
        self.count = count
        self.depth = depth
        self._release = threading.Event()
        ready = threading.Barrier(count + 1)
        self._threads = [
            threading.Thread(
                target=gmr_bench_park_thread,
                args=(depth, ready, self._release),
                name=f"parked-{i}",
                daemon=True,
            )
            for i in range(count)
        ]
        for thread in self._threads:
            thread.start()
        ready.wait(timeout=60)

    def close(self) -> None:
        self._release.set()
        for thread in self._threads:
            thread.join(timeout=60)


class _Closable(Protocol):
    def close(self) -> None: ...


C = TypeVar("C", bound=_Closable)


def _made_until_the_test_ends(factory: Callable[..., C]) -> Iterator[Callable[..., C]]:
    """A fixture body: hand out factory, and close everything it made at the end."""
    made: list[C] = []

    def make(*args: Any) -> C:
        parked = factory(*args)
        made.append(parked)
        return parked

    yield make
    for parked in made:
        parked.close()


@pytest.fixture
def parked_threads() -> Iterator[Callable[..., ParkedThreads]]:
    """parked_threads(count, depth): `count` threads, each `depth` frames of
    gmr_bench_park_thread deep, blocked until the test ends."""
    yield from _made_until_the_test_ends(ParkedThreads)


# ---------------------------------------------------------------------------
# Parked greenlets
# ---------------------------------------------------------------------------

#: Frames each parked greenlet holds (an eventlet or gevent stack is about this).
GREENLET_DEPTH = 10


def gmr_bench_park_greenlet(depth: int, box: list[bool]) -> None:
    """Recurse `depth` frames deep, then switch back to the parent until told to end."""
    if depth > 1:
        gmr_bench_park_greenlet(depth - 1, box)
        return
    import greenlet

    while not box[0]:
        greenlet.getcurrent().parent.switch()


class ParkedGreenlets:
    def __init__(self, count: int, depth: int = GREENLET_DEPTH) -> None:
        import greenlet

        self.count = count
        self._done = [False]
        self.greenlets = [
            greenlet.greenlet(gmr_bench_park_greenlet) for _ in range(count)
        ]
        for g in self.greenlets:
            g.switch(depth, self._done)  # runs until it switches back here

    def close(self) -> None:
        self._done[0] = True
        for g in self.greenlets:
            if not g.dead:
                g.switch()
        self.greenlets.clear()


@pytest.fixture
def greenlet_type() -> type:
    greenlet = pytest.importorskip("greenlet")
    return greenlet.greenlet  # type: ignore[no-any-return]


@pytest.fixture
def parked_greenlets(greenlet_type: type) -> Iterator[Callable[..., ParkedGreenlets]]:
    """parked_greenlets(count, depth=GREENLET_DEPTH): `count` suspended
    greenlets, each `depth` frames deep, ended when the test ends."""
    yield from _made_until_the_test_ends(ParkedGreenlets)


# ---------------------------------------------------------------------------
# The heap
# ---------------------------------------------------------------------------


class _Heap:
    """One heap kept across tests of the same size (building 1e6 objects costs
    a fraction of a second). A new size is built afresh: shrinking or growing
    a heap in place leaves the GC's lists in an order that jumps around in
    memory, which makes the walk slower in a way that depends on the order
    the tests ran in."""

    def __init__(self) -> None:
        self.filler: list[list[Any]] = []
        self.target = 0

    def ensure(self, target: int) -> int:
        """Make the GC track about `target` objects in all; returns how many it tracks."""
        if target != self.target:
            self.filler = []
            gc.collect()
            missing = target - len(gc.get_objects())
            self.filler = [[] for _ in range(max(0, missing))]
            self.target = target
        gc.collect()
        return len(gc.get_objects())


_HEAP = _Heap()


@pytest.fixture
def heap() -> Callable[[int], int]:
    """heap(target): the process's GC-tracked objects topped up to `target`."""
    return _HEAP.ensure


@pytest.fixture(scope="session", autouse=True)
def _drop_heap() -> Iterator[None]:
    yield
    _HEAP.filler = []
    _HEAP.target = 0
