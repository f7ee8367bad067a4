"""multiprocessing children (tests/programs/mp_service.py), on both twins: a
"fork" child re-arms (its own pipe and watcher; its report names it and is
its own file) while the parent keeps reporting; a "spawn" child reports only
when its entry point sets gmr up, and without gmr SIGUSR2 ends it (the
default action, as README.md says)."""

from __future__ import annotations

import os
import re
import signal
from pathlib import Path

import pytest

from conftest import wait_for

pytestmark = pytest.mark.timeout(90)


def report_of(logs: Path, pid: int) -> Path | None:
    """The report file whose header names pid."""
    for path in logs.iterdir():
        if "_gurumeditation_" in path.name and not path.name.startswith("."):
            if re.search(rf"^pid = {pid}$", path.read_text(), re.MULTILINE):
                return path
    return None


def test_fork_and_spawn_children(service, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    logs = tmp_path / "logs"
    logs.mkdir()
    svc = service("mp_service.py", str(logs))
    children = dict(part.split("=") for part in svc.wait_for_line("children", 60).split()[1:])
    svc.ready()
    forked, spawned, spawned_with_gmr = (int(children[name])
                                         for name in ("fork", "spawn", "spawn-gmr"))
    try:
        check_children(svc, logs, forked, spawned, spawned_with_gmr)
    finally:
        for pid in (forked, spawned, spawned_with_gmr):  # they would outlive the service
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass


def check_children(svc, logs: Path, forked: int, spawned: int,  # type: ignore[no-untyped-def]
                   spawned_with_gmr: int) -> None:
    os.kill(forked, signal.SIGUSR2)
    report = wait_for(lambda: report_of(logs, forked))
    assert report is not None, svc.stderr_text()
    assert re.fullmatch(rf"mp_gurumeditation_\d{{14}}\.{forked}", report.name)
    assert Path(f"/proc/{forked}").exists(), "the forked child must survive"

    os.kill(svc.pid, signal.SIGUSR2)
    report = wait_for(lambda: report_of(logs, svc.pid))
    assert report is not None, svc.stderr_text()
    assert re.fullmatch(r"mp_gurumeditation_\d{14}(\.\d)?", report.name)

    os.kill(spawned_with_gmr, signal.SIGUSR2)
    report = wait_for(lambda: report_of(logs, spawned_with_gmr))
    assert report is not None, svc.stderr_text()
    assert report.name.startswith("mp-spawned_gurumeditation_")

    os.kill(spawned, signal.SIGUSR2)
    assert svc.wait_for_line(f"exit {spawned}", 10) == f"exit {spawned} {-signal.SIGUSR2}"
    assert report_of(logs, spawned) is None
    assert svc.alive() and Path(f"/proc/{forked}").exists()
    assert not [p for p in logs.iterdir() if p.name.startswith(".")]
