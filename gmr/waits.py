"""What each thread waits on, and the deadlocks those waits make (issue 14).

Read right after the capture, for the threads that still stand where the
capture saw them (their innermost frames the same code at the same
instruction): a thread blocked in a wait has not moved, and one that moved
was not blocked. Two kinds of wait:

- in a ``threading`` or ``queue`` primitive written in Python (a
  Condition, Event, Semaphore, Barrier, Queue, a Thread joined): the
  outermost such frame of the innermost run of those modules' frames says
  what, its ``self`` which object;
- in a C lock's ``acquire`` (``with lock:``, ``lock.acquire(...)``) or a
  ``SimpleQueue``'s ``get``: the receiver of the call the innermost frame
  is in, read from its bytecode
  (a local, a global or a cell, then attributes) and looked up without
  running the service's code. An RLock says which thread holds it; a
  cycle of such waits is a deadlock.
"""

from __future__ import annotations

import builtins
import dis
import inspect
import queue
import re
import sys
import threading
import types
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from types import CodeType, FrameType
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # snapshot calls find(); only its types are needed here
    from gmr import snapshot

#: The primitives written in Python whose frames say what a thread waits on.
_PRIMITIVES = frozenset(code for code in (
    threading.Condition.wait.__code__, threading.Condition.wait_for.__code__,
    threading.Event.wait.__code__, threading.Semaphore.acquire.__code__,
    threading.Barrier.wait.__code__, threading.Thread.join.__code__,
    queue.Queue.get.__code__, queue.Queue.put.__code__))
_PRIMITIVE_FILES = frozenset(module.__file__ for module in (threading, queue))

#: Instructions that load one value and nothing else (a call's argument).
_SIMPLE_LOADS = frozenset({
    "LOAD_CONST", "LOAD_SMALL_INT", "LOAD_COMMON_CONSTANT", "LOAD_FAST", "LOAD_FAST_CHECK",
    "LOAD_FAST_BORROW",
    "LOAD_DEREF", "LOAD_NAME", "LOAD_GLOBAL"})
_LOCAL_LOADS = frozenset({
    "LOAD_FAST", "LOAD_FAST_CHECK", "LOAD_FAST_BORROW", "LOAD_DEREF", "LOAD_CLOSURE"})
_GLOBAL_LOADS = frozenset({"LOAD_GLOBAL", "LOAD_NAME"})
_CALLS = frozenset({"CALL", "CALL_KW", "CALL_METHOD", "CALL_FUNCTION", "CALL_FUNCTION_KW"})
_WITH = frozenset({"BEFORE_WITH", "SETUP_WITH"})
_SKIPPED = frozenset({"CACHE", "NOP", "EXTENDED_ARG", "NOT_TAKEN"})
_AT_CALL = _CALLS | _WITH

_OWNER = re.compile(r"\bowner=(\d+)")

#: The C calls a thread blocks in: a lock's, and a SimpleQueue's (an idle
#: concurrent.futures worker waits in its get).
_BLOCKING_METHODS = frozenset({"acquire", "__enter__", "get", "put"})
_C_QUEUES = frozenset({"_queue.SimpleQueue"})


@dataclass(frozen=True, slots=True)
class Wait:
    """What one thread waits on."""

    #: The object's type, module and qualified name ("threading.Event").
    type: str
    #: id() of the object.
    id: int
    #: Whether it waits to take a lock (else for a primitive to let it go on).
    lock: bool
    #: The ident of the thread that holds the lock, where it can be known (an RLock).
    owner: int | None


def _type_name(value: object) -> str:
    kind = type(value)
    return f"{kind.__module__}.{kind.__qualname__}"


# -- the receiver of the call a frame is in, from its bytecode --------------
#
# Read with a decoder of our own, up to the instruction the frame is at:
# while the watcher holds the GIL no thread moves, so every thread the
# capture saw is at the same place, busy ones included, and dis would read
# each one's whole code (about 1 ms for a long function on 3.13) at the
# first report that finds it there. Only the few instructions before the
# call are named, as dis names them.

_decoded: dict[tuple[CodeType, int], tuple[str, str, tuple[str, ...]] | None] = {}

_OPNAMES = tuple(dis.opname)
_EXTENDED_ARG = dis.EXTENDED_ARG
#: Local variables and cells are numbered in one table from 3.11 on.
_LOCALS_PLUS = sys.version_info >= (3, 11)
#: LOAD_GLOBAL's argument carries a flag in its lowest bit from 3.11 on, LOAD_ATTR's from 3.12 on.
_GLOBAL_FLAG = 1 if sys.version_info >= (3, 11) else 0
_ATTR_FLAG = 1 if sys.version_info >= (3, 12) else 0
#: The special methods LOAD_SPECIAL's argument numbers (3.14+), as dis names them.
_SPECIAL_NAMES: tuple[str, ...] = tuple(getattr(dis, "_special_method_names", ()))


@dataclass(frozen=True, slots=True)
class Instruction:
    """One instruction: its name, its argument (EXTENDED_ARG folded in) and offset."""

    opname: str
    arg: int
    offset: int


def instructions(code: CodeType, last: int) -> list[Instruction]:
    """The instructions of code up to the one at offset `last`, inclusive,
    without the ones that do nothing (caches, NOP, EXTENDED_ARG)."""
    raw = code.co_code
    found: list[Instruction] = []
    extended = 0
    for offset in range(0, min(last + 2, len(raw)), 2):
        op = raw[offset]
        arg = raw[offset + 1] | extended
        if op == _EXTENDED_ARG:
            extended = arg << 8
            continue
        extended = 0
        name = _OPNAMES[op]
        if name not in _SKIPPED:
            found.append(Instruction(name, arg, offset))
    return found


def argval(code: CodeType, instruction: Instruction) -> str | None:
    """The name an instruction loads (a local, a cell, a global, an
    attribute or a special method), as dis gives it; None for any other."""
    opname, arg = instruction.opname, instruction.arg
    try:
        if opname in _LOCAL_LOADS:
            if _LOCALS_PLUS:
                return str(code._varname_from_oparg(arg))  # type: ignore[attr-defined]
            if opname == "LOAD_FAST":  # 3.10: locals, then cells and free variables
                return code.co_varnames[arg]
            return (code.co_cellvars + code.co_freevars)[arg]
        if opname == "LOAD_GLOBAL":
            return code.co_names[arg >> _GLOBAL_FLAG]
        if opname == "LOAD_ATTR":
            return code.co_names[arg >> _ATTR_FLAG]
        if opname in ("LOAD_METHOD", "LOAD_NAME"):
            return code.co_names[arg]
        if opname == "LOAD_SPECIAL":
            return _SPECIAL_NAMES[arg]
    except (IndexError, AttributeError):
        return None
    return None


def _method_form(instruction: Instruction) -> bool:
    """A LOAD_ATTR that loads a method with its self (3.12+)."""
    return instruction.opname == "LOAD_ATTR" and bool(_ATTR_FLAG and instruction.arg & 1)


def _expression(code: CodeType, instructions: Sequence[Instruction],
                end: int) -> tuple[str, str, tuple[str, ...]] | None:
    """The value the instructions up to `end` leave on top: a local, a
    global or a cell, then attributes ("local", "self", ("_lock",))."""
    attributes: list[str] = []
    index = end
    while index >= 0 and instructions[index].opname == "LOAD_ATTR" \
            and not _method_form(instructions[index]):
        attributes.append(str(argval(code, instructions[index])))
        index -= 1
    if index < 0:
        return None
    base = instructions[index]
    name = argval(code, base)
    if name is None:
        return None
    if base.opname in _LOCAL_LOADS:
        return "local", name, tuple(reversed(attributes))
    if base.opname in _GLOBAL_LOADS:
        return "global", name, tuple(reversed(attributes))
    return None


def _call_receiver(code: CodeType, instructions: Sequence[Instruction],
                   at: int) -> tuple[str, str, tuple[str, ...]] | None:
    """The receiver of `lock.acquire(...)`, `lock.__enter__()`, a `with`
    (3.14's LOAD_SPECIAL form) or `queue.get(...)` called at instructions[at]."""
    call = instructions[at]
    index = at - 1
    if call.opname in ("CALL_KW", "CALL_FUNCTION_KW"):
        index -= 1  # the names of the keyword arguments
    while index >= 0 and instructions[index].opname in ("PRECALL", "KW_NAMES"):
        index -= 1
    for _ in range(call.arg):
        if index < 0 or instructions[index].opname not in _SIMPLE_LOADS:
            return None
        index -= 1
    if index < 0:
        return None
    method = instructions[index]
    if method.opname == "LOAD_SPECIAL" and argval(code, method) == "__enter__":
        # COPY 1, LOAD_SPECIAL __exit__, SWAP 2, SWAP 3, LOAD_SPECIAL __enter__
        names = [instruction.opname for instruction in instructions[index - 4:index]]
        if names != ["COPY", "LOAD_SPECIAL", "SWAP", "SWAP"]:
            return None
        return _expression(code, instructions, index - 5)
    if method.opname in ("LOAD_METHOD", "LOAD_ATTR") and \
            argval(code, method) in _BLOCKING_METHODS:
        return _expression(code, instructions, index - 1)
    return None


def receiver(code: CodeType, lasti: int) -> tuple[str, str, tuple[str, ...]] | None:
    """What the call or `with` at instruction lasti of code takes a lock
    from, as an expression ("local"/"global", name, attributes); None when
    it is no such call, or not of that simple form."""
    key = (code, lasti)
    if key in _decoded:
        return _decoded[key]
    if len(_decoded) > 4096:
        _decoded.clear()
    found = None
    try:
        raw = code.co_code
        # A thread that stands anywhere but at a call has nothing to read.
        if 0 <= lasti < len(raw) and _OPNAMES[raw[lasti]] in _AT_CALL:
            decoded = instructions(code, lasti)
            at = len(decoded) - 1
            if at >= 0 and decoded[at].offset == lasti:
                if decoded[at].opname in _WITH:
                    found = _expression(code, decoded, at - 1)
                else:
                    found = _call_receiver(code, decoded, at)
    except Exception:  # a code object that cannot be read: no answer
        found = None
    _decoded[key] = found
    return found


def forget() -> None:
    """Drop the decoded receivers, and the code objects their keys hold."""
    _decoded.clear()


#: What plain_attribute gives for an attribute it cannot read without running code.
MISSING = object()


def plain_attribute(value: object, name: str) -> object:
    """value.name where no code of the service runs to find it: an entry of
    the instance's dict, a slot, a plain class attribute; else MISSING."""
    try:
        own = object.__getattribute__(value, "__dict__")
    except AttributeError:
        own = None
    if isinstance(own, dict) and name in own:
        return own[name]
    try:
        found = inspect.getattr_static(value, name, MISSING)
    except Exception:
        return MISSING
    if isinstance(found, types.MemberDescriptorType):  # a slot: read by C
        try:
            return found.__get__(value, type(value))
        except AttributeError:
            return MISSING
    if hasattr(type(found), "__get__"):  # a property, a method: code would run
        return MISSING
    return found


def _evaluate(frame: FrameType, expression: tuple[str, str, tuple[str, ...]]) -> object:
    kind, name, attributes = expression
    value: object
    if kind == "local":
        value = frame.f_locals.get(name, MISSING)
    else:
        value = frame.f_globals.get(name, MISSING)
        if value is MISSING:
            value = getattr(builtins, name, MISSING)
    for attribute in attributes:
        if value is MISSING:
            break
        value = plain_attribute(value, attribute)
    return value


# -- locks -------------------------------------------------------------------

_LOCK_TYPES = frozenset({"_thread.lock", "_thread.RLock", "threading._PyRLock"})


def _lock_wait(lock: object, waiter: int) -> Wait | None:
    """A wait to take lock, when it is held (by another thread, for an RLock)."""
    kind = _type_name(lock)
    if kind not in _LOCK_TYPES:
        return None
    owner: int | None = None
    if kind == "threading._PyRLock":
        held = getattr(lock, "_owner", None)
        owner = held if type(held) is int else None
        locked = owner is not None
    elif kind == "_thread.RLock":
        text = repr(lock)  # the C type's own: "<locked _thread.RLock object owner=N ...>"
        match = _OWNER.search(text)
        owner = int(match.group(1)) or None if match else None
        locked = text.startswith("<locked")
    else:
        locked = bool(lock.locked())  # type: ignore[attr-defined]
    if not locked or owner == waiter:
        return None
    return Wait(kind, id(lock), True, owner)


# -- each thread -------------------------------------------------------------


def _same_place(frame: FrameType | None, frames: Sequence[snapshot.Frame]) -> list[FrameType]:
    """The thread's current frames, innermost first, as far as they match
    its captured ones (innermost first); [] when the innermost does not."""
    matched: list[FrameType] = []
    for captured in reversed(frames):
        if frame is None or frame.f_code is not captured.code or frame.f_lasti != captured.lasti:
            break
        matched.append(frame)
        frame = frame.f_back
    return matched


def _wait_of(ident: int, frames: Sequence[snapshot.Frame],
             current: FrameType | None) -> Wait | None:
    matched = _same_place(current, frames)
    if not matched:
        return None
    # The innermost run of threading's and queue's frames: its outermost
    # primitive is what the thread waits on.
    primitive = None
    for frame in matched:
        if frame.f_code.co_filename not in _PRIMITIVE_FILES:
            break
        if frame.f_code in _PRIMITIVES:
            primitive = frame
    if primitive is not None:
        target = primitive.f_locals.get("self", MISSING)
        if target is MISSING:
            return None
        return Wait(_type_name(target), id(target), False, None)
    innermost = matched[0]
    expression = receiver(innermost.f_code, innermost.f_lasti)
    if expression is None:
        return None
    target = _evaluate(innermost, expression)
    if target is MISSING:
        return None
    if _type_name(target) in _C_QUEUES:
        return Wait(_type_name(target), id(target), False, None)
    return _lock_wait(target, ident)


def find(threads: Iterable[snapshot.ThreadStack]) -> dict[int, Wait]:
    """What each captured thread still waits on, by ident."""
    try:
        current = sys._current_frames()
    except Exception:
        return {}
    found: dict[int, Wait] = {}
    for thread in threads:
        frame = current.get(thread.ident)
        if frame is None or not thread.frames:
            continue
        try:
            wait = _wait_of(thread.ident, thread.frames, frame)
        except Exception:  # a frame or object that cannot be read: nothing said
            continue
        if wait is not None:
            found[thread.ident] = wait
    del current
    return found


def cycles(waits: dict[int, Wait]) -> list[list[int]]:
    """The deadlocks: each cycle of threads waiting for a lock that the next
    one holds, as the threads' idents, each cycle once, from its smallest."""
    found: list[list[int]] = []
    done: set[int] = set()
    for start in sorted(waits):
        path: list[int] = []
        on_path: set[int] = set()
        ident: int | None = start
        while ident is not None and ident not in done and ident not in on_path:
            path.append(ident)
            on_path.add(ident)
            wait = waits.get(ident)
            ident = wait.owner if wait is not None and wait.lock else None
        if ident is not None and ident in on_path:
            cycle = path[path.index(ident):]
            first = cycle.index(min(cycle))
            found.append(cycle[first:] + cycle[:first])
        done.update(path)
    return found
