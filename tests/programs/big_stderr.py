"""A service whose reports go to stderr, which it makes non-blocking, with
enough parked greenlets for a report far past a pipe's 64 KiB.

    big_stderr.py GREENLETS
"""

import os
import signal
import sys

import greenlet

import gmr


def park() -> None:
    greenlet.getcurrent().parent.switch()


parked = [greenlet.greenlet(park) for _ in range(int(sys.argv[1]))]
for green in parked:
    green.switch()
gmr.TextGuruMeditation.register_section("End Marker", lambda: "the end of the report")
gmr.TextGuruMeditation.setup_autorun("1.0", service_name="big")
os.set_blocking(2, False)
os.write(1, b"ready\n")
while True:
    signal.pause()
