"""Who a greenlet is, read after the capture: the name and small id gevent
gave it, the OS thread its hub runs in, and who spawned it from where.

Only what gevent has already recorded is read. gevent's ``name`` and
``minimal_ident`` properties assign an id on first use, from a registry that
is not thread-safe, and gevent leaves reading them from another thread
undefined: this runs in the watcher's thread, so it reads the registry and
never writes it.
"""

from __future__ import annotations

import gc
import sys
from array import array
from collections.abc import Callable, Sequence
from itertools import compress, repeat
from types import CodeType
from typing import Any, NamedTuple
from weakref import WeakKeyDictionary

from gmr._impl import walker
from gmr.snapshot import GreenletTable


class GreenletIdentity(NamedTuple):
    """What gevent recorded about one greenlet (None where it recorded nothing).
    A tuple: a report reads one for each of thousands of greenlets."""

    #: The name given to it, else gevent's "Greenlet-<minimal_ident>".
    name: str | None
    #: gevent's small per-hub id, when gevent has assigned one.
    minimal_ident: int | None
    #: id() of the greenlet that spawned it (gevent's track_greenlet_tree).
    spawned_by: int | None
    #: (code, line) of the spawner's frames at spawn time, outermost first
    #: (gevent keeps the innermost spawning_stack_limit of them).
    spawning_stack: tuple[tuple[CodeType, int], ...]


#: Nothing recorded: most greenlets of a plain or eventlet service.
UNKNOWN = GreenletIdentity(None, None, None, ())

#: Per greenlet type: whether it is gevent's kind, that records idents and spawners.
_records: dict[type, bool] = {}


def identity(green: object, tables: dict[int, Any] | None = None) -> GreenletIdentity:
    """tables: where a report keeps, for all its greenlets, the ident table
    found for each hub's registry (finding it is the costly part)."""
    own = walker.instance_dict(green)
    if not _records_more(type(green)):
        return _named(own)  # the look-ups below would all miss: one per greenlet adds up
    name = _own_name(own)
    ident = _assigned_ident(green, {} if tables is None else tables)
    if name is None and ident is not None:
        name = f"Greenlet-{ident}"
    spawner = getattr(green, "spawning_greenlet", None)
    spawned_by = spawner() if callable(spawner) else None
    return GreenletIdentity(name, ident, id(spawned_by) if spawned_by is not None else None,
                            _spawning_stack(green))


class IdentityColumns(NamedTuple):
    """What gevent recorded about each of a run of greenlets, as columns in
    their order: lists of what it holds, arrays of what would be a new int
    each (10,000 greenlets make no object each that lives through a report)."""

    names: list[str | None]
    minimal_idents: list[int | None]
    #: id() of each one's spawner, 0 where none is known.
    spawned_by: array[int]
    #: Each one's spawning stack as spawning_of gave it, -1 where it has none.
    spawning: array[int]


def identity_columns(greens: Sequence[object],
                     spawning_of: Callable[[tuple[tuple[CodeType, int], ...]], int | None],
                     ) -> IdentityColumns | None:
    """identity() of each greenlet, as columns; spawning_of(stack): the
    number the report gives a spawning stack. None where nothing is
    recorded of any of them (most services). Where none of their types
    records idents or spawners (greenlet's own, eventlet's), only the names
    that instances were given are read, a column at a time: 10,000
    greenlets cost a few hundred microseconds, and no Python call each."""
    count = len(greens)
    if not any(map(_records_more, set(map(type, greens)))):
        # No call for a greenlet without a dict of its own (all of them on 3.13).
        names = [None if own is None else _own_name(own)
                 for own in map(walker.instance_dict, greens)]
        if names.count(None) == count:
            return None
        return IdentityColumns(names, [None] * count, array("Q", bytes(8 * count)),
                               array("i", [-1]) * count)
    columns = IdentityColumns([None] * count, [None] * count, array("Q", bytes(8 * count)),
                              array("i", [-1]) * count)
    tables: dict[int, Any] = {}
    for index, green in enumerate(greens):
        who = identity(green, tables)
        columns.names[index], columns.minimal_idents[index] = who.name, who.minimal_ident
        columns.spawned_by[index] = who.spawned_by or 0
        if who.spawning_stack:
            number = spawning_of(who.spawning_stack)
            columns.spawning[index] = -1 if number is None else number
    return columns


def _records_more(kind: type) -> bool:
    """Whether greenlets of this type record more than a name (gevent's:
    idents and spawners), asked of each type once."""
    records = _records.get(kind)
    if records is None:
        records = _records[kind] = (hasattr(kind, "minimal_ident")
                                    or hasattr(kind, "spawning_greenlet"))
    return records


def _own_name(own: dict[str, object] | None) -> str | None:
    """The name an instance was given, from its own dict only: a class
    attribute or property of that name (gevent's computes one) is not read,
    and no instance dict is made (walker.instance_dict)."""
    assigned = dict.get(own, "name") if own is not None else None
    return assigned if isinstance(assigned, str) else None


def _named(own: dict[str, object] | None) -> GreenletIdentity:
    """The identity of a greenlet whose type records only a name."""
    name = _own_name(own)
    return UNKNOWN if name is None else GreenletIdentity(name, None, None, ())


def _assigned_ident(green: object, tables: dict[int, Any]) -> int | None:
    """gevent's minimal_ident if its hub has assigned one, without assigning."""
    registry = getattr(getattr(green, "parent", None), "ident_registry", None)
    if registry is None:
        return None
    table = tables.get(id(registry))  # the hub holds its registry meanwhile
    if table is None:
        # Pure-Python gevent keeps the table in an attribute; the compiled
        # one in a C field that only the GC's view of the registry shows.
        table = getattr(registry, "_registry", None)
        if table is None:
            table = next((item for item in gc.get_referents(registry)
                          if isinstance(item, WeakKeyDictionary)), None)
        if table is None:
            return None
        tables[id(registry)] = table
    try:
        entry = table.get(green)
    except TypeError:  # not weakly referenceable: never registered
        return None
    if isinstance(entry, tuple):  # (ident, weak reference) in gevent >= 20
        entry = entry[0]
    return entry if isinstance(entry, int) else None


def _spawning_stack(green: object) -> tuple[tuple[CodeType, int], ...]:
    frame: Any = getattr(green, "spawning_stack", None)
    if frame is None:
        return ()
    stack = []
    for _ in range(1000):  # a bound against a cycle
        code = getattr(frame, "f_code", None)
        if isinstance(code, CodeType):
            stack.append((code, int(getattr(frame, "f_lineno", 0) or code.co_firstlineno)))
        frame = getattr(frame, "f_back", None)
        if frame is None:
            break
    stack.reverse()
    return tuple(stack)


def hub_threads(table: GreenletTable) -> dict[int, int]:
    """id() of each gevent hub, and of the main greenlet above it, mapped to
    the ident of the OS thread it runs in (gevent's Hub.thread_ident)."""
    hub_type = getattr(sys.modules.get("gevent.hub"), "Hub", None)
    threads: dict[int, int] = {}
    if hub_type is None:
        return threads  # no gevent, no hub
    hubs = compress(range(len(table)), map(isinstance, table.objects, repeat(hub_type)))
    for row in hubs:
        ident = getattr(table.objects[row], "thread_ident", None)
        if isinstance(ident, int) and not isinstance(ident, bool):
            threads[table.ids[row]] = ident
            if table.parents[row]:
                threads.setdefault(table.parents[row], ident)
    return threads


def thread_finder(table: GreenletTable) -> Callable[[int], int | None]:
    """For a row of the table, the OS thread of the first hub (or main
    greenlet above one) among its greenlet and that one's parents; None
    where there is none. Found once for each distinct parent (a gevent
    greenlet's is its hub)."""
    threads = hub_threads(table)
    if not threads:
        return _no_thread
    by_parent: dict[int, int | None] = {}
    row_of: dict[int, int] = {}

    def above(green_id: int) -> int | None:
        current = green_id
        for _ in range(1000):  # a bound against a cycle
            if not current:
                return None
            if current in threads:
                return threads[current]
            if not row_of:  # a parent that is no hub: every row by its id, once
                row_of.update(zip(table.ids, range(len(table)), strict=True))
            row = row_of.get(current)
            if row is None:
                return None
            current = table.parents[row]
        return None

    def thread_of(row: int) -> int | None:
        green_id = table.ids[row]
        if green_id in threads:
            return threads[green_id]
        parent = table.parents[row]
        if parent not in by_parent:
            by_parent[parent] = above(parent)
        return by_parent[parent]

    return thread_of


def _no_thread(green_id: int) -> None:
    return None
