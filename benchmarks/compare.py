"""gmr side by side with oslo.reports, faulthandler, a plain Python handler
and py-spy dump, on the same service (benchmarks/workload.py), in fresh
processes, in one run.

    python benchmarks/compare.py                      # every cell, 5 runs each
    python benchmarks/compare.py --cells base --runs 7
    python benchmarks/compare.py --smoke              # tiny workload, 1 run: checks it works

For each cell and reporter, over --runs fresh processes: the time from the
trigger (kill -USR2, or starting py-spy) to a complete report; the longest
main-thread (or green hub) lateness and busy-worker gap while the report is
made, next to the same measured over a quiet second before the trigger (the
noise floor); and what the report holds (section banners, and the share of
thread frames, greenlet frames and options found), so that a fast empty
report cannot win. Medians (max) and the ratio of each median to gmr's.

A report is complete when gmr's file is linked into place (it is written
whole); the in-place writers (oslo.reports, faulthandler, the plain handler)
when the file has not grown for 0.2 s: the time is when it reached its final
size. py-spy's when it exits.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

WORKLOAD = Path(__file__).resolve().parent / "workload.py"
BASE = {"threads": 10, "depth": 30, "greenlets": 1000, "heap": 1_000_000, "options": 100}
CELLS: dict[str, dict[str, Any]] = {
    "base": {},
    "T100": {"threads": 100},
    "G0": {"greenlets": 0},
    "G10000": {"greenlets": 10_000},
    "H0": {"heap": 0},
    "H5e6": {"heap": 5_000_000},
    "C1000": {"options": 1000},
    "corner": {"threads": 100, "greenlets": 10_000, "heap": 5_000_000, "options": 1000},
    "eventlet": {"hub": "eventlet"},
    "eventlet-G10000": {"hub": "eventlet", "greenlets": 10_000},
    "gevent": {"hub": "gevent"},
    "gevent-G10000": {"hub": "gevent", "greenlets": 10_000},
    "stuck": {"stuck": True},
}
SMOKE = {"threads": 2, "depth": 5, "greenlets": 10, "heap": 1000, "options": 5}
REPORTERS = ["gmr", "oslo.reports", "faulthandler", "plain", "py-spy", "py-spy-nonblocking"]
SECTIONS = ["Package", "Threads", "Green Threads", "Processes", "Configuration"]


@dataclass
class Run:
    seconds: float | None  # None: no report in time
    main_ms: float | None
    worker_ms: float | None
    floor_main_ms: float | None
    floor_worker_ms: float | None
    content: dict[str, Any] = field(default_factory=dict)


def content_of(text: str, workload: dict[str, Any]) -> dict[str, float | None]:
    """Section banners found, and the share of what was parked that the report shows."""
    expected_threads = workload["threads"] * workload["depth"]
    expected_greenlets = workload["greenlets"]
    banners = sum(bool(re.search(rf"^====\s+{title}\s+====$", text, re.M)) for title in SECTIONS)
    stated = re.search(r"^gil held by capture = ([\d.]+) ms$", text, re.M)  # gmr's own figure
    return {
        "pause_ms": float(stated.group(1)) if stated else None,
        "sections": banners,
        "threads": len(re.findall(r"\bdeep_thread_frame\b", text)) / expected_threads
        if expected_threads else 1.0,
        "greenlets": len(re.findall(r"\bparked_greenlet\b", text)) / expected_greenlets
        if expected_greenlets else 1.0,
        "options": len(set(re.findall(r"bench_option_\d+", text))) / workload["options"]
        if workload["options"] else 1.0,
    }


def report_file(out: Path) -> Path | None:
    """out itself, or the report in out when it is a log_dir."""
    if not out.is_dir():
        return out if out.exists() else None
    return next((path for path in out.iterdir() if not path.name.startswith(".")), None)


def wait_complete(out: Path, whole_file: bool, timeout: float) -> tuple[float | None, str]:
    """When the report was complete, and its text."""
    deadline = time.perf_counter() + timeout
    size, since = -1, 0.0
    while time.perf_counter() < deadline:
        now = time.perf_counter()
        found = report_file(out)
        if whole_file:
            if found is not None:
                return now, found.read_text(errors="replace")
        else:
            current = found.stat().st_size if found is not None else 0
            if current != size:
                size, since = current, now
            elif size > 0 and now - since > 0.2:
                return since, found.read_text(errors="replace")  # type: ignore[union-attr]
        time.sleep(0.001)
    return None, ""


def py_spy() -> str | None:
    """py-spy beside this Python (its venv), or on PATH."""
    beside = Path(sys.executable).parent / "py-spy"
    return str(beside) if beside.exists() else shutil.which("py-spy")


def one_run(reporter: str, workload: dict[str, Any], scratch: Path, quiet: float = 1.0,
            timeout: float = 60.0) -> Run:
    """One fresh service: quiet for `quiet` seconds, then one report, given
    `timeout` seconds to come ("none" after that)."""
    log_dir = scratch / "logs"
    shutil.rmtree(log_dir, ignore_errors=True)
    log_dir.mkdir()
    in_place = scratch / "report.txt"
    in_place.unlink(missing_ok=True)
    armed = reporter if not reporter.startswith("py-spy") else "none"
    out = log_dir if armed in ("gmr", "oslo.reports") else in_place
    argv = [sys.executable, str(WORKLOAD), "--reporter", armed, "--out", str(out)]
    for name in ("threads", "depth", "greenlets", "heap", "options"):
        argv += [f"--{name}", str(workload[name])]
    argv += ["--hub", workload.get("hub", "none")] + (["--stuck"] if workload.get("stuck") else [])
    service = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    assert service.stdin is not None and service.stdout is not None

    def gaps(start: float, end: float) -> dict[str, float | None]:
        service.stdin.write(f"gaps {start} {end}\n")  # type: ignore[union-attr]
        service.stdin.flush()  # type: ignore[union-attr]
        return json.loads(service.stdout.readline())  # type: ignore[union-attr,no-any-return]

    try:
        line = service.stdout.readline().strip()
        if line != "ready":
            raise RuntimeError(f"workload did not start ({reporter}): {line!r}")
        time.sleep(0.3)
        quiet_start = time.perf_counter()
        time.sleep(quiet)
        floor = gaps(quiet_start, time.perf_counter())
        sent = time.perf_counter()
        if reporter.startswith("py-spy"):
            extra = ["--nonblocking"] if reporter == "py-spy-nonblocking" else []
            spy = subprocess.run([py_spy() or "py-spy", "dump", "--pid",
                                  str(service.pid), *extra],
                                 capture_output=True, text=True, timeout=timeout)
            done: float | None = time.perf_counter() if spy.returncode == 0 else None
            text = spy.stdout
        else:
            os.kill(service.pid, signal.SIGUSR2)
            done, text = wait_complete(out, reporter == "gmr", timeout)
        time.sleep(0.05)
        during = gaps(sent, (done or time.perf_counter()) + 0.05)
        return Run(
            seconds=None if done is None else done - sent,
            main_ms=during["main"], worker_ms=during["worker"],
            floor_main_ms=floor["main"], floor_worker_ms=floor["worker"],
            content=content_of(text, workload) if done is not None else {},
        )
    finally:
        service.kill()
        service.wait(30)


def median_max(values: list[float | None], scale: float = 1.0) -> str:
    known = [value * scale for value in values if value is not None]
    if not known:
        return "—"
    missing = len(values) - len(known)
    text = f"{statistics.median(known):.1f} ({max(known):.1f})"
    return text + (f" +{missing} none" if missing else "")


def _ratio(value: float) -> str:
    return f"{value:.0f}×" if value >= 10 else f"{value:.2g}×"


def table(cell: str, workload: dict[str, Any], results: dict[str, list[Run]]) -> str:
    described = " ".join(f"{key[0].upper()}{value:g}" if isinstance(value, int | float)
                         and not isinstance(value, bool) else f"{key}={value}"
                         for key, value in workload.items())
    lines = [f"### {cell}: {described}", "",
             "| reporter | report ms, median (max) | × gmr | main stall ms (floor) "
             "| worker stall ms (floor) | GIL pause stated, ms | sections | thread frames "
             "| greenlet frames | options |",
             "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
    gmr_times = [run.seconds for run in results.get("gmr", []) if run.seconds is not None]
    gmr_median = statistics.median(gmr_times) if gmr_times else None
    for reporter, runs in results.items():
        times = [run.seconds for run in runs if run.seconds is not None]
        ratio = (_ratio(statistics.median(times) / gmr_median)
                 if times and gmr_median and len(times) == len(runs) else "—")
        content = [run.content for run in runs if run.content]

        def share(key: str, content: list[dict[str, Any]] = content) -> str:
            if not content:
                return "—"
            return f"{min(item[key] for item in content):.0%}"

        sections = f"{min(int(item['sections']) for item in content)}/5" if content else "—"
        lines.append(
            f"| {reporter} | {median_max([run.seconds for run in runs], 1e3)} | {ratio} "
            f"| {median_max([run.main_ms for run in runs])} "
            f"({median_max([run.floor_main_ms for run in runs])}) "
            f"| {median_max([run.worker_ms for run in runs])} "
            f"({median_max([run.floor_worker_ms for run in runs])}) "
            f"| {median_max([item['pause_ms'] for item in content]) if content else '—'} "
            f"| {sections} | {share('threads')} | {share('greenlets')} | {share('options')} |")
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cells", default=",".join(CELLS),
                        help=f"comma-separated, of: {', '.join(CELLS)}")
    parser.add_argument("--reporters", default=",".join(REPORTERS))
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--smoke", action="store_true",
                        help="a tiny workload, one run per cell: that it all works")
    parser.add_argument("--timeout", type=float, default=60.0,
                        help="seconds a report may take before the run says none")
    parser.add_argument("--json", type=Path, help="also write every run here")
    options = parser.parse_args()
    reporters = [name for name in options.reporters.split(",") if name]
    if any(name.startswith("py-spy") for name in reporters) and not py_spy():
        print("py-spy is not installed: its columns are left out", file=sys.stderr)
        reporters = [name for name in reporters if not name.startswith("py-spy")]
    print(f"Python {sys.version.split()[0]}, {os.cpu_count()} CPUs, "
          f"{1 if options.smoke else options.runs} fresh processes per cell and reporter\n")
    everything: dict[str, Any] = {}
    with tempfile.TemporaryDirectory() as scratch:
        for cell in options.cells.split(","):
            if options.smoke:  # each cell's runtime (hub, stuck), on the tiny sizes
                workload = {**SMOKE, **{key: value for key, value in CELLS[cell].items()
                                        if key in ("hub", "stuck")}}
            else:
                workload = {**BASE, **CELLS[cell]}
            results: dict[str, list[Run]] = {}
            for reporter in reporters:
                runs = 1 if options.smoke else options.runs
                quiet, timeout = (0.2, 5.0) if options.smoke else (1.0, options.timeout)
                if workload.get("stuck"):  # a reporter that needs the main thread never comes
                    timeout = min(timeout, 10.0)
                results[reporter] = [one_run(reporter, workload, Path(scratch), quiet, timeout)
                                     for _ in range(runs)]
            print(table(cell, workload, results), "\n", flush=True)
            everything[cell] = {"workload": workload,
                                "runs": {name: [vars(run) for run in runs]
                                         for name, runs in results.items()}}
    if options.json:
        options.json.write_text(json.dumps(everything, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
