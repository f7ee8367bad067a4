"""A service whose main thread holds the GIL in a long C call
(ctypes.PyDLL keeps the GIL across the call) right after "blocking"."""

import ctypes
import signal
import sys
import time

from gmr import snapshot, watcher

directory = sys.argv[1] if len(sys.argv) > 1 and sys.argv[1] != "-" else None
hold_seconds = int(sys.argv[2]) if len(sys.argv) > 2 else 3


def report(captured: snapshot.Snapshot) -> None:
    main = [t for t in captured.threads if t.is_main]
    where = main[0].frames[-1].function if main and main[0].frames else "?"
    print(f"captured main-at={where}", flush=True)


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
print(f"watchdog {w.enable_watchdog(0.3, directory, 'stuck')}", flush=True)
print("ready", flush=True)
print("blocking", flush=True)
hold_the_gil()
print("released", flush=True)
time.sleep(1.0)
w.stop()
