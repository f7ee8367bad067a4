"""A real two-thread RLock deadlock in a subprocess (tests/programs/deadlock.py):
the report opens with a Deadlocks section that names both threads, the lock
each waits for and who holds it, and every thread says what it waits on; a
service without one (test_native_service.py) has no such section."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from conftest import next_report, section, validate_report, wait_in_futex
from gmr.render import banner

pytestmark = pytest.mark.timeout(180)


def _deadlocked(service: Any, tmp_path: Path, form: str) -> tuple[Any, Path, list[int]]:
    logs = tmp_path / "logs"
    logs.mkdir()
    config = tmp_path / "deadlock.conf"
    config.write_text(f"[oslo_reports]\nlog_dir = {logs}\nformat = {form}\n")
    svc = service("deadlock.py", "--config-file", str(config))
    native_ids = [int(word) for word in svc.wait_for_line("threads").split()[1:]]
    svc.ready()
    for native_id in native_ids:  # every one of them blocked
        assert wait_in_futex(svc.pid, native_id, 30), native_id
    return svc, logs, native_ids


def test_a_deadlock_is_found_and_named(service: Any, tmp_path: Path) -> None:
    svc, logs, native_ids = _deadlocked(service, tmp_path, "json")
    document = validate_report(next_report(svc, logs).read_text())
    kinds = [entry["kind"] for entry in document["sections"]]
    assert kinds[:3] == ["package", "deadlocks", "threads"]
    threads = {thread["name"]: thread for thread in section(document, "threads")}
    first, second, audit, idle = (threads[name] for name in
                                  ("transfer-1", "transfer-2", "audit", "idle"))
    assert [first["native_id"], second["native_id"], audit["native_id"], idle["native_id"]] \
        == native_ids
    (deadlock,) = section(document, "deadlocks")
    assert sorted((link["name"], link["waits_for"]["owner"]) for link in deadlock) == [
        ("transfer-1", second["id"]), ("transfer-2", first["id"])]
    for link in deadlock:
        assert link["waits_for"]["type"] == "_thread.RLock" and link["waits_for"]["lock"]
        assert threads[link["name"]]["wait"] == link["waits_for"]
    # transfer-1 waits for the lock transfer-2 holds, and the audit for the one
    # transfer-1 holds (outside the cycle).
    assert audit["wait"]["owner"] == first["id"]
    assert audit["wait"]["id"] == second["wait"]["id"]
    assert (idle["wait"]["type"], idle["wait"]["lock"]) == ("threading.Event", False)


def test_the_text_report_opens_with_the_deadlock(service: Any, tmp_path: Path) -> None:
    svc, logs, _ = _deadlocked(service, tmp_path, "text")
    text = next_report(svc, logs).read_text()
    at = text.index(banner("Deadlocks"))
    assert at < text.index(banner("Threads"))
    block = text[at:text.index(banner("Threads"))]
    assert f"------{'Deadlock 1: 2 threads': ^60}------" in block
    lines = [line for line in block.splitlines() if line.startswith("Thread #")]
    assert len(lines) == 2
    for line in lines:
        assert "is waiting to lock _thread.RLock 0x" in line and " held by Thread #" in line
    assert "(transfer-1)" in block and "(transfer-2)" in block
    assert "audit" not in block
