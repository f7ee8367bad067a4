"""The thread pools of the process, found without its cooperation (issue 14).

concurrent.futures' ThreadPoolExecutor and futurist's keep a record of their
worker threads at module level (``concurrent.futures.thread._threads_queues``,
``futurist._thread._to_be_cleaned``), and each worker leads to its pool: a
CPython worker by the weak reference it was started with, a futurist worker
by its ``executor_ref``. Nothing is imported here: a pool module the service
has not imported has no pool, and looking costs a dict lookup.

What a worker is doing is read from the stack the capture copied, not from
the pool (which has moved on since): it is busy when its stack runs a work
item, and it runs the first function above the work item's own frames.
"""

from __future__ import annotations

import functools
import sys
import time
import weakref
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from types import CodeType, FrameType
from typing import Any

from gmr import resolve, waits

#: The pool modules, by the name a service imports them under.
_CPYTHON = "concurrent.futures.thread"
_FUTURIST = "futurist._thread"

#: What a pool's type is called in a report, for the types whose module is
#: private (the name a service writes).
_PUBLIC_NAMES = {
    "concurrent.futures.thread.ThreadPoolExecutor": "concurrent.futures.ThreadPoolExecutor",
    "futurist._futures.ThreadPoolExecutor": "futurist.ThreadPoolExecutor",
}


@dataclass(frozen=True, slots=True)
class Pool:
    """One thread pool, as it was read just after the capture."""

    #: Its type, as a service names it ("futurist.ThreadPoolExecutor").
    kind: str
    #: id() of the executor object.
    id: int
    #: The prefix of its threads' names, where it has one.
    name: str | None
    max_workers: int | None
    #: Work items submitted and not yet taken by a worker.
    queued: int | None
    #: The threads it started and that still run (their idents), in order.
    workers: tuple[int, ...]
    #: When the work item each worker runs was submitted (time.monotonic()),
    #: by ident, where the pool records it (futurist's statistics do), and
    #: when that was read.
    submitted: tuple[tuple[int, float], ...] = ()
    read_at: float = 0.0


def _kind(executor: object) -> str:
    cls = type(executor)
    full = f"{cls.__module__}.{cls.__qualname__}"
    return _PUBLIC_NAMES.get(full, full)


def _weak_keys(table: Any) -> list[Any]:
    """The live keys of a WeakKeyDictionary, copied in one C call (the
    pool's own threads add and drop keys meanwhile)."""
    refs = list(getattr(table, "data", {}))
    return [key for key in (ref() for ref in refs) if key is not None]


def _queued(queue: Any) -> int | None:
    """How many items wait in a pool's queue, read without its lock: a
    queue.Queue's deque, a SimpleQueue's own count (a C call)."""
    items = getattr(queue, "queue", None)
    if items is not None:
        return len(items)
    qsize = getattr(queue, "qsize", None)
    if type(queue).__module__ == "_queue" and qsize is not None:
        return int(qsize())
    return None


def _int_or_none(value: Any) -> int | None:
    return value if type(value) is int else None


def _pool(executor: object, workers: list[int],
          frames: dict[int, FrameType] | None) -> Pool:
    name = getattr(executor, "_thread_name_prefix", None)  # concurrent.futures' own
    submitted = []
    if frames is not None:
        for ident in workers:
            at = _submitted_at(frames.get(ident))
            if at is not None:
                submitted.append((ident, at))
    return Pool(kind=_kind(executor), id=id(executor),
                name=name if type(name) is str and name else None,
                max_workers=_int_or_none(getattr(executor, "_max_workers", None)),
                queued=_queued(getattr(executor, "_work_queue", None)),
                workers=tuple(workers), submitted=tuple(submitted), read_at=time.monotonic())


def _submitted_at(frame: FrameType | None) -> float | None:
    """When the work item a futurist worker runs was submitted: the time
    futurist's statistics callback on its future holds (time.monotonic()),
    read without running the service's code."""
    run = _code_of("futurist._utils", ("WorkItem", "run"))
    while frame is not None and frame.f_code is not run:
        frame = frame.f_back
    if frame is None:
        return None
    item = frame.f_locals.get("self")
    callbacks = waits.plain_attribute(waits.plain_attribute(item, "future"), "_done_callbacks")
    if type(callbacks) is not list:
        return None
    for callback in list(callbacks):
        if type(callback) is functools.partial \
                and getattr(callback.func, "__name__", None) == "_capture_stats" \
                and callback.args and type(callback.args[0]) is float:
            return float(callback.args[0])
    return None


def _cpython_workers() -> Iterable[tuple[object, int]]:
    """(executor, thread ident) of each live concurrent.futures worker."""
    module = sys.modules.get(_CPYTHON)
    if module is None:
        return
    for thread in _weak_keys(getattr(module, "_threads_queues", None)):
        # Its target's arguments, the executor's weak reference first
        # (3.10-3.15), until the thread's run() ends and drops them.
        args = getattr(thread, "_args", None)
        ident = getattr(thread, "ident", None)
        if not args or type(ident) is not int or not thread.is_alive():
            continue
        reference = args[0]
        executor = reference() if isinstance(reference, weakref.ref) else None
        if executor is not None:
            yield executor, ident


def _futurist_workers() -> Iterable[tuple[object, int]]:
    """(executor, thread ident) of each live futurist worker."""
    module = sys.modules.get(_FUTURIST)
    if module is None:
        return
    for worker in _weak_keys(getattr(module, "_to_be_cleaned", None)):
        reference = getattr(worker, "executor_ref", None)
        ident = getattr(worker, "ident", None)
        if not isinstance(reference, weakref.ref) or type(ident) is not int \
                or not worker.is_alive():
            continue
        executor = reference()
        if executor is not None:
            yield executor, ident


def find() -> tuple[Pool, ...]:
    """Every live thread pool with at least one running worker, in the
    order their first workers were found."""
    executors: dict[int, tuple[object, list[int]]] = {}
    for source in (_cpython_workers, _futurist_workers):
        try:
            for executor, ident in source():
                executors.setdefault(id(executor), (executor, []))[1].append(ident)
        except Exception:  # a pool changing under us: those of that kind are left out
            continue
    # The workers' frames, for futurist's record of when each item was submitted.
    frames = sys._current_frames() if any(
        type(executor).__module__.startswith("futurist")
        for executor, _ in executors.values()) else None
    found = []
    for executor, workers in executors.values():
        try:
            found.append(_pool(executor, workers,
                               frames if type(executor).__module__.startswith("futurist")
                               else None))
        except Exception:  # an executor that cannot be read is left out
            continue
    return tuple(found)


# -- what a worker runs, from its captured stack -----------------------------


def _code_of(module_name: str, path: Sequence[str]) -> CodeType | None:
    value: Any = sys.modules.get(module_name)
    for name in path:
        value = getattr(value, name, None)
    return getattr(value, "__code__", None)


def _runner_codes() -> tuple[frozenset[CodeType], frozenset[CodeType]]:
    """The code of the work items' run() (where a busy worker's task
    begins), and of the frames between it and the task (3.14's
    WorkerContext.run)."""
    runs = {_code_of(_CPYTHON, ("_WorkItem", "run")),
            _code_of("futurist._utils", ("WorkItem", "run"))}
    between = {_code_of(_CPYTHON, ("WorkerContext", "run"))}
    return (frozenset(code for code in runs if code is not None),
            frozenset(code for code in between if code is not None))


class Tasks:
    """What pool workers run, read from their captured stacks: one per
    report (it looks up the runners' code and the modules' files once)."""

    def __init__(self) -> None:
        self._runs, self._between = _runner_codes()
        self._modules: dict[str, str] | None = None

    def running(self, codes: Sequence[CodeType]) -> str | None:
        """What a worker runs, from the code objects of its captured stack
        (outermost first): the module and qualified name of the first
        function above the work item's run(), "" when the task has no Python
        frame of its own (it runs in C), or None when the worker is idle."""
        for index, code in enumerate(codes):
            if code in self._runs:
                for task in codes[index + 1:]:
                    if task not in self._between:
                        return self.name(task)
                return ""
        return None

    def name(self, code: CodeType) -> str:
        """A function's name as a report gives it: module and qualified name."""
        if self._modules is None:
            self._modules = {}
            for name, loaded in list(sys.modules.items()):
                filename = getattr(loaded, "__file__", None)
                if type(filename) is str:
                    self._modules.setdefault(filename, name)
        module = self._modules.get(code.co_filename)
        function = resolve.function_of(code)
        return f"{module}.{function}" if module else function
