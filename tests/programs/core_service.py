"""A service for the core's signal tests. The watcher prints one line per
snapshot:

    report pid=<pid> trigger=<trigger> n=<coalesced> at=<captured_at> main=<f,g,...>
           watcher_seen=<whether the watcher's thread is in it> threads=<count>

(main's functions outermost first). argv[1] is what the main thread does
after "ready"; argv[2], where given, is how long it blocks, in seconds:

  busy       computes in Python
  sleep      one time.sleep(seconds)
  timedlock  pthread_mutex_timedlock on a mutex it holds (ctypes: no GIL)
  select     select() on a pipe nobody writes (no GIL)
  chain      a Python handler installed with signal.signal before gmr arms
  displace   signal.signal replaces gmr's handler after it armed
  disarm-python / disarm-ignore / disarm-default
             arm over that previous action, then disarm
  fork       os.fork, and the child signals itself
  rawfork    the same with libc's fork (no at-fork hooks: the child keeps
             the parent's handler and pipe)
  idle       sleeps in short steps
Lines "blocking until=<time.time()>" and "returned" frame a blocking call.
"""

import ctypes
import os
import select
import signal
import sys
import threading
import time

from gmr import snapshot, watcher

mode = sys.argv[1]
seconds = float(sys.argv[2]) if len(sys.argv) > 2 else 30.0


def say(line: str) -> None:
    # One write per line: the watcher thread and main both print.
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


def report(captured: snapshot.Snapshot) -> None:
    main = [thread for thread in captured.threads if thread.is_main]
    stack = ",".join(frame.code.co_name for frame in main[0].frames) if main else "-"
    me = threading.get_ident()  # the watcher's own thread: never in its snapshot
    say(f"report pid={captured.pid} trigger={captured.trigger} n={captured.coalesced} "
        f"at={captured.captured_at:.6f} main={stack} "
        f"watcher_seen={any(thread.ident == me for thread in captured.threads)} "
        f"threads={len(captured.threads)}")


def python_handler(signum: int, frame: object) -> None:
    say(f"python handler pid={os.getpid()}")


def idle(duration: float = 30.0) -> None:
    deadline = time.monotonic() + duration
    while time.monotonic() < deadline:
        time.sleep(0.02)


def busy_loop(duration: float) -> int:
    deadline = time.monotonic() + duration
    total = 0
    while time.monotonic() < deadline:
        for i in range(1000):
            total += i * i
    return total


class Timespec(ctypes.Structure):
    _fields_ = [("tv_sec", ctypes.c_long), ("tv_nsec", ctypes.c_long)]


def block_in_timedlock(deadline: float) -> int:
    libc = ctypes.CDLL(None, use_errno=True)  # a CDLL call releases the GIL
    mutex = ctypes.create_string_buffer(64)  # zeroes: PTHREAD_MUTEX_INITIALIZER
    assert libc.pthread_mutex_lock(mutex) == 0
    until = Timespec(int(deadline), int((deadline % 1) * 1e9))
    # The mutex is ours already: this waits until the (CLOCK_REALTIME) deadline.
    return int(libc.pthread_mutex_timedlock(mutex, ctypes.byref(until)))


def block_in_select(duration: float) -> int:
    read_end, _write_end = os.pipe()
    ready, _, _ = select.select([read_end], [], [], duration)
    return len(ready)


w = watcher.Watcher(report)
w.start()

if mode == "chain":
    signal.signal(signal.SIGUSR2, python_handler)
if mode.startswith("disarm-"):
    previous = {"python": python_handler, "ignore": signal.SIG_IGN,
                "default": signal.SIG_DFL}[mode.split("-", 1)[1]]
    signal.signal(signal.SIGUSR2, previous)
w.arm(signal.SIGUSR2)
say(f"armed {w.is_armed(signal.SIGUSR2)}")
if mode == "displace":
    signal.signal(signal.SIGUSR2, python_handler)
    say(f"after signal.signal armed={w.is_armed(signal.SIGUSR2)} displaced={w.displaced()}")
if mode.startswith("disarm-"):
    w.disarm(signal.SIGUSR2)
    say(f"disarmed armed={w.is_armed(signal.SIGUSR2)} "
        f"getsignal={signal.getsignal(signal.SIGUSR2) is previous}")

say("ready")
if mode == "busy":
    say(f"blocking until={time.time() + seconds:.6f}")
    busy_loop(seconds)
    say("returned")
elif mode == "sleep":
    say(f"blocking until={time.time() + seconds:.6f}")
    time.sleep(seconds)
    say("returned")
    idle()
elif mode == "timedlock":
    deadline = time.time() + seconds
    say(f"blocking until={deadline:.6f}")
    result = block_in_timedlock(deadline)
    say(f"returned {result}")
    idle()
elif mode == "select":
    say(f"blocking until={time.time() + seconds:.6f}")
    block_in_select(seconds)
    say("returned")
    idle()
elif mode in ("fork", "rawfork"):
    if mode == "rawfork":
        fork = ctypes.PyDLL(None).fork  # a PyDLL call keeps the GIL across fork()
        fork.restype = ctypes.c_int
    else:
        fork = os.fork  # runs the at-fork hooks: the child gets a watcher of its own
    pid = fork()
    if pid == 0:
        # rawfork: only this thread exists here; the watcher stayed in the parent.
        os.kill(os.getpid(), signal.SIGUSR2)
        time.sleep(1.0)
        say(f"child {os.getpid()} done")
        os._exit(0)
    os.waitpid(pid, 0)
    time.sleep(0.5)
    say(f"parent reports={w.reports}")
    idle()
else:
    idle(seconds)
