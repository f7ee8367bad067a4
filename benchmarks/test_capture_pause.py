"""The capture pause: how long the capture core holds the GIL.

Each benchmark times the whole ``capture()`` call (pytest-benchmark's own
columns) and records the pause the capture states itself
(``RawCapture.pause_ns``: GIL held, GC disabled) in ``extra_info``; that is
the figure the targets are about:

- 100 threads x 30 frames: <= 0.2 ms;
- greenlet discovery: <= ~6 ns per GC-tracked object, <= 7 ms at 1e6 objects
  including 1,000 greenlet walks.

Run ``python benchmarks/summarize.py <json>`` on a ``--benchmark-json`` file
for the tables in benchmarks/README.md.
"""

from __future__ import annotations

import statistics
from collections.abc import Callable
from types import ModuleType
from typing import Any

import pytest

from conftest import GREENLET_DEPTH, ParkedGreenlets, ParkedThreads

slow = pytest.mark.slow
huge = [pytest.mark.slow, pytest.mark.huge]


def _measure(
    benchmark: Any, core: ModuleType, greenlet_type: type | None, rounds: int
) -> Any:
    """Time `rounds` captures; put the pauses they state into extra_info and
    return the last capture (for checks)."""
    captures: list[Any] = []

    def setup() -> None:
        # Drop the previous capture's references outside the timed call.
        for raw in captures[-1:]:
            raw.release()

    def run() -> Any:
        raw = core.capture(greenlet_type)
        pauses.append(raw.pause_ns)
        captures.append(raw)
        return raw

    pauses: list[int] = []
    benchmark.pedantic(run, setup=setup, rounds=rounds, iterations=1, warmup_rounds=1)
    raw = captures[-1]
    timed = pauses[1:] or pauses  # without the warm-up round
    median = statistics.median(timed)
    benchmark.extra_info.update(
        implementation=core.IMPLEMENTATION,
        pause_ns_median=median,
        pause_ns_min=min(timed),
        pause_ms_median=median / 1e6,
        threads=raw.threads,
        greenlets=raw.greenlets,
        heap_objects=raw.heap_objects,
    )
    if raw.heap_objects:
        benchmark.extra_info["ns_per_object"] = median / raw.heap_objects
    return raw


@pytest.mark.parametrize("depth", [10, 30, 100], ids=lambda n: f"d{n}")
@pytest.mark.parametrize("threads", [1, 10, 100], ids=lambda n: f"t{n}")
def test_threads(
    benchmark: Any,
    core: ModuleType,
    parked_threads: Callable[[int, int], ParkedThreads],
    threads: int,
    depth: int,
) -> None:
    """Threads x depth, no greenlet scan: the pause of the thread walk alone."""
    parked_threads(threads, depth)
    benchmark.group = f"threads {threads:>3} x depth {depth:>3}"
    raw = _measure(benchmark, core, None, rounds=50)
    assert raw.threads >= threads
    deepest = max(len(raw.thread(i)[2]) for i in range(raw.threads))
    assert deepest >= depth
    benchmark.extra_info["frames"] = sum(len(raw.thread(i)[2]) for i in range(raw.threads))


@pytest.mark.parametrize("greenlets", [0, 1_000, 10_000], ids=lambda n: f"g{n}")
@pytest.mark.parametrize(
    "heap_size",
    [
        pytest.param(100_000, id="heap1e5"),
        pytest.param(1_000_000, id="heap1e6", marks=slow),
        pytest.param(5_000_000, id="heap5e6", marks=huge),
    ],
)
def test_greenlets(
    benchmark: Any,
    core: ModuleType,
    greenlet_type: type,
    parked_greenlets: Callable[..., ParkedGreenlets],
    heap: Callable[[int], int],
    greenlets: int,
    heap_size: int,
) -> None:
    """Greenlet discovery (a walk over every GC-tracked object) plus the walk
    of each parked greenlet's GREENLET_DEPTH frames."""
    parked_greenlets(greenlets)
    heap(heap_size)
    benchmark.group = f"greenlets {greenlets:>5} on heap {heap_size:.0e}"
    rounds = 5 if heap_size > 1_000_000 else 15
    raw = _measure(benchmark, core, greenlet_type, rounds=rounds)
    assert raw.greenlets >= greenlets
    assert raw.heap_objects >= 0.9 * heap_size
    suspended = [raw.greenlet(i) for i in range(raw.greenlets)]
    walked = [g for g in suspended if g[2] == core.GREENLET_SUSPENDED]
    assert len(walked) >= greenlets
    if greenlets:
        assert max(len(g[3]) for g in walked) >= GREENLET_DEPTH


@pytest.mark.parametrize("depth", [1, 10, 30], ids=lambda n: f"d{n}")
def test_greenlet_depth(
    benchmark: Any,
    core: ModuleType,
    greenlet_type: type,
    parked_greenlets: Callable[..., ParkedGreenlets],
    heap: Callable[[int], int],
    depth: int,
) -> None:
    """10,000 greenlets `depth` frames deep on the smallest heap: the cost of a
    greenlet's frame (each greenlet keeps its frames in a data stack of its
    own, so they are colder than a thread's)."""
    parked_greenlets(10_000, depth)
    heap(100_000)
    benchmark.group = f"greenlets 10000 x depth {depth:>2}"
    raw = _measure(benchmark, core, greenlet_type, rounds=15)
    frames = sum(len(raw.greenlet(i)[3]) for i in range(raw.greenlets))
    assert frames >= 10_000 * depth
    benchmark.extra_info["frames"] = frames


@pytest.mark.parametrize(
    "heap_size",
    [pytest.param(100_000, id="heap1e5"), pytest.param(1_000_000, id="heap1e6", marks=slow)],
)
def test_base_workload(
    benchmark: Any,
    core: ModuleType,
    greenlet_type: type,
    parked_threads: Callable[[int, int], ParkedThreads],
    parked_greenlets: Callable[..., ParkedGreenlets],
    heap: Callable[[int], int],
    heap_size: int,
) -> None:
    """Issue 6's base workload, as one capture sees it: 10 threads x 30
    frames, 1,000 greenlets x 10 frames, on the heap."""
    parked_threads(10, 30)
    parked_greenlets(1_000)
    heap(heap_size)
    benchmark.group = f"base T10 D30 G1000 on heap {heap_size:.0e}"
    raw = _measure(benchmark, core, greenlet_type, rounds=15)
    assert raw.threads >= 10
    assert raw.greenlets >= 1_000
