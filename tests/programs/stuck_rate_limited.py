"""A watcher whose rate limit allows <burst> reports, then one an hour, with
the watchdog on (0.3 s): after one report, the main thread holds the GIL in
a C call for 2 s while the test signals it.

    stuck_rate_limited.py <log_dir> <burst>

Prints "ready"; after the first report "reported"; then "blocking" before
the C call and "released" after it."""

import os
import signal
import sys
import threading

from gil_holder import hold_the_gil

from gmr import snapshot, watcher

directory, burst = sys.argv[1], int(sys.argv[2])
reported = threading.Event()


def say(line: str) -> None:
    os.write(1, (line + "\n").encode())


def report(captured: snapshot.Snapshot) -> None:
    reported.set()


w = watcher.Watcher(report, min_interval=3600.0, burst=burst)
w.start()
w.arm(signal.SIGUSR2)
assert w.enable_watchdog(0.3, directory, "limited")
say("ready")
reported.wait()
say("reported")
say("blocking")
hold_the_gil(2)
say("released")
w.stop()
