"""What issue 7's report items cost, on issue 6's base workload (10 threads x
30 frames, 1,000 greenlets x 10 frames, a heap of GC-tracked objects, 100
oslo.config options, a few with credentials), with the core gmr._impl picked.

- ``test_pause_by_options``: the capture pause each report states
  (``header.gil_pause_ms``) with the default options and with each item
  turned on. Everything an option changes runs after the capture, so the
  pause must not move; "capture only" is the capture without any report.
- ``test_report_item``: the time one item adds to building and rendering
  the report (after the pause, in the watcher's thread). The whole report,
  and build plus render by format, are test_report.py's.

Figures: ``extra_info["pause_ms_median"]`` and pytest-benchmark's own columns.
"""

from __future__ import annotations

import asyncio
import statistics
import sys
import threading
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from oslo_config import cfg

from conftest import ParkedGreenlets, ParkedThreads
from gmr import (
    facts,
    greenlets,
    grouping,
    pools,
    redact,
    render,
    report,
    snapshot,
    tasks,
    waits,
)
from gmr.model import StackTableBuilder

slow = pytest.mark.slow

HEAPS = [pytest.param(100_000, id="heap1e5"),
         pytest.param(1_000_000, id="heap1e6", marks=slow)]


def options_conf() -> cfg.ConfigOpts:
    """100 options in four groups; every tenth holds a credential."""
    conf = cfg.ConfigOpts()
    for group in range(4):
        conf.register_opts([
            cfg.StrOpt(f"option_{n}", default=(
                f"mysql+pymysql://nova:secret{n}@db/nova" if n % 10 == 0 else f"value-{n}"))
            for n in range(25)], group=f"group_{group}")
    conf([], project="bench")
    return conf


@pytest.fixture
def base_workload(
    request: pytest.FixtureRequest,
    parked_threads: Callable[[int, int], ParkedThreads],
    parked_greenlets: Callable[..., ParkedGreenlets],
    heap: Callable[[int], int],
) -> cfg.ConfigOpts:
    parked_threads(10, 30)
    parked_greenlets(1_000)
    heap(request.param)
    return options_conf()


@pytest.fixture
def asyncio_tasks() -> Iterator[None]:
    """100 named tasks parked in a loop of their own thread."""
    ready = threading.Event()
    loop = asyncio.new_event_loop()
    stop: list[asyncio.Event] = []

    async def serve() -> None:
        stop.append(asyncio.Event())
        parked = [asyncio.create_task(stop[0].wait(), name=f"bench-{n}") for n in range(100)]
        await asyncio.sleep(0)
        ready.set()
        await asyncio.gather(*parked)

    thread = threading.Thread(target=loop.run_until_complete, args=(serve(),))
    thread.start()
    ready.wait(30)
    yield
    loop.call_soon_threadsafe(stop[0].set)
    thread.join(30)
    loop.close()


VARIANTS = {
    "capture only": None,
    "default (text)": (report.Options(), "text"),
    "group_stacks": (report.Options(group_stacks=True), "text"),
    "json": (report.Options(), "json"),
    "json-compact": (report.Options(), "json-compact"),
    "max_stack_depth 10": (report.Options(max_stack_depth=10), "text"),
}


@pytest.mark.parametrize("base_workload", HEAPS, indirect=True)
@pytest.mark.parametrize("variant", list(VARIANTS))
def test_pause_by_options(benchmark: Any, base_workload: cfg.ConfigOpts, variant: str) -> None:
    pauses: list[float] = []
    chosen = VARIANTS[variant]

    def one_report() -> None:
        captured = snapshot.take(trigger="api")
        if chosen is not None:
            options, form = chosen
            model = report.build(captured, "1.0", base_workload, [], options)
            render.render(model, form)
            pauses.append(model.header["gil_pause_ms"])
        else:
            pauses.append(captured.pause_ns / 1e6)

    benchmark.group = "pause by options"
    benchmark.pedantic(one_report, rounds=7, iterations=1, warmup_rounds=1)
    timed = pauses[1:] or pauses
    benchmark.extra_info.update(pause_ms_median=statistics.median(timed),
                                pause_ms_min=min(timed))


def _items(conf: cfg.ConfigOpts, captured: snapshot.Snapshot) -> dict[str, Callable[[], Any]]:
    default = report.Options()
    model = report.build(captured, "1.0", conf, [], default)
    values = [value for group in report.configuration_data(conf).values()
              for value in group.values() if isinstance(value, str)]
    return {
        "facts: threads (/proc)": lambda: [facts.thread_facts(thread.native_id)
                                           for thread in captured.threads],
        "facts: processes section": lambda: report.processes_data(default),
        "greenlet identity": lambda: [greenlets.identity(green.greenlet)
                                      for green in captured.greenlets],
        "tasks (100 parked)": tasks.capture_tasks,
        "redaction (options, argv)": lambda: ([redact.redact(value) for value in values],
                                              redact.redact_argv(list(sys.argv))),
        "grouping (group_stacks)": lambda: grouping.group_stacks(
            captured.greenlets.stacks),
        "greenlets section, listed": lambda: report.greenlets_data(
            captured, default, StackTableBuilder()),
        "greenlets section, grouped": lambda: report.greenlets_data(
            captured, report.Options(group_stacks=True), StackTableBuilder()),
        "render text": lambda: render.text(model),
        "render json": lambda: render.json_text(model),
        "render json-compact": lambda: render.json_text(model, compact=True),
    }


ITEMS = [
    "facts: threads (/proc)", "facts: processes section",
    "greenlet identity", "tasks (100 parked)", "redaction (options, argv)",
    "grouping (group_stacks)", "greenlets section, listed", "greenlets section, grouped",
    "render text", "render json", "render json-compact",
]


@pytest.mark.parametrize("base_workload", HEAPS, indirect=True)
@pytest.mark.parametrize("item", ITEMS)
def test_report_item(benchmark: Any, base_workload: cfg.ConfigOpts, asyncio_tasks: None,
                     item: str) -> None:
    captured = snapshot.take(trigger="api")
    run = _items(base_workload, captured)[item]
    benchmark.group = "report items"
    benchmark.pedantic(run, rounds=7, iterations=1, warmup_rounds=1)


# -- Thread pools (issue 14) -----------------------------------------------------

POOL_WORKERS = 64


def _blocked(started: threading.Semaphore, go: threading.Event) -> None:
    started.release()
    go.wait(600)


@pytest.fixture
def four_pools() -> Iterator[None]:
    """Four pools of 64 workers (two concurrent.futures, two futurist), half
    of each pool's workers busy in a task and half idle, ten items queued
    in each."""
    from concurrent.futures import ThreadPoolExecutor

    import futurist

    go, started, idle_go = threading.Event(), threading.Semaphore(0), threading.Event()
    executors = [ThreadPoolExecutor(POOL_WORKERS), ThreadPoolExecutor(POOL_WORKERS),
                 futurist.ThreadPoolExecutor(POOL_WORKERS),
                 futurist.ThreadPoolExecutor(POOL_WORKERS)]
    for executor in executors:
        # Every worker started, then half of them let go (idle).
        first = [executor.submit(_blocked, started, idle_go)
                 for _ in range(POOL_WORKERS // 2)]
        [executor.submit(_blocked, started, go) for _ in range(POOL_WORKERS // 2)]
        for _ in range(POOL_WORKERS):
            assert started.acquire(timeout=60)
        idle_go.set()
        for future in first:
            future.result(60)
        idle_go.clear()
        for _ in range(10):
            executor.submit(_blocked, started, go)
    yield
    go.set()
    for executor in executors:
        executor.shutdown(wait=True)


@pytest.mark.parametrize("base_workload", HEAPS[:1], indirect=True)
@pytest.mark.parametrize("looked_for", ["found", "not looked for"])
def test_pause_with_four_pools(benchmark: Any, base_workload: cfg.ConfigOpts,
                               four_pools: None, looked_for: str,
                               monkeypatch: pytest.MonkeyPatch) -> None:
    """The pause each report states with 4 x 64 pool workers, the pools and
    what every thread waits on found, against the same process with neither
    looked for: both are read after the capture, so the pause must not
    move; the benchmark's own columns are the capture, build and render."""
    if looked_for != "found":
        monkeypatch.setattr(pools, "find", lambda: ())
        monkeypatch.setattr(waits, "find", lambda threads: {})
    pauses: list[float] = []

    def one_report() -> None:
        model = report.build(snapshot.take(trigger="api"), "1.0", base_workload, [],
                             report.Options())
        render.render(model)
        pauses.append(model.header["gil_pause_ms"])

    benchmark.group = "pause with four pools"
    benchmark.pedantic(one_report, rounds=15, iterations=1, warmup_rounds=1)
    timed = pauses[1:] or pauses
    benchmark.extra_info.update(pause_ms_median=statistics.median(timed),
                                pause_ms_min=min(timed))


@pytest.mark.parametrize("base_workload", HEAPS[:1], indirect=True)
@pytest.mark.parametrize("item", ["find the pools", "find the waits", "Thread Pools section",
                                  "render text"])
def test_pools_item(benchmark: Any, base_workload: cfg.ConfigOpts, four_pools: None,
                    item: str) -> None:
    """What the pools add: finding them and what each of the 267 threads
    waits on (after the capture), their section (busy or idle from 256
    captured stacks), and the text of a report."""
    captured = snapshot.take(trigger="api")
    model = report.build(captured, "1.0", base_workload, [], report.Options())
    assert len(captured.pools) >= 4
    run = {"find the pools": pools.find,
           "find the waits": lambda: waits.find(captured.threads),
           "Thread Pools section": lambda: report.pools_data(captured),
           "render text": lambda: render.text(model)}[item]
    benchmark.group = "pools items"
    benchmark.pedantic(run, rounds=7, iterations=1, warmup_rounds=1)
