"""What stall reports cost while nothing stalls ([oslo_reports]
stall_report_after): a service with one event loop (an eventlet hub, a
gevent hub, an asyncio loop in a thread: tests/programs/stall_service.py),
with stall reports off and on.

    python benchmarks/stall_cost.py [--seconds 10] [--after 0 2] [--kinds ...]
                                    [--tick-seconds 5] [--check-threads 100]

- idle: the loop waits and nothing else runs; over --seconds, the kernel's
  count of each thread's context switches (a thread woken is switched in:
  wake-ups per second) and the CPU time of the whole process (the
  scheduler's nanoseconds, /proc/<pid>/task/<tid>/schedstat: /proc's stat
  counts in 10 ms ticks).
- tick: the loop sleeps 1 ms at a time for --tick-seconds; how late each
  wake-up is (the worst of each 0.2 s window: their median and maximum),
  each setting --rounds times, in turn.
- check: what one check of the watcher costs in this process (finding
  loops, looking at each) beside --check-threads idle threads and an
  asyncio loop with 1,000 pending tasks: median and maximum of 200.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from idle import threads_of

from gmr import stall

PROGRAM = Path(__file__).resolve().parent.parent / "tests" / "programs" / "stall_service.py"
ROOT = PROGRAM.parent.parent.parent


def start(kind: str, after: float, mode: str, seconds: float,
          logs: str) -> subprocess.Popen[str]:
    path = os.pathsep.join(filter(None, [os.environ.get("PYTHONPATH"), str(ROOT)]))
    env = dict(os.environ, PYTHONPATH=path, PYTHONUNBUFFERED="1", PYTHONWARNINGS="ignore")
    service = subprocess.Popen([sys.executable, str(PROGRAM), kind, logs, f"{after:g}", mode,
                                f"{seconds:g}", "--format", "text"],
                               stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
                               env=env)
    assert service.stdout is not None
    if service.stdout.readline().strip() != "watching":
        raise RuntimeError(f"{kind}: the service did not start")
    return service


def on_cpu_ns(pid: int) -> dict[int, int]:
    """The time each thread of the process has run, in nanoseconds."""
    out = {}
    for tid in os.listdir(f"/proc/{pid}/task"):
        try:
            out[int(tid)] = int(Path(f"/proc/{pid}/task/{tid}/schedstat").read_text().split()[0])
        except (OSError, IndexError, ValueError):
            continue  # a thread that has just ended
    return out


def idle(kind: str, after: float,
         seconds: float) -> tuple[float, float, dict[str, tuple[float, float]]]:
    """(wake-ups per second of the whole process, its CPU us per second, and
    both by thread name)."""
    with tempfile.TemporaryDirectory() as logs:
        service = start(kind, after, "idle", 3600, logs)
        try:
            time.sleep(1.0)  # set-up and the first checks are over
            before, cpu_before = threads_of(service.pid), on_cpu_ns(service.pid)
            time.sleep(seconds)
            after_, cpu_after = threads_of(service.pid), on_cpu_ns(service.pid)
            assert not os.listdir(logs), "a report while the loop was idle"
        finally:
            service.kill()
            service.wait(10)
    by_name: dict[str, tuple[float, float]] = {}
    for name, (switches, _) in after_.items():
        was = before.get(name, (0, 0.0))
        short, tid = name[:-1].rsplit(" (", 1)
        if short == "python":  # threading's names are not the kernel's before 3.14
            short = "main" if int(tid) == service.pid else "loop-thread"
        cpu = cpu_after.get(int(tid), 0) - cpu_before.get(int(tid), 0)
        wakes, used = by_name.get(short, (0.0, 0.0))
        by_name[short] = (wakes + (switches - was[0]) / seconds, used + cpu / seconds / 1e3)
    return (sum(wakes for wakes, _ in by_name.values()),
            sum(used for _, used in by_name.values()), by_name)


def tick(kind: str, after: float, seconds: float) -> tuple[float, float]:
    """(median, maximum) of the worst lateness of each 0.2 s window, in ms."""
    with tempfile.TemporaryDirectory() as logs:
        service = start(kind, after, "tick", seconds, logs)
        worst: list[float] = []
        try:
            assert service.stdout is not None
            for line in service.stdout:
                if line.startswith("window"):
                    worst.append(float(line.split("=")[1]))
                elif line.startswith("done"):
                    break
            assert not os.listdir(logs), "a report while the loop ticked"
        finally:
            service.kill()
            service.wait(10)
    return statistics.median(worst), max(worst)


def check_cost(threads: int, rounds: int = 200) -> tuple[float, float, int]:
    """(median, max) of one Monitor.check() in microseconds, and how many
    loops it watched, beside idle threads and a loop with 1,000 tasks."""
    stop = threading.Event()
    parked = [threading.Thread(target=stop.wait, daemon=True) for _ in range(threads)]
    for thread in parked:
        thread.start()
    loop = asyncio.new_event_loop()
    runner = threading.Thread(target=loop.run_forever, daemon=True)
    runner.start()
    for _ in range(1000):
        asyncio.run_coroutine_threadsafe(asyncio.sleep(3600), loop)
    monitor = stall.Monitor(2.0, 60.0)
    times = []
    try:
        for _ in range(rounds):
            monitor._next = 0.0  # every call a check
            began = time.perf_counter()
            monitor.check()
            times.append((time.perf_counter() - began) * 1e6)
            time.sleep(0.001)
        watched = len(monitor.watched())
    finally:
        monitor.stop()
        stop.set()

        async def cancel_all() -> None:
            for task in asyncio.all_tasks():
                if task is not asyncio.current_task():
                    task.cancel()

        asyncio.run_coroutine_threadsafe(cancel_all(), loop).result(10)
        loop.call_soon_threadsafe(loop.stop)
        runner.join(10)
        loop.close()
    return statistics.median(times), max(times), watched


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--tick-seconds", type=float, default=5.0,
                        help="0: no tick, no check (idle only)")
    parser.add_argument("--after", type=float, nargs="+", default=[0.0, 2.0])
    parser.add_argument("--kinds", nargs="+", default=["eventlet", "gevent", "asyncio"])
    parser.add_argument("--check-threads", type=int, default=100)
    parser.add_argument("--rounds", type=int, default=1)
    args = parser.parse_args()
    core = "pure" if os.environ.get("GMR_NO_EXTENSIONS") else "compiled"
    print(f"Python {sys.version.split()[0]}, gmr core {core}, {os.cpu_count()} CPUs")
    print(f"\nIdle, {args.seconds:g} s (context switches and CPU per second, by thread):\n")
    print("| loop | stall_report_after | wake-ups/s, whole process | CPU us/s | by thread |")
    print("| --- | ---: | ---: | ---: | --- |")
    for kind in args.kinds:
        for after in args.after:
            wakes, cpu, by_name = idle(kind, after, args.seconds)
            threads = ", ".join(f"{name} {rate:.1f}/s {used:.0f} us/s"
                                for name, (rate, used) in sorted(by_name.items()))
            print(f"| {kind} | {after:g} | {wakes:.1f} | {cpu:.0f} | {threads} |", flush=True)
    if args.tick_seconds <= 0:
        return
    print(f"\nA 1 ms tick in the loop, {args.tick_seconds:g} s (worst lateness per 0.2 s "
          "window):\n")
    print("| loop | stall_report_after | median ms | max ms |")
    print("| --- | ---: | ---: | ---: |")
    for kind in args.kinds:
        for _ in range(args.rounds):
            for after in args.after:
                median, worst = tick(kind, after, args.tick_seconds)
                print(f"| {kind} | {after:g} | {median:.3f} | {worst:.3f} |", flush=True)
    median, worst, watched = check_cost(args.check_threads)
    print(f"\nOne check beside {args.check_threads} idle threads and an asyncio loop with "
          f"1,000 pending tasks ({watched} loop watched): median {median:.0f} us, "
          f"max {worst:.0f} us")


if __name__ == "__main__":
    main()
