"""The pure-Python twin of gmr._trigger: the same names, built on
``signal.signal`` and a pipe read through Python. The pipe is kept out of
the low descriptor numbers and checked before each use (a service may close
every descriptor it did not open, and reuse the numbers): one it no longer
owns is never written or read, and is made anew.

What it cannot do as well: its signal handler is a Python one, so it runs only
when the main thread executes bytecode (a main thread blocked in C delays the
report), and it can be installed only from the main thread. It has no
watchdog (that needs a thread that runs without the GIL) and cannot lower the
switch interval without the GIL.
"""

from __future__ import annotations

import _thread
import ctypes
import fcntl
import itertools
import os
import resource
import signal
import time
from collections.abc import Callable, Iterable
from types import FrameType
from typing import Any

from gmr import _originals
from gmr._files_py import read_files

IMPLEMENTATION = "pure"

# ---------------------------------------------------------------------------
# Signal handler and self-pipe
# ---------------------------------------------------------------------------

_signals = 0
_armed: Channel | None = None
_armed_pid = 0
_previous: dict[int, Any] = {}
# The unpatched os.write and os.fstat, looked up once by arm(). The handler
# must not look them up itself: that goes through the import system, whose
# module locks are not re-entrant, and a second signal arriving while the
# handler holds one runs the handler again inside it: the main thread
# deadlocked on a burst.
_write: Any = os.write
_fstat: Any = os.fstat

#: Seconds between the checks a waiting watcher makes that it still owns its
#: pipe (a signal whose handler found the pipe gone is answered then).
_CHECK_EVERY = 5.0


def _identity(fd: int) -> tuple[int, int] | None:
    try:
        status = _fstat(fd)
    except OSError:
        return None
    return status.st_dev, status.st_ino


def _high(fd: int) -> int:
    """fd moved out of the low numbers a service reuses first (close-on-exec)."""
    soft = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
    floor = 512 if soft == resource.RLIM_INFINITY else min(512, soft // 2)
    try:
        moved = fcntl.fcntl(fd, fcntl.F_DUPFD_CLOEXEC, floor)
    except OSError:
        return fd
    os.close(fd)
    return moved


#: The most bytes read of each file read ahead on a wake-up (prefetch).
_PREFETCH_LIMIT = 1 << 20


class Channel:
    """What wakes one watcher: a pipe of its own, checked before each use."""

    __slots__ = ("_read", "_write", "_pipe", "_lost", "_select", "_read_bytes", "_names",
                 "_fetched")

    def __init__(self) -> None:
        # The unpatched select and read, looked up once, here: a waiting
        # watcher that looked them up at each check could do it while the
        # service is half-way through importing eventlet.
        self._select = _originals.original("select", "select")
        self._read_bytes = _originals.original("os", "read")
        self._names: tuple[str, ...] = ()
        self._fetched: list[tuple[str, bytes | None]] = []
        self._open()

    def prefetch(self, names: Iterable[str]) -> None:
        self._names = tuple(names)
        self._fetched = []

    def prefetched(self) -> list[tuple[str, bytes | None]]:
        fetched, self._fetched = self._fetched, []
        return fetched

    def _read_ahead(self) -> None:
        self._fetched = list(zip(self._names, read_files(list(self._names), _PREFETCH_LIMIT),
                                 strict=True))

    def _open(self) -> None:
        read_fd, write_fd = os.pipe()
        self._read, self._write = _high(read_fd), _high(write_fd)
        os.set_blocking(self._write, False)
        self._pipe = _identity(self._read)
        # A signal whose handler found the pipe lost: answered by the watcher.
        self._lost = False

    def _owns(self, fd: int) -> bool:
        return self._pipe is not None and _identity(fd) == self._pipe

    def _reopen(self) -> None:
        for fd in (self._read, self._write):
            if self._owns(fd):
                os.close(fd)
        self._open()

    def post(self, kinds: bytes) -> None:
        if not self._owns(self._write):
            self._reopen()
        try:
            _write(self._write, kinds)
        except OSError:
            pass  # full: the watcher is awake already

    def _post_from_handler(self, kinds: bytes) -> None:
        """In the signal handler: write only to a pipe still ours, never make one."""
        if not self._owns(self._write):
            self._lost = True
            return
        try:
            _write(self._write, kinds)
        except OSError:
            pass  # full: a report is already pending

    def wait(self, timeout: float | None, prompt: bool = False,
             watchdog: bool = True) -> bytes:
        # Python cannot ask for the GIL without it: the watcher lowers the
        # switch interval for the whole report instead. No watchdog here.
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            if self._lost or not self._owns(self._read):
                lost_signal = self._lost
                self._reopen()
                if lost_signal:
                    self._read_ahead()
                    return b"S"
            left = _CHECK_EVERY if deadline is None else deadline - time.monotonic()
            try:
                ready, _, _ = self._select([self._read], [], [], max(0.0, min(left, _CHECK_EVERY)))
            except OSError:
                continue  # closed under us: made anew above
            if ready and self._owns(self._read):
                data: bytes = self._read_bytes(self._read, 4096)
                self._read_ahead()
                return data
            if deadline is not None and time.monotonic() >= deadline:
                return b""

    def close(self) -> None:
        for fd in (self._read, self._write):
            if self._owns(fd):
                os.close(fd)
        self._pipe = None


# True while the handler posts: CPython runs a Python handler again at any
# bytecode boundary inside it, and a flood of signals would nest it until
# the recursion limit broke the service's main thread. A signal that comes
# meanwhile is counted, and the post under way posts again for it: the
# watcher may have read the first byte and answered it already.
_posting = False


def _handler(signum: int, frame: FrameType | None) -> None:
    global _signals, _posting
    _signals += 1
    channel = _armed
    if not _posting and channel is not None and os.getpid() == _armed_pid:
        _posting = True
        try:
            posted_for = -1
            while posted_for != _signals:  # a nested signal came during the post
                posted_for = _signals
                channel._post_from_handler(b"S")
        finally:
            _posting = False
    previous = _previous.get(signum)
    if callable(previous):
        previous(signum, frame)


def arm(signum: int, channel: Channel) -> None:
    global _armed, _armed_pid, _write, _fstat
    _write = _originals.original("os", "write")
    _fstat = _originals.original("os", "fstat")
    _armed = channel
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


#: CPython's pending-call callback type, and the callbacks not yet called
#: (ctypes must keep each alive until it has run).
_PENDING = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.c_void_p)
_pending: dict[int, Any] = {}
_queued = itertools.count()


def call_in_main_thread(function: Callable[[], object]) -> bool:
    """As the compiled twin's, through ctypes. Each call queued is kept
    under a key of its own until it has run: the same function queued twice
    must not free the first callback before CPython calls it."""
    key = next(_queued)

    def call(_: object) -> int:
        _pending.pop(key, None)
        try:
            function()
        except BaseException:  # the callable reports its own failures
            # Unlike the compiled twin, a KeyboardInterrupt that a SIGINT
            # raised meanwhile is lost here too: a ctypes callback cannot hand
            # an exception back to the main thread.
            pass
        return 0

    _pending[key] = callback = _PENDING(call)
    add = ctypes.pythonapi.Py_AddPendingCall
    add.argtypes = [_PENDING, ctypes.c_void_p]
    if add(callback, None) != 0:
        _pending.pop(key, None)
        return False
    return True


def signal_taken(signum: int) -> bool:
    """What Python knows: a handler installed from C since it started (by
    faulthandler, a C library) is not seen."""
    return signal.getsignal(signum) != signal.SIG_DFL


def signal_count() -> int:
    return _signals


def use_ask(capsule: object) -> None:
    return None  # no watchdog thread here to ask


def hurry_capsule() -> object:
    return None


def can_hurry() -> bool:
    return False



def name_this_thread(name: str) -> None:
    """The calling thread's name for the kernel, where /proc lets it be set."""
    try:
        with open(f"/proc/self/task/{_thread.get_native_id()}/comm", "w") as comm:
            comm.write(name[:15])
    except OSError:
        pass


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
