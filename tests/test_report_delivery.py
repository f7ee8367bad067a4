"""The drop-in report on real processes: signals, the file trigger, log_dir
and stderr sinks, the public API, all on both capture twins."""

from __future__ import annotations

import os
import re
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conftest import ROOT, reports, wait_for

pytestmark = pytest.mark.timeout(120)

BANNER = re.compile(r"^====(.{64})====$", re.MULTILINE)
GOLDEN = Path(__file__).parent / "golden"


def titles(text: str) -> list[str]:
    return [match.strip() for match in BANNER.findall(text) if set(match) != {"="}]


def test_signal_writes_a_whole_report_file(report_service, tmp_path: Path) -> None:
    logs = tmp_path / "logs"
    logs.mkdir()
    svc = report_service("--sections", "--service-name", "nova-api",
                conf=f"[oslo_reports]\nlog_dir = {logs}\n")
    svc.kill()
    (path,) = wait_for(lambda: reports(logs))
    assert re.fullmatch(r"nova-api_gurumeditation_\d{14}", path.name)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    text = path.read_text()
    assert titles(text) == (GOLDEN / "section_order.txt").read_text().split("\n")[:-1]
    for line in text.splitlines():
        if line.startswith("="):
            assert line in ("=" * 72,) or BANNER.fullmatch(line), line
    # Threads with their stacks and source lines; the watcher is not shown.
    assert "in worker_waits" in text and "`stop.wait()`" in text
    assert "watcher.py" not in text.split("Green Threads")[0].split("Threads")[1]
    # Green threads parked in a named function.
    assert text.count("in parked_in_named_function") == 3
    # Configuration: secrets masked, credentials in values masked.
    assert "api_token = ***" in text and "tok-123" not in text
    assert "connection = postgresql://app:***@db/app" in text and "dbpass" not in text
    # Registered sections of every kind, and a broken one says so inside itself.
    assert "plain text\nsecond line" in text
    assert "k = v\nnested = \n  a = 1" in text
    assert "one\ntwo\n  deeper" in text
    assert "an object shown by str()" in text
    assert "oslo_key = oslo_value" in text
    assert "gmr: section failed: ZeroDivisionError: division by zero" in text
    # The header says how it was made.
    assert re.search(r"^trigger = signal$", text, re.MULTILINE)
    assert re.search(r"^gil held by capture = \d+\.\d{3} ms$", text, re.MULTILINE)
    assert not [p for p in logs.iterdir() if p.name.startswith(".")]
    assert svc.alive()


def test_capture_implementation_is_stated(report_service, twin_env, tmp_path: Path) -> None:
    logs = tmp_path / "logs"
    logs.mkdir()
    svc = report_service("--log-dir", str(logs))
    svc.kill()
    (path,) = wait_for(lambda: reports(logs))
    text = path.read_text()
    if twin_env["GMR_TEST_TWIN"] == "py":  # and why (tests/test_fallback.py)
        assert "\ncapture = pure (pure-Python trigger, walker, files on " in text
    else:
        assert "\ncapture = compiled\n" in text


def test_reports_in_the_same_second_never_overwrite(report_service, tmp_path: Path) -> None:
    logs = tmp_path / "logs"
    logs.mkdir()
    svc = report_service("--log-dir", str(logs), "--service-name", "svc")
    for count in (1, 2, 3):
        svc.kill()
        wait_for(lambda count=count: len(reports(logs)) >= count)
        time.sleep(0.6)  # past the storm interval: each signal its own report
    found = reports(logs)
    assert len(found) == 3
    assert all(p.name.startswith("svc_gurumeditation_") for p in found)
    assert len({p.name for p in found}) == 3
    assert not [p for p in logs.iterdir() if p.name.startswith(".")]


def test_setup_autorun_twice_gives_one_report_per_trigger(report_service, tmp_path: Path) -> None:
    logs = tmp_path / "logs"
    logs.mkdir()
    svc = report_service("--log-dir", str(logs), "--twice")
    svc.kill()
    wait_for(lambda: reports(logs))
    time.sleep(1.0)
    assert len(reports(logs)) == 1


def test_stderr_by_default_in_one_piece(report_service) -> None:
    svc = report_service()
    svc.kill()
    wait_for(lambda: "Configuration" in svc.stderr_text() and
             "    Green Threads    " not in svc.stderr_text()[-200:])
    time.sleep(0.5)
    text = svc.stderr_text()
    assert text.count("Guru Meditation") == 1
    assert titles(text)[:6] == ["Guru Meditation", "Package", "Threads", "Green Threads",
                                "Processes", "Configuration"]
    assert "product = test-product" in text and "version = 9.8.7-1" in text


@pytest.mark.parametrize(("kind", "expected"), [
    ("str", "version = 5.4.3"),
    ("none", "version = \n"),
    ("pbr", "product = oslo.config"),
])
def test_version_kinds(report_service, tmp_path: Path, kind: str, expected: str) -> None:
    logs = tmp_path / "logs"
    logs.mkdir()
    svc = report_service("--log-dir", str(logs), "--version", kind)
    svc.kill()
    (path,) = wait_for(lambda: reports(logs))
    assert expected in path.read_text()


def test_unwritable_log_dir_one_line_and_retry(report_service, tmp_path: Path) -> None:
    logs = tmp_path / "not-yet"
    svc = report_service("--log-dir", str(logs), "--service-name", "svc")
    svc.kill()
    # The pure twin's line from set-up (tests/test_fallback.py) is not this one.
    line = wait_for(lambda: [entry for entry in svc.stderr_lines if entry.startswith("gmr:")
                             and not entry.startswith("gmr: pure-Python ")])
    assert len(line) == 1
    assert str(logs) in line[0] and "No such file or directory" in line[0]
    assert svc.alive()
    logs.mkdir()
    time.sleep(0.6)
    svc.kill()
    assert wait_for(lambda: reports(logs))


def test_file_trigger_touch_delete_recreate(report_service, tmp_path: Path) -> None:
    logs = tmp_path / "logs"
    logs.mkdir()
    trigger = tmp_path / "trigger"
    trigger.touch()
    conf = (f"[oslo_reports]\nlog_dir = {logs}\nfile_event_handler = {trigger}\n"
            "file_event_handler_interval = 1\n")
    svc = report_service(conf=conf)
    os.utime(trigger, ns=(time.time_ns(), time.time_ns()))  # right after start-up
    wait_for(lambda: len(reports(logs)) == 1, 10)
    assert len(reports(logs)) == 1
    trigger.unlink()
    time.sleep(1.5)
    trigger.touch()
    wait_for(lambda: len(reports(logs)) == 2, 10)
    assert len(reports(logs)) == 2
    text = reports(logs)[-1].read_text()
    assert "\ntrigger = file\n" in text
    # The file trigger replaces the signal: SIGUSR2 was not armed by gmr.
    assert svc.alive()


def test_default_service_name_script_and_module(tmp_path: Path, twin_env) -> None:
    logs = tmp_path / "logs"
    logs.mkdir()
    package = tmp_path / "mysvc"
    package.mkdir()
    (package / "__init__.py").write_text("")
    body = (
        "import os, signal, time, threading\n"
        "import gmr\n"
        f"gmr.TextGuruMeditation.setup_autorun('1', log_dir={str(logs)!r})\n"
        "os.kill(os.getpid(), signal.SIGUSR2)\n"
        "time.sleep(1.5)\n"
    )
    (package / "__main__.py").write_text(body)
    (tmp_path / "myscript.py").write_text(body)
    env = dict(twin_env, PYTHONPATH=f"{ROOT}{os.pathsep}{tmp_path}")
    subprocess.run([sys.executable, "-m", "mysvc"], env=env, cwd=tmp_path, timeout=60,
                   check=True)
    subprocess.run([sys.executable, str(tmp_path / "myscript.py")], env=env, cwd=tmp_path,
                   timeout=60, check=True)
    names = sorted(p.name.split("_gurumeditation_")[0] for p in reports(logs))
    assert names == ["myscript", "mysvc"]


@pytest.mark.parametrize("monkey", ["eventlet", "gevent"])
def test_under_monkey_patching(report_service, tmp_path: Path, monkey: str) -> None:
    logs = tmp_path / "logs"
    logs.mkdir()
    extra = ["--hold-locks"] if monkey == "eventlet" else []
    svc = report_service("--monkey", monkey, "--log-dir", str(logs), *extra)
    svc.kill()
    (path,) = wait_for(lambda: reports(logs), 20)
    text = path.read_text()
    assert text.count("in parked_in_named_function") == 3
    assert f"green hub = {monkey}" in text
    assert svc.alive()
