"""A registered section that blocks (on a lock the stuck main thread holds,
or on a green lock a parked greenlet holds under eventlet) costs a report
only its own data: past [oslo_reports] section_timeout the report goes out,
that section saying so in one line, and later triggers still give reports."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from conftest import Service, next_report

pytestmark = pytest.mark.timeout(120)

LIMIT = 0.5
DID_NOT_FINISH = f"gmr: section did not finish within {LIMIT:g} s; the report goes on without it"
NOT_CALLED = "gmr: section not called: its call from an earlier report has not returned after "


def sections(text: str) -> dict[str, list[str]]:
    """The body lines of each section of a text report, by title."""
    out: dict[str, list[str]] = {}
    title = None
    for line in text.splitlines():
        if line.startswith("====  ") and line.endswith("  ===="):
            title = line.strip("= ").strip()
            out[title] = []
        elif title is not None and not (line.startswith("=") and set(line) == {"="}):
            out[title].append(line)
    return out


def start(service, tmp_path: Path, *args: str) -> tuple[Service, Path]:  # type: ignore[no-untyped-def]
    logs = tmp_path / "logs"
    logs.mkdir()
    config = tmp_path / "service.conf"
    config.write_text(f"[oslo_reports]\nlog_dir = {logs}\nsection_timeout = {LIMIT}\n")
    svc: Service = service("blocking_section.py", *args, "--config-file", str(config))
    return svc, logs


def check(text: str, stuck: str) -> None:
    found = sections(text)
    for title in ("Package", "Threads", "Green Threads", "Processes", "Configuration"):
        assert title in found, (title, list(found))
    assert "  section_timeout = 0.5" in found["Configuration"]
    assert found["Before"] == ["before_key = before_value"]
    assert found["After"] == ["after_item"]
    (line,) = found["Stuck"]
    assert line.startswith(stuck), line
    assert "never shown" not in text


def two_reports(svc: Service, logs: Path) -> None:
    began = time.monotonic()
    first = next_report(svc, logs)
    # Well within the 5 s default: the option's 0.5 s limit is the one applied.
    assert time.monotonic() - began < 4.5, first.read_text()
    check(first.read_text(), DID_NOT_FINISH)
    # The watcher is not lost; the section still stuck is not called again.
    second = next_report(svc, logs)
    check(second.read_text(), NOT_CALLED)
    assert svc.alive()


def test_section_on_lock_held_by_stuck_main_thread(service, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    svc, logs = start(service, tmp_path)
    svc.ready()
    two_reports(svc, logs)


def test_synchronous_api_has_the_same_limit(service, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    svc, logs = start(service, tmp_path, "--api")
    svc.wait_for_line("api")
    assert svc.wait_for_line("gmr: section") == DID_NOT_FINISH
    svc.ready()
    report = next_report(svc, logs)
    check(report.read_text(), NOT_CALLED)


def test_section_on_green_lock_under_eventlet(service, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    pytest.importorskip("eventlet")
    svc, logs = start(service, tmp_path, "--monkey", "eventlet")
    svc.ready()
    two_reports(svc, logs)
