"""A service whose main thread holds the GIL in a long C call
(ctypes.PyDLL keeps the GIL across the call) right after "blocking".
With GMR_TEST_FORK set, it forks after set-up, the parent waits, and the
child is the one that says "child <pid>", then the rest."""

import ctypes
import os
import signal
import sys
import time

from gmr import snapshot, watcher

directory = sys.argv[1] if len(sys.argv) > 1 and sys.argv[1] != "-" else None
hold_seconds = int(sys.argv[2]) if len(sys.argv) > 2 else 3
if len(sys.argv) > 3:
    # Files of at most this many bytes, as a full disk would allow: a write
    # past it fails with EFBIG (SIGXFSZ ignored, as it would kill us).
    import resource

    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    resource.setrlimit(resource.RLIMIT_FSIZE, (int(sys.argv[3]), resource.RLIM_INFINITY))


def say(line: str) -> None:
    """One whole line in one write: the watcher thread and the main thread
    both print, and print() writes the text and its newline apart."""
    os.write(1, (line + "\n").encode())


def report(captured: snapshot.Snapshot) -> None:
    main = [t for t in captured.threads if t.is_main]
    where = main[0].frames[-1].function if main and main[0].frames else "?"
    say(f"captured main-at={where}")


class Timespec(ctypes.Structure):
    _fields_ = [("tv_sec", ctypes.c_long), ("tv_nsec", ctypes.c_long)]


def hold_the_gil() -> None:
    """pthread_mutex_timedlock on a mutex this thread already holds: it waits
    out its timeout and never returns EINTR, so a signal cannot end it."""
    libc = ctypes.CDLL(None)
    mutex = ctypes.create_string_buffer(64)  # zeroed: PTHREAD_MUTEX_INITIALIZER
    libc.pthread_mutex_lock(mutex)
    deadline = Timespec(int(time.time()) + hold_seconds, 0)
    ctypes.PyDLL(None).pthread_mutex_timedlock(mutex, ctypes.byref(deadline))


w = watcher.Watcher(report)
w.start()
w.arm(signal.SIGUSR2)
say(f"watchdog {w.enable_watchdog(0.3, directory, 'stuck')}")
if os.environ.get("GMR_TEST_FORK"):
    if pid := os.fork():
        os._exit(os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]))
    say(f"child {os.getpid()}")
say("ready")
say("blocking")
hold_the_gil()
say("released")
time.sleep(1.0)
w.stop()
