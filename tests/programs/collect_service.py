"""A service for gmr collect and gmr diff: JSON reports, threads that stay,
end and start on request.

    collect_service.py LOG_DIR [--place a|b] [--children N] [--control FILE]
                       [--format json|json-compact|text]

gmr is set up (reports in LOG_DIR, in --format). A thread "blocked" waits
for ever; a thread "short" waits until FILE exists, then ends, and a thread
"late" starts and waits for ever ("changed" is printed once both are so);
the thread "watch" that saw to it waits for ever after.
A thread "parked" waits in park_a or park_b (--place). With --children N
it forks N children first (each re-arms gmr itself, starts a thread
"parked" in park_child and prints "child PID"), which end with it. Prints "ready" once set up.
"""

import argparse
import os
import threading
from pathlib import Path

from oslo_config import cfg

import gmr
from gmr import opts as gmr_opts

parser = argparse.ArgumentParser()
parser.add_argument("log_dir")
parser.add_argument("--place", choices=["a", "b"], default="a")
parser.add_argument("--children", type=int, default=0)
parser.add_argument("--control")
parser.add_argument("--format", default="json")
args = parser.parse_args()

CONF = cfg.CONF
gmr_opts.set_defaults(CONF, format=args.format)
CONF([], project="collect-test")
gmr.TextGuruMeditation.setup_autorun("1.0", service_name="collect", conf=CONF,
                                     log_dir=args.log_dir)

forever = threading.Event()


def blocked() -> None:
    forever.wait()


def park_a() -> None:
    forever.wait()


def park_b() -> None:
    forever.wait()


def park_child() -> None:
    forever.wait()


def child(parent: int) -> None:
    import ctypes
    import signal

    ctypes.CDLL(None).prctl(1, int(signal.SIGTERM))  # ends with its parent
    if os.getppid() != parent:
        os._exit(0)
    threading.Thread(target=park_child, name="parked", daemon=True).start()
    os.write(1, f"child {os.getpid()}\n".encode())  # one write: a whole line
    forever.wait()


for _ in range(args.children):
    parent = os.getpid()
    if os.fork() == 0:
        child(parent)

threading.Thread(target=blocked, name="blocked", daemon=True).start()
control = Path(args.control) if args.control else None


def short() -> None:
    if control is None:
        forever.wait()
    while not control.exists():
        forever.wait(0.01)


def late() -> None:
    forever.wait()


def watch() -> None:
    shortlived.join()
    threading.Thread(target=late, name="late", daemon=True).start()
    os.write(1, b"changed\n")
    forever.wait()


shortlived = threading.Thread(target=short, name="short", daemon=True)
shortlived.start()
if control is not None:
    threading.Thread(target=watch, name="watch", daemon=True).start()
threading.Thread(target=park_a if args.place == "a" else park_b, name="parked",
                 daemon=True).start()
os.write(1, b"ready\n")
# Waits without a timeout (the pure twin's Python signal handler interrupts
# the main thread: the tests compare the other threads' stacks).
forever.wait()
