"""The green hub keeps ticking while reports are made (tests/programs/hub_tick.py):
under eventlet and gevent, 1,000 parked green threads and a main greenlet
ticking time.sleep(0.001), three SIGUSR2 give three whole reports and no tick
is late by more than a generous bound. The capture holds the GIL for about
a millisecond; everything else runs in the watcher's OS thread, which gives
the GIL back every switch interval. The strict figure (<= 10 ms) is measured
by benchmarks/hub_stall.py, not asserted here."""

from __future__ import annotations

import gc
import re
import threading
from pathlib import Path

import pytest

from conftest import wait_for

pytestmark = pytest.mark.timeout(90)

GREENLETS = 1000
SIGNALS = 3


def fields(line: str) -> dict[str, str]:
    return dict(part.split("=", 1) for part in line.split()[1:])


def report_files(logs: Path) -> list[Path]:
    return sorted(p for p in logs.iterdir() if not p.name.startswith("."))


@pytest.mark.parametrize("library", ["eventlet", "gevent"])
def test_hub_keeps_ticking_while_reports_are_made(
        service, tmp_path: Path, library: str, record_property) -> None:  # type: ignore[no-untyped-def]
    pytest.importorskip(library)
    logs = tmp_path / "logs"
    logs.mkdir()
    svc = service("hub_tick.py", library, str(GREENLETS), str(logs), "30").ready()
    svc.wait_for_line("window")  # ticking
    first = len(svc.stdout_lines)
    for count in range(1, SIGNALS + 1):
        svc.kill()
        assert wait_for(lambda count=count: len(report_files(logs)) >= count), svc.stderr_text()
        wait_for(lambda: False, 0.6)  # past the storm interval: one report per signal
    while int(fields(svc.wait_for_line("window", 10))["reports"]) < SIGNALS:
        pass
    # Every window from the first signal to the first that saw the last report.
    windows = [fields(line) for line in svc.stdout_lines[first:] if line.startswith("window")]
    last = next(index for index, window in enumerate(windows)
                if int(window["reports"]) >= SIGNALS)
    report_windows = windows[:last + 1]
    worst_ms = max(float(window["worst_ms"]) for window in report_windows)
    record_property("worst_tick_lateness_ms", worst_ms)
    print(f"{library}: worst tick lateness while reporting {worst_ms:.2f} ms")
    assert worst_ms < 200, report_windows
    for path in report_files(logs):
        text = path.read_text()
        counted = re.search(r"^greenlets = (\d+)", text, re.MULTILINE)
        assert counted and int(counted.group(1)) > GREENLETS, path.name  # and main, the hub
        assert text.count("in parked_green\n") == GREENLETS
        assert "====                         Configuration" in text
    assert svc.alive()


def test_no_collection_while_a_report_is_made() -> None:
    """Automatic collection is paused while the watcher makes a report (its
    first threshold 0), and back after: the objects a report builds would
    otherwise start full collections, each a stall as long as a walk of the
    whole heap (40 ms with 10,000 greenlets, the largest stall
    benchmarks/hub_stall.py found). The GC's own switch is left alone."""
    from gmr import snapshot, watcher

    collecting: list[tuple[bool, int]] = []
    made = threading.Event()
    thresholds = gc.get_threshold()

    def on_snapshot(captured: snapshot.Snapshot) -> None:
        collecting.append((gc.isenabled(), gc.get_threshold()[0]))
        made.set()

    reporter = watcher.Watcher(on_snapshot)
    reporter.start()
    try:
        reporter.request()
        assert made.wait(10)
    finally:
        assert reporter.stop()
    assert collecting == [(True, 0)]
    assert gc.isenabled() and gc.get_threshold() == thresholds
