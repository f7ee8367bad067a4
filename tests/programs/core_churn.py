"""Churn: threads start and end, greenlets are created, parked and finished,
in several threads at once, while one thread captures continuously and the
watcher serves a steady stream of API triggers. Prints, at the end:

    ok captures=<n> reports=<n> tasks=<a>-><b> fds=<a>-><b> refs=<a>-><b> rss_kb=<a>-><b>
"""

import gc
import os
import sys
import threading
import time

import greenlet
from churn import churn_threads

from gmr import snapshot, watcher

duration = float(sys.argv[1]) if len(sys.argv) > 1 else 3.0


def rss_kb() -> int:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") // 1024


def tasks() -> int:
    return len(os.listdir("/proc/self/task"))


def fds() -> int:
    return len(os.listdir("/proc/self/fd"))


def green_work(depth: int) -> int:
    if depth:
        return green_work(depth - 1) + 1
    greenlet.getcurrent().parent.switch()
    return 0


def greenlet_churn(rounds: int) -> None:
    """Greenlets in every state, each finished before the function returns."""
    for _ in range(rounds):
        unstarted = greenlet.greenlet(green_work)
        parked = [greenlet.greenlet(green_work) for _ in range(4)]
        for depth, green in enumerate(parked):
            green.switch(depth * 5)
        for green in parked:
            green.switch()  # runs to the end: dead
        del unstarted


def short_lived() -> None:
    greenlet_churn(2)


stop = threading.Event()
errors: list[BaseException] = []


def guarded(function):  # type: ignore[no-untyped-def]
    def run(*args):  # type: ignore[no-untyped-def]
        try:
            function(*args)
        except BaseException as error:  # noqa: B036 - reported at the end
            errors.append(error)
    return run


@guarded
def thread_churn() -> None:
    churn_threads(stop, 6, target=short_lived)


captures = 0


@guarded
def capture_loop() -> None:
    global captures
    while not stop.is_set():
        snapshot.take()
        captures += 1


reports = 0


def on_snapshot(taken: snapshot.Snapshot) -> None:
    global reports
    reports += 1


greenlet_churn(5)
snapshot.take()
gc.collect()
tasks_before = tasks()
w = watcher.Watcher(on_snapshot, min_interval=0.0)  # its pipe stays open after stop()
snapshot.forget_frames()  # the shared Frames hold code objects: not a leak
before = (tasks_before, fds(), sys.getrefcount(green_work.__code__), rss_kb())
w.start()
print("ready", flush=True)

workers = [threading.Thread(target=thread_churn) for _ in range(3)]
workers.append(threading.Thread(target=capture_loop))
for thread in workers:
    thread.start()
# Churn for the duration, and on until the watcher has served enough
# reports and the capture thread has taken enough captures: on a loaded
# machine the watcher gets a small share of the GIL beside four busy threads.
deadline = time.monotonic() + duration
give_up = deadline + 40.0
while time.monotonic() < give_up and (
        time.monotonic() < deadline or w.reports <= 10 or captures <= 100):
    greenlet_churn(1)
    w.request()
    time.sleep(0.002)
stop.set()
for thread in workers:
    thread.join(30)
w.stop()
for _ in range(50):  # thread ends are reported a moment after join()
    if tasks() <= before[0]:
        break
    time.sleep(0.02)
gc.collect()
snapshot.forget_frames()
after = (tasks(), fds(), sys.getrefcount(green_work.__code__), rss_kb())
if errors:
    print(f"errors {errors!r}", flush=True)
print(f"ok captures={captures} reports={w.reports} tasks={before[0]}->{after[0]} "
      f"fds={before[1]}->{after[1]} refs={before[2]}->{after[2]} rss_kb={before[3]}->{after[3]}",
      flush=True)
