"""Thread pools found without the service's cooperation (issue 14): real
concurrent.futures and futurist pools, their workers blocked in real tasks,
what each worker runs read from a real capture; real oslo.messaging servers
and the pools they run their messages in (in a program of their own)."""

from __future__ import annotations

import functools
import importlib.util
import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

import pytest

from conftest import PROGRAMS, ROOT, validate_report, wait_for
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


def _busy(submit: Callable[..., Future[Any]], count: int, go: threading.Event,
          task: Callable[[threading.Semaphore, threading.Event], Any] = blocked_task,
          ) -> list[Future[Any]]:
    """count tasks submitted, each running (blocked) before this returns."""
    started = threading.Semaphore(0)
    futures = [submit(task, started, go) for _ in range(count)]
    for _ in range(count):
        assert started.acquire(timeout=30)
    return futures


def test_without_a_pool_module_nothing_is_found_or_imported() -> None:
    """A service that imported no pool module has no pool, and looking
    imports none; one that imported no oslo.messaging has no server, and
    looking imports none."""
    code = ("import sys, gmr.pools; print(gmr.pools.find(), "
            "'concurrent.futures.thread' in sys.modules, 'futurist' in sys.modules); "
            "import concurrent.futures; "
            "pool = concurrent.futures.ThreadPoolExecutor(1); pool.submit(int).result(); "
            "print(len(gmr.pools.find()), gmr.pools.messaging_servers(), "
            "'oslo_messaging' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, timeout=60).stdout
    assert out.split() == ["()", "False", "False", "1", "{}", "False"]


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


# -- 3.10: the names of the functions a pool runs -------------------------------


class Blocker:
    """A task that is a method (3.10's code objects keep no class)."""

    def wait_here(self, started: threading.Semaphore, go: threading.Event) -> str:
        return blocked_task(started, go)

    @staticmethod
    def static(started: threading.Semaphore, go: threading.Event) -> str:
        return blocked_task(started, go)


def decorated(function: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(function)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        return function(*args, **kwargs)
    return wrapper


class Service:
    @decorated
    def handle(self) -> None:
        """Behind a functools.wraps wrapper."""

    @classmethod
    def build(cls) -> None:
        """A class method."""

    def __call__(self) -> None:
        """A callable object's."""


def test_qualified_names_from_the_function_objects() -> None:
    """What 3.10 reads for its names, on every Python: a function's, a bound
    method's, a partial's, a class's methods (static and class methods,
    those behind a wrapper), a callable object's; a functools.wraps wrapper
    is not given the name of the function it wraps."""
    names = pools.qualnames([Blocker().wait_here, functools.partial(blocked_task, None),
                             Service, Service(), None, pools.waits.MISSING])
    handle = Service.__dict__["handle"]
    assert names == {
        Blocker.wait_here.__code__: "Blocker.wait_here",
        blocked_task.__code__: "blocked_task",
        handle.__wrapped__.__code__: "Service.handle",
        Service.build.__func__.__code__: "Service.build",
        Service.__call__.__code__: "Service.__call__",
    }
    # The wrapper (functools.wraps named it "Service.handle"): no name.
    assert handle.__code__ not in names


def test_a_busy_workers_method_is_named_with_its_class(go: threading.Event) -> None:
    """The same name on every Python: on 3.10 the pool gives the qualified
    name its work items' functions carry."""
    with ThreadPoolExecutor(max_workers=2) as executor:
        busy = _busy(executor.submit, 1, go, Blocker().wait_here) \
            + _busy(executor.submit, 1, go, Blocker.static)
        pool = _only("concurrent.futures.ThreadPoolExecutor", executor)
        assert sorted(_running(pools.Tasks([pool]), pool)) == [
            f"{__name__}.Blocker.static", f"{__name__}.Blocker.wait_here"]
        assert bool(pool.names) is (sys.version_info < (3, 11))
        go.set()
        for future in busy:
            future.result(30)


@pytest.mark.skipif(importlib.util.find_spec("oslo_messaging") is None,
                    reason="oslo.messaging (a test extra) is not installed")
def test_the_pools_of_real_oslo_messaging_servers() -> None:
    """An RPC server's and a notification listener's executors are named as
    theirs (targets, endpoints' types), and their busy workers run the
    endpoints' methods the messages were dispatched to, past
    oslo.messaging's frames and its expected_exceptions wrapper; reading
    them looks nothing up the ordinary way on an endpoint."""
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(
        filter(None, [str(ROOT), os.environ.get("PYTHONPATH", "")])))
    out = subprocess.run([sys.executable, str(PROGRAMS / "messaging_servers.py")],
                         capture_output=True, text=True, timeout=120, env=env)
    assert out.returncode == 0, out.stderr
    found = json.loads(out.stdout)
    rpc, notification = sorted(found["pools"], key=lambda pool: pool["serves"]["kind"],
                               reverse=True)
    assert rpc == {
        "serves": {"type": "oslo_messaging.rpc.server.RPCServer", "kind": "rpc",
                   "targets": [{"topic": "compute", "server": "node-1", "exchange": "nova"}],
                   "endpoints": ["__main__.Watchful", "__main__.Compute"]},
        "busy": ["__main__.Compute.build"] * 2}
    assert notification == {
        "serves": {"type": "oslo_messaging.notify.listener.NotificationServer",
                   "kind": "notification",
                   "targets": [{"topic": "notifications", "server": None, "exchange": None}],
                   "endpoints": ["__main__.Audit"]},
        "busy": ["__main__.Audit.info"]}
    assert found["looked_up"] == []
