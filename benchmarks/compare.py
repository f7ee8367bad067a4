"""gmr side by side with oslo.reports, faulthandler, a plain Python handler
and py-spy dump, on the same service (benchmarks/workload.py), in fresh
processes, in one run.

    python benchmarks/compare.py                      # every cell, 5 runs each
    python benchmarks/compare.py --cells base --runs 7
    python benchmarks/compare.py --smoke              # tiny workload, 1 run: checks it works
    python benchmarks/compare.py --cells issue15 ...  # the cells issue 15's targets are about

The service (workload.py) has --busy busy Python threads (default 2: the
main thread and a worker in tight loops; under a hub, the main thread's
loop is a busy greenlet beside the hub's tick), as a real service has
request threads; "busy8" has eight. --switch-interval sets the service's
sys.setswitchinterval (cells "-si0.5": 0.5 ms).

For each cell and reporter, over --runs fresh processes: the time from the
trigger (kill -USR2, or starting py-spy) to a complete report; the longest
gap of the main thread's busy loop and of any busy worker's while the report
is made (from the trigger to 50 ms after the report), and the longest
lateness of a probe that sleeps 1 ms at a time (its own thread; under a hub,
the hub's tick), each next to its noise floor: the same measure over
windows as long in a quiet second before the trigger, median over those
windows (the whole second when the report took longer); the service's RSS
before the trigger and after the report; and what the report holds (section
banners, and the share of thread frames, greenlet frames and options found),
so that a fast empty report cannot win. Medians (max) and the ratio of each
median to gmr's.

With --reports N (or a cell's own, G10000-D30: 10), gmr gets N reports in each
process, one after the other (each signal once the previous report is
written, and 0.2 s more); a second table gives the GIL pause the first and
the later reports state, the later reports' times and stalls, and RSS
before, after the first and after the last report.

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
BASE = {"threads": 10, "depth": 30, "greenlets": 1000, "heap": 1_000_000, "options": 100,
        "busy": 2}
CELLS: dict[str, dict[str, Any]] = {
    "base": {},
    "busy8": {"busy": 8},
    "threads": {"greenlets": 0, "heap": 0},
    "T100": {"threads": 100},
    "G0": {"greenlets": 0},
    "G10000": {"greenlets": 10_000},
    # Issue 15's "G10000 D30": the greenlets 30 frames deep too (gdepth; 1 elsewhere).
    "G10000-D30": {"greenlets": 10_000, "gdepth": 30, "reports": 10},
    "G10000-D30-si0.5": {"greenlets": 10_000, "gdepth": 30, "switch": 0.5},
    "H0": {"heap": 0},
    "H5e6": {"heap": 5_000_000},
    "H5e6-si0.5": {"heap": 5_000_000, "switch": 0.5},
    "C1000": {"options": 1000},
    "corner": {"threads": 100, "greenlets": 10_000, "heap": 5_000_000, "options": 1000},
    "eventlet": {"hub": "eventlet"},
    "eventlet-G10000": {"hub": "eventlet", "greenlets": 10_000},
    "eventlet-G10000-D30": {"hub": "eventlet", "greenlets": 10_000, "gdepth": 30},
    "gevent": {"hub": "gevent"},
    "gevent-G10000": {"hub": "gevent", "greenlets": 10_000},
    "gevent-G10000-D30": {"hub": "gevent", "greenlets": 10_000, "gdepth": 30},
    "stuck": {"stuck": True},
}
#: The cells issue 15's targets are about (--cells issue15).
ISSUE15 = ["base", "busy8", "threads", "T100", "G10000-D30", "G10000-D30-si0.5",
           "eventlet-G10000-D30", "gevent-G10000-D30", "H5e6-si0.5"]
SMOKE = {"threads": 2, "depth": 5, "greenlets": 10, "heap": 1000, "options": 5, "busy": 2}
#: What a smoke run keeps of each cell: the runtime and the service's shape.
SMOKE_KEYS = ("hub", "stuck", "busy", "switch", "reports", "gdepth")
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
    probe_ms: float | None = None
    floor_probe_ms: float | None = None
    rss_before_mb: float | None = None
    rss_after_mb: float | None = None  # after the first report
    rss_last_mb: float | None = None  # after the last of several reports
    later: list[dict[str, Any]] = field(default_factory=list)  # reports 2..N


def rss_mb(pid: int) -> float | None:
    """The process's resident set (VmRSS), MB."""
    try:
        with open(f"/proc/{pid}/status") as status:
            for line in status:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return None


def content_of(text: str, workload: dict[str, Any]) -> dict[str, float | None]:
    """Section banners found, and the share of what was parked that the report shows."""
    expected_threads = workload["threads"] * workload["depth"]
    expected_greenlets = workload["greenlets"] * workload.get("gdepth", 1)
    banners = sum(bool(re.search(rf"^====\s+{title}\s+====$", text, re.M)) for title in SECTIONS)
    # gmr's own figure; "(longest of N holds, ...)" may follow it
    stated = re.search(r"^gil held by capture = ([\d.]+) ms\b", text, re.M)
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


def report_file(out: Path, seen: frozenset[str] = frozenset()) -> Path | None:
    """out itself, or a report in out not in `seen` when out is a log_dir."""
    if not out.is_dir():
        return out if out.exists() else None
    return next((path for path in out.iterdir()
                 if not path.name.startswith(".") and path.name not in seen), None)


def wait_complete(out: Path, whole_file: bool, timeout: float,
                  seen: frozenset[str] = frozenset()) -> tuple[float | None, str]:
    """When the report (one not in `seen`) was complete, and its text."""
    deadline = time.perf_counter() + timeout
    size, since = -1, 0.0
    while time.perf_counter() < deadline:
        now = time.perf_counter()
        found = report_file(out, seen)
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
    for name in ("threads", "depth", "greenlets", "heap", "options", "busy"):
        argv += [f"--{name}", str(workload[name])]
    argv += ["--hub", workload.get("hub", "none")] + (["--stuck"] if workload.get("stuck") else [])
    argv += ["--greenlet-depth", str(workload.get("gdepth", 1))]
    if workload.get("switch") is not None:
        argv += ["--switch-interval", str(workload["switch"])]
    reports = workload.get("reports", 1) if reporter == "gmr" else 1
    service = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    assert service.stdin is not None and service.stdout is not None

    def gaps(start: float, end: float, window: float = 0.0) -> dict[str, float | None]:
        service.stdin.write(f"gaps {start} {end} {window}\n")  # type: ignore[union-attr]
        service.stdin.flush()  # type: ignore[union-attr]
        return json.loads(service.stdout.readline())  # type: ignore[union-attr,no-any-return]

    try:
        line = service.stdout.readline().strip()
        if line != "ready":
            raise RuntimeError(f"workload did not start ({reporter}): {line!r}")
        time.sleep(0.3)
        quiet_start = time.perf_counter()
        time.sleep(quiet)
        quiet_end = time.perf_counter()
        rss_before = rss_mb(service.pid)
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
        during_end = (done or time.perf_counter()) + 0.05
        during = gaps(sent, during_end)
        # The floor: the same measure over windows as long in the quiet second, median.
        floor = gaps(quiet_start, quiet_end, during_end - sent)
        rss_after = rss_mb(service.pid)
        later, rss_last = [], None
        seen = frozenset(path.name for path in out.iterdir()) if out.is_dir() else frozenset()
        for _ in range(reports - 1 if done is not None else 0):
            time.sleep(0.2)
            again = time.perf_counter()
            os.kill(service.pid, signal.SIGUSR2)
            finished, text_again = wait_complete(out, True, timeout, seen)
            seen = frozenset(path.name for path in out.iterdir())
            time.sleep(0.05)
            stalls = gaps(again, (finished or time.perf_counter()) + 0.05)
            later.append({"seconds": None if finished is None else finished - again,
                          "pause_ms": content_of(text_again, workload)["pause_ms"]
                          if finished is not None else None, **stalls})
            if finished is None:
                break
        if later:
            time.sleep(0.5)  # what stays once the last report is out
            rss_last = rss_mb(service.pid)
        return Run(
            seconds=None if done is None else done - sent,
            main_ms=during["main"], worker_ms=during["worker"],
            floor_main_ms=floor["main"], floor_worker_ms=floor["worker"],
            content=content_of(text, workload) if done is not None else {},
            probe_ms=during["probe"], floor_probe_ms=floor["probe"],
            rss_before_mb=rss_before, rss_after_mb=rss_after, rss_last_mb=rss_last,
            later=later,
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


def describe(workload: dict[str, Any]) -> str:
    """T10 D30 G1000 H1e+06 O100 B2 [S0.5] [R10] [gdepth=30] [hub=...]: threads,
    depth, greenlets, heap, options, busy threads, switch interval (ms), reports."""
    return " ".join(f"{key[0].upper()}{value:g}" if isinstance(value, int | float)
                    and not isinstance(value, bool) and key != "gdepth"
                    else f"{key}={value}"
                    for key, value in workload.items() if value is not None)


def table(cell: str, workload: dict[str, Any], results: dict[str, list[Run]]) -> str:
    lines = [f"### {cell}: {describe(workload)}", "",
             "| reporter | report ms, median (max) | × gmr | main stall ms (floor) "
             "| worker stall ms (floor) | GIL pause stated, ms | probe late ms (floor) "
             "| RSS MB before, +after | sections | thread frames | greenlet frames | options |",
             "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
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
            f"| {median_max([run.probe_ms for run in runs])} "
            f"({median_max([run.floor_probe_ms for run in runs])}) "
            f"| {rss_growth(runs, 'rss_after_mb')} "
            f"| {sections} | {share('threads')} | {share('greenlets')} | {share('options')} |")
    several = [run for run in results.get("gmr", []) if run.later]
    if several:
        lines += ["", later_table(several)]
    return "\n".join(lines)


def _median(values: list[float | None]) -> str:
    known = [value for value in values if value is not None]
    return f"{statistics.median(known):.1f}" if known else "—"


def growth(runs: list[Run], after: str) -> str:
    """What `after` adds to the RSS before the trigger, MB: median (max)."""
    grown = [getattr(run, after) - run.rss_before_mb for run in runs
             if getattr(run, after) is not None and run.rss_before_mb is not None]
    return f"{statistics.median(grown):+.1f} ({max(grown):+.1f})" if grown else "—"


def rss_growth(runs: list[Run], after: str) -> str:
    """RSS before the trigger (median), and what `after` adds to it."""
    return f"{_median([run.rss_before_mb for run in runs])}, {growth(runs, after)}"


def later_table(runs: list[Run]) -> str:
    """gmr with several reports per process: the first against the later ones."""
    count = 1 + max(len(run.later) for run in runs)
    later = [report for run in runs for report in run.later]
    rows = [
        ("GIL pause stated, ms", median_max([run.content.get("pause_ms") for run in runs]),
         median_max([report["pause_ms"] for report in later])),
        ("report ms", median_max([run.seconds for run in runs], 1e3),
         median_max([report["seconds"] for report in later], 1e3)),
        ("main stall ms", median_max([run.main_ms for run in runs]),
         median_max([report["main"] for report in later])),
        ("worker stall ms", median_max([run.worker_ms for run in runs]),
         median_max([report["worker"] for report in later])),
        ("probe late ms", median_max([run.probe_ms for run in runs]),
         median_max([report["probe"] for report in later])),
    ]
    lines = [f"gmr, {count} reports per process, {len(runs)} processes: medians (max)", "",
             f"| | first report | reports 2-{count} |", "| --- | --- | --- |"]
    lines += [f"| {name} | {first} | {rest} |" for name, first, rest in rows]
    lines += ["", f"RSS MB before the first report: {_median([r.rss_before_mb for r in runs])}; "
              f"growth after the first: {growth(runs, 'rss_after_mb')}, "
              f"after the last ({count}th, 0.5 s later): "
              f"{growth(runs, 'rss_last_mb')} (median (max))"]
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
    parser.add_argument("--busy", type=int,
                        help="busy Python threads in every cell's service (default: the cell's, 2)")
    parser.add_argument("--switch-interval", type=float,
                        help="the service's sys.setswitchinterval, ms (default: the cell's, "
                             "else Python's 5 ms)")
    parser.add_argument("--reports", type=int,
                        help="reports per gmr process (default: the cell's, 1; G10000-D30: 10)")
    options = parser.parse_args()
    overrides = {key: value for key, value in (("busy", options.busy),
                                               ("switch", options.switch_interval),
                                               ("reports", options.reports))
                 if value is not None}
    cells = [name for cell in options.cells.split(",") if cell
             for name in (ISSUE15 if cell == "issue15" else [cell])]
    unknown = [cell for cell in cells if cell not in CELLS]
    if unknown:
        parser.error(f"unknown cells {', '.join(unknown)}: of {', '.join(CELLS)}, issue15")
    reporters = [name for name in options.reporters.split(",") if name]
    if any(name.startswith("py-spy") for name in reporters) and not py_spy():
        print("py-spy is not installed: its columns are left out", file=sys.stderr)
        reporters = [name for name in reporters if not name.startswith("py-spy")]
    print(f"Python {sys.version.split()[0]}, {os.cpu_count()} CPUs, load average "
          f"{' '.join(f'{load:.2f}' for load in os.getloadavg())}, "
          f"{1 if options.smoke else options.runs} fresh processes per cell and reporter\n")
    everything: dict[str, Any] = {}
    with tempfile.TemporaryDirectory() as scratch:
        for cell in cells:
            if options.smoke:  # each cell's runtime and shape, on the tiny sizes
                workload = {**SMOKE, **{key: value for key, value in CELLS[cell].items()
                                        if key in SMOKE_KEYS}}
                if "reports" in workload:
                    workload["reports"] = min(workload["reports"], 2)
            else:
                workload = {**BASE, **CELLS[cell]}
            workload.update(overrides)
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
