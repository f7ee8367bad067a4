"""A process without gmr that ignores SIGUSR2: asked for a report, it never
writes one. Prints "ready", then sleeps until killed."""

import signal
import time

signal.signal(signal.SIGUSR2, signal.SIG_IGN)
print("ready", flush=True)
while True:
    time.sleep(1)
