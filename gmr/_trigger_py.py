"""The pure-Python twin of gmr._trigger: the same names, built on
``signal.signal`` and a pipe read through Python.

What it cannot do as well: its signal handler is a Python one, so it runs only
when the main thread executes bytecode (a main thread blocked in C delays the
report), and it can be installed only from the main thread. It has no
watchdog (that needs a thread that runs without the GIL) and cannot lower the
switch interval without the GIL.
"""

from __future__ import annotations

import _thread
import os
import signal
from types import FrameType
from typing import Any

from gmr import _originals

IMPLEMENTATION = "pure"

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


def use_switch_interval(cell: object) -> None:
    return None



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
