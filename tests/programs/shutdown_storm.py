"""Signals keep coming while the interpreter shuts down: a C thread-free
sender (a daemon Python thread, then a child shell) fires SIGUSR2 at this
process throughout its exit."""

import os
import signal
import subprocess
import sys
import threading

from gmr import snapshot, watcher


def report(captured: snapshot.Snapshot) -> None:
    sys.stdout.write(f"report x{captured.coalesced}\n")


w = watcher.Watcher(report, min_interval=0.0)
w.start()
w.arm(signal.SIGUSR2)

print("ready", flush=True)

# A sender that outlives the interpreter: it keeps signalling for 2 s.
sender = subprocess.Popen(
    ["sh", "-c", f"end=$(($(date +%s)+2)); while [ $(date +%s) -lt $end ]; do "
                 f"kill -USR2 {os.getpid()} 2>/dev/null || exit 0; done"],
)


def storm() -> None:
    while True:
        os.kill(os.getpid(), signal.SIGUSR2)


threading.Thread(target=storm, daemon=True).start()
sys.exit(0)
