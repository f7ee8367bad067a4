"""What each thread waits on (issue 14): real threads blocked in every
threading and queue primitive and in C locks taken every way a service
takes them, each checked blocked in the kernel before the capture; and the
cycles of lock waits that are deadlocks."""

from __future__ import annotations

import dis
import os
import queue
import sys
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from conftest import SLEEP_CALLS, wait_in_syscall
from gmr import snapshot, waits

SHARED = threading.RLock()


class Holder:
    def __init__(self) -> None:
        self._lock = threading.RLock()

    def locked_work(self) -> None:
        with self._lock:
            pass


class Slots:
    __slots__ = ("lock",)

    def __init__(self, lock: Any) -> None:
        self.lock = lock


class Blocked:
    """Threads started to block, and everything they block on let go at the end."""

    def __init__(self) -> None:
        self.threads: dict[str, threading.Thread] = {}
        self.undo: list[Callable[[], None]] = []

    def start(self, name: str, target: Callable[[], object],
              calls: tuple[str, ...] = ("futex",)) -> threading.Thread:
        thread = threading.Thread(target=target, name=name, daemon=True)
        thread.start()
        assert thread.native_id is not None
        assert wait_in_syscall(os.getpid(), calls, thread.native_id), name
        self.threads[name] = thread
        return thread

    def finish(self) -> None:
        for undo in reversed(self.undo):
            undo()
        for thread in self.threads.values():
            thread.join(30)


@pytest.fixture
def blocked() -> Iterator[Blocked]:
    made = Blocked()
    yield made
    made.finish()


def test_what_each_thread_waits_on(blocked: Blocked) -> None:
    go = threading.Event()
    blocked.undo.append(go.set)
    # A thread that holds two RLocks (and a Condition's) until the end.
    holder_lock, condition = Holder(), threading.Condition(threading.RLock())
    held = threading.Event()

    def hold() -> None:
        with SHARED, holder_lock._lock, condition:
            held.set()
            go.wait()

    holding = threading.Thread(target=hold, name="holding", daemon=True)
    holding.start()
    assert held.wait(30)
    blocked.threads["holding"] = holding

    plain = threading.Lock()
    plain.acquire()
    blocked.undo.append(plain.release)
    in_slot = Slots(plain)
    empty: queue.Queue[int] = queue.Queue()
    full: queue.Queue[int] = queue.Queue(maxsize=1)
    full.put(0)
    blocked.undo.append(lambda: (empty.put(1), full.get()))
    simple: queue.SimpleQueue[int] = queue.SimpleQueue()
    blocked.undo.append(lambda: simple.put(1))
    semaphore = threading.Semaphore(0)
    blocked.undo.append(semaphore.release)
    barrier = threading.Barrier(2)
    blocked.undo.append(barrier.abort)
    waiting_on = threading.Condition()

    def wait_on_condition() -> None:
        with waiting_on:
            waiting_on.wait(60)

    def notify() -> None:
        with waiting_on:
            waiting_on.notify_all()

    blocked.undo.append(notify)

    def with_shared() -> None:
        with SHARED:
            pass

    def in_condition() -> None:
        with condition:
            pass

    def barrier_wait() -> None:
        try:
            barrier.wait(60)
        except threading.BrokenBarrierError:
            pass

    def sleep() -> None:
        while not go.is_set():
            time.sleep(0.05)

    blocked.start("event", lambda: go.wait(60))
    blocked.start("condition", wait_on_condition)
    blocked.start("semaphore", lambda: semaphore.acquire(timeout=60))
    blocked.start("barrier", barrier_wait)
    blocked.start("queue get", lambda: empty.get(timeout=60))
    blocked.start("queue put", lambda: full.put(1, timeout=60))
    blocked.start("simple queue get", lambda: simple.get(timeout=60))
    blocked.start("join", lambda: holding.join(60))
    blocked.start("with a global RLock", with_shared)
    blocked.start("an attribute's RLock", holder_lock.locked_work)
    blocked.start("a Condition's RLock", in_condition)
    def take_plain() -> None:
        if plain.acquire(True, 60):
            plain.release()

    def take_from_slot() -> None:
        if in_slot.lock.acquire(timeout=60):
            in_slot.lock.release()

    blocked.start("plain lock acquire", take_plain)
    blocked.start("a slot's lock", take_from_slot)
    blocked.start("sleeping", sleep, SLEEP_CALLS)

    found = snapshot.take().waits
    by_name = {name: found.get(thread.ident) for name, thread in blocked.threads.items()}
    owner = holding.ident

    def on(value: object) -> waits.Wait:
        return waits.Wait(f"{type(value).__module__}.{type(value).__qualname__}", id(value),
                          False, None)

    rlock = type(SHARED).__module__ + "." + type(SHARED).__qualname__
    assert by_name == {
        "holding": on(go),
        "event": on(go),
        "condition": on(waiting_on),
        "semaphore": on(semaphore),
        "barrier": on(barrier),
        "queue get": on(empty),
        "queue put": on(full),
        "simple queue get": on(simple),
        "join": on(holding),
        "with a global RLock": waits.Wait(rlock, id(SHARED), True, owner),
        "an attribute's RLock": waits.Wait(rlock, id(holder_lock._lock), True, owner),
        "a Condition's RLock": waits.Wait(rlock, id(condition._lock), True, owner),
        "plain lock acquire": waits.Wait("_thread.lock", id(plain), True, None),
        "a slot's lock": waits.Wait("_thread.lock", id(plain), True, None),
        "sleeping": None,
    }


def test_a_lock_not_held_is_not_waited_for() -> None:
    """A thread standing at a `with lock:` whose lock nobody holds is not
    waiting (it is about to take it): only a held lock is a wait."""
    lock = threading.Lock()
    code = _with_lock.__code__
    lasti = next(instruction.offset for instruction in dis.get_instructions(code)
                 if instruction.opname in ("BEFORE_WITH", "SETUP_WITH")
                 or (instruction.opname == "CALL" and sys.version_info >= (3, 14)))
    assert waits.receiver(code, lasti) == ("local", "lock", ())
    assert waits._lock_wait(lock, threading.get_ident()) is None
    with lock:
        assert waits._lock_wait(lock, threading.get_ident()) == waits.Wait(
            "_thread.lock", id(lock), True, None)
    mine = threading.RLock()
    with mine:  # held by the thread asking: no wait
        assert waits._lock_wait(mine, threading.get_ident()) is None


def _with_lock(lock: Any) -> None:
    with lock:
        pass


def test_a_property_is_never_run_to_find_a_lock() -> None:
    """`with self.lock:` where lock is a property: the service's code is not
    run to find what the thread waits for."""
    ran: list[bool] = []

    class Guarded:
        @property
        def lock(self) -> Any:
            ran.append(True)
            return SHARED

    assert waits.plain_attribute(Guarded(), "lock") is waits.MISSING
    assert ran == []


def test_cycles_of_lock_waits_are_deadlocks() -> None:
    def lock(owner: int | None) -> waits.Wait:
        return waits.Wait("_thread.RLock", owner or 0, True, owner)

    found = waits.cycles({
        # a two-thread deadlock, a three-thread one, a thread waiting on one
        # of them (not in the cycle), an Event wait and a lock nobody is known to hold
        20: lock(10), 10: lock(20),
        31: lock(32), 32: lock(33), 33: lock(31),
        40: lock(31),
        50: waits.Wait("threading.Event", 5, False, None),
        60: lock(None),
    })
    assert found == [[10, 20], [31, 32, 33]]
    assert waits.cycles({1: lock(2), 2: waits.Wait("threading.Event", 5, False, None)}) == []


def _codes(*modules: Any) -> Iterator[Any]:
    """Every code object of these modules' functions, nested ones included."""
    pending = [value.__code__ for module in modules for value in vars(module).values()
               if hasattr(value, "__code__")]
    pending += [member.__code__ for module in modules for value in vars(module).values()
                if isinstance(value, type) for member in vars(value).values()
                if hasattr(member, "__code__")]
    while pending:
        code = pending.pop()
        yield code
        pending += [const for const in code.co_consts if isinstance(const, type(code))]


def test_the_bytecode_is_read_as_dis_reads_it() -> None:
    """gmr's own decoder (it reads only up to the instruction a thread is
    at, where dis reads the whole code) gives dis's instructions, arguments
    and names, on every code of threading, queue, concurrent.futures and
    gmr's watcher, and of this module."""
    import concurrent.futures.thread

    from gmr import watcher
    named = waits._LOCAL_LOADS | waits._GLOBAL_LOADS | {"LOAD_ATTR", "LOAD_METHOD",
                                                        "LOAD_SPECIAL"}
    checked = 0
    for code in _codes(threading, queue, concurrent.futures.thread, watcher,
                       sys.modules[__name__]):
        expected = [instruction for instruction in dis.get_instructions(code)
                    if instruction.opname not in waits._SKIPPED]
        decoded = waits.instructions(code, len(code.co_code))
        assert [(one.opname, one.offset) for one in decoded] == [
            (one.opname, one.offset) for one in expected], code
        for mine, theirs in zip(decoded, expected, strict=True):
            if theirs.arg is not None:
                assert mine.arg == theirs.arg, (code, theirs)
            if theirs.opname in named:
                name = theirs.argrepr if theirs.opname == "LOAD_SPECIAL" else theirs.argval
                assert waits.argval(code, mine) == name, (code, theirs)
                checked += 1
        # Read up to an instruction: the same, cut there.
        for theirs in expected[::7]:
            assert waits.instructions(code, theirs.offset)[-1].offset == theirs.offset
    assert checked > 1000


def test_only_a_call_is_decoded_and_only_up_to_it(monkeypatch: pytest.MonkeyPatch) -> None:
    """A thread standing anywhere but at a call or `with` costs no decoding,
    one at a call costs the instructions up to it, and dis is never run
    (it reads a function's whole code)."""
    code = _with_lock.__code__
    listed = list(dis.get_instructions(code))
    at_with = next(instruction.offset for instruction in listed
                   if instruction.opname in ("BEFORE_WITH", "SETUP_WITH")
                   or (instruction.opname == "CALL" and sys.version_info >= (3, 14)))
    elsewhere = next(instruction.offset for instruction in listed
                     if instruction.opname.startswith("LOAD_FAST"))
    decoded_up_to: list[int] = []
    decode = waits.instructions

    def recording(code: Any, last: int) -> list[waits.Instruction]:
        decoded_up_to.append(last)
        return decode(code, last)

    def no_dis(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("dis was run")

    monkeypatch.setattr(waits, "instructions", recording)
    monkeypatch.setattr(dis, "get_instructions", no_dis)
    waits.forget()
    try:
        assert waits.receiver(code, elsewhere) is None
        assert decoded_up_to == []
        assert waits.receiver(code, at_with) == ("local", "lock", ())
        assert decoded_up_to == [at_with]
    finally:
        waits.forget()
