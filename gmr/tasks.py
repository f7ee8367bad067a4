"""asyncio tasks: for every event loop, its tasks with their name, state and
the coroutine stack each is awaiting.

Read after the capture, from asyncio's own registry of tasks (``_all_tasks``
on 3.10/3.11, ``_scheduled_tasks`` and ``_eager_tasks`` on 3.12+), so there is
no cost when asyncio is not imported and none inside the pause. A task's stack
follows ``cr_await`` from its coroutine down to what it waits on.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from types import FrameType
from typing import Any

from gmr.snapshot import Frame


@dataclass(frozen=True)
class TaskStack:
    """One asyncio task."""

    #: The task's name (Task-N unless the application named it).
    name: str
    #: "pending", "running", "done", "cancelled" or "failed".
    state: str
    #: id() of the loop the task belongs to.
    loop_id: int
    #: repr of that loop (its type, running or closed).
    loop: str
    #: The awaited coroutine frames, outermost first.
    frames: tuple[Frame, ...]


def _all_tasks() -> list[Any]:
    tasks_module = sys.modules.get("asyncio.tasks")
    if tasks_module is None:
        return []
    found: list[Any] = []
    for name in ("_all_tasks", "_scheduled_tasks", "_eager_tasks"):
        registry = getattr(tasks_module, name, None)
        if registry is None:
            continue
        # The registry may change under us (the loop's thread runs): copy it,
        # retrying the rare "changed size during iteration".
        for _ in range(5):
            try:
                found.extend(list(registry))
                break
            except RuntimeError:
                continue
    unique = {id(task): task for task in found}
    return list(unique.values())


def _state(task: Any) -> str:
    if not task.done():
        coroutine = task.get_coro()
        running = getattr(coroutine, "cr_running", False)
        return "running" if running else "pending"
    if task.cancelled():
        return "cancelled"
    return "failed" if task.exception() is not None else "done"


def _awaited_frames(task: Any) -> tuple[Frame, ...]:
    frames: list[FrameType] = []
    awaitable = task.get_coro()
    for _ in range(1000):  # a bound against a cycle
        frame = getattr(awaitable, "cr_frame", None) or getattr(awaitable, "gi_frame", None)
        if frame is not None:
            frames.append(frame)
        following = getattr(awaitable, "cr_await", None) or getattr(awaitable, "gi_yieldfrom", None)
        if following is None:
            break
        awaitable = following
    return tuple(Frame(frame.f_code, frame.f_lasti) for frame in frames)


def capture_tasks() -> tuple[TaskStack, ...]:
    """Every asyncio task not yet collected, grouped by loop."""
    out = []
    for task in _all_tasks():
        try:
            loop = task.get_loop()
            out.append(TaskStack(
                name=task.get_name(),
                state=_state(task),
                loop_id=id(loop),
                loop=repr(loop),
                frames=_awaited_frames(task),
            ))
        except Exception:  # a task finishing under us: leave it out
            continue
    out.sort(key=lambda stack: (stack.loop_id, stack.name))
    return tuple(out)
