"""A service set up with a given service_name and log_dir (relative ones
too), that may change its working directory after set-up, and may then hold
the GIL in a long C call (for the watchdog's degraded report).

    named_service.py LOG_DIR SERVICE_NAME [--chdir DIR] [--watchdog SECONDS]
                     [--hold SECONDS]
"""

import argparse
import ctypes
import os
import time

from oslo_config import cfg

import gmr
from gmr import opts as gmr_opts

parser = argparse.ArgumentParser()
parser.add_argument("log_dir")
parser.add_argument("service_name")
parser.add_argument("--chdir")
parser.add_argument("--watchdog", type=float, default=1.0)
parser.add_argument("--hold", type=int, default=0)
args = parser.parse_args()


def say(line: str) -> None:
    """One whole line in one write (the watcher may print too)."""
    os.write(1, (line + "\n").encode())


class Timespec(ctypes.Structure):
    _fields_ = [("tv_sec", ctypes.c_long), ("tv_nsec", ctypes.c_long)]


def hold_the_gil(seconds: int) -> None:
    """pthread_mutex_timedlock on a mutex this thread already holds, through
    ctypes.PyDLL, which keeps the GIL across the call."""
    libc = ctypes.CDLL(None)
    mutex = ctypes.create_string_buffer(64)  # zeroed: PTHREAD_MUTEX_INITIALIZER
    libc.pthread_mutex_lock(mutex)
    deadline = Timespec(int(time.time()) + seconds, 0)
    ctypes.PyDLL(None).pthread_mutex_timedlock(mutex, ctypes.byref(deadline))


conf = cfg.ConfigOpts()
gmr_opts.set_defaults(conf, watchdog_timeout=args.watchdog)
conf([], project="named")
gmr.TextGuruMeditation.setup_autorun("1.0", service_name=args.service_name,
                                     log_dir=args.log_dir, conf=conf)
if args.chdir:
    os.chdir(args.chdir)
say("ready")
if args.hold:
    say("blocking")
    hold_the_gil(args.hold)
    say("released")
while True:
    time.sleep(0.05)
