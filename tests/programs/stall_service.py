"""A service with one event loop, for the stall-report tests and
benchmarks/stall_cost.py.

    stall_service.py KIND LOG_DIR AFTER MODE SECONDS [options]

KIND is eventlet (monkey-patched; its hub in the main thread), gevent
(patch_all; the hub made after set-up, in the main thread) or asyncio (a
loop started after set-up with asyncio.run in a thread named "loop-thread").
gmr is set up through oslo.config with [oslo_reports] stall_report_after =
AFTER (0: off) and reports in LOG_DIR. Once gmr watches the loop (its
heartbeat has run; at once when AFTER is 0) it prints "watching", then, by
MODE, in the loop:

- block: prints "blocking", blocks the loop in block_the_loop() with the
  unpatched time.sleep(SECONDS), prints "unblocked"; --blocks N times, each
  time once the loop has come round again (its heartbeat has run since);
  then "done" and it idles.
- idle: lets the loop idle for SECONDS (a sleep of the loop's own), then
  prints "idled checks=<checks the watcher made> watched=<loops watched>".
- tick: for SECONDS, sleeps 1 ms in the loop and measures how late each
  wake-up is; each 0.2 s prints "window worst_ms=<the latest in the window>",
  then "done".

Then it idles until it is killed.
"""

from __future__ import annotations

import argparse

parser = argparse.ArgumentParser()
parser.add_argument("kind", choices=["eventlet", "gevent", "asyncio"])
parser.add_argument("log_dir")
parser.add_argument("after", type=float)
parser.add_argument("mode", choices=["block", "idle", "tick"])
parser.add_argument("seconds", type=float)
parser.add_argument("--interval", type=float, help="[oslo_reports] stall_report_interval")
parser.add_argument("--format", default="json")
parser.add_argument("--blocks", type=int, default=1)
parser.add_argument("--conf", action="append", default=[],
                    help="another [oslo_reports] option, NAME=VALUE, given as it is")
args = parser.parse_args()

if args.kind == "eventlet":
    import eventlet
    import eventlet.patcher

    eventlet.monkey_patch()
    green_sleep = eventlet.sleep
    real_sleep = eventlet.patcher.original("time").sleep
elif args.kind == "gevent":
    import gevent
    from gevent import monkey

    monkey.patch_all()
    green_sleep = gevent.sleep
    real_sleep = monkey.get_original("time", "sleep")
else:
    import time as _time

    real_sleep = _time.sleep

import os  # noqa: E402
import tempfile  # noqa: E402
import threading  # noqa: E402
import time  # noqa: E402

from oslo_config import cfg  # noqa: E402

import gmr  # noqa: E402
from gmr import guru  # noqa: E402
from gmr import opts as gmr_opts  # noqa: E402

lines = ["[oslo_reports]", f"stall_report_after = {args.after:g}", f"format = {args.format}"]
if args.interval is not None:
    lines.append(f"stall_report_interval = {args.interval:g}")
lines += [option.replace("=", " = ", 1) for option in args.conf]
with tempfile.NamedTemporaryFile("w", suffix=".conf", delete=False) as config:
    config.write("\n".join(lines) + "\n")
conf = cfg.ConfigOpts()
gmr_opts.set_defaults(conf)
conf(["--config-file", config.name], project="stall")
os.unlink(config.name)
gmr.TextGuruMeditation.setup_autorun("1.0", conf=conf, service_name="stall",
                                     log_dir=args.log_dir)
watcher = guru.TextGuruMeditation._watcher
assert watcher is not None


def say(line: str) -> None:
    print(line, flush=True)


def heartbeats() -> list[float]:
    """Each watched loop's due time; empty until gmr's heartbeat has run."""
    monitor = watcher.stalls
    return [] if monitor is None else [due for *_, installed, due in monitor.watched()
                                       if installed]


def block_the_loop(seconds: float) -> None:
    real_sleep(seconds)


def blocks():  # type: ignore[no-untyped-def]
    """The loop blocked --blocks times, each once it has come round since:
    the caller lets the loop run a turn at each step."""
    for _ in range(args.blocks):
        say("blocking")
        block_the_loop(args.seconds)
        unblocked = time.monotonic()
        say("unblocked")
        while not any(due > unblocked for due in heartbeats()):
            yield
    say("done")


def watched() -> bool:
    return args.after <= 0 or bool(heartbeats())


def say_idled() -> None:
    monitor = watcher.stalls
    say(f"idled checks={monitor.checks if monitor else 0} "
        f"watched={len(monitor.watched()) if monitor else 0}")


class Lateness:
    """A 1 ms tick's worst lateness in each window of 0.2 s, said at the end
    of each, for --seconds."""

    tick = 0.001

    def __init__(self) -> None:
        now = time.monotonic()
        self.end, self.worst, self.window_end = now + args.seconds, 0.0, now + 0.2

    def note(self, before: float, after: float) -> bool:
        """One tick slept from before to after; whether the time is up."""
        self.worst = max(self.worst, after - before - self.tick)
        if after < self.window_end:
            return False
        say(f"window worst_ms={self.worst * 1e3:.3f}")
        self.worst, self.window_end = 0.0, after + 0.2
        return after >= self.end


if args.kind in ("eventlet", "gevent"):
    while not watched():
        green_sleep(0.01)
    say("watching")
    if args.mode == "block":
        for _ in blocks():
            green_sleep(0.01)
    elif args.mode == "idle":
        green_sleep(args.seconds)
        say_idled()
    else:
        lateness = Lateness()
        while True:
            before = time.monotonic()
            green_sleep(lateness.tick)
            if lateness.note(before, time.monotonic()):
                break
        say("done")
    while True:
        green_sleep(3600)
else:
    import asyncio

    async def main() -> None:
        while not watched():
            await asyncio.sleep(0.01)
        say("watching")
        if args.mode == "block":
            for _ in blocks():
                await asyncio.sleep(0.01)
        elif args.mode == "idle":
            await asyncio.sleep(args.seconds)
            say_idled()
        else:
            lateness = Lateness()
            while True:
                before = time.monotonic()
                await asyncio.sleep(lateness.tick)
                if lateness.note(before, time.monotonic()):
                    break
            say("done")
        await asyncio.sleep(3600)

    # Started after set-up: gmr finds the loop at a check.
    loop_thread = threading.Thread(target=asyncio.run, args=(main(),), name="loop-thread",
                                   daemon=True)
    loop_thread.start()
    loop_thread.join()
