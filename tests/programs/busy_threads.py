"""A service whose main thread and a worker are busy in Python, with a
switch interval of its own, and parked greenlets.

    busy_threads.py LOG_DIR SWITCH_INTERVAL GREENLETS

gmr is set up (reports in LOG_DIR, the watchdog on, as by default), then
GREENLETS greenlets are parked 20 frames deep, the switch interval is set,
the worker starts, "ready" is printed and the main thread spins for ever."""

import os
import sys
import threading

import greenlet

import gmr

log_dir, interval, count = sys.argv[1], float(sys.argv[2]), int(sys.argv[3])
gmr.TextGuruMeditation.setup_autorun("1", service_name="busy", log_dir=log_dir)


def park(depth: int) -> None:
    if depth:
        park(depth - 1)
        return
    greenlet.getcurrent().parent.switch()


parked = [greenlet.greenlet(park) for _ in range(count)]
for each in parked:
    each.switch(20)


def spin() -> None:
    while True:
        pass


sys.setswitchinterval(interval)
threading.Thread(target=spin, name="busy-worker", daemon=True).start()
os.write(1, b"ready\n")
spin()
