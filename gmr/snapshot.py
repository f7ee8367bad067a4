"""The snapshot: what one capture saw, as plain dataclasses and tuples.

The capture core copies only (code object, instruction offset) pairs while it
holds the GIL. Everything a person reads (file names, function names, line
numbers, source lines) is resolved afterwards, by gmr.resolve; thread names
are read here, after the pause.
"""

from __future__ import annotations

import os
import sys
import threading
import time
from array import array
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from types import CodeType, FrameType
from typing import NamedTuple, TypeVar, overload

from gmr import _originals, pools, resolve, waits
from gmr._impl import FALLBACK, IMPLEMENTATION, walker

GREENLET_STATES = {
    walker.GREENLET_NOT_STARTED: "not started",
    walker.GREENLET_SUSPENDED: "suspended",
    walker.GREENLET_RUNNING: "running",
    walker.GREENLET_DEAD: "dead",
}


class Frame(NamedTuple):
    """One frame of a stack, as the capture copied it. A tuple: a snapshot
    makes one for each distinct (code object, instruction) at once."""

    #: The code object being executed.
    code: CodeType
    #: Byte offset of the instruction being executed; -1 before the first.
    lasti: int

    @property
    def filename(self) -> str:
        """The file the code was compiled from."""
        return self.code.co_filename

    @property
    def function(self) -> str:
        """The function's qualified name where the interpreter keeps one (3.11+)."""
        return resolve.function_of(self.code)

    @property
    def line(self) -> int:
        """The line being executed."""
        return resolve.line_of(self.code, self.lasti)

    @property
    def source(self) -> str:
        """That line's source text, stripped; empty when it cannot be read."""
        return resolve.location(self.code, self.lasti).source


@dataclass(slots=True)
class ThreadStack:
    """An OS thread and its stack."""

    #: The thread's ident, as threading.get_ident() gives it.
    ident: int
    #: The kernel's thread id, or None where it cannot be known.
    native_id: int | None
    #: The threading.Thread name, or None for a thread threading does not know.
    name: str | None
    #: Whether this is the interpreter's main thread.
    is_main: bool
    #: The frames, outermost first (as in a traceback).
    frames: tuple[Frame, ...]
    #: The threading.Thread daemon flag, or None for a thread threading does not know.
    daemon: bool | None = None


class GreenletStack(NamedTuple):
    """A greenlet and, when it is suspended, its stack. A tuple: a snapshot
    makes thousands at once, without a call to each one's constructor."""

    #: id() of the greenlet: stable while it lives.
    id: int
    #: Qualified name of the greenlet's type (e.g. gevent's Greenlet).
    type_name: str
    #: "not started", "suspended", "running" or "dead". A running greenlet's
    #: frames are those of the thread it runs in.
    state: str
    #: id() of the parent greenlet, or None.
    parent_id: int | None
    #: The frames, outermost first; empty unless suspended.
    frames: tuple[Frame, ...]
    #: The greenlet itself, for sections that want more of it.
    greenlet: object = None


T = TypeVar("T")


class ColumnSequence(Sequence[T]):
    """A sequence read from columns: an item, or a slice of items, is made
    when it is asked for (_made)."""

    __slots__ = ()

    def _made(self, positions: range) -> tuple[T, ...]:
        raise NotImplementedError

    @overload
    def __getitem__(self, index: int) -> T: ...

    @overload
    def __getitem__(self, index: slice) -> tuple[T, ...]: ...

    def __getitem__(self, index: int | slice) -> T | tuple[T, ...]:
        if isinstance(index, slice):
            return self._made(range(*index.indices(len(self))))
        if index < 0:
            index += len(self)
        if not 0 <= index < len(self):
            raise IndexError(index)
        return self._made(range(index, index + 1))[0]


class GreenletTable(ColumnSequence[GreenletStack]):
    """The greenlets of a capture as columns, one entry each, in the order
    captured: arrays of numbers and a list of the greenlets, no object made
    per greenlet (a report of 10,000 would leave the allocator holding the
    arenas they took). Indexing makes its GreenletStack rows on demand."""

    __slots__ = ("objects", "ids", "parents", "states", "kinds", "type_names", "stacks",
                 "frames")

    def __init__(self, count: int) -> None:
        #: The greenlets themselves (None in a table made of rows without them).
        self.objects: list[object] = [None] * count
        #: id() of each, and of its parent (0: none).
        self.ids = array("Q", bytes(8 * count))
        self.parents = array("Q", bytes(8 * count))
        #: The walker's state number of each (GREENLET_STATES).
        self.states = bytearray(count)
        #: Each one's type, as an index into type_names.
        self.kinds = array("I", bytes(4 * count))
        self.type_names: list[str] = []
        #: Each one's stack, as an index into frames: its distinct stacks,
        #: outermost first.
        self.stacks = array("I", bytes(4 * count))
        self.frames: list[tuple[Frame, ...]] = []

    @classmethod
    def of(cls, rows: Iterable[GreenletStack]) -> GreenletTable:
        """A table of rows made by hand (tests, a snapshot built in code)."""
        rows = list(rows)
        table = cls(len(rows))
        names: dict[str, int] = {}
        stacks: dict[tuple[Frame, ...], int] = {}
        for index, row in enumerate(rows):
            table.objects[index] = row.greenlet
            table.ids[index] = row.id
            table.parents[index] = row.parent_id or 0
            table.states[index] = STATE_NUMBERS[row.state]
            table.kinds[index] = names.setdefault(row.type_name, len(names))
            table.stacks[index] = stacks.setdefault(row.frames, len(stacks))
        table.type_names, table.frames = list(names), list(stacks)
        return table

    def __len__(self) -> int:
        return len(self.ids)

    def _made(self, positions: range) -> tuple[GreenletStack, ...]:
        return tuple(map(self._row, positions))

    def _row(self, index: int) -> GreenletStack:
        return GreenletStack(self.ids[index], self.type_names[self.kinds[index]],
                             STATE_NAMES[self.states[index]], self.parents[index] or None,
                             self.frames[self.stacks[index]], self.objects[index])

    def state_counts(self) -> dict[str, int]:
        """How many greenlets are in each state, in the order each state is
        first met, those with none left out."""
        present = sorted((self.states.find(number), number)
                         for number in range(len(STATE_NAMES)) if number in self.states)
        return {STATE_NAMES[number]: self.states.count(number) for _, number in present}


@dataclass(frozen=True, slots=True)
class StalledLoop:
    """An event loop that had not come round for stall_report_after seconds
    when the watcher looked (gmr.stall)."""

    #: "eventlet", "gevent" or "asyncio".
    kind: str
    #: The loop's class, module-qualified (a hub's, for eventlet and gevent).
    type_name: str
    #: id() of the loop (of the hub, for eventlet and gevent: a gevent hub is
    #: its own greenlet; an asyncio loop's id is the loop_id of its tasks).
    loop_id: int
    #: The ident of the OS thread it runs in, None where it is not known.
    thread: int | None
    #: How long it had not come round when the watcher looked, at least
    #: (any turn after its heartbeat's due time would have run it), seconds.
    seconds: float
    #: Whether its heartbeat still had not run once the capture was over:
    #: the stacks show it still blocked. False: it came round meanwhile, and
    #: they may not show what blocked it.
    blocked_after_capture: bool


@dataclass(frozen=True, slots=True)
class StallFacts:
    """The loops that had not come round when a report was made (gmr.stall)."""

    #: [oslo_reports] stall_report_after, seconds.
    after: float
    loops: tuple[StalledLoop, ...]
    #: Stalls that ended before stall_report_interval allowed a report of
    #: them, since the last report that showed a stall.
    unreported: int = 0


@dataclass(frozen=True)
class Snapshot:
    """Everything one capture saw."""

    #: Wall-clock time of the capture (seconds since the epoch).
    captured_at: float
    #: The process that was captured.
    pid: int
    #: What asked for it: "signal", "file", "api", or "stall" (a loop that
    #: has not come round: gmr.stall); the watcher's set-up: "rehearsal".
    trigger: str
    #: How many triggers this one capture answers (a burst is coalesced).
    coalesced: int
    #: Which capture core ran: "compiled" or "pure".
    implementation: str
    #: The capture's longest continuous hold of the GIL, in nanoseconds.
    pause_ns: int
    #: Objects the greenlet discovery visited on the GC heap (0 without
    #: greenlet): the young generations only, unless heap_scanned.
    heap_objects: int
    #: Every OS thread but the one that captured.
    threads: tuple[ThreadStack, ...]
    #: Every greenlet on the heap, when greenlet is imported (rows given
    #: in a tuple are made a GreenletTable).
    greenlets: GreenletTable
    #: Which native units ran on their pure twin, why, and what that cost
    #: (gmr._impl.FALLBACK, one line); None when every unit was compiled.
    fallback: str | None = None
    #: How many holds of the GIL the capture took (other threads ran between
    #: them), and all of them together, in nanoseconds (0: pause_ns).
    holds: int = 1
    held_ns: int = 0
    #: Whether discovery scanned the whole GC heap for greenlets (the first
    #: capture after gc.freeze(), the pure twin), not just the young objects.
    heap_scanned: bool = True
    #: The thread pools (gmr.pools), read right after the capture.
    pools: tuple[pools.Pool, ...] = ()
    #: What each thread still waits on (gmr.waits), by ident, read right after.
    waits: dict[int, waits.Wait] = field(default_factory=dict)
    #: The event loops that had not come round for stall_report_after
    #: seconds when the watcher made this report (None: none, or not asked).
    stall: StallFacts | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.greenlets, GreenletTable):
            object.__setattr__(self, "greenlets", GreenletTable.of(self.greenlets))


# The main thread's own ident, taken when gmr is imported there: under gevent
# threading knows the main thread by its main greenlet's ident instead.
_MAIN_OS_IDENT = (_originals.get_ident()
                  if threading.current_thread() is threading.main_thread() else None)


def forget_frames() -> None:
    """Drop the resolved locations, and with them the references they hold to
    code objects (a leak check counts those), and the bytecode read to find
    what threads wait on."""
    resolve.forget()
    waits.forget()


class _Stacks:
    """The Frames of one capture: one Frame per distinct (code object,
    instruction), one tuple of Frames per distinct stack, shared by every
    thread and greenlet standing in it. Keyed by id() of what the capture
    holds, for as long as it is held (this one capture's build)."""

    def __init__(self) -> None:
        self.frames: dict[tuple[int, int], Frame] = {}
        self.stacks: dict[int, tuple[Frame, ...]] = {}

    def frame(self, code: CodeType, lasti: int) -> Frame:
        key = (id(code), lasti)
        known = self.frames.get(key)
        if known is None:
            known = self.frames[key] = Frame(code, lasti)
        return known

    def stack(self, raw_frames: tuple[tuple[CodeType, int], ...]) -> tuple[Frame, ...]:
        """Outermost first (the core hands them innermost first)."""
        known = self.stacks.get(id(raw_frames))
        if known is None:
            frame = self.frame
            known = self.stacks[id(raw_frames)] = tuple(
                frame(code, lasti) for code, lasti in reversed(raw_frames))
        return known


#: Each state's name, by the walker's number for it, and back.
STATE_NAMES = tuple(GREENLET_STATES[number] for number in range(len(GREENLET_STATES)))
STATE_NUMBERS = {name: number for number, name in enumerate(STATE_NAMES)}

#: Each greenlet type's qualified name.
_type_names: dict[type, str] = {}


#: Greenlets per call of the walker's greenlet_table (and records per slice
#: in the model, gmr.model.GreenletRecords): each call holds the GIL
#: throughout, and 1,000 greenlets 30 frames deep take about 0.4 ms;
#: between calls, the busy threads of the service get their turn.
SLICE = 1000


def _greenlet_table(raw: walker.RawCapture, stacks: _Stacks) -> GreenletTable:
    """The greenlets of a capture as a GreenletTable, written by the walker
    a slice at a time: no Python code runs for each of thousands."""
    table = GreenletTable(raw.greenlets)
    kind_numbers: dict[type, int] = {}
    stack_numbers: dict[int, int] = {}
    distinct: list[walker.RawFrames] = []
    for start in range(0, raw.greenlets, SLICE):
        raw.greenlet_table(start, start + SLICE, table.ids, table.parents, table.states,
                           table.kinds, table.stacks, table.objects, kind_numbers,
                           stack_numbers, distinct)
    for kind in kind_numbers:
        name = _type_names.get(kind)
        if name is None:
            name = _type_names[kind] = f"{kind.__module__}.{kind.__qualname__}"
        table.type_names.append(name)
    table.frames = list(map(stacks.stack, distinct))
    return table


def take(trigger: str = "api", coalesced: int = 1, include_caller: bool = False,
         skip: int = 0, turns: bool = False) -> Snapshot:
    """Capture every thread and greenlet now, from the calling thread, and
    build the snapshot after the pause. The calling thread is left out (the
    watcher's own), unless include_caller: then its stack, as it calls this,
    is added (a report asked for through the API shows who asked), less its
    skip innermost frames (gmr's own, between the caller and this). With
    turns, the service has the GIL between the capture's holds as long as
    each hold took (walker.capture)."""
    greenlet_module = sys.modules.get("greenlet")
    greenlet_type = getattr(greenlet_module, "greenlet", None)
    captured_at = time.time()
    raw = walker.capture(greenlet_type, turns=turns)
    # What the pools hold belongs to this moment: read before anything else.
    thread_pools = pools.find()

    # threading's table is read as it is, never under its lock: under
    # eventlet that lock is green and this runs in a real OS thread.
    known = dict(getattr(threading, "_active", {}))
    main = threading.main_thread()
    main_ident = main.ident
    stacks = _Stacks()
    threads = []
    for index in range(raw.threads):
        ident, native_id, raw_frames = raw.thread(index)
        is_main = (ident in (main_ident, _MAIN_OS_IDENT)
                   or bool(native_id and native_id == main.native_id))
        thread = known.get(ident) or (main if is_main else None)
        if not native_id:
            native_id = getattr(thread, "native_id", None) or 0
        threads.append(
            ThreadStack(
                ident=ident,
                native_id=native_id or None,
                name=getattr(thread, "name", None),
                daemon=getattr(thread, "daemon", None),
                is_main=is_main,
                frames=stacks.stack(raw_frames),
            )
        )
    if include_caller:
        caller = sys._getframe(1 + skip)
        stack: list[Frame] = []
        current: FrameType | None = caller
        while current is not None:
            stack.append(stacks.frame(current.f_code, current.f_lasti))
            current = current.f_back
        del caller, current
        ident = threading.get_ident()
        thread = known.get(ident)
        threads.insert(0, ThreadStack(
            ident=ident,
            native_id=threading.get_native_id(),
            name=getattr(thread, "name", None),
            daemon=getattr(thread, "daemon", None),
            is_main=ident == main_ident,
            frames=tuple(reversed(stack)),
        ))
    # Before the greenlets' rows: a thread blocked in a wait stays, one that
    # moved on since the capture was not waiting.
    thread_waits = waits.find(threads)
    greenlets = _greenlet_table(raw, stacks)
    snapshot = Snapshot(
        captured_at=captured_at,
        pid=os.getpid(),
        trigger=trigger,
        coalesced=coalesced,
        implementation=IMPLEMENTATION,
        pause_ns=raw.pause_ns,
        heap_objects=raw.heap_objects,
        holds=raw.holds,
        held_ns=raw.held_ns,
        heap_scanned=raw.heap_scanned,
        threads=tuple(threads),
        greenlets=greenlets,
        fallback=FALLBACK,
        pools=thread_pools,
        waits=thread_waits,
    )
    raw.release()
    return snapshot
