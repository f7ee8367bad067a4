"""The thread pools of the process, found without its cooperation (issue 14).

concurrent.futures' ThreadPoolExecutor and futurist's keep a record of their
worker threads at module level (``concurrent.futures.thread._threads_queues``,
``futurist._thread._to_be_cleaned``), and each worker leads to its pool: a
CPython worker by the weak reference it was started with, a futurist worker
by its ``executor_ref``. Nothing is imported here: a pool module the service
has not imported has no pool, and looking costs a dict lookup.

The pool an oslo.messaging server made for its messages (its executor) is
named as that server's: the server is found from its listener's poll
thread, in threading's table of threads (the thread's target is the
listener's bound method, and the listener holds the server's own as its
callback), only where the service imported oslo.messaging.

What a worker is doing is read from the stack the capture copied, not from
the pool (which has moved on since): it is busy when its stack runs a work
item, and it runs the first function above the work item's own frames (in a
message server's pool, the first above oslo.messaging's dispatch: the
endpoint's method).

The objects of oslo.messaging and of the service (a server, its target, its
endpoints) are read the way gmr.waits reads them: attributes from the
instance's dict or slots (no property, no __getattr__), types by their MRO
(no __instancecheck__), never a repr: no code of the service runs.
"""

from __future__ import annotations

import functools
import os
import sys
import threading
import time
import types
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

#: oslo.messaging's modules that say a server runs: its servers' base class,
#: and the listener whose poll thread hands the server its messages.
_MESSAGING_SERVER = "oslo_messaging.server"
_MESSAGING_LISTENER = "oslo_messaging._drivers.base"
#: The kinds of server, by the module and name of their base class.
_MESSAGING_KINDS = (("oslo_messaging.rpc.server", "RPCServer", "rpc"),
                    ("oslo_messaging.notify.listener", "NotificationServerBase", "notification"))
#: Where a server's dispatcher calls the endpoint's method (the frames
#: between it and the method are oslo.messaging's own wrappers).
_MESSAGING_DISPATCH = (("oslo_messaging.rpc.dispatcher", ("RPCDispatcher", "_do_dispatch")),
                       ("oslo_messaging.notify.dispatcher",
                        ("NotificationDispatcher", "_exec_callback")),
                       ("oslo_messaging.notify.dispatcher",
                        ("BatchNotificationDispatcher", "_exec_callback")))

#: Whether a code object keeps its function's qualified name (3.11+). On
#: 3.10 a pool keeps the qualified names of the functions its work items run,
#: read from the function objects (Pool.names).
_CODE_QUALNAMES = sys.version_info >= (3, 11)


@dataclass(frozen=True, slots=True)
class MessagingTarget:
    """Where an oslo.messaging server listens (an oslo_messaging.Target)."""

    topic: str | None
    server: str | None
    exchange: str | None


@dataclass(frozen=True, slots=True)
class MessagingServer:
    """The oslo.messaging server whose executor a pool is."""

    #: Its type ("oslo_messaging.rpc.server.RPCServer").
    type: str
    #: "rpc" (an RPC server), "notification" (a notification listener), or
    #: "server" (another kind of oslo.messaging server).
    kind: str
    #: The targets it listens on: an RPC server's one, a notification
    #: listener's every one.
    targets: tuple[MessagingTarget, ...]
    #: The type of each of its endpoints (module and qualified name), in order.
    endpoints: tuple[str, ...]


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
    #: The oslo.messaging server it is the executor of, where it is one.
    serves: MessagingServer | None = None
    #: 3.10, whose code objects keep no qualified name: the qualified names
    #: of the functions its work items run (and of its server's endpoints'
    #: methods), by their code. Empty on 3.11+.
    names: tuple[tuple[CodeType, str], ...] = ()


#: A class's own attributes, read by type's descriptors (a metaclass's
#: __getattribute__ does not run).
_MRO: Any = type.__dict__["__mro__"]
_DICT: Any = type.__dict__["__dict__"]
_MODULE: Any = type.__dict__["__module__"]
_QUALNAME: Any = type.__dict__["__qualname__"]


def _type_name(cls: type) -> str:
    """A class's module and qualified name."""
    return f"{_MODULE.__get__(cls)}.{_QUALNAME.__get__(cls)}"


def _kind(executor: object) -> str:
    full = _type_name(type(executor))
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


def _work_item(frame: FrameType | None, runs: frozenset[CodeType]) -> object:
    """The work item a worker runs: the self of the innermost work item's
    run() on its live stack; None when it runs none."""
    while frame is not None and frame.f_code not in runs:
        frame = frame.f_back
    return None if frame is None else frame.f_locals.get("self")


def _submitted_at(item: object) -> float | None:
    """When a futurist work item was submitted: the time futurist's
    statistics callback on its future holds (time.monotonic()), read
    without running the service's code."""
    callbacks = waits.plain_attribute(waits.plain_attribute(item, "future"), "_done_callbacks")
    if type(callbacks) is not list:
        return None
    for callback in list(callbacks):
        if type(callback) is functools.partial \
                and getattr(callback.func, "__name__", None) == "_capture_stats" \
                and callback.args and type(callback.args[0]) is float:
            return float(callback.args[0])
    return None


def _pool(executor: object, workers: list[int], futurist: bool,
          frames: dict[int, FrameType], runs: frozenset[CodeType],
          serves: MessagingServer | None, endpoints: Sequence[type]) -> Pool:
    name = getattr(executor, "_thread_name_prefix", None)  # concurrent.futures' own
    submitted = []
    functions: list[object] = [] if _CODE_QUALNAMES else list(endpoints)
    for ident in workers:
        frame = frames.get(ident)
        if frame is None:
            continue
        item = _work_item(frame, runs)
        if item is None:
            continue
        if futurist:
            at = _submitted_at(item)
            if at is not None:
                submitted.append((ident, at))
        if not _CODE_QUALNAMES:
            functions.append(waits.plain_attribute(item, "fn"))
    return Pool(kind=_kind(executor), id=id(executor),
                name=name if type(name) is str and name else None,
                max_workers=_int_or_none(getattr(executor, "_max_workers", None)),
                queued=_queued(getattr(executor, "_work_queue", None)),
                workers=tuple(workers), submitted=tuple(submitted), read_at=time.monotonic(),
                serves=serves,
                names=tuple(qualnames(functions).items()) if functions else ())


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
    executors: dict[int, tuple[object, list[int], bool]] = {}
    for source, futurist in ((_cpython_workers, False), (_futurist_workers, True)):
        try:
            for executor, ident in source():
                executors.setdefault(id(executor), (executor, [], futurist))[1].append(ident)
        except Exception:  # a pool changing under us: those of that kind are left out
            continue
    if not executors:
        return ()
    # The workers' live frames hold their work items: futurist's record of
    # when each was submitted, and (3.10) the functions they run.
    frames = sys._current_frames() if not _CODE_QUALNAMES or any(
        futurist for _, _, futurist in executors.values()) else {}
    runs, _ = _runner_codes()
    servers = messaging_servers()
    found = []
    for key, (executor, workers, futurist) in executors.items():
        serves, endpoints = servers.get(key, (None, ()))
        try:
            found.append(_pool(executor, workers, futurist, frames, runs, serves, endpoints))
        except Exception:  # an executor that cannot be read is left out
            continue
    return tuple(found)


# -- oslo.messaging's servers ------------------------------------------------


def _bound_to(method: object, cls: object) -> object:
    """The object method is bound to, where it is a bound method of an
    instance of cls (as its type's MRO says: no __instancecheck__ runs);
    else None."""
    if type(method) is not types.MethodType or not isinstance(cls, type):
        return None
    owner = method.__self__
    return owner if cls in _MRO.__get__(type(owner)) else None


def _plain_str(value: object, name: str) -> str | None:
    found = waits.plain_attribute(value, name)
    return found if type(found) is str else None


def _target(target: object) -> MessagingTarget:
    return MessagingTarget(_plain_str(target, "topic"), _plain_str(target, "server"),
                           _plain_str(target, "exchange"))


def _messaging_server(server: object) -> tuple[MessagingServer, tuple[type, ...]]:
    """What a server is, and its endpoints' types."""
    mro = _MRO.__get__(type(server))
    kind = "server"
    for module, name, which in _MESSAGING_KINDS:
        if getattr(sys.modules.get(module), name, None) in mro:
            kind = which
            break
    # Lists by their type first: isinstance() would read the __class__ of
    # anything else, which may be a property.
    targets: Sequence[object] = ()
    if kind == "rpc":
        targets = (waits.plain_attribute(server, "_target"),)
    else:
        listed = waits.plain_attribute(server, "targets")
        if type(listed) in (list, tuple) and isinstance(listed, (list, tuple)):
            targets = list(listed)
    endpoints = waits.plain_attribute(waits.plain_attribute(server, "dispatcher"), "endpoints")
    classes: tuple[type, ...] = ()
    if type(endpoints) in (list, tuple) and isinstance(endpoints, (list, tuple)):
        classes = tuple(type(endpoint) for endpoint in endpoints)
    return (MessagingServer(_type_name(type(server)), kind,
                            tuple(_target(target) for target in targets
                                  if target is not waits.MISSING),
                            tuple(_type_name(cls) for cls in classes)),
            classes)


def messaging_servers() -> dict[int, tuple[MessagingServer, tuple[type, ...]]]:
    """The oslo.messaging servers that run, by id() of their executor (the
    pool their messages are handled in), each with its endpoints' types.
    Each is found from its listener's poll thread in threading's table:
    the thread's target is the listener's bound _runner, and the listener's
    callback the server's bound _on_incoming. Nothing when the service has
    not imported oslo.messaging."""
    server_module = sys.modules.get(_MESSAGING_SERVER)
    listener_module = sys.modules.get(_MESSAGING_LISTENER)
    if server_module is None or listener_module is None:
        return {}
    server_type = getattr(server_module, "MessageHandlingServer", None)
    listener_type = getattr(listener_module, "PollStyleListenerAdapter", None)
    found = {}
    # threading's table as it is, never under its lock (gmr.snapshot says why).
    for thread in list(getattr(threading, "_active", {}).values()):
        try:
            listener = _bound_to(waits.plain_attribute(thread, "_target"), listener_type)
            server = None if listener is None else _bound_to(
                waits.plain_attribute(listener, "on_incoming_callback"), server_type)
            if server is None:
                continue
            executor = waits.plain_attribute(server, "_work_executor")
            if executor is None or executor is waits.MISSING:
                continue
            found[id(executor)] = _messaging_server(server)
        except Exception:  # a server being made or stopped: left out
            continue
    return found


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


def _function_names(function: object, into: dict[CodeType, str]) -> None:
    """The qualified name of a function's code, and of the functions it
    wraps: functools.wraps' __wrapped__, and the functions its closure holds
    (a decorator's wrapper keeps there the function it calls). A wrapper
    that carries the name of the function it wraps (functools.wraps copies
    it) is left out: its code's own name is not that one."""
    todo = [function]
    for _ in range(32):  # chains of wrappers, bounded
        if not todo:
            return
        function = todo.pop()
        if type(function) is not types.FunctionType or function.__code__ in into:
            continue
        code, qualname = function.__code__, function.__qualname__
        if type(qualname) is str and qualname.rpartition(".")[2] == code.co_name:
            into[code] = qualname
        todo.append(function.__dict__.get("__wrapped__"))
        for cell in function.__closure__ or ():
            try:
                todo.append(cell.cell_contents)
            except ValueError:  # a cell not filled yet
                continue


def qualnames(values: Iterable[object]) -> dict[CodeType, str]:
    """The qualified names of the functions values are or hold, by their
    code: a function, a bound method's function, a partial's, a class's
    methods (its own and its bases', static and class methods too), a
    callable object's class's. For 3.10, whose code objects keep only the
    function's name; read from the objects' dicts, running nothing."""
    found: dict[CodeType, str] = {}
    classes: dict[type, None] = {}
    for value in values:
        for _ in range(16):  # partials of bound methods of ..., bounded
            if type(value) is types.MethodType:
                value = value.__func__
            elif type(value) is functools.partial:
                value = value.func
            else:
                break
        if type(value) is types.FunctionType:
            _function_names(value, found)
        elif value is not None and value is not waits.MISSING:
            # A class (no __instancecheck__, no __class__ read), or a callable
            # object's class.
            cls = value if issubclass(type(value), type) else type(value)
            classes.update(dict.fromkeys(_MRO.__get__(cls)[:-1]))  # object's are C
    for cls in classes:
        for member in list(_DICT.__get__(cls).values()):
            if type(member) in (staticmethod, classmethod):
                member = member.__func__
            _function_names(member, found)
    return found


class Tasks:
    """What pool workers run, read from their captured stacks: one per
    report (it looks up the runners' code and the modules' files once).
    found: the report's pools, whose names (3.10) it gives their functions."""

    def __init__(self, found: Iterable[Pool] = ()) -> None:
        self._runs, self._between = _runner_codes()
        self._dispatch = frozenset(
            code for code in (_code_of(module, path) for module, path in _MESSAGING_DISPATCH)
            if code is not None)
        package = getattr(sys.modules.get("oslo_messaging"), "__file__", None)
        self._messaging = os.path.dirname(package) + os.sep if type(package) is str else None
        self._names = {code: name for pool in found for code, name in pool.names}
        self._modules: dict[str, str] | None = None

    def running(self, codes: Sequence[CodeType]) -> str | None:
        """What a worker runs, from the code objects of its captured stack
        (outermost first): the module and qualified name of the first
        function above the work item's run(), "" when the task has no Python
        frame of its own (it runs in C), or None when the worker is idle. A
        message an oslo.messaging server dispatched runs the endpoint's
        method: the first function above the dispatcher's oslo.messaging
        frames."""
        for index, code in enumerate(codes):
            if code in self._runs:
                task = [code for code in codes[index + 1:] if code not in self._between]
                return self.name(task[self._endpoint(task)]) if task else ""
        return None

    def _endpoint(self, task: Sequence[CodeType]) -> int:
        """Where in the task the endpoint's method is, when it is a message
        an oslo.messaging server dispatched (else 0, the task's first
        function; also when the worker has not reached the method)."""
        if not self._dispatch or self._messaging is None:
            return 0
        for index, code in enumerate(task):
            if code in self._dispatch:
                for above in range(index + 1, len(task)):
                    if not task[above].co_filename.startswith(self._messaging):
                        return above
                return 0
        return 0

    def name(self, code: CodeType) -> str:
        """A function's name as a report gives it: module and qualified name."""
        if self._modules is None:
            self._modules = {}
            for name, loaded in list(sys.modules.items()):
                filename = getattr(loaded, "__file__", None)
                if type(filename) is str:
                    self._modules.setdefault(filename, name)
        module = self._modules.get(code.co_filename)
        function = self._names.get(code) or resolve.function_of(code)
        return f"{module}.{function}" if module else function
