"""The drop-in report on real processes: signals, the file trigger, log_dir
and stderr sinks, the public API, all on both capture twins."""

from __future__ import annotations

import os
import re
import signal
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conftest import GOLDEN, ROOT, catches, next_report, reports, thread_ids, wait_for

pytestmark = pytest.mark.timeout(120)

BANNER = re.compile(r"^====(.{64})====$", re.MULTILINE)


def header_trigger(text: str) -> str:
    """The header's trigger line: "signal", or "signal (N coalesced)"."""
    found = re.search(r"^trigger = (.*)$", text, re.MULTILINE)
    assert found, text[:2000]
    return found.group(1)


def voluntary_switches(pid: int, tid: int) -> int:
    """How many times thread tid of pid has given up the CPU to wait: the
    watcher does once per check of the trigger file (it waits between
    checks), and may once more for the GIL."""
    status = Path(f"/proc/{pid}/task/{tid}/status").read_text()
    (count,) = re.findall(r"^voluntary_ctxt_switches:\s+(\d+)$", status, re.MULTILINE)
    return int(count)


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
    assert re.search(r"^gil held by capture = \d+\.\d{3} ms"
                     r"( \(longest of \d+ holds, \d+\.\d{3} ms in all\))?$", text, re.MULTILINE)
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
    """Several reports within one second: each its own file, named in the
    order they were written (the stamp, then .1, .2)."""
    for attempt in range(5):
        logs = tmp_path / f"logs-{attempt}"
        logs.mkdir()
        # No rate limit: each signal its own report.
        svc = report_service("--log-dir", str(logs), "--service-name", "svc",
                             conf="[oslo_reports]\nreport_interval = 0\n")
        # A second has just begun: three reports fit in it, unless the
        # machine stalls; then the attempt is made again in another second.
        assert wait_for(lambda: time.time() % 1 < 0.2, 2)
        made = [next_report(svc, logs).name for _ in range(3)]
        stamps = {name.split("_gurumeditation_")[1].split(".")[0] for name in made}
        if len(stamps) == 1:
            break
    else:
        pytest.fail(f"no three reports within one second in five attempts: {made}")
    (stamp,) = stamps
    assert made == [f"svc_gurumeditation_{stamp}", f"svc_gurumeditation_{stamp}.1",
                    f"svc_gurumeditation_{stamp}.2"]
    assert [path.name for path in reports(logs)] == made  # distinct, and in order
    assert not [p for p in logs.iterdir() if p.name.startswith(".")]


def test_setup_autorun_twice_gives_one_report_per_trigger(report_service, tmp_path: Path) -> None:
    """One watcher, and each signal counted once: two signals, two reports,
    each answering one signal (so no other report can come)."""
    logs = tmp_path / "logs"
    logs.mkdir()
    svc = report_service("--log-dir", str(logs), "--twice")
    assert len(thread_ids(svc.pid, "gmr-watcher")) == 1
    first = next_report(svc, logs)
    second = next_report(svc, logs)
    assert reports(logs) == [first, second]
    assert [header_trigger(path.read_text()) for path in (first, second)] == ["signal"] * 2
    assert len(thread_ids(svc.pid, "gmr-watcher")) == 1


def test_stderr_by_default_in_one_piece(report_service) -> None:
    """Each report on stderr whole and alone: two signals, two reports, each
    answering one signal (so no other report can come)."""
    svc = report_service()

    def whole_reports(count: int) -> bool:
        text = svc.stderr_text()
        return (text.count("Guru Meditation") == count
                and text.rstrip().endswith("watchdog_timeout = 1.0"))

    svc.kill()
    assert wait_for(lambda: whole_reports(1)), svc.stderr_text()[-2000:]
    svc.kill()
    assert wait_for(lambda: whole_reports(2)), svc.stderr_text()[-2000:]
    text = svc.stderr_text()
    first, second = text.split("Guru Meditation")[1:]
    assert [header_trigger(part) for part in (first, second)] == ["signal"] * 2
    assert titles(text)[:6] == ["Guru Meditation", "Package", "Threads", "Green Threads",
                                "Processes", "Configuration"]
    assert titles(first)[-1] == "Configuration" and titles(second) == titles(first)
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
    svc.kill()  # within the burst: answered at once
    assert wait_for(lambda: reports(logs))


def test_file_trigger_touch_delete_recreate(report_service, tmp_path: Path) -> None:
    """Touch the trigger file: a report. Delete it: none. Re-create it: a
    report. SIGUSR2: gmr does not catch it (the file trigger replaces the
    signal), so it ends the service as it would any process, with no report."""
    logs = tmp_path / "logs"
    logs.mkdir()
    trigger = tmp_path / "trigger"
    trigger.touch()
    start = time.time_ns() - 3600 * 10**9  # distinct from every later touch
    os.utime(trigger, ns=(start, start))
    conf = (f"[oslo_reports]\nlog_dir = {logs}\nfile_event_handler = {trigger}\n"
            "file_event_handler_interval = 0.05\n")
    svc = report_service(conf=conf)
    (watcher,) = thread_ids(svc.pid, "gmr-watcher")  # it has read the file's time
    assert not catches(svc.pid, signal.SIGUSR2)
    # Touch.
    os.utime(trigger, ns=(start + 10**9, start + 10**9))
    assert wait_for(lambda: len(reports(logs)) == 1, 10)
    # Delete: the watcher checks the file (and finds none) at least once.
    trigger.unlink()
    checks = voluntary_switches(svc.pid, watcher)
    assert wait_for(lambda: voluntary_switches(svc.pid, watcher) >= checks + 3, 10)
    # Re-create, with the time the file had before it was deleted: only a
    # watcher that saw it gone takes this for a change.
    trigger.touch()
    os.utime(trigger, ns=(start + 10**9, start + 10**9))
    assert wait_for(lambda: len(reports(logs)) == 2, 10)
    found = reports(logs)
    assert [header_trigger(path.read_text()) for path in found] == ["file", "file"]
    # SIGUSR2: not gmr's, so its default action.
    svc.kill()
    code, _, _ = svc.finish(10)
    assert code == -signal.SIGUSR2
    assert reports(logs) == found


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
        f"def count(): return sum('_gurumeditation_' in n for n in os.listdir({str(logs)!r}))\n"
        "before = count()  # the other program's report may be there already\n"
        "os.kill(os.getpid(), signal.SIGUSR2)\n"
        "deadline = time.monotonic() + 30  # until this program's report is written\n"
        "while count() == before and time.monotonic() < deadline:\n"
        "    time.sleep(0.01)\n"
    )
    (package / "__main__.py").write_text(body)
    (tmp_path / "myscript.py").write_text(body)
    env = dict(twin_env, PYTHONPATH=f"{ROOT}{os.pathsep}{tmp_path}")
    subprocess.run([sys.executable, "-m", "mysvc"], env=env, cwd=tmp_path, timeout=60,
                   check=True)
    subprocess.run([sys.executable, str(tmp_path / "myscript.py")], env=env, cwd=tmp_path,
                   timeout=60, check=True)
    names = sorted(p.name.split("_gurumeditation_")[0] for p in reports(logs))
    assert names == ["myscript.py", "mysvc"]  # the script keeps its name, as oslo.reports


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
