"""gmr diff on two reports of one real process: a thread blocked in both
(stuck), one that ended between them (gone), one that started (new)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from conftest import Service, reports, wait_for
from gmr.diff import diff_schema

pytestmark = pytest.mark.timeout(180)


def cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "gmr", *args], env=env, capture_output=True,
                          text=True, timeout=90)


def report_of(svc: Service, logs: Path, env: dict[str, str]) -> Path:
    result = cli(str(svc.pid), "--log-dir", str(logs), "--timeout", "30", env=env)
    assert result.returncode == 0, result.stderr
    return Path(result.stdout.strip())


def names(result: dict[str, Any], change: str) -> list[str]:
    return sorted(item["name"] for item in result["threads"][change])


def test_stuck_new_and_gone(service, twin_env, tmp_path: Path) -> None:
    logs = tmp_path / "logs"
    logs.mkdir()
    control = tmp_path / "control"
    svc: Service = service("collect_service.py", str(logs), "--control", str(control)).ready()
    first = report_of(svc, logs, twin_env)
    control.touch()  # "short" ends, "late" starts
    svc.wait_for_line("changed")
    second = report_of(svc, logs, twin_env)
    result = cli("diff", str(first), str(second), "--json", env=twin_env)
    assert result.returncode == 0, result.stderr
    found = json.loads(result.stdout)
    jsonschema.Draft202012Validator(diff_schema()).validate(found)
    assert found["pid"] == svc.pid
    # The pure twin's signal handler is Python's, run by the main thread: it
    # may be caught in it, and so elsewhere, in either report.
    assert [name for name in names(found, "stuck") if name != "MainThread"] == [
        "blocked", "parked"]
    if twin_env["GMR_TEST_TWIN"] == "c":
        assert "MainThread" in names(found, "stuck")
    assert names(found, "new") == ["late"]
    assert names(found, "gone") == ["short"]
    assert [name for name in names(found, "moved") if name != "MainThread"] == ["watch"]
    stuck = {item["name"]: item for item in found["threads"]["stuck"]}
    assert [frame[2].rsplit(".", 1)[-1] for frame in stuck["blocked"]["frames"]][-3:-1] == [
        "blocked", "wait"]
    assert stuck["blocked"]["cpu_seconds_spent"] >= 0
    changed = {row["what"] for row in found["shrank"] + found["grew"]}
    assert "header › threads" not in changed  # short gone, late new
    # The order of the arguments does not matter: the reports are put in
    # capture order.
    swapped = cli("diff", str(second), str(first), "--json", env=twin_env)
    assert json.loads(swapped.stdout) == found
    # The text view.
    text = cli("diff", str(first), str(second), env=twin_env)
    assert text.returncode == 0 and text.stderr == ""
    assert f"process {svc.pid}: " in text.stdout
    assert "Stuck (at the same place in both reports): " in text.stdout
    assert "\nthread blocked (native id " in text.stdout
    assert "\nthread late (native id " in text.stdout
    assert "Gone (in the first report only): 1 thread" in text.stdout
    assert "in short\n" in text.stdout.split("Gone (")[1].split("Numbers")[0]


def test_two_processes_or_no_json(service, twin_env, tmp_path: Path) -> None:
    logs = tmp_path / "logs"
    logs.mkdir()
    one: Service = service("collect_service.py", str(logs)).ready()
    other: Service = service("collect_service.py", str(logs)).ready()
    first, second = report_of(one, logs, twin_env), report_of(other, logs, twin_env)
    result = cli("diff", str(first), str(second), env=twin_env)
    assert (result.returncode, result.stdout) == (1, "")
    assert result.stderr == (f"gmr: the reports are of two processes (pid {one.pid} and pid "
                             f"{other.pid}): diff compares two reports of one process\n")
    text_logs = tmp_path / "text"
    text_logs.mkdir()
    texts: Service = service("collect_service.py", str(text_logs), "--format", "text").ready()
    text_report = report_of(texts, text_logs, twin_env)
    assert wait_for(lambda: reports(text_logs)) == [text_report]
    failed = cli("diff", str(first), str(text_report), env=twin_env)
    assert failed.returncode == 1 and failed.stdout == ""
    assert failed.stderr == (f"gmr: {text_report} is a text report: collect reads JSON "
                             "reports ([oslo_reports] format = json or json-compact)\n")
    usage = cli("diff", str(first), env=twin_env)
    assert usage.returncode == 2 and "Traceback" not in usage.stderr
