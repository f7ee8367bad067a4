"""The pure-Python twin of gmr._capture: the same names and behaviour, built
on ``signal.signal``, ``sys._current_frames()`` and a ``gc.get_objects()``
scan. It keeps gmr working where the extension could not be built.

What it cannot do as well: its signal handler is a Python one, so it runs only
when the main thread executes bytecode (a main thread blocked in C delays the
report), it can be installed only from the main thread, and its "pause" is
the duration of the capture, during which other threads may run.
"""

from __future__ import annotations

import _thread
import gc
import itertools
import os
import signal
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

# ---------------------------------------------------------------------------
# Signal handler and self-pipe
# ---------------------------------------------------------------------------

_signals = 0
_write_fd = -1
_armed_pid = 0
_previous: dict[int, Any] = {}
# The unpatched os.write, looked up once by arm(). The handler must not look
# it up itself: that goes through the import system, whose module locks are
# not re-entrant, and a second signal arriving while the handler holds one
# runs the handler again inside it: the main thread deadlocked on a burst.
_write: Any = os.write


def _handler(signum: int, frame: FrameType | None) -> None:
    global _signals
    _signals += 1
    if _write_fd >= 0 and os.getpid() == _armed_pid:
        try:
            _write(_write_fd, b"S")
        except BlockingIOError:
            pass  # the pipe is full: a report is already pending
        except OSError:
            pass
    previous = _previous.get(signum)
    if callable(previous):
        previous(signum, frame)


def arm(signum: int, write_fd: int) -> None:
    global _write_fd, _armed_pid, _write
    _write = _originals.original("os", "write")
    _write_fd = write_fd
    _armed_pid = os.getpid()
    current = signal.getsignal(signum)
    if current is _handler:
        return
    _previous[signum] = current
    signal.signal(signum, _handler)


def quiet(signum: int) -> None:
    """At exit: ignore signum from now on. The interpreter's finalization
    restores SIG_DFL for every Python-level handler, and a SIGUSR2 after that
    would kill the exiting process."""
    if signal.getsignal(signum) is _handler:
        signal.signal(signum, signal.SIG_IGN)


def disarm(signum: int) -> None:
    if signal.getsignal(signum) is _handler and signum in _previous:
        previous = _previous[signum]
        signal.signal(signum, previous if previous is not None else signal.SIG_DFL)
    _previous.pop(signum, None)


def is_armed(signum: int) -> bool:
    return signal.getsignal(signum) is _handler


def signal_count() -> int:
    return _signals


def read_trigger(fd: int, timeout: float | None, switch_interval: float = 0.0) -> bytes:
    # Python cannot touch the switch interval without the GIL: the watcher
    # lowers it once it has the GIL back.
    if not _originals.select([fd], timeout):
        return b""
    return _originals.read(fd, 4096)


def lowered_switch_interval() -> float | None:
    return None


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

    def __init__(self) -> None:
        self._threads: list[tuple[int, int, RawFrames]] = []
        self._greenlets: list[tuple[object, object | None, int, RawFrames]] = []
        self.pause_ns = 0
        self.heap_objects = 0

    @property
    def threads(self) -> int:
        return len(self._threads)

    @property
    def greenlets(self) -> int:
        return len(self._greenlets)

    def thread(self, index: int) -> tuple[int, int, RawFrames]:
        return self._threads[index]

    def greenlet(self, index: int) -> tuple[object, object | None, int, RawFrames]:
        return self._greenlets[index]

    def greenlet_columns(self) -> tuple[list[object], list[object | None], list[int],
                                        list[RawFrames]]:
        return ([row[0] for row in self._greenlets], [row[1] for row in self._greenlets],
                [row[2] for row in self._greenlets], [row[3] for row in self._greenlets])

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


def capture(greenlet_type: Any = None) -> RawCapture:
    raw = RawCapture()
    me = _originals.get_ident()
    start = time.perf_counter_ns()
    gc_was_enabled = gc.isenabled()
    gc.disable()
    try:
        for ident, frame in sys._current_frames().items():
            if ident != me:
                raw._threads.append((ident, 0, _stack(frame)))
        del frame
        if greenlet_type is not None:
            # The heap list must never be seen by bytecode: gc.get_objects()
            # also returns tuples another thread is still building, and while
            # a reference to one is held, that thread's tuple resize fails
            # with SystemError. A list returned to bytecode is alive at the
            # eval-breaker check that follows the call, where the GIL may
            # pass to that very thread. So each heap list is made (map calls
            # gc.get_objects lazily), filtered and dropped inside one chain of
            # C calls. isinstance() may run bytecode for an object whose
            # class answers __class__ in Python (typing's deprecated aliases,
            # proxies): callables, classes among them, are passed over first,
            # by a check that looks nothing up (a greenlet is not callable).
            raw.heap_objects = sum(map(len, map(gc.get_objects, (None,))))
            found = list(filter(greenlet_type.__instancecheck__, itertools.filterfalse(
                callable, itertools.chain.from_iterable(map(gc.get_objects, (None,))))))
            for obj in found:
                state, top = _greenlet_state(greenlet_type, obj)
                parent = greenlet_type.parent.__get__(obj)
                raw._greenlets.append((obj, parent, state, _stack(top)))
            del found
    finally:
        if gc_was_enabled:
            gc.enable()
    raw.pause_ns = time.perf_counter_ns() - start
    return raw


def name_this_thread(name: str) -> None:
    """The calling thread's name for the kernel, where /proc lets it be set."""
    try:
        with open(f"/proc/self/task/{_thread.get_native_id()}/comm", "w") as comm:
            comm.write(name[:15])
    except OSError:
        pass


# ---------------------------------------------------------------------------
# Small files, many at once
# ---------------------------------------------------------------------------


def list_dirs(paths: list[str]) -> list[list[str] | None]:
    out: list[list[str] | None] = []
    for path in paths:
        try:
            out.append(os.listdir(path))
        except OSError:
            out.append(None)
    return out


def publish(temporary: str, final: str, data: bytes) -> str:
    """As the compiled core's: data in a new file, linked to the first free
    name among final, final.1, ...; here each call lets the GIL go."""
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
    try:
        try:
            _originals.write_all(fd, data)
        finally:
            os.close(fd)
        for attempt in range(10000):
            name = final if attempt == 0 else f"{final}.{attempt}"
            try:
                os.link(temporary, name)  # fails, rather than replace, if it exists
                return name
            except FileExistsError:
                continue
        raise FileExistsError(f"no free report name for {final}")
    finally:
        try:
            os.unlink(temporary)
        except FileNotFoundError:
            pass


def read_files(paths: list[str], limit: int = 1 << 24,
               keep_gil: bool = False) -> list[bytes | None]:
    """The bytes of each file (None where it cannot be read). Here each
    system call lets the GIL go, as any Python read does (keep_gil cannot
    change that)."""
    out: list[bytes | None] = []
    for path in paths:
        try:
            fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
        except OSError:
            out.append(None)
            continue
        try:
            chunks = []
            size = 0
            while size < limit:
                chunk = os.read(fd, min(1 << 16, limit - size))
                if not chunk:
                    break
                chunks.append(chunk)
                size += len(chunk)
            out.append(b"".join(chunks))
        except OSError:
            out.append(None)
        finally:
            os.close(fd)
    return out


# ---------------------------------------------------------------------------
# No watchdog: it needs a thread that runs without the GIL, which pure Python
# cannot have. A report simply waits for the GIL.
# ---------------------------------------------------------------------------

WATCHDOG = False


def start_watchdog(limit: float, signum: int, fd: int) -> None:
    return None


def stop_watchdog() -> None:
    return None


def forget_watchdog() -> None:
    return None


def set_degraded_target(directory: str, prefix: str) -> None:
    return None


def degraded_reports() -> int:
    return 0

