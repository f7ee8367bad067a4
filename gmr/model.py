"""The report model as data: typed, frozen records that both renderers read.

Stacks are a table: the distinct frames of the report, resolved once each
(:class:`gmr.resolve.Location`), and the distinct stacks as tuples of frame
indices. Every thread, greenlet, task and group of identical stacks points at
its stack by index, so that 10,000 greenlets parked in a few places are a few
stacks, each made text once, and a renderer (or a compiled assembler) writes
a listing by reusing its stack's text.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from itertools import repeat
from types import CodeType
from typing import Any, NamedTuple

from gmr import resolve
from gmr.greenlets import IdentityColumns
from gmr.pools import MessagingServer
from gmr.resolve import Location
from gmr.snapshot import STATE_NAMES, ColumnSequence, Frame, GreenletTable
from gmr.waits import Wait


class Stack(NamedTuple):
    """One distinct stack, outermost first, as indices into StackTable.frames.
    A stack deeper than the report's max_stack_depth keeps its top (frames)
    and bottom (innermost) and says how many frames are cut between."""

    frames: tuple[int, ...]
    omitted: int = 0
    innermost: tuple[int, ...] = ()


@dataclass(frozen=True, slots=True)
class StackTable:
    """The distinct frames of a report, resolved, and its distinct stacks."""

    frames: tuple[Location, ...] = ()
    stacks: tuple[Stack, ...] = ()

    def locations(self, indices: tuple[int, ...]) -> list[Location]:
        frames = self.frames
        return [frames[index] for index in indices]


class ThreadRecord(NamedTuple):
    """An OS thread."""

    id: int
    name: str | None
    native_id: int | None
    main: bool
    daemon: bool | None
    #: The kernel's state ("sleeping", ...), None where unknown.
    state: str | None
    cpu_seconds: float | None
    #: Its stack, an index into StackTable.stacks.
    stack: int
    #: id() of the thread pool it works for (a PoolRecord's id), else None.
    pool: int | None = None
    #: What it waits on, where the capture and the moment after agree.
    wait: Wait | None = None


class DeadlockLink(NamedTuple):
    """One thread of a deadlock: the lock it waits for, and who holds it."""

    thread: int
    name: str | None
    lock: Wait


class DeadlockRecord(NamedTuple):
    """Threads each waiting for a lock that the next one holds, the last
    for one the first holds."""

    links: tuple[DeadlockLink, ...]


class GreenletRecord(NamedTuple):
    """A greenlet that is not dead."""

    id: int
    type: str
    name: str | None
    minimal_ident: int | None
    state: str
    parent: int | None
    #: The OS thread its hub runs in, where gevent says so.
    thread: int | None
    spawned_by: int | None
    #: Where it was spawned (gevent's record), an index into
    #: StackTable.stacks; None where nothing was recorded.
    spawning_stack: int | None
    stack: int


class GreenletRecords(ColumnSequence[GreenletRecord]):
    """The greenlets of a report that are not dead, in the order captured,
    read from the snapshot's columns (gmr.snapshot.GreenletTable): each
    GreenletRecord is made when a slice of them is asked for, and a
    renderer asks for a few hundred at a time. A report of 10,000 greenlets
    keeps no object per greenlet while it is written, so the allocator
    takes no arena for them (it would keep one, and what the report made to
    last would pin another)."""

    __slots__ = ("_table", "_rows", "_stacks", "_who", "_thread_of")

    def __init__(self, table: GreenletTable, rows: Sequence[int] | None,
                 stacks: Sequence[int], thread_of: Callable[[int], int | None],
                 who: IdentityColumns | None = None) -> None:
        #: The snapshot's greenlets, and the rows of those listed (None: all).
        self._table, self._rows = table, rows
        #: The model's stack index of each of the table's stacks.
        self._stacks = stacks
        #: The OS thread of a row's greenlet (its hub's), or None.
        self._thread_of = thread_of
        #: By position among those listed: who each greenlet is, with the
        #: model's index of its spawning stack (None: nothing recorded).
        self._who = who

    def __len__(self) -> int:
        return len(self._table) if self._rows is None else len(self._rows)

    def rows(self) -> Iterable[int]:
        """The table's row of each greenlet listed."""
        return range(len(self._table)) if self._rows is None else self._rows

    def stack_keys(self) -> Iterable[tuple[int, int]]:
        """(model stack index, state number) of each greenlet listed: two
        greenlets are one group only where both are equal (a running
        greenlet's frames are its thread's, so it is never one group with a
        greenlet that has no frames because it has not started)."""
        table = self._table
        return zip(map(self._stacks.__getitem__, map(table.stacks.__getitem__, self.rows())),
                   map(table.states.__getitem__, self.rows()), strict=True)

    def _made(self, positions: range) -> tuple[GreenletRecord, ...]:
        """The records at these positions, made a column at a time by the
        interpreter's own loops (map, zip): no Python call per greenlet."""
        table = self._table
        rows = positions if self._rows is None else list(map(self._rows.__getitem__, positions))
        ids = list(map(table.ids.__getitem__, rows))
        parents = [parent or None for parent in map(table.parents.__getitem__, rows)]
        names: Iterable[str | None] = repeat(None)
        idents: Iterable[int | None] = repeat(None)
        spawned_by: Iterable[int | None] = repeat(None)
        spawning: Iterable[int | None] = repeat(None)
        who = self._who
        if who is not None:
            names = map(who.names.__getitem__, positions)
            idents = map(who.minimal_idents.__getitem__, positions)
            spawned_by = [spawner or None for spawner in map(who.spawned_by.__getitem__, positions)]
            spawning = [None if number < 0 else number
                        for number in map(who.spawning.__getitem__, positions)]
        states = map(STATE_NAMES.__getitem__, map(table.states.__getitem__, rows))
        # zip stops with ids: the columns of None are endless.
        return tuple(map(tuple.__new__, repeat(GreenletRecord), zip(  # noqa: B905
            ids, map(table.type_names.__getitem__, map(table.kinds.__getitem__, rows)),
            names, idents, states, parents, map(self._thread_of, rows), spawned_by, spawning,
            map(self._stacks.__getitem__, map(table.stacks.__getitem__, rows)))))


class PoolWorker(NamedTuple):
    """A busy worker of a thread pool."""

    #: Its thread's ident and name.
    thread: int
    name: str | None
    #: The module and qualified name of the function it runs (gmr.pools.Tasks;
    #: never its arguments), "" when its task runs in C with no frame of its own.
    task: str
    #: How long ago its work item was submitted (its wait in the queue and
    #: its run so far), where the pool records it (futurist); else None.
    submitted_seconds_ago: float | None = None


class PoolRecord(NamedTuple):
    """A thread pool (concurrent.futures' or futurist's ThreadPoolExecutor)."""

    id: int
    #: Its type, as a service names it ("futurist.ThreadPoolExecutor").
    type: str
    #: The prefix of its threads' names, where it has one.
    name: str | None
    max_workers: int | None
    #: Its worker threads, how many of them run a work item, how many wait
    #: for one, and the work items queued for them.
    threads: int
    busy: int
    idle: int
    queued: int | None
    busy_workers: tuple[PoolWorker, ...]
    #: The oslo.messaging server it is the executor of, where it is one.
    serves: MessagingServer | None = None


class TaskRecord(NamedTuple):
    """An asyncio task not done yet."""

    name: str
    state: str
    loop_id: int
    loop: str
    stack: int


class Group(NamedTuple):
    """Threads or greenlets standing in the very same stack."""

    #: How many there are (JSON's "count").
    total: int
    #: The first few of them (grouping.MEMBERS_SHOWN), in the order captured.
    members: tuple[Any, ...]
    stack: int
    #: Threads: the id of the thread pool they all work for, else None (the
    #: workers of a pool are never one group with other threads).
    pool: int | None = None


@dataclass(frozen=True, slots=True)
class Section:
    """One section: its title, what it is, and its content as data."""

    title: str
    #: "package", "deadlocks", "threads", "pools", "greenlets", "tasks",
    #: "processes", "configuration" or "custom" (a registered section).
    kind: str
    #: threads, greenlets: a tuple of ThreadRecord / GreenletRecord, or of
    #: Group when stacks are grouped; pools: a tuple of PoolRecord;
    #: deadlocks: a tuple of DeadlockRecord; tasks: a
    #: tuple of TaskRecord; the others plain data (dicts, lists, str,
    #: numbers, None).
    data: Any
    #: A one-line error instead of the content, when building it failed.
    error: str | None = None
    #: A registered section's text as its own view made it (an oslo.reports
    #: model): the text report shows it instead of data, which JSON carries.
    text: str | None = None


@dataclass(frozen=True, slots=True)
class Report:
    """A whole report: the header (JSON's header object), the sections in
    order, and the stack table their records point into."""

    header: dict[str, Any]
    sections: list[Section] = field(default_factory=list)
    table: StackTable = field(default_factory=StackTable)


class StackTableBuilder:
    """Collects the distinct frames and stacks of one report, then resolves
    every frame at once (resolve.resolve: the source files read in one batch).

    Keys hold id()s of code objects and of the snapshot's shared frame
    tuples: the builder keeps each object it keyed (and the snapshot keeps
    its tuples) until table() is made, so no id is reused meanwhile."""

    def __init__(self, max_depth: int = 0) -> None:
        self._max_depth = max_depth
        self._wanted: list[tuple[CodeType, int, bool]] = []
        self._frame_index: dict[tuple[int, int, bool], int] = {}
        self._stacks: list[Stack] = []
        self._stack_index: dict[tuple[tuple[int, ...], bool], int] = {}
        self._held: list[tuple[Frame, ...]] = []
        self._by_tuple: dict[int, int] = {}

    def _frame(self, code: CodeType, number: int, by_line: bool) -> int:
        key = (id(code), number, by_line)
        index = self._frame_index.get(key)
        if index is None:
            index = self._frame_index[key] = len(self._wanted)
            self._wanted.append((code, number, by_line))
        return index

    def _add(self, indices: tuple[int, ...], trimmed: bool) -> int:
        key = (indices, trimmed)
        index = self._stack_index.get(key)
        if index is None:
            index = self._stack_index[key] = len(self._stacks)
            depth = self._max_depth
            if trimmed and 0 < depth < len(indices):
                inner = depth // 2
                outer = depth - inner
                stack = Stack(indices[:outer], len(indices) - depth,
                              indices[len(indices) - inner:])
            else:
                stack = Stack(indices)
            self._stacks.append(stack)
        return index

    def stack(self, frames: tuple[Frame, ...]) -> int:
        """The index of a captured stack (outermost first), cut at the
        report's max_stack_depth. Contexts standing in the same frames share
        one tuple (gmr.snapshot): each tuple is looked at once."""
        known = self._by_tuple.get(id(frames))
        if known is None:
            frame = self._frame
            indices = tuple([frame(code, lasti, False) for code, lasti in frames])
            known = self._by_tuple[id(frames)] = self._add(indices, True)
            self._held.append(frames)
        return known

    def stacks(self, column: Iterable[tuple[Frame, ...]]) -> list[int]:
        """stack() of each captured stack of a column, those already seen
        looked up a column at a time (10,000 greenlets stand in a few)."""
        frames = list(column)
        found = list(map(self._by_tuple.get, map(id, frames)))
        if None not in found:
            return found  # type: ignore[return-value]  # no None in it
        return [self.stack(one) if index is None else index
                for one, index in zip(frames, found, strict=True)]

    def spawning(self, stack: tuple[tuple[CodeType, int], ...]) -> int | None:
        """The index of a spawning stack, (code, line) outermost first, never
        cut; None for an empty one."""
        if not stack:
            return None
        frame = self._frame
        return self._add(tuple([frame(code, line, True) for code, line in stack]), False)

    def table(self) -> StackTable:
        return StackTable(tuple(resolve.resolve(self._wanted)), tuple(self._stacks))
