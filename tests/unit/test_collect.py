"""gmr.collect on hand-made JSON reports: stacks compared by (file, function,
line) frames only, groups of grouped reports, the newest report of each
process, pids that clash across hosts, reports found among log lines."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from gmr import collect


def frame(function: str, line: int, file: str = "/srv/app.py") -> list[Any]:
    return [file, line, function, f"{function}()"]


def thread(ident: int, name: str, frames: list[list[Any]], native: int | None = None) -> Any:
    return {"id": ident, "name": name, "native_id": native or ident % 100000, "main": False,
            "daemon": True, "state": "sleeping", "cpu_seconds": 0.0, "frames": frames,
            "omitted": 0, "innermost": []}


def greenlet(ident: int, state: str, frames: list[list[Any]]) -> Any:
    return {"id": ident, "type": "greenlet.greenlet", "name": None, "minimal_ident": None,
            "state": state, "parent": None, "thread": None, "spawned_by": None,
            "spawning_stack": [], "frames": frames, "omitted": 0, "innermost": []}


def report(pid: int, threads: list[Any], greenlets: list[Any] | None = None,
           captured: str = "2026-01-01T10:00:00.000000Z", uptime: float = 100.0,
           program: str = "nova-api", extra: list[Any] | None = None,
           fds: int = 10, rss: int = 1000, host: str | None = None) -> dict[str, Any]:
    facts = {"uptime seconds": uptime, "rss bytes": rss, "open fds": fds, "threads": 3,
             "gc": {"enabled": True, "counts": "1 / 2 / 3", "thresholds": "700 / 10 / 10",
                    "collections": "5 / 1 / 0", "collected": "0 / 0 / 0",
                    "uncollectable": "0 / 0 / 0"}, "fd limit": 1024,
             "rlimits": {"nofile": "1024 / 4096"}}
    return {"header": {"reportVersion": 1, "captured_at": captured, "host": host, "pid": pid,
                       "program": program, "threads": len(threads),
                       "greenlets": len(greenlets or [])},
            "sections": [
                {"title": "Threads", "kind": "threads", "data": threads, "error": None},
                {"title": "Green Threads", "kind": "greenlets", "data": greenlets or [],
                 "error": None},
                {"title": "Processes", "kind": "processes", "error": None,
                 "data": {"process": {"pid": pid}, "children": [], "facts": facts,
                          "environment": {}}},
                *(extra or [])]}


WAIT = [frame("serve", 10), frame("wait", 20, "/usr/lib/threading.py")]
LOOP = [frame("serve", 10), frame("loop", 30)]


def validate(document: dict[str, Any]) -> None:
    jsonschema.Draft202012Validator(collect.collect_schema()).validate(document)


def test_identical_stacks_once_whatever_the_ids_and_sources() -> None:
    moved_source = [[file, line, function, "other text"] for file, line, function, _ in WAIT]
    merged = collect.merge([
        collect.Source(report(101, [thread(1, "a", WAIT), thread(2, "b", LOOP)]), "r1"),
        collect.Source(report(102, [thread(3, "c", moved_source)]), "r2"),
        collect.Source(report(103, [thread(4, "d", WAIT[:1] + [frame("wait", 21)])]), "r3"),
    ])
    threads = merged.groups["threads"]
    assert [(group["count"], [one["pid"] for one in group["processes"]])
            for group in threads] == [(2, [101, 102]), (1, [101]), (1, [103])]
    assert threads[0]["processes"][0]["names"] == ["a"]
    text = collect.text(merged)
    assert "2 processes (pids 101, 102): 2 threads with this stack\n  named a, c\n" in text
    assert "1 process (pid 103): 1 thread with this stack" in text
    validate(collect.document(merged))


def test_groups_count_and_greenlets_without_stacks() -> None:
    group = {"frames": WAIT, "omitted": 0, "innermost": [], "count": 50,
             "members": [{k: v for k, v in thread(n, f"w{n}", []).items()
                          if k not in ("frames", "omitted", "innermost")} for n in range(3)]}
    greens = [greenlet(1, "running", []), greenlet(2, "not started", []),
              greenlet(3, "suspended", LOOP)]
    merged = collect.merge([collect.Source(report(7, [group], greens), "r"),
                            collect.Source(report(8, [thread(9, "x", WAIT)], greens[:1]), "s")])
    (waits,) = merged.groups["threads"]
    assert waits["count"] == 51 and [one["count"] for one in waits["processes"]] == [50, 1]
    assert [(one["state"], one["count"]) for one in merged.groups["greenlets"]] == [
        ("running", 2), (None, 1), ("not started", 1)]
    assert "No Traceback! (running)" in collect.text(merged)
    validate(collect.document(merged))


def test_newest_report_per_process_and_clashing_pids() -> None:
    old = report(5, [thread(1, "a", WAIT)], captured="2026-01-01T10:00:00.000000Z")
    new = report(5, [thread(1, "a", LOOP)], captured="2026-01-01T10:01:00.000000Z",
                 uptime=160.0)
    other_host = report(5, [thread(1, "a", LOOP)], captured="2026-01-01T10:01:00.000000Z",
                        uptime=3.0)
    merged = collect.merge([collect.Source(new, "h1/b"), collect.Source(old, "h1/a"),
                            collect.Source(other_host, "h2/a")])
    assert merged.superseded == 1
    assert sorted(source.label for source in merged.sources) == ["5 (h1/b)", "5 (h2/a)"]
    (loop,) = merged.groups["threads"]
    assert loop["count"] == 2
    assert "older report of the same processes left out" in collect.text(merged)


def test_the_same_process_on_two_hosts_is_two_processes_named_by_host() -> None:
    """Containers: pid 1 on every host, started in the same second. The
    header's host tells them apart, and labels them."""
    reports = [report(1, [thread(1, "a", WAIT)], host=host, captured=captured, uptime=uptime)
               for host, captured, uptime in (
                   ("compute-1", "2026-01-01T10:00:00.000000Z", 100.0),
                   ("compute-2", "2026-01-01T10:00:00.000000Z", 100.0),
                   ("compute-1", "2026-01-01T10:00:30.000000Z", 130.0))]
    merged = collect.merge([collect.Source(one, f"fetched/{index}.json")
                            for index, one in enumerate(reports)])
    assert merged.superseded == 1  # compute-1's older report
    assert sorted(source.label for source in merged.sources) == ["1 (compute-1)",
                                                                 "1 (compute-2)"]
    (wait,) = merged.groups["threads"]
    assert wait["count"] == 2
    assert "2 processes (pids 1 (compute-1), 1 (compute-2))" in collect.text(merged)
    document = collect.document(merged)
    validate(document)
    assert sorted(one["host"] for one in document["reports"]) == ["compute-1", "compute-2"]


def test_reports_among_log_lines(tmp_path: Path) -> None:
    one = json.dumps(report(1, [thread(1, "a", WAIT)]), separators=(",", ":"))
    two = json.dumps(report(2, [thread(1, "a", WAIT)]), separators=(",", ":"))
    path = tmp_path / "journal"
    path.write_text(f"Jan 01 h nova-api-gmr[1]: {one}\nnoise {{not json}}\n"
                    f"Jan 01 h nova-api-gmr[2]: {two}\n")
    assert [doc["header"]["pid"] for doc in collect.read_reports(path)] == [1, 2]
    path.write_text(one[:500] + "\n")
    with pytest.raises(collect.BadReport, match="cut short"):
        collect.read_reports(path)
    path.write_text("=" * 72 + "\n====  Guru  ====\n")
    with pytest.raises(collect.BadReport, match="is a text report"):
        collect.read_reports(path)
    with pytest.raises(collect.BadReport, match="cannot read"):
        collect.read_reports(tmp_path / "absent")


def test_hostile_strings_stay_on_their_line() -> None:
    evil = [["/srv/x.py\n" + "=" * 72, 1, "f\x1b[2J", "src\u2028x"]]
    merged = collect.merge([collect.Source(report(1, [thread(1, "n\nm", evil)]), "r")])
    text = collect.text(merged)
    assert "\x1b" not in text and "\u2028" not in text
    assert "named n\\nm" in text and "/srv/x.py\\n====" in text


def test_missing_in_view_and_document() -> None:
    merged = collect.merge([collect.Source(report(1, [thread(1, "a", WAIT)]), "r")],
                           [collect.missing("process 9 has not set up gmr", pid=9)])
    assert "Not in this view:\n  process 9 has not set up gmr\n" in collect.text(merged)
    document = collect.document(merged)
    validate(document)
    assert document["missing"] == [{"pid": 9, "source": None,
                                    "reason": "process 9 has not set up gmr"}]
