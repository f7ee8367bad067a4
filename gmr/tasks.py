"""asyncio tasks: for every event loop, in any thread, its tasks that are not
done yet, with their name, state and the coroutine stack each is awaiting.

Read after the capture, never inside the pause, and only when the application
has imported asyncio (gmr never imports it). Where asyncio keeps its tasks
changed in 3.14:

- 3.10 to 3.13: one registry for the whole process, the C module's own objects
  re-exported by ``asyncio.tasks``: the WeakSet ``_all_tasks`` (3.10, 3.11), the
  WeakSet ``_scheduled_tasks`` and the set ``_eager_tasks`` (3.12, 3.13). gmr
  copies them.
- 3.14 on: the C module keeps each native task (``asyncio.Task`` or a subclass)
  in a linked list on the state of the thread that created it (moved to the
  interpreter's list when that thread ends). The sets above still exist in
  ``asyncio.tasks`` but serve only the pure-Python fallback, so they stay
  empty. The one way Python reads the lists is the C ``_asyncio.all_tasks(loop)``:
  given a loop (it need not run in the caller's thread), it walks the list of
  every thread and returns that loop's pending tasks. It holds the GIL while it
  walks, takes only the interpreter's thread-list lock (as
  ``sys._current_frames()`` does) and changes no task. The only Python code
  it runs is the stdlib's WeakSet iterator over tasks of classes that are not
  asyncio.Task (it copies the set first), and done() and get_loop() of
  asyncio.Task's subclasses, as asyncio.all_tasks() always has. Its
  stop-the-world pause stops threads only on free-threaded builds, which gmr
  does not support yet.
  So gmr finds the loops first (``_loops``).

Every version lists the same tasks of a running loop: those not done
(``asyncio.all_tasks()``'s choice; 3.14's lists drop a task once it is done).
A task is read through asyncio's own Task methods, never a subclass's override
(that would be the application's code), and a task's stack follows
``cr_await`` from its coroutine down to what it waits on.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from types import FrameType
from typing import Any

from gmr.snapshot import Frame

#: inspect.CO_OPTIMIZED: a function's frame, whose f_locals is a read-only view (PEP 667).
_CO_OPTIMIZED = 0x0001


@dataclass(frozen=True)
class TaskStack:
    """One asyncio task."""

    #: The task's name (Task-N unless the application named it).
    name: str
    #: "running" (its coroutine is executing now) or "pending".
    state: str
    #: id() of the loop the task belongs to.
    loop_id: int
    #: repr of that loop (its type, running or closed).
    loop: str
    #: The awaited coroutine frames, outermost first.
    frames: tuple[Frame, ...]


def _members(registry: Any) -> list[Any]:
    """What a set or a WeakSet of tasks holds, copied by one C call under the GIL."""
    if isinstance(registry, set):
        return list(registry)
    # A WeakSet: copy its set of weak references rather than iterate it. Its own
    # iterator is Python code that other threads interleave with, and before 3.14
    # it raises "changed size during iteration" and marks the set as iterated
    # meanwhile. Calling a weak reference changes nothing.
    data = getattr(registry, "data", None)
    if not isinstance(data, set):
        return []
    return [task for task in (ref() for ref in list(data)) if task is not None]


def _loops() -> list[Any]:
    """Every event loop a frame of some thread holds in its locals: a running
    loop is ``self`` in its run_forever frame, and one without Python frames of
    its own (uvloop's) is the ``_loop`` of the asyncio.Runner that runs it.

    A loop no frame holds (one not running, kept only inside some object) is
    not found: 3.14's lists are kept by thread, not by loop, and the running
    loop of another thread is not readable from Python."""
    loop_type = getattr(sys.modules.get("asyncio.events"), "AbstractEventLoop", None)
    if loop_type is None:
        return []
    runner_type = getattr(sys.modules.get("asyncio.runners"), "Runner", None)
    found: dict[int, Any] = {}
    for top in sys._current_frames().values():
        frame: FrameType | None = top
        while frame is not None:
            # A function's frame only: its f_locals reads the frame and changes
            # nothing (3.13+, and this runs on 3.14+ only); a module's or a class
            # body's is a mapping the application may have made.
            if frame.f_code.co_flags & _CO_OPTIMIZED:
                for value in frame.f_locals.values():
                    # type(), not isinstance(): no __class__ of the application's.
                    if runner_type is not None and issubclass(type(value), runner_type):
                        value = vars(value).get("_loop")
                    if issubclass(type(value), loop_type):
                        found[id(value)] = value
            frame = frame.f_back
    return list(found.values())


def _all_tasks() -> list[Any]:
    tasks_module = sys.modules.get("asyncio.tasks")
    if tasks_module is None:
        return []
    found: list[Any] = []
    for name in ("_all_tasks", "_scheduled_tasks", "_eager_tasks"):
        registry = getattr(tasks_module, name, None)
        if registry is not None:
            found += _members(registry)
    # 3.14+: the per-thread lists, one loop at a time (the C function exists
    # only there; the Python all_tasks() reads the sets copied above).
    all_tasks = getattr(sys.modules.get("_asyncio"), "all_tasks", None)
    if all_tasks is not None:
        for loop in _loops():
            try:
                found += all_tasks(loop)
            except Exception:  # a task class of the application's failing in done()
                continue
    unique = {id(task): task for task in found}
    return list(unique.values())


def _task_classes() -> tuple[type, ...]:
    """asyncio's own Task classes: the C one, and the pure-Python one."""
    classes = (getattr(sys.modules.get("_asyncio"), "Task", None),
               getattr(sys.modules.get("asyncio.tasks"), "_PyTask", None))
    return tuple(cls for cls in classes if isinstance(cls, type))


def _reader(task: Any, classes: tuple[type, ...]) -> Any:
    """The asyncio class whose methods read task (get_name(), done()...)."""
    for cls in classes:
        if issubclass(type(task), cls):
            return cls
    return type(task)  # a task-like class of its own: only its methods know


def _awaited_frames(coroutine: Any) -> tuple[Frame, ...]:
    frames: list[FrameType] = []
    awaitable = coroutine
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
    """Every asyncio task not done yet, of every loop in any thread, grouped by loop."""
    classes = _task_classes()
    out = []
    for task in _all_tasks():
        try:
            reader = _reader(task, classes)
            if reader.done(task):  # 3.10-3.13 keep a done task until it is collected
                continue
            coroutine = reader.get_coro(task)
            running = getattr(coroutine, "cr_running", False) or getattr(
                coroutine, "gi_running", False)
            loop = reader.get_loop(task)
            out.append(TaskStack(
                name=reader.get_name(task),
                state="running" if running else "pending",
                loop_id=id(loop),
                loop=repr(loop),
                frames=_awaited_frames(coroutine),
            ))
        except Exception:  # a task finishing under us: leave it out
            continue
    out.sort(key=lambda stack: (stack.loop_id, stack.name))
    return tuple(out)
