"""The service compare.py measures: T OS threads parked D frames deep, G
parked greenlets, H GC-tracked heap objects, C oslo.config options, B busy
Python threads in tight pure-Python loops, a probe that sleeps 1 ms at a
time and notes how late it wakes, and one reporter armed on SIGUSR2 (or
none, for py-spy).

    python benchmarks/workload.py --reporter gmr --out DIR [--threads 10 ...]
                                  [--busy 2] [--switch-interval MS]

The busy threads (--busy, default 2), as a real service's request threads:

- the main thread and B-1 worker threads, each in a tight loop; under a
  hub (--hub eventlet|gevent) the main thread runs the hub, and its tight
  loop is a busy greenlet that gives the hub a turn between rounds, beside
  the probe greenlet;
- --stuck: the main thread blocks in C; B workers.

Each busy loop notes every gap between its rounds over 0.1 ms; the probe
(its own thread, or the main greenlet under a hub: the hub's tick) notes
every lateness over 0.1 ms. The notes go to preallocated arrays, so that
measuring grows no memory (RSS is one of the figures).

Prints "ready" once everything is parked. On stdin, "gaps T0 T1" answers a
JSON line with the longest main-loop gap, worker gap and probe lateness
(ms) between two time.perf_counter() instants (CLOCK_MONOTONIC: the same
clock in every process here); "gaps T0 T1 W", the median over the windows
of W seconds in T0..T1 of each window's longest (a floor for a measure
over W seconds); "quit" ends it.

The names counted in a report: frames of deep_thread_frame (threads),
parked_greenlet (greenlets) and options bench_option_NNNNN. A frame's source
line never holds those names, so each frame is counted once.
"""

from __future__ import annotations

import argparse
import array
import ctypes
import json
import os
import signal
import statistics
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
parser.add_argument("--greenlet-depth", type=int, default=1,
                    help="frames of parked_greenlet on each greenlet's stack")
parser.add_argument("--heap", type=int, default=1_000_000)
parser.add_argument("--options", type=int, default=100)
parser.add_argument("--hub", choices=["none", "eventlet", "gevent"], default="none")
parser.add_argument("--stuck", action="store_true",
                    help="the main thread blocks in pthread_mutex_timedlock, GIL released")
parser.add_argument("--busy", type=int, default=2,
                    help="busy Python threads (the main thread one of them unless stuck or hub)")
parser.add_argument("--switch-interval", type=float, default=None,
                    help="sys.setswitchinterval, in ms (Python's default: 5)")
args = parser.parse_args()
if args.switch_interval is not None:
    sys.setswitchinterval(args.switch_interval / 1e3)

if args.hub == "eventlet":
    import warnings

    warnings.filterwarnings("ignore", message=r"\s*Eventlet is deprecated")  # at import
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


def parked_greenlet(n: int = 1) -> None:
    if n > 1:
        return green_down(n - 1)
    if args.hub == "eventlet":
        eventlet.Event().wait()
    elif args.hub == "gevent":
        import gevent.event

        gevent.event.Event().wait()
    else:
        greenlet.getcurrent().parent.switch()


green_down = parked_greenlet

for _ in range(args.threads):
    start_thread(deep_thread_frame, (args.depth,))
if args.hub == "eventlet":
    lets = [eventlet.spawn(parked_greenlet, args.greenlet_depth)
            for _ in range(args.greenlets)]
    eventlet.sleep(0)
elif args.hub == "gevent":
    import gevent

    lets = [gevent.spawn(parked_greenlet, args.greenlet_depth) for _ in range(args.greenlets)]
    gevent.sleep(0)
else:
    lets = [greenlet.greenlet(parked_greenlet) for _ in range(args.greenlets)]
    for one in lets:
        one.switch(args.greenlet_depth)
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

# -- probes: every gap over 0.1 ms, with when it ended --------------------------------


class Gaps:
    """One recorder's gaps: (end, length) in two preallocated rings of doubles,
    and when it last ran. Written by one thread only; read by the control
    thread."""

    SIZE = 1 << 17

    def __init__(self) -> None:
        self.ends = array.array("d", bytes(8 * self.SIZE))
        self.lengths = array.array("d", bytes(8 * self.SIZE))
        self.count = 0
        self.last = perf_counter()

    def note(self, end: float, length: float) -> None:
        index = self.count % self.SIZE
        self.ends[index] = end
        self.lengths[index] = length
        self.count += 1

    def longest(self, start: float, end: float, window: float = 0.0) -> float:
        """The longest gap (ms) that overlaps start..end, whole; one still
        under way (the recorder has not run since before end) counts up to
        end. With a window (a floor, over a quiet time before a trigger):
        only the gaps that ended in start..end, and when the window is
        shorter, the median over the consecutive windows of that length in
        start..end of each one's longest gap."""
        found = []
        index = self.count - 1
        oldest = max(0, self.count - self.SIZE)
        while index >= oldest:  # newest first; the ends only grow
            at = index % self.SIZE
            gap_end, length = self.ends[at], self.lengths[at]
            if gap_end < start - 1.0:
                break
            if gap_end >= start and (gap_end <= end if window else gap_end - length <= end):
                found.append((gap_end, length))
            index -= 1
        last = self.last
        if last < end and not window:
            found.append((end, end - max(last, start)))
        windows = int((end - start) / window) if window > 0 else 1
        if windows <= 1:
            return max((length for _, length in found), default=0.0) * 1e3
        each = []
        for k in range(windows):
            low, high = start + k * window, start + (k + 1) * window
            each.append(max((length for gap_end, length in found
                             if low <= gap_end <= high), default=0.0))
        return statistics.median(each) * 1e3


main_gaps = Gaps()  # the main thread's busy loop (under a hub: the busy greenlet)
probe_gaps = Gaps()  # the 1 ms sleeper's lateness (under a hub: the hub's tick)
worker_gaps: list[Gaps] = []


def busy_loop(gaps: Gaps, pause: Any = None) -> None:
    """A request thread's CPU work: rounds of pure-Python arithmetic; a
    greenlet's loop gives the hub a turn (pause) between rounds."""
    last = perf_counter()
    total = 0
    while True:
        for i in range(200):
            total += i * i
        if pause is not None:
            pause()
        now = perf_counter()
        if now - last > 1e-4:
            gaps.note(now, now - last)
        last = gaps.last = now


def probe(gaps: Gaps) -> None:
    """Sleep 1 ms, note how late it woke: a thread that waits for I/O."""
    while True:
        before = perf_counter()
        time.sleep(0.001)
        now = gaps.last = perf_counter()
        if now - before > 1.1e-3:
            gaps.note(now, now - before - 1e-3)


def control() -> None:
    for line in sys.stdin:
        words = line.split()
        if words and words[0] == "gaps":
            start, end = float(words[1]), float(words[2])
            window = float(words[3]) if len(words) > 3 else 0.0
            main_busy = not args.stuck and args.busy > 0
            print(json.dumps({
                "main": main_gaps.longest(start, end, window) if main_busy else None,
                "worker": max((gaps.longest(start, end, window) for gaps in list(worker_gaps)),
                              default=None),
                "probe": probe_gaps.longest(start, end, window),
            }), flush=True)
        elif words == ["quit"]:
            break
    os._exit(0)


workers = args.busy if args.stuck else max(0, args.busy - 1)
for _ in range(workers):
    worker_gaps.append(Gaps())
    start_thread(busy_loop, (worker_gaps[-1],))
if args.hub == "none":
    start_thread(probe, (probe_gaps,))
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

if args.hub == "none":
    if args.busy > 0:
        busy_loop(main_gaps)
    else:
        while True:
            time.sleep(3600)
else:
    # The main greenlet is the probe (the hub's tick); a busy greenlet beside it.
    green = eventlet if args.hub == "eventlet" else gevent
    if args.busy > 0:
        busy_green = green.spawn(busy_loop, main_gaps, lambda: green.sleep(0))
    probe(probe_gaps)
