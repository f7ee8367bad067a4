"""The operator CLI (python -m gmr PID, or the gmr command) against real
processes: it triggers, waits, and prints the new report's path or the report
itself, or exits non-zero with one line. The gunicorn master is refused in
tests/test_servers.py."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conftest import PROGRAMS, Service, reports, validate_report, wait_for

pytestmark = pytest.mark.timeout(180)


def cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "gmr", *args], env=env, capture_output=True,
                          text=True, timeout=90)


def one_line(result: subprocess.CompletedProcess[str]) -> str:
    """The CLI failed, and said why in one line on stderr."""
    assert result.returncode == 1, result
    assert result.stdout == ""
    assert result.stderr.count("\n") == 1 and result.stderr.startswith("gmr: "), result.stderr
    return result.stderr.strip()


def test_prints_the_new_report_path(report_service, twin_env, tmp_path: Path) -> None:
    logs = tmp_path / "logs"
    logs.mkdir()
    svc = report_service("--log-dir", str(logs))
    result = cli(str(svc.pid), "--log-dir", str(logs), "--timeout", "30", env=twin_env)
    assert result.returncode == 0, result.stderr
    assert result.stdout.count("\n") == 1
    path = Path(result.stdout.strip())
    assert reports(logs) == [path]
    assert path.read_text().startswith("=" * 72)
    # --json on a service that writes text: one line that says so.
    failed = one_line(cli(str(svc.pid), "--log-dir", str(logs), "--json", "--timeout", "30",
                          env=twin_env))
    assert "is not a JSON report" in failed and "format = json" in failed
    assert svc.alive()


def test_json_prints_a_valid_report(report_service, twin_env, tmp_path: Path) -> None:
    logs = tmp_path / "logs"
    logs.mkdir()
    svc = report_service(conf=f"[oslo_reports]\nlog_dir = {logs}\nformat = json\n")
    result = cli(str(svc.pid), "--log-dir", str(logs), "--json", "--timeout", "30",
                 env=twin_env)
    assert result.returncode == 0, result.stderr
    document = validate_report(result.stdout)
    assert document["header"]["pid"] == svc.pid
    assert document["header"]["trigger"] == "signal"


def test_trigger_file(report_service, twin_env, tmp_path: Path) -> None:
    logs = tmp_path / "logs"
    logs.mkdir()
    trigger = tmp_path / "trigger"
    trigger.touch()
    svc = report_service(conf=f"[oslo_reports]\nlog_dir = {logs}\nfile_event_handler = {trigger}"
                              "\nfile_event_handler_interval = 1\n")
    time.sleep(0.1)  # a new modification time, even on a coarse clock
    result = cli(str(svc.pid), "--log-dir", str(logs), "--trigger-file", str(trigger),
                 "--timeout", "30", env=twin_env)
    assert result.returncode == 0, result.stderr
    assert "\ntrigger = file\n" in Path(result.stdout.strip()).read_text()


def test_prints_the_report_from_the_stderr_file(report_service, twin_env,
                                                tmp_path: Path) -> None:
    stderr_file = tmp_path / "service.err"
    svc = report_service("--stderr-to", str(stderr_file))
    result = cli(str(svc.pid), "--stderr-file", str(stderr_file), "--timeout", "30",
                 env=twin_env)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("=" * 72 + "\n")
    assert f"\npid = {svc.pid}\n" in result.stdout
    assert result.stdout.rstrip().endswith("watchdog_timeout = 1.0")  # the whole report


def test_no_report_in_time(tmp_path: Path) -> None:
    logs = tmp_path / "logs"
    logs.mkdir()
    quiet = Service([sys.executable, str(PROGRAMS / "ignores_sigusr2.py")], dict(os.environ))
    try:
        quiet.ready()
        started = time.monotonic()
        failed = one_line(cli(str(quiet.pid), "--log-dir", str(logs), "--timeout", "1"))
        assert time.monotonic() - started < 30
        assert failed == f"gmr: no new report in {logs} within 1 s"
        assert quiet.alive()
    finally:
        quiet.cleanup()


def test_no_such_process(tmp_path: Path) -> None:
    ended = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                           capture_output=True, text=True, timeout=60, check=True)
    pid = int(ended.stdout)
    assert wait_for(lambda: not Path(f"/proc/{pid}").exists())
    assert one_line(cli(str(pid), "--log-dir", str(tmp_path))) == f"gmr: no process {pid}"


def test_missing_log_dir(tmp_path: Path) -> None:
    missing = tmp_path / "missing"
    assert one_line(cli(str(os.getpid()), "--log-dir", str(missing))) == (
        f"gmr: log directory {missing} does not exist")


def test_console_script() -> None:
    script = Path(sys.executable).parent / "gmr"
    assert script.is_file() and os.access(script, os.X_OK)
    result = subprocess.run([str(script), "--help"], capture_output=True, text=True,
                            timeout=60)
    assert result.returncode == 0
    assert "--log-dir" in result.stdout and "--stderr-file" in result.stdout
