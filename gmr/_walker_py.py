"""The pure-Python twin of gmr._walker: the same names and snapshot, built
on ``sys._current_frames()`` and a ``gc.get_objects()`` scan. It keeps gmr
capturing where the compiled walker is not built or not trusted.

What it cannot do as well: it makes a frame object for every frame it
reads, scans the whole heap for greenlets at every report, and cannot bound
its holds of the GIL. Its holds, measured as the compiled walker's are, are
the calls that run without letting the GIL go (no bytecode runs inside
them): ``sys._current_frames()`` and the heap scan; between them and around
them, its bytecode may let other threads run at any instruction.
"""

from __future__ import annotations

import ctypes
import functools
import gc
import itertools
import sys
import time
from types import CodeType, FrameType
from typing import Any

from gmr import _originals

IMPLEMENTATION = "pure"

GREENLET_NOT_STARTED = 0
GREENLET_SUSPENDED = 1
GREENLET_RUNNING = 2
GREENLET_DEAD = 3

RawFrames = tuple[tuple[CodeType, int], ...]

#: gc.get_objects() does not show what gc.freeze() froze.
SEES_FROZEN = False

#: The compiled walker's bound on one hold; this twin's longest hold is one
#: C call it cannot split (the heap scan), so it does not apply it.
MAX_HOLD_NS = 2_000_000

#: This twin scans the whole heap for greenlets at every report.
DISCOVERY_WITHOUT_HEAP_SCAN = False


def prepare() -> None:
    """Nothing to set up: every capture scans the heap."""


def layout_problem() -> str | None:
    """Nothing to check: this twin reads only what Python shows."""
    return None


def ask_capsule() -> object:
    """None: this twin cannot ask the holder of the GIL to let go."""
    return None


def use_hurry(capsule: object) -> bool:
    return False  # Python cannot ask for the GIL without it


def instance_dict(obj: object) -> dict[str, object] | None:
    """The object's own instance dict, or None when it has none yet: read
    where its type keeps it (__dictoffset__), never made (obj.__dict__
    makes one, for good, on a greenlet that had none); where the
    interpreter keeps it (a Python class), through __dict__."""
    offset = type(obj).__dictoffset__
    if offset == 0:
        return None
    if offset < 0:  # kept by the interpreter (a Python class): a greenlet type never is
        found = getattr(obj, "__dict__", None)
        return found if isinstance(found, dict) else None
    try:
        found = ctypes.py_object.from_address(id(obj) + offset).value
    except ValueError:  # NULL: no dict yet
        return None
    return found if isinstance(found, dict) else None


# ---------------------------------------------------------------------------
# The walker
# ---------------------------------------------------------------------------


def _stack(frame: FrameType | None) -> RawFrames:
    out = []
    while frame is not None:
        out.append((frame.f_code, frame.f_lasti))
        frame = frame.f_back
    return tuple(out)


class RawCapture:
    """What one capture copied: OS threads first, then greenlets."""

    # Slots, as the compiled twin's fields: neither takes new attributes.
    __slots__ = ("_threads", "_greenlets", "_pause_ns", "_heap_objects", "_holds", "_held_ns",
                 "_heap_scanned")

    def __init__(self) -> None:
        self._threads: list[tuple[int, int, RawFrames]] = []
        self._greenlets: list[tuple[object, object | None, int, RawFrames]] = []
        self._pause_ns = 0
        self._heap_objects = 0
        self._holds = 0
        self._held_ns = 0
        self._heap_scanned = False

    @property
    def threads(self) -> int:
        return len(self._threads)

    @property
    def greenlets(self) -> int:
        return len(self._greenlets)

    @property
    def pause_ns(self) -> int:
        return self._pause_ns

    @property
    def heap_objects(self) -> int:
        return self._heap_objects

    @property
    def holds(self) -> int:
        return self._holds

    @property
    def held_ns(self) -> int:
        return self._held_ns

    @property
    def heap_scanned(self) -> bool:
        return self._heap_scanned

    @property
    def broken_stacks(self) -> int:
        """Always 0: the frames Python shows need no check."""
        return 0

    def thread(self, index: int) -> tuple[int, int, RawFrames]:
        return self._threads[index]

    def greenlet(self, index: int) -> tuple[object, object | None, int, RawFrames]:
        return self._greenlets[index]

    def greenlet_columns(self) -> tuple[list[object], list[object | None], list[int],
                                        list[RawFrames]]:
        return ([row[0] for row in self._greenlets], [row[1] for row in self._greenlets],
                [row[2] for row in self._greenlets], [row[3] for row in self._greenlets])

    def greenlet_table(self, start: int, stop: int, ids: Any, parents: Any, states: Any,
                       kinds: Any, stacks: Any, objects: list[object],
                       kind_numbers: dict[type, int], stack_numbers: dict[int, int],
                       distinct: list[RawFrames]) -> None:
        """As the compiled core's: greenlets start to stop into the columns."""
        if stop < 0 or stop > len(self._greenlets):
            stop = len(self._greenlets)
        for index in range(max(0, start), stop):
            green, parent, state, raw_frames = self._greenlets[index]
            objects[index] = green
            ids[index] = id(green)
            parents[index] = 0 if parent is None else id(parent)
            states[index] = state
            kinds[index] = kind_numbers.setdefault(type(green), len(kind_numbers))
            number = stack_numbers.get(id(raw_frames))
            if number is None:
                number = stack_numbers[id(raw_frames)] = len(distinct)
                distinct.append(raw_frames)
            stacks[index] = number

    def release(self) -> None:
        self._threads.clear()
        self._greenlets.clear()


def _greenlet_state(greenlet_type: Any, greenlet: object) -> tuple[int, FrameType | None]:
    # greenlet's own descriptors, never a subclass's property of the same name.
    if greenlet_type.dead.__get__(greenlet):
        return GREENLET_DEAD, None
    frame = greenlet_type.gr_frame.__get__(greenlet)
    if frame is not None:
        return GREENLET_SUSPENDED, frame
    if greenlet_type.__bool__(greenlet):
        return GREENLET_RUNNING, None
    return GREENLET_NOT_STARTED, None


def capture(greenlet_type: Any = None, max_hold_ns: int | None = None,
            turns: bool = False) -> RawCapture:
    del max_hold_ns, turns  # its holds are single C calls: nothing to split
    raw = RawCapture()
    me = _originals.get_ident()
    clock = time.perf_counter_ns
    holds: list[int] = []
    # Automatic collection paused by the first threshold, not gc.disable():
    # other threads run during this capture, and a gc.disable() or enable()
    # of theirs meanwhile must keep its effect.
    thresholds = gc.get_threshold()
    gc.set_threshold(0, *thresholds[1:])
    paused = gc.get_threshold()
    try:
        began = clock()
        current = sys._current_frames()
        holds.append(clock() - began)
        for ident, frame in current.items():
            if ident != me:
                raw._threads.append((ident, 0, _stack(frame)))
        del frame, current
        if greenlet_type is not None:
            # The heap list must never be seen by bytecode: gc.get_objects()
            # also returns tuples another thread is still building, and while
            # a reference to one is held, that thread's tuple resize fails
            # with SystemError. A list returned to bytecode is alive at the
            # eval-breaker check that follows the call, where the GIL may
            # pass to that very thread. So each heap list is made (map calls
            # gc.get_objects lazily), filtered and dropped inside one chain of
            # C calls. Each object is judged by its type alone (type() reads
            # it, __subclasscheck__ walks its MRO): isinstance() would look up
            # the __class__ of every object that is no greenlet, and a class
            # that answers it in Python (the service's own, proxies, typing's
            # deprecated aliases) would run its code. The list is handed to
            # its two readers (the objects, their types) by a repeat made
            # after it, never by a tee() or anything made before it: the list
            # holds what was made before it, and a holder of the list among
            # those would be a cycle keeping the whole heap of that moment
            # alive until the next collection (a greenlet dropped after the
            # report would still be found by the next one).
            began = clock()
            raw._heap_objects = sum(map(len, map(gc.get_objects, (None,))))
            holds.append(clock() - began)
            began = clock()
            heaps = itertools.chain.from_iterable(
                map(itertools.repeat, map(gc.get_objects, (None,)), (2,)))
            found = list(itertools.chain.from_iterable(map(
                itertools.compress, heaps,
                map(functools.partial(map, greenlet_type.__subclasscheck__),
                    map(functools.partial(map, type), heaps)))))
            del heaps
            holds.append(clock() - began)
            raw._heap_scanned = True
            for obj in found:
                state, top = _greenlet_state(greenlet_type, obj)
                parent = greenlet_type.parent.__get__(obj)
                raw._greenlets.append((obj, parent, state, _stack(top)))
            del found
    finally:
        if gc.get_threshold() == paused:  # else the service set its own meanwhile
            gc.set_threshold(*thresholds)
    raw._pause_ns = max(holds)
    raw._holds = len(holds)
    raw._held_ns = sum(holds)
    return raw
