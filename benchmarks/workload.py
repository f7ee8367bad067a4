"""The service compare.py measures: T OS threads parked D frames deep, G
parked greenlets, H GC-tracked heap objects, C oslo.config options, a busy
worker thread and a probe on the main thread (or the green hub) that record
every gap, and one reporter armed on SIGUSR2 (or none, for py-spy).

    python benchmarks/workload.py --reporter gmr --out DIR [--threads 10 ...]

Prints "ready" once everything is parked. On stdin, "gaps T0 T1" answers a
JSON line with the longest main-probe lateness and worker gap (ms) between
two time.perf_counter() instants (CLOCK_MONOTONIC: the same clock in every
process here); "quit" ends it.

The names counted in a report: frames of deep_thread_frame (threads),
parked_greenlet (greenlets) and options bench_option_NNNNN. A frame's source
line never holds those names, so each frame is counted once.
"""

from __future__ import annotations

import argparse
import collections
import ctypes
import json
import os
import signal
import sys
import time
from typing import Any

parser = argparse.ArgumentParser()
parser.add_argument("--reporter", required=True,
                    choices=["gmr", "oslo.reports", "faulthandler", "plain", "none"])
parser.add_argument("--out", required=True, help="log_dir, or the file in-place writers fill")
parser.add_argument("--threads", type=int, default=10)
parser.add_argument("--depth", type=int, default=30)
parser.add_argument("--greenlets", type=int, default=1000)
parser.add_argument("--heap", type=int, default=1_000_000)
parser.add_argument("--options", type=int, default=100)
parser.add_argument("--hub", choices=["none", "eventlet", "gevent"], default="none")
parser.add_argument("--stuck", action="store_true",
                    help="the main thread blocks in pthread_mutex_timedlock, GIL released")
args = parser.parse_args()

if args.hub == "eventlet":
    import eventlet

    eventlet.monkey_patch()
    from eventlet.patcher import original

    start_thread = original("_thread").start_new_thread
    allocate_lock = original("_thread").allocate_lock
elif args.hub == "gevent":
    from gevent import monkey

    monkey.patch_all()
    start_thread = monkey.get_original("_thread", "start_new_thread")
    allocate_lock = monkey.get_original("_thread", "allocate_lock")
else:
    import _thread

    start_thread = _thread.start_new_thread
    allocate_lock = _thread.allocate_lock

import greenlet  # noqa: E402
from oslo_config import cfg  # noqa: E402

sys.setrecursionlimit(max(sys.getrecursionlimit(), 10 * args.depth + 1000))
perf_counter = time.perf_counter

# -- what is parked --------------------------------------------------------------

never = allocate_lock()
never.acquire()
parked = allocate_lock()
parked_count = [0]


def deep_thread_frame(n: int) -> None:
    if n > 1:
        return down(n - 1)
    with parked:
        parked_count[0] += 1
    never.acquire()  # real OS threads, blocked for good


down = deep_thread_frame


def parked_greenlet() -> None:
    if args.hub == "eventlet":
        eventlet.Event().wait()
    elif args.hub == "gevent":
        import gevent.event

        gevent.event.Event().wait()
    else:
        greenlet.getcurrent().parent.switch()


for _ in range(args.threads):
    start_thread(deep_thread_frame, (args.depth,))
if args.hub == "eventlet":
    lets = [eventlet.spawn(parked_greenlet) for _ in range(args.greenlets)]
    eventlet.sleep(0)
elif args.hub == "gevent":
    import gevent

    lets = [gevent.spawn(parked_greenlet) for _ in range(args.greenlets)]
    gevent.sleep(0)
else:
    lets = [greenlet.greenlet(parked_greenlet) for _ in range(args.greenlets)]
    for one in lets:
        one.switch()
heap = [[] for _ in range(args.heap)]

CONF = cfg.CONF
CONF.register_opts([cfg.StrOpt(f"bench_option_{n:05d}", default=f"value-{n}")
                    for n in range(args.options)], group="bench")

# -- the reporter ------------------------------------------------------------------

if args.reporter == "gmr":
    import gmr
    from gmr import opts as gmr_opts
elif args.reporter == "oslo.reports":
    from oslo_reports import guru_meditation_report as gmr  # type: ignore[no-redef]
    from oslo_reports import opts as gmr_opts  # type: ignore[no-redef]
if args.reporter in ("gmr", "oslo.reports"):
    gmr_opts.set_defaults(CONF)
    CONF([], project="bench")
    gmr.TextGuruMeditation.setup_autorun("1.0", conf=CONF, service_name="bench",
                                         log_dir=args.out)
else:
    CONF([], project="bench")
if args.reporter == "faulthandler":
    import faulthandler

    report_file = open(args.out, "w")
    faulthandler.register(signal.SIGUSR2, file=report_file, all_threads=True)
elif args.reporter == "plain":
    import gc
    import traceback

    def plain_report(signum: int, frame: Any) -> None:
        """What a service writes by hand: every thread, every greenlet, the options."""
        out = []
        for ident, top in sys._current_frames().items():
            out.append(f"Thread {ident}:\n{''.join(traceback.format_stack(top))}")
        for obj in gc.get_objects():
            if isinstance(obj, greenlet.greenlet) and obj.gr_frame is not None:
                out.append(f"Greenlet {id(obj):#x}:\n"
                           f"{''.join(traceback.format_stack(obj.gr_frame))}")
        for name in sorted(CONF.bench):
            out.append(f"bench.{name} = {CONF.bench[name]}")
        with open(args.out, "w") as handle:
            handle.write("\n".join(out) + "\n")

    signal.signal(signal.SIGUSR2, plain_report)

# -- probes: every gap over 0.1 ms, with when it ended -------------------------------

main_gaps: collections.deque[tuple[float, float]] = collections.deque(maxlen=200_000)
worker_gaps: collections.deque[tuple[float, float]] = collections.deque(maxlen=200_000)


def busy_worker() -> None:
    last = perf_counter()
    total = 0
    while True:
        for i in range(200):
            total += i * i
        now = perf_counter()
        if now - last > 1e-4:
            worker_gaps.append((now, now - last))
        last = now


def longest(gaps: collections.deque[tuple[float, float]], start: float, end: float) -> float:
    return max((gap for ended, gap in list(gaps) if start <= ended <= end), default=0.0) * 1e3


def control() -> None:
    for line in sys.stdin:
        words = line.split()
        if words and words[0] == "gaps":
            start, end = float(words[1]), float(words[2])
            main = None if args.stuck else longest(main_gaps, start, end)
            print(json.dumps({"main": main, "worker": longest(worker_gaps, start, end)}),
                  flush=True)
        elif words == ["quit"]:
            break
    os._exit(0)


start_thread(busy_worker, ())
start_thread(control, ())
while parked_count[0] < args.threads:
    time.sleep(0.01)
print("ready", flush=True)

if args.stuck:
    class Timespec(ctypes.Structure):
        _fields_ = [("tv_sec", ctypes.c_long), ("tv_nsec", ctypes.c_long)]

    libc = ctypes.CDLL(None, use_errno=True)  # a CDLL call releases the GIL
    mutex = ctypes.create_string_buffer(64)  # zeroes: PTHREAD_MUTEX_INITIALIZER
    libc.pthread_mutex_lock(mutex)
    until = Timespec(int(time.time()) + 3600, 0)
    libc.pthread_mutex_timedlock(mutex, ctypes.byref(until))  # ours already: waits

# The main-thread (or green hub) probe: sleep 1 ms, note how late it woke.
while True:
    before = perf_counter()
    time.sleep(0.001)
    now = perf_counter()
    if now - before > 1.1e-3:
        main_gaps.append((now, now - before - 1e-3))
