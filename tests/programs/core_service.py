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
Lines "blocking until=<time.time()>" and "returned" frame a blocking call
("blocking" is printed from inside busy_loop itself).

SIGRTMIN asks the watcher for a report through the API, after printing
"requested signals=<the handler's count of SIGUSR2 so far>": a test's last
trigger, whose report proves that every earlier one was answered. The kernel
delivers a pending SIGUSR2 before it (lower numbers first), and CPython runs
a pending SIGUSR2 Python handler before its own (in order of number).
The environment's REPORT_BURST and REPORT_INTERVAL set the watcher's rate
(1 and 0.5 s by default; REPORT_INTERVAL=0 lifts the limit).
"""

import ctypes
import os
import select
import signal
import sys
import threading
import time

from gmr import snapshot, watcher
from gmr._impl import trigger

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
    say(f"blocking until={time.time() + duration:.6f}")
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


w = watcher.Watcher(report, min_interval=float(os.environ.get("REPORT_INTERVAL", "0.5")),
                    burst=int(os.environ.get("REPORT_BURST", "1")))
w.start()


def request(signum: int, frame: object) -> None:
    say(f"requested signals={trigger.signal_count()}")
    w.request()


signal.signal(signal.SIGRTMIN, request)

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
        # rawfork: only this thread exists here; the watcher stayed in the
        # parent. A signal a process sends itself is handled before kill()
        # returns (the pure twin's Python handler at the next bytecode).
        os.kill(os.getpid(), signal.SIGUSR2)
        if mode == "fork":  # the child's own watcher answers: wait for it
            deadline = time.monotonic() + 30
            while w.reports < 1 and time.monotonic() < deadline:
                time.sleep(0.01)
        say(f"child {os.getpid()} done")
        os._exit(0)
    os.waitpid(pid, 0)
    # The parent's watcher answers an API request: its report (trigger=api,
    # n=1) shows that it counted no signal of the child's.
    w.request()
    deadline = time.monotonic() + 30
    while w.reports < 1 and time.monotonic() < deadline:
        time.sleep(0.01)
    say(f"parent reports={w.reports}")
    idle()
else:
    idle(seconds)
