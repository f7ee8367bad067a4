"""Thread pools found without the service's cooperation (issue 14): real
concurrent.futures and futurist pools, their workers blocked in real tasks,
what each worker runs read from a real capture."""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

import pytest

from conftest import validate_report, wait_for
from gmr import pools, snapshot


def blocked_task(started: threading.Semaphore, go: threading.Event) -> str:
    started.release()
    go.wait(60)
    return "done"


def quick_task() -> int:
    return 1


def _stacks() -> dict[int, list[Any]]:
    """Each thread's stack in a new capture, as code objects (outermost first)."""
    return {thread.ident: [frame.code for frame in thread.frames]
            for thread in snapshot.take().threads}


def _running(tasks: pools.Tasks, pool: pools.Pool) -> list[str | None]:
    stacks = _stacks()
    return [tasks.running(stacks[ident]) for ident in pool.workers]


def _only(kind: str, executor: object) -> pools.Pool:
    found = [pool for pool in pools.find() if pool.id == id(executor)]
    assert len(found) == 1, pools.find()
    assert found[0].kind == kind
    return found[0]


@pytest.fixture
def go() -> Iterator[threading.Event]:
    event = threading.Event()
    yield event
    event.set()


def _busy(submit: Callable[..., Future[Any]], count: int,
          go: threading.Event) -> list[Future[Any]]:
    """count tasks submitted, each running (blocked) before this returns."""
    started = threading.Semaphore(0)
    futures = [submit(blocked_task, started, go) for _ in range(count)]
    for _ in range(count):
        assert started.acquire(timeout=30)
    return futures


def test_without_a_pool_module_nothing_is_found_or_imported() -> None:
    """A service that imported no pool module has no pool, and looking
    imports none."""
    code = ("import sys, gmr.pools; print(gmr.pools.find(), "
            "'concurrent.futures.thread' in sys.modules, 'futurist' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, timeout=60).stdout
    assert out.split() == ["()", "False", "False"]


def test_a_concurrent_futures_pool_its_busy_and_idle_workers_and_its_queue(
        go: threading.Event) -> None:
    with ThreadPoolExecutor(max_workers=3, thread_name_prefix="rpc") as executor:
        assert executor.submit(quick_task).result(30) == 1  # one worker, idle after
        busy = _busy(executor.submit, 3, go)  # the idle worker and two new ones
        queued = [executor.submit(quick_task) for _ in range(4)]
        pool = _only("concurrent.futures.ThreadPoolExecutor", executor)
        assert (pool.name, pool.max_workers, pool.queued) == ("rpc", 3, 4)
        assert len(pool.workers) == 3
        names = {thread.ident: thread.name for thread in threading.enumerate()}
        assert sorted(names[ident] for ident in pool.workers) == ["rpc_0", "rpc_1", "rpc_2"]
        running = _running(pools.Tasks(), pool)
        assert running == [f"{__name__}.blocked_task"] * 3
        go.set()
        assert [future.result(30) for future in busy + queued] == ["done"] * 3 + [1] * 4
        # Every worker idle again: none runs a work item.
        tasks = pools.Tasks()
        assert wait_for(lambda: _running(tasks, pool) == [None] * 3)
        assert _only("concurrent.futures.ThreadPoolExecutor", executor).queued == 0
    assert [pool for pool in pools.find() if pool.id == id(executor)] == []


def test_a_futurist_pool(go: threading.Event) -> None:
    futurist = pytest.importorskip("futurist")
    executor = futurist.ThreadPoolExecutor(max_workers=2)
    try:
        busy = _busy(executor.submit, 2, go)
        queued = [executor.submit(quick_task) for _ in range(3)]
        pool = _only("futurist.ThreadPoolExecutor", executor)
        assert (pool.name, pool.max_workers, pool.queued) == (None, 2, 3)
        assert len(pool.workers) == 2
        assert _running(pools.Tasks(), pool) == [f"{__name__}.blocked_task"] * 2
        go.set()
        assert [future.result(30) for future in busy + queued] == ["done"] * 2 + [1] * 3
        tasks = pools.Tasks()
        assert wait_for(lambda: _running(tasks, pool) == [None] * 2)
    finally:
        executor.shutdown(wait=True)
    assert [pool for pool in pools.find() if pool.id == id(executor)] == []


def test_a_task_in_c_is_busy_with_no_name() -> None:
    """A task with no Python frame of its own (a C callable: a lock's
    acquire) is running, though its name is not on the stack."""
    lock = threading.Lock()
    lock.acquire()
    with ThreadPoolExecutor(max_workers=1) as executor:
        future = executor.submit(lock.acquire, True, 60)
        pool = _only("concurrent.futures.ThreadPoolExecutor", executor)
        tasks = pools.Tasks()
        assert wait_for(lambda: _running(tasks, pool) == [""])
        lock.release()
        assert future.result(30) is True


def test_the_report_names_each_pool_its_busy_workers_and_each_worker_its_pool(
        go: threading.Event) -> None:
    """Text and JSON (checked against the schema): a Thread Pools section
    after Threads, with each pool's counts and what each busy worker runs;
    each worker thread names its pool."""
    import gmr

    futurist = pytest.importorskip("futurist")
    green = futurist.ThreadPoolExecutor(max_workers=1)
    try:
        with ThreadPoolExecutor(max_workers=2, thread_name_prefix="api") as executor:
            submitted = time.monotonic()
            busy = _busy(executor.submit, 1, go) + _busy(green.submit, 1, go)
            queued = [green.submit(quick_task) for _ in range(2)]
            text = gmr.TextGuruMeditation().run()
            document = validate_report(gmr.TextGuruMeditation().run("json"))
            lasted = time.monotonic() - submitted
            go.set()
            for future in busy + queued:
                future.result(30)
    finally:
        green.shutdown(wait=True)
    titles = [section["title"] for section in document["sections"]]
    assert titles[titles.index("Threads") + 1] == "Thread Pools"
    sections = document["sections"]
    found = {pool["id"]: pool for pool in sections[titles.index("Thread Pools")]["data"]}
    ours = found[id(executor)]
    assert (ours["type"], ours["name"], ours["max_workers"], ours["busy"]) == (
        "concurrent.futures.ThreadPoolExecutor", "api", 2, 1)
    assert [worker["task"] for worker in ours["busy_workers"]] == [f"{__name__}.blocked_task"]
    # concurrent.futures keeps no time of submission; futurist's statistics do.
    assert [worker["submitted_seconds_ago"] for worker in ours["busy_workers"]] == [None]
    (ago,) = [worker["submitted_seconds_ago"] for worker in found[id(green)]["busy_workers"]]
    assert 0 <= ago <= lasted
    theirs = found[id(green)]
    assert (theirs["type"], theirs["threads"], theirs["busy"], theirs["idle"], theirs["queued"]) \
        == ("futurist.ThreadPoolExecutor", 1, 1, 0, 2)
    threads = {thread["id"]: thread for thread in sections[titles.index("Threads")]["data"]}
    for pool in (ours, theirs):
        for worker in pool["busy_workers"]:
            assert threads[worker["thread"]]["pool"] == pool["id"]
    assert f"------{f'Pool {id(executor):#x}': ^60}------" in text
    block = text[text.index(f"Pool {id(executor):#x}"):]
    assert block.index("(concurrent.futures.ThreadPoolExecutor, threads named api_N)") \
        < block.index("max workers = 2") < block.index("busy = 1") < block.index("queued = 0")
    assert f"api_0 (Thread #{ours['busy_workers'][0]['thread']}): {__name__}.blocked_task" in block
    assert f"pool {id(executor):#x}" in text.split("Thread Pools")[0]


def test_grouped_a_pools_idle_workers_are_one_group_naming_the_pool() -> None:
    """With group_stacks, the idle workers of a pool are one group whose
    banner names the pool, never one group with another pool's workers
    standing in the same place."""
    from gmr import render, report

    with ThreadPoolExecutor(max_workers=3) as first, ThreadPoolExecutor(max_workers=2) as second:
        for executor, count in ((first, 3), (second, 2)):
            started = threading.Semaphore(0)
            go = threading.Event()
            futures = [executor.submit(blocked_task, started, go) for _ in range(count)]
            for _ in range(count):
                assert started.acquire(timeout=30)
            go.set()
            for future in futures:
                future.result(30)
        tasks = pools.Tasks()
        for executor, count in ((first, 3), (second, 2)):
            pool = _only("concurrent.futures.ThreadPoolExecutor", executor)
            assert wait_for(lambda pool=pool, count=count: _running(tasks, pool) == [None] * count)
        model = report.build(snapshot.take(), None, None, [], report.Options(group_stacks=True))
    threads = next(section for section in model.sections if section.kind == "threads")
    by_pool = {group.pool: group.total for group in threads.data}
    assert (by_pool[id(first)], by_pool[id(second)]) == (3, 2)
    text = render.render(model)
    for executor, count in ((first, 3), (second, 2)):
        banner = f"{count} Threads of pool {id(executor):#x} with this stack"
        assert f"------{banner: ^60}------" in text
