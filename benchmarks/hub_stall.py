"""How long the green hub stalls while reports are made: the worst lateness of
a main greenlet ticking time.sleep(0.001), under eventlet and gevent, with
G parked green threads, gmr against oslo.reports. Each run is a fresh
process (tests/programs/hub_tick.py) that gets a few SIGUSR2, one at a time.

    python benchmarks/hub_stall.py [--runs 5] [--signals 3] [--greenlets 1000 10000]
                                   [--reporters gmr oslo.reports] [--busy N]

--busy N starts N OS threads in tight pure-Python loops in the process
before anything else (before the monkey-patching: real threads), which the
hub then shares the GIL with, as in a service with busy request threads
(default 0: the hub alone).

Per run: "baseline" is the worst tick lateness in the second before the
first signal, "stall" the worst in the windows from the first signal to the
one that saw the last report. The table gives their median and maximum
over the runs.
"""

from __future__ import annotations

import argparse
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

PROGRAM = Path(__file__).resolve().parent.parent / "tests" / "programs" / "hub_tick.py"
ROOT = PROGRAM.parent.parent.parent
#: Starts argv[1] busy OS threads, then runs the program argv[2] with the rest.
BUSY = """
import _thread, runpy, sys

def busy():
    total = 0
    while True:
        for i in range(200):
            total += i * i

for _ in range(int(sys.argv[1])):
    _thread.start_new_thread(busy, ())
sys.argv = sys.argv[2:]
runpy.run_path(sys.argv[0], run_name="__main__")
"""


class Lines:
    """stdout lines of a process, collected by a thread as they come."""

    def __init__(self, proc: subprocess.Popen[str]) -> None:
        self.lines: list[str] = []
        self._changed = threading.Condition()
        self._reader = threading.Thread(target=self._collect, args=(proc,), daemon=True)
        self._reader.start()

    def _collect(self, proc: subprocess.Popen[str]) -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            with self._changed:
                self.lines.append(line.strip())
                self._changed.notify_all()

    def wait(self, accept, timeout: float) -> int:  # type: ignore[no-untyped-def]
        """Index of the first line that accept() takes, waiting for it."""
        deadline = time.monotonic() + timeout
        seen = 0
        with self._changed:
            while True:
                for index in range(seen, len(self.lines)):
                    if accept(self.lines[index]):
                        return index
                seen = len(self.lines)
                remaining = deadline - time.monotonic()
                if remaining <= 0 or not self._reader.is_alive():
                    raise TimeoutError(f"no expected line; last lines {self.lines[-3:]}")
                self._changed.wait(remaining)


def window(line: str) -> dict[str, float] | None:
    if not line.startswith("window"):
        return None
    return {key: float(value) for key, value in (part.split("=") for part in line.split()[1:])}


def one_run(library: str, greenlets: int, reporter: str, signals: int,
            busy: int = 0) -> tuple[float, float]:
    """(baseline, stall) worst tick lateness in ms, from one fresh process."""
    with tempfile.TemporaryDirectory() as logs:
        path = os.pathsep.join(filter(None, [os.environ.get("PYTHONPATH"), str(ROOT)]))
        env = dict(os.environ, PYTHONPATH=path, PYTHONUNBUFFERED="1")
        start = ["-c", BUSY, str(busy)] if busy else []
        proc = subprocess.Popen([sys.executable, *start, str(PROGRAM), library, str(greenlets),
                                 logs, "600", reporter], stdout=subprocess.PIPE,
                                stderr=subprocess.DEVNULL, text=True, env=env)
        lines = Lines(proc)
        try:
            ready = lines.wait(lambda line: line == "ready", 120)
            time.sleep(1.0)  # a second of ticking without reports: the noise floor
            first = len(lines.lines)
            for count in range(1, signals + 1):
                os.kill(proc.pid, signal.SIGUSR2)
                lines.wait(lambda line, count=count: (window(line) or {}).get("reports", 0)
                           >= count, 300)
                time.sleep(0.6)  # past gmr's storm interval
            windows = [w for w in map(window, lines.lines[first:]) if w]
            last = next(index for index, w in enumerate(windows) if w["reports"] >= signals)
            baseline = max(w["worst_ms"] for w in map(window, lines.lines[ready:first]) if w)
            return baseline, max(w["worst_ms"] for w in windows[:last + 2])
        finally:
            proc.kill()
            proc.wait(10)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--signals", type=int, default=3)
    parser.add_argument("--greenlets", type=int, nargs="+", default=[1000, 10000])
    parser.add_argument("--libraries", nargs="+", default=["eventlet", "gevent"])
    parser.add_argument("--reporters", nargs="+", default=["gmr", "oslo.reports"])
    parser.add_argument("--busy", type=int, default=0,
                        help="busy OS threads beside the hub (tight pure-Python loops)")
    args = parser.parse_args()
    core = "pure" if os.environ.get("GMR_NO_EXTENSIONS") else "compiled"
    print(f"Python {sys.version.split()[0]}, gmr core {core}, {args.runs} fresh processes "
          f"each, {args.signals} SIGUSR2 per process, {args.busy} busy threads beside the hub, "
          f"{os.cpu_count()} CPUs")
    print("| hub | G | reporter | stall median ms | stall max ms | baseline median ms |")
    print("| --- | ---: | --- | ---: | ---: | ---: |")
    for library in args.libraries:
        for greenlets in args.greenlets:
            for reporter in args.reporters:
                started = time.monotonic()
                runs = [one_run(library, greenlets, reporter, args.signals, args.busy)
                        for _ in range(args.runs)]
                baselines = [baseline for baseline, _ in runs]
                stalls = [stall for _, stall in runs]
                print(f"| {library} | {greenlets} | {reporter} | {statistics.median(stalls):.1f} "
                      f"| {max(stalls):.1f} | {statistics.median(baselines):.1f} |", flush=True)
                print(f"  ({time.monotonic() - started:.0f} s)", file=sys.stderr)


if __name__ == "__main__":
    main()
