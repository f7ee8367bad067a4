"""asyncio tasks of real loops, running in the main thread and in threads of
their own, read from yet another thread as the watcher reads them."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Coroutine
from typing import Any

from gmr.tasks import TaskStack, capture_tasks

#: How long a test waits for a fact before it gives up.
TIMEOUT = 10


async def deepest(event: asyncio.Event) -> None:
    await event.wait()


async def middle(event: asyncio.Event) -> None:
    await deepest(event)


def by_name(tasks: tuple[TaskStack, ...]) -> dict[str, TaskStack]:
    return {task.name: task for task in tasks}


def assert_parked(task: TaskStack) -> None:
    assert task.state == "pending"
    functions = [frame.function for frame in task.frames]
    assert functions[:2] == ["middle", "deepest"], functions
    assert task.frames[1].source == "await event.wait()"


def test_tasks_of_two_loops_with_their_awaited_stacks() -> None:
    loops: list[asyncio.AbstractEventLoop] = []
    events: list[asyncio.Event] = []
    ready = threading.Barrier(3)

    def run_loop(tag: str) -> None:
        loop = asyncio.new_event_loop()
        loops.append(loop)

        async def main() -> None:
            event = asyncio.Event()
            events.append(event)
            parked = [asyncio.create_task(middle(event), name=f"{tag}-parked-{n}")
                      for n in range(3)]
            await asyncio.sleep(0)
            ready.wait()
            await asyncio.gather(*parked)

        loop.run_until_complete(main())
        loop.close()

    threads = [threading.Thread(target=run_loop, args=(tag,)) for tag in ("a", "b")]
    for thread in threads:
        thread.start()
    ready.wait()
    try:
        tasks = capture_tasks()
    finally:
        for loop, event in zip(loops, events, strict=True):
            loop.call_soon_threadsafe(event.set)
        for thread in threads:
            thread.join(TIMEOUT)
    parked = [task for task in tasks if "-parked-" in task.name]
    assert sorted(task.name for task in parked) == sorted(
        f"{tag}-parked-{n}" for tag in "ab" for n in range(3))
    assert len({task.loop_id for task in parked}) == 2
    for task in parked:
        assert_parked(task)
    mains = [task for task in tasks if task.frames and task.frames[0].function.endswith("main")]
    assert len(mains) == 2


def test_a_loop_in_the_main_thread_and_a_stuck_one_in_a_thread() -> None:
    """The main thread's loop idles while a third thread reads the tasks; the
    other loop is stuck inside a task that blocks its thread, as a stalled
    service is. A task that is done is listed on no version."""
    inside = threading.Event()  # the blocking task runs and holds its loop
    release = threading.Event()
    main_idle = threading.Event()  # the main thread's task has suspended

    async def blocks() -> None:
        inside.set()
        release.wait(TIMEOUT)

    async def stuck_main() -> None:
        eager = getattr(asyncio, "eager_task_factory", None)
        if eager is not None:
            # 3.12+: an eager task, listed as eager while its first step runs.
            eager(asyncio.get_running_loop(), blocks(), name="stuck")
        else:
            asyncio.create_task(blocks(), name="stuck")
            await asyncio.sleep(0)

    stuck = threading.Thread(target=lambda: asyncio.run(stuck_main()), name="stuck-loop")

    def read_when_stuck() -> tuple[TaskStack, ...]:
        try:
            assert inside.wait(TIMEOUT) and main_idle.wait(TIMEOUT)
            return capture_tasks()
        finally:
            release.set()

    async def main_thread_main() -> tuple[TaskStack, ...]:
        event = asyncio.Event()
        parked = [asyncio.create_task(middle(event), name=f"main-parked-{n}") for n in range(2)]
        finished = asyncio.create_task(asyncio.sleep(0), name="finished")
        await finished  # done, still referenced: 3.10-3.13 keep it until collected
        assert all(not task.done() for task in parked)  # started, parked in event.wait()
        stuck.start()
        try:
            # Called back once this step has suspended in the await below.
            asyncio.get_running_loop().call_soon(main_idle.set)
            # A thread of asyncio's executor: a real OS thread with no loop.
            return await asyncio.to_thread(read_when_stuck)
        finally:
            event.set()
            await asyncio.gather(*parked)

    assert threading.current_thread() is threading.main_thread()
    try:
        tasks = by_name(asyncio.run(main_thread_main()))
    finally:
        release.set()
        stuck.join(TIMEOUT)

    assert "finished" not in tasks
    main_loop = tasks["main-parked-0"].loop_id
    for name in ("main-parked-0", "main-parked-1"):
        assert_parked(tasks[name])
        assert tasks[name].loop_id == main_loop
        assert "running=True" in tasks[name].loop
    (main_task,) = [task for task in tasks.values()
                    if task.frames and task.frames[0].function.endswith("main_thread_main")]
    assert main_task.loop_id == main_loop and main_task.state == "pending"

    assert tasks["stuck"].state == "running"
    assert tasks["stuck"].loop_id != main_loop
    (running_frame,) = tasks["stuck"].frames
    assert running_frame.function.endswith("blocks")
    assert running_frame.source == "release.wait(TIMEOUT)"
    assert len({task.loop_id for task in tasks.values()}) == 2


class Relabelled(asyncio.Task[Any]):
    """A Task subclass whose readers are the application's code: gmr reads its
    tasks through asyncio's own methods and never calls these."""

    calls = 0

    def get_name(self) -> str:
        Relabelled.calls += 1
        return "relabelled"

    def get_coro(self) -> Any:
        Relabelled.calls += 1
        return None


def relabelled_factory(loop: asyncio.AbstractEventLoop, coro: Coroutine[Any, Any, Any],
                       **kwargs: Any) -> asyncio.Task[Any]:
    return Relabelled(coro, loop=loop, **kwargs)


def test_a_task_subclass_is_found_and_read_without_its_overrides() -> None:
    async def main() -> tuple[tuple[TaskStack, ...], int]:
        asyncio.get_running_loop().set_task_factory(relabelled_factory)
        event = asyncio.Event()
        parked = asyncio.create_task(middle(event), name="subclassed")
        await asyncio.sleep(0)
        before = Relabelled.calls
        try:
            captured = await asyncio.to_thread(capture_tasks)
            return captured, Relabelled.calls - before
        finally:
            event.set()
            await parked

    captured, overrides_called = asyncio.run(main())
    assert overrides_called == 0
    tasks = by_name(captured)
    assert "relabelled" not in tasks
    assert_parked(tasks["subclassed"])
