"""Stall reports: a report gmr makes by itself when an event loop has not
come round for ``[oslo_reports] stall_report_after`` seconds, made while the
loop is still blocked, so that its stacks show what blocks it.

The loops are eventlet's hub, gevent's hubs and asyncio's event loops, in
any thread. Each watched loop runs a heartbeat: a timer of the loop's own
(eventlet's ``schedule_call_global``, a gevent ``loop.timer`` that is not
ref'd, asyncio's ``call_later``) that calls its :class:`Loop` every
``period`` seconds (a quarter of ``after``). The call writes one float,
``Loop.due``: the time by which the loop should call it again. No lock, and
no allocation but the timer's own: a gevent timer repeats by itself, eventlet
and asyncio make one timer per beat. No heartbeat keeps its loop alive or
changes what it does: an eventlet hub runs until it is aborted whatever its
timers, a gevent timer that is not ref'd does not keep ``loop.run()`` from
returning, and asyncio runs a loop until it is stopped and drops its timers
when it is closed.

The watcher thread (gmr.watcher), a real OS thread, compares: a loop that
has not run its heartbeat ``after`` seconds past ``due`` has not come round
for at least that long, since any turn of the loop after ``due`` would have
run it. The report states that lower bound; the loop may have been blocked
up to one ``period`` longer. The watcher wakes when the first loop would be
that late, and at least once each ``after`` to find new loops: about once
each ``after`` while they come round. A loop that is not running (a hub not
started yet, a gevent loop that ran out of work, an asyncio loop stopped)
is not late; it counts from the first check that sees it running again.
What stops the whole process stops its loops too: a process stopped
(SIGSTOP, a debugger) for longer than ``after`` gives a stall report when it
goes on, and a C call that holds the GIL that long, one once the GIL is free
(the watcher needs it to look), showing where the loop's thread is then.

A loop is not thread-safe: its heartbeat starts in the loop's own thread, or
through the loop's own thread-safe call, which also wakes it.

- asyncio: ``call_soon_threadsafe`` from any thread. Found running in the
  thread that sets gmr up and in the main thread, and in any thread: before
  3.13 among the loops of pending tasks (asyncio's registries, as gmr.tasks
  reads them), from 3.13 idle (a thread whose innermost frame's caller is
  asyncio's own ``BaseEventLoop._run_once``, its ``self`` read through the
  frame's read-only locals view, PEP 667; from 3.14 the registries are
  empty, and reading frames costs a look at each thread's innermost two
  frames, where the registries cost a look at each task). A loop whose
  self-pipe is a green socket (asyncio on a monkey-patched process) is left
  alone: writing to it from the watcher's thread would make that thread a
  hub. uvloop's loops are not watched (no Python frames, no attributes).
- gevent: ``loop.run_callback_threadsafe`` from any thread. Found in the
  thread that sets gmr up, in the main thread (a call the main thread runs
  itself, below), and, from 3.13, idle in any thread (innermost frame
  ``Hub.run``).
- eventlet: its hub has no thread-safe call, and a timer added from another
  thread can be lost (``prepare_timers`` empties ``next_timers`` after it
  read it): only in the hub's own thread, outside the hub's greenlet. So
  the hub of the thread that sets gmr up, and the main thread's.

The main thread is asked through CPython's pending calls (the main thread
runs the call at its next bytecode, as it runs a Python signal handler):
while no loop of the main thread is watched, one call at a time looks for
the loop of the main thread there, so that a gevent hub or an asyncio loop
made after set-up is found (3.10-3.12 have no other way to see a gevent
hub). A call waits while the main thread is blocked in C: a loop is watched
only once its heartbeat can be started.

One report per stall: a loop reported stalled is not reported again until
it has come round (its ``due`` moved). Across stalls, stall reports have a
rate of their own, at most one each ``stall_report_interval`` seconds,
apart from the triggers' token bucket: a stall report takes no token, so
signals are never kept waiting by stalls, and a flood of signals keeps no
stall from being seen. A stall found while the interval runs is reported
once it allows, if the loop is still blocked; one that ended meanwhile is
counted in the next report that shows a stall. A report made for a trigger
while a loop is stalled shows the stall in its header, which counts as its
report.
"""

from __future__ import annotations

import sys
import weakref
from dataclasses import dataclass
from time import monotonic
from typing import Any

from gmr import _originals, snapshot, tasks
from gmr._impl import trigger

#: What Loop.state() says.
GONE, PAUSED, RUNNING = "gone", "paused", "running"

#: Each heartbeat runs every `after` / PERIODS seconds.
PERIODS = 4

#: The watcher checks at most this often (seconds).
MIN_GAP = 0.005

#: Whether a frame's locals can be read without changing the frame: from
#: 3.13 f_locals is a read-only view (PEP 667); before, reading it writes a
#: dict of the locals into the frame.
_FRAME_LOCALS_VIEW = sys.version_info >= (3, 13)


def _type_name(obj: object) -> str:
    kind = type(obj)
    return f"{kind.__module__}.{kind.__qualname__}"


class Loop:
    """One watched loop, and its heartbeat: the loop calls it, in its own thread."""

    #: "eventlet", "gevent" or "asyncio".
    kind = ""

    __slots__ = ("ref", "loop_id", "type_name", "thread", "period", "due", "active",
                 "installed", "reported", "pending", "paused", "timer", "__weakref__")

    def __init__(self, loop: Any, period: float, thread: int | None) -> None:
        self.ref = weakref.ref(loop)
        self.loop_id = id(loop)
        self.type_name = _type_name(loop)
        #: The ident of the OS thread it runs in (None: not known yet).
        self.thread = thread
        self.period = period
        #: The time (monotonic) by which the loop should run the heartbeat
        #: again; until it first runs, the time it was asked to start.
        self.due = monotonic()
        #: False once gmr forgets the loop: the heartbeat then stops itself.
        self.active = True
        #: Whether the heartbeat has run at least once.
        self.installed = False
        #: The due time of the stall last reported (a stall is reported once).
        self.reported: float | None = None
        #: The due time of a stall found while stall_report_interval ran.
        self.pending: float | None = None
        #: Whether the loop was not running when last looked at.
        self.paused = False
        self.timer: Any = None

    def __call__(self) -> None:
        raise NotImplementedError

    def start(self, here: bool) -> bool:
        """Start the heartbeat: in the loop's thread (here) or through its
        thread-safe call. Whether it was started or asked for."""
        raise NotImplementedError

    def state(self) -> str:
        raise NotImplementedError

    def lost(self) -> bool:
        """Whether the heartbeat is known to have been dropped by its loop."""
        return False

    def describe(self) -> tuple[str, int, int | None, bool, float]:
        return (self.kind, self.loop_id, self.thread, self.installed, self.due)


class _Asyncio(Loop):
    kind = "asyncio"
    __slots__ = ()

    def __call__(self) -> None:
        # A callback of the loop's own, in its thread: the first from
        # call_soon_threadsafe, then one call_later each period.
        try:
            self.due = monotonic() + self.period
            self.installed = True
            loop = self.ref()
            if self.active and loop is not None:
                loop.call_later(self.period, self)
        except Exception:  # the loop closing under it: never an error in the service's log
            pass

    def start(self, here: bool) -> bool:
        loop = self.ref()
        if loop is None:
            return False
        own = vars(loop)
        # The self-pipe call_soon_threadsafe writes to: a green socket's send
        # from this thread would make a hub here.
        if own.get("_closed") or type(own.get("_csock")).__module__ != "socket":
            return False
        try:
            loop.call_soon_threadsafe(self)
        except Exception:  # closed meanwhile
            return False
        return True

    def state(self) -> str:
        loop = self.ref()
        if loop is None:
            return GONE
        own = vars(loop)
        if own.get("_closed"):
            return GONE
        thread = own.get("_thread_id")
        if thread is None:
            return PAUSED
        self.thread = thread
        return RUNNING


class _Gevent(Loop):
    kind = "gevent"
    __slots__ = ()

    def __call__(self) -> None:
        # The repeating timer's callback, in the hub's thread.
        try:
            self.due = monotonic() + self.period
            timer, period = self.timer
            if not self.active or period != self.period:
                timer.stop()
                timer.close()
                self.timer = None
                if self.active:
                    self._install()
        except Exception:
            pass

    def _install(self) -> None:
        # run_callback_threadsafe's callback, in the hub's thread.
        try:
            hub = self.ref()
            if not self.active or hub is None or self.timer is not None:
                return
            timer = hub.loop.timer(self.period, self.period, ref=False)
            timer.start(self)
            self.timer = (timer, self.period)
            self.due = monotonic() + self.period
            self.installed = True
        except Exception:
            pass

    def start(self, here: bool) -> bool:
        hub = self.ref()
        loop = getattr(hub, "loop", None)
        if loop is None:
            return False
        try:
            loop.run_callback_threadsafe(self._install)
        except Exception:  # destroyed meanwhile
            return False
        return True

    def state(self) -> str:
        hub = self.ref()
        if hub is None or hub.dead:
            return GONE
        loop = getattr(hub, "loop", None)
        if loop is None:  # destroyed
            return GONE
        # libev's depth: inside loop.run() (0 before the hub first ran, and
        # after the loop ran out of work); libuv does not say (-1).
        return PAUSED if loop.depth == 0 else RUNNING


class _Eventlet(Loop):
    kind = "eventlet"
    __slots__ = ("local",)

    def __init__(self, loop: Any, period: float, thread: int | None,
                 local: dict[str, Any]) -> None:
        super().__init__(loop, period, thread)
        #: The thread's eventlet locals: its hub while it is this one.
        self.local = local

    def __call__(self) -> None:
        # A global timer of the hub, in its thread; one per beat.
        try:
            self.due = monotonic() + self.period
            self.installed = True
            hub = self.ref()
            if self.active and hub is not None:
                self.timer = hub.schedule_call_global(self.period, self)
        except Exception:
            pass

    def start(self, here: bool) -> bool:
        hub = self.ref()
        greenlet = sys.modules.get("greenlet")
        if (not here or hub is None or greenlet is None
                or greenlet.getcurrent() is getattr(hub, "greenlet", None)):
            return False  # in the hub's own greenlet: maybe inside prepare_timers
        try:
            self.timer = hub.schedule_call_global(self.period, self)
        except Exception:
            return False
        return True

    def state(self) -> str:
        hub = self.ref()
        if hub is None or self.local.get("hub") is not hub:  # a hub of its own since (use_hub)
            return GONE
        return RUNNING if vars(hub).get("running") else PAUSED

    def lost(self) -> bool:
        # An aborted hub empties its timers; run again, it has no heartbeat.
        hub, timer = self.ref(), self.timer
        if hub is None or timer is None or getattr(timer, "called", True):
            return False
        own = vars(hub)
        scheduled = list(own.get("timers", ())) + list(own.get("next_timers", ()))
        return all(entry[1] is not timer for entry in scheduled)


def _here() -> list[tuple[type[Loop], Any, dict[str, Any] | None]]:
    """The loops of the calling thread: its eventlet hub, its gevent hub,
    the asyncio loop running in it. Nothing is made (no get_hub())."""
    found: list[tuple[type[Loop], Any, dict[str, Any] | None]] = []
    local = getattr(sys.modules.get("eventlet.hubs"), "_threadlocal", None)
    if local is not None:
        try:
            own = local.__dict__
        except AttributeError:
            own = {}
        if own.get("hub") is not None:
            found.append((_Eventlet, own["hub"], own))
    gevent_hub = getattr(sys.modules.get("gevent._hub_local"), "get_hub_if_exists", None)
    hub = gevent_hub() if gevent_hub is not None else None
    if hub is not None:
        found.append((_Gevent, hub, None))
    running = getattr(sys.modules.get("asyncio.events"), "_get_running_loop", None)
    loop = running() if running is not None else None
    if loop is not None and _asyncio_loop(loop):
        found.append((_Asyncio, loop, None))
    return found


def _asyncio_loop(loop: Any) -> bool:
    """Whether loop is one of asyncio's own kind (with Python attributes
    to read; uvloop's are not)."""
    base = getattr(sys.modules.get("asyncio.base_events"), "BaseEventLoop", None)
    return base is not None and issubclass(type(loop), base) and hasattr(loop, "__dict__")


#: Tasks read per C call (about 0.1 ms): between two, other threads may
#: take the GIL.
TASK_SLICE = 1000


def _task_loops() -> list[Any]:
    """The loops of asyncio's pending tasks (3.10-3.12: its registries, as
    gmr.tasks reads them). The tasks of a busy service are thousands, and
    this runs at each check: each registry is read by C calls (weak
    references called, get_loop of the C Task), TASK_SLICE tasks each, a
    Python call per task only for tasks of other classes."""
    tasks_module = sys.modules.get("asyncio.tasks")
    if tasks_module is None:
        return []
    task_type = getattr(sys.modules.get("_asyncio"), "Task", None)
    get_loop = getattr(task_type, "get_loop", None)
    loops: dict[int, Any] = {}
    for name in ("_all_tasks", "_scheduled_tasks", "_eager_tasks"):
        registry = getattr(tasks_module, name, None)
        members: list[Any]
        found: list[Any]
        if isinstance(registry, set):
            members = list(registry)
        else:
            data = getattr(registry, "data", None)
            if not isinstance(data, set):
                continue
            refs = list(data)
            members = []
            for start in range(0, len(refs), TASK_SLICE):
                members += filter(None, map(weakref.ref.__call__, refs[start:start + TASK_SLICE]))
        try:
            if get_loop is None:
                raise TypeError("no C Task")
            found = []
            for start in range(0, len(members), TASK_SLICE):
                found += map(get_loop, members[start:start + TASK_SLICE])
        except TypeError:  # a task of another class: asked one by one
            classes = tasks._task_classes()
            found = []
            for task in members:
                try:
                    found.append(tasks._reader(task, classes).get_loop(task))
                except Exception:
                    continue
        loops.update(zip(map(id, found), found, strict=True))
    return list(loops.values())


def _elsewhere() -> list[tuple[type[Loop], Any]]:
    """Loops of other threads, seen without running their code: before
    3.13 the loops of asyncio's pending tasks, from 3.13 the asyncio loops
    and gevent hubs idle in any thread."""
    if not _FRAME_LOCALS_VIEW:
        return [(_Asyncio, loop) for loop in _task_loops() if _asyncio_loop(loop)]
    found: list[tuple[type[Loop], Any]] = []
    run_once = getattr(getattr(sys.modules.get("asyncio.base_events"), "BaseEventLoop", None),
                       "_run_once", None)
    hub_run = getattr(getattr(sys.modules.get("gevent.hub"), "Hub", None), "run", None)
    run_once_code = getattr(run_once, "__code__", None)
    hub_run_code = getattr(hub_run, "__code__", None)
    if run_once_code is None and hub_run_code is None:
        return found
    for top in sys._current_frames().values():
        if top.f_code is hub_run_code:
            found.append((_Gevent, top.f_locals.get("self")))
            continue
        caller = top.f_back
        if caller is not None and caller.f_code is run_once_code:
            loop = caller.f_locals.get("self")
            if _asyncio_loop(loop):
                found.append((_Asyncio, loop))
    return found


@dataclass(frozen=True)
class Found:
    """Stalled loops, as the watcher found them, for one report."""

    after: float
    #: (loop, its due time then, how late it was, its thread)
    loops: tuple[tuple[Loop, float, float, int | None], ...]
    unreported: int

    def facts(self) -> snapshot.StallFacts:
        """After the capture: whether each loop was still blocked."""
        return snapshot.StallFacts(self.after, tuple(
            snapshot.StalledLoop(record.kind, record.type_name, record.loop_id, thread, late,
                                 record.due == due)
            for record, due, late, thread in self.loops), self.unreported)


class Monitor:
    """The watched loops, for one watcher: found, given heartbeats, checked."""

    def __init__(self, after: float, interval: float) -> None:
        self._loops: dict[int, Loop] = {}
        #: A call queued for the main thread that has not run yet.
        self._main_call = False
        #: The main thread's OS ident (under gevent, threading knows it by
        #: its main greenlet's), as the main thread's call finds it.
        self._main_ident = snapshot._MAIN_OS_IDENT
        self._last_report: float | None = None
        self._unreported = 0
        self._next = 0.0
        self._stopped = False
        #: How many checks were made (for tests and benchmarks).
        self.checks = 0
        self.configure(after, interval)

    def configure(self, after: float, interval: float) -> None:
        self.after = after
        self.interval = interval
        self.period = after / PERIODS
        for record in list(self._loops.values()):
            record.period = self.period  # each heartbeat takes it up at its next beat
        self._next = 0.0

    def stop(self) -> None:
        """Forget every loop: each heartbeat stops itself at its next beat."""
        self._stopped = True
        for record in list(self._loops.values()):
            record.active = False
        self._loops.clear()

    def after_fork(self) -> None:
        """In a forked child: only the forking thread's loops are left."""
        here = _originals.get_ident()
        for key, record in list(self._loops.items()):
            if record.thread != here:
                record.active = False
                self._loops.pop(key, None)
        self._main_call = False
        self._next = 0.0

    def watched(self) -> list[tuple[str, int, int | None, bool, float]]:
        """(kind, loop id, thread, whether its heartbeat has run, its due
        time) of each watched loop."""
        return [record.describe() for record in list(self._loops.values())]

    def next_check(self) -> float:
        """When the watcher should look next (time.monotonic())."""
        return self._next

    # -- finding loops ------------------------------------------------------------------

    def watch_here(self) -> None:
        """Watch the calling thread's loops (set-up, the main thread's call)."""
        if self._stopped:
            return
        here = _originals.get_ident()
        for kind, loop, local in _here():
            if kind is _Eventlet and local is not None:
                self._watch(_Eventlet(loop, self.period, here, local), here=True)
            else:
                self._watch(kind(loop, self.period, here), here=True)

    def _in_main(self) -> None:
        """The main thread's call (a pending call: it runs there)."""
        self._main_ident = _originals.get_ident()
        self._main_call = False
        self.watch_here()

    def _discover(self) -> None:
        main = self._main_ident
        if (not self._main_call
                and not any(record.thread == main for record in list(self._loops.values()))
                and any(name in sys.modules
                        for name in ("eventlet.hubs", "gevent._hub_local", "asyncio.events"))):
            # Set first: the main thread may run the call before this returns.
            self._main_call = True
            if not trigger.call_in_main_thread(self._in_main):
                self._main_call = False
        for kind, loop in _elsewhere():
            known = self._loops.get(id(loop))
            if known is None or known.ref() is not loop:
                thread = getattr(loop, "thread_ident", None) if kind is _Gevent else None
                self._watch(kind(loop, self.period, thread), here=False)

    def _watch(self, record: Loop, here: bool) -> None:
        loop = record.ref()
        known = self._loops.setdefault(record.loop_id, record)
        if known is not record:
            if known.ref() is loop:
                return
            known.active = False  # another object that had the same id
            self._loops[record.loop_id] = record
        if not record.start(here):
            record.active = False
            if self._loops.get(record.loop_id) is record:
                del self._loops[record.loop_id]

    # -- checking them ------------------------------------------------------------------

    def _scan(self, now: float) -> list[tuple[Loop, float, float, int | None]]:
        """Each running loop that has not come round for `after` seconds:
        (loop, due, how late, thread). Forgets loops that are gone."""
        late_loops = []
        threads: dict[int, Any] | None = None
        for key, record in list(self._loops.items()):
            state = record.state()
            if state == GONE:
                self._forget(key, record)
                continue
            if state == PAUSED:
                record.paused = True
                continue
            if record.paused:  # running again: counted from now
                record.paused = False
                record.due = max(record.due, now)
            due = record.due
            if record.pending is not None and record.pending != due:
                record.pending = None  # it came round before it could be reported
                self._unreported += 1
            late = now - due
            if late < self.after:
                continue
            if record.lost():
                self._forget(key, record)
                continue
            if record.thread is not None:
                if threads is None:
                    threads = sys._current_frames()
                if record.thread not in threads:  # a loop of a thread that is gone
                    self._forget(key, record)
                    continue
            late_loops.append((record, due, late, record.thread))
        return late_loops

    def _forget(self, key: int, record: Loop) -> None:
        record.active = False
        if self._loops.get(key) is record:
            del self._loops[key]

    def _found(self, late_loops: list[tuple[Loop, float, float, int | None]]) -> Found:
        for record, due, _, _ in late_loops:
            record.reported = due
            record.pending = None
        unreported, self._unreported = self._unreported, 0
        return Found(self.after, tuple(late_loops), unreported)

    def check(self, now: float | None = None) -> Found | None:
        """At a wake-up of the watcher: once the time has come, look for new
        loops and check every one; the stalled loops to report now, if any
        (each stall once; none while stall_report_interval runs)."""
        now = monotonic() if now is None else now
        if now < self._next or self._stopped:
            return None
        self.checks += 1
        self._discover()
        late_loops = [entry for entry in self._scan(now) if entry[0].reported != entry[1]]
        found = None
        if late_loops:
            if (self._last_report is None or self.interval <= 0
                    or now - self._last_report >= self.interval):
                self._last_report = now
                found = self._found(late_loops)
            else:
                for record, due, _, _ in late_loops:
                    record.pending = due
        self._next = self._schedule(now)
        return found

    def current(self, now: float | None = None) -> Found | None:
        """For a report made for a trigger: every loop that has not come round
        for `after` seconds now. Its stall counts as reported by it."""
        if self._stopped:
            return None
        late_loops = self._scan(monotonic() if now is None else now)
        return self._found(late_loops) if late_loops else None

    def _schedule(self, now: float) -> float:
        """The next check: when the first loop would be `after` late, or when
        the interval allows a pending stall's report; at least once each
        `after` (to find new loops). Every time wanted is after now (a loop
        as late as that was reported or held back at this check)."""
        wanted = [now + self.after]
        for record in list(self._loops.values()):
            if record.pending is not None and self._last_report is not None:
                wanted.append(self._last_report + self.interval)
            elif not record.paused and record.reported != record.due:
                wanted.append(record.due + self.after)
        return max(min(wanted), now + MIN_GAP)
