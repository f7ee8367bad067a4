"""A green service whose main greenlet ticks, for the hub-stall test and
benchmarks/hub_stall.py.

    hub_tick.py <eventlet|gevent> <greenlets> <log_dir> <seconds> [gmr|oslo.reports]

Monkey-patches first, parks <greenlets> green threads in parked_green (a
patched sleep), sets up the reporter (gmr by default) with reports in
log_dir, prints "ready", then for <seconds> ticks: time.sleep(0.001) in the
main greenlet, measuring how late each tick wakes. Every 0.2 s it prints

    window reports=<report files in log_dir> worst_ms=<latest tick in the window>

so the windows in which reports were made show how long the hub stalled.
"""

import sys

library, greenlets, log_dir, seconds = sys.argv[1:5]
reporter = sys.argv[5] if len(sys.argv) > 5 else "gmr"

if library == "eventlet":
    import eventlet

    eventlet.monkey_patch()
    spawn = eventlet.spawn
else:
    import gevent
    from gevent import monkey

    monkey.patch_all()
    spawn = gevent.spawn

import os  # noqa: E402
import time  # noqa: E402

if reporter == "gmr":
    import gmr
else:
    from oslo_reports import guru_meditation_report as gmr

TICK = 0.001
WINDOW = 0.2


def parked_green() -> None:
    time.sleep(3600)


def reports() -> int:
    return sum(not name.startswith(".") for name in os.listdir(log_dir))


parked = [spawn(parked_green) for _ in range(int(greenlets))]
time.sleep(0.1)  # every green thread is parked in the hub
gmr.TextGuruMeditation.setup_autorun("1.0", service_name="hub", log_dir=log_dir)
print("ready", flush=True)

end = time.monotonic() + float(seconds)
worst = 0.0
window_end = time.monotonic() + WINDOW
while True:
    before = time.monotonic()
    time.sleep(TICK)
    after = time.monotonic()
    worst = max(worst, after - before - TICK)
    if after >= window_end:
        print(f"window reports={reports()} worst_ms={worst * 1e3:.2f}", flush=True)
        worst = 0.0
        window_end = after + WINDOW
        if after >= end:
            break
