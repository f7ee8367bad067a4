"""asyncio tasks of real loops, running in their own threads."""

import asyncio
import threading

from gmr.tasks import capture_tasks


async def deepest(event: asyncio.Event) -> None:
    await event.wait()


async def middle(event: asyncio.Event) -> None:
    await deepest(event)


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
            thread.join(10)
    parked = [task for task in tasks if "-parked-" in task.name]
    assert sorted(task.name for task in parked) == sorted(
        f"{tag}-parked-{n}" for tag in "ab" for n in range(3))
    assert len({task.loop_id for task in parked}) == 2
    for task in parked:
        assert task.state == "pending"
        functions = [frame.function for frame in task.frames]
        assert functions[:2] == ["middle", "deepest"], functions
        assert task.frames[1].source == "await event.wait()"
    mains = [task for task in tasks if task.frames and task.frames[0].function.endswith("main")]
    assert len(mains) == 2
