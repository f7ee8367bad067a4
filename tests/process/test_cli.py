"""The operator CLI (python -m gmr PID, or the gmr command) against real
processes: it triggers, waits, and prints the new report's path or the report
itself, or exits non-zero with one line. The gunicorn master is refused in
tests/test_servers.py."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conftest import PROGRAMS, Service, reports, validate_report, wait_for
from gmr.cli import signal_number

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
    # The report as its file holds it, one newline at its end.
    (report,) = [path for path in logs.iterdir() if not path.name.startswith(".")]
    assert result.stdout == report.read_text()


def test_trigger_file(report_service, twin_env, tmp_path: Path) -> None:
    logs = tmp_path / "logs"
    logs.mkdir()
    trigger = tmp_path / "trigger"
    trigger.touch()
    # A modification time well in the past, so that the CLI's touch makes a
    # new one, even on a coarse clock.
    past = time.time_ns() - 3600 * 10**9
    os.utime(trigger, ns=(past, past))
    svc = report_service(conf=f"[oslo_reports]\nlog_dir = {logs}\nfile_event_handler = {trigger}"
                              "\nfile_event_handler_interval = 1\n")
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
    """--force sends the signal to a process that has not armed gmr: this one
    ignores it, so no report comes, and the CLI says so in time."""
    logs = tmp_path / "logs"
    logs.mkdir()
    quiet = Service([sys.executable, str(PROGRAMS / "ignores_sigusr2.py")], dict(os.environ))
    try:
        quiet.ready()
        assert one_line(cli(str(quiet.pid), "--log-dir", str(logs))) == (
            f"gmr: process {quiet.pid} has not set up gmr: it ignores SIGUSR2 and has no "
            "gmr-watcher thread; --force sends SIGUSR2 anyway")
        started = time.monotonic()
        failed = one_line(cli(str(quiet.pid), "--log-dir", str(logs), "--timeout", "1",
                              "--force"))
        assert time.monotonic() - started < 30
        assert failed == f"gmr: no new report in {logs} within 1 s"
        assert quiet.alive()
    finally:
        quiet.cleanup()


#: A plain Python process without gmr: SIGUSR2 would end it.
PLAIN = "import time; print('ready', flush=True); time.sleep(3600)"
#: One that catches SIGUSR2 with a handler of its own (not gmr's).
OWN_HANDLER = ("import signal, time; signal.signal(signal.SIGUSR2, lambda *a: None); "
               "print('ready', flush=True); time.sleep(3600)")


def test_refuses_a_process_without_gmr(tmp_path: Path) -> None:
    """SIGUSR2 would kill a process that has not set gmr up: the CLI refuses
    it (it catches no SIGUSR2, it has no gmr-watcher thread), and it lives."""
    plain = Service([sys.executable, "-c", PLAIN], dict(os.environ))
    try:
        plain.ready()
        for where in (["--log-dir", str(tmp_path)], ["--stderr-file", str(tmp_path / "err")]):
            assert one_line(cli(str(plain.pid), *where)) == (
                f"gmr: process {plain.pid} has not set up gmr: it does not catch SIGUSR2 and "
                "has no gmr-watcher thread (SIGUSR2 would end it); --force sends SIGUSR2 "
                "anyway")
        for word, effect in (("TERM", " (SIGTERM would end it)"),
                             ("20", " (SIGTSTP would stop it)"), ("SIGWINCH", "")):
            assert one_line(cli(str(plain.pid), "--log-dir", str(tmp_path), "--signal", word)) == (
                f"gmr: process {plain.pid} has not set up gmr: it does not catch "
                f"{signal.Signals(signal_number(word)).name} and has no gmr-watcher "
                f"thread{effect}; --force sends {signal.Signals(signal_number(word)).name} anyway")
        assert plain.alive()
        assert not (tmp_path / "err").exists()
    finally:
        plain.cleanup()


def test_refuses_a_handler_that_is_not_gmrs(tmp_path: Path) -> None:
    own = Service([sys.executable, "-c", OWN_HANDLER], dict(os.environ))
    try:
        own.ready()
        assert one_line(cli(str(own.pid), "--log-dir", str(tmp_path))) == (
            f"gmr: process {own.pid} catches SIGUSR2 but has no gmr-watcher thread: the "
            "handler is not gmr's; --force sends SIGUSR2 anyway")
        assert own.alive()
    finally:
        own.cleanup()


def test_signal_gmr_is_armed_for(report_service, twin_env, tmp_path: Path) -> None:
    """A service that armed gmr on SIGUSR1: SIGUSR2 is refused (it would end
    the service), --signal USR1 (or 10, or SIGUSR1) gives the report."""
    logs = tmp_path / "logs"
    logs.mkdir()
    usr1 = int(signal.SIGUSR1)
    svc = report_service("--log-dir", str(logs), "--signum", str(usr1))
    assert one_line(cli(str(svc.pid), "--log-dir", str(logs), env=twin_env)) == (
        f"gmr: process {svc.pid} runs gmr but does not catch SIGUSR2 (gmr may watch a trigger "
        "file or another signal: see --trigger-file and --signal); --force sends SIGUSR2 "
        "anyway")
    assert svc.alive()
    for spelling in ("USR1", str(usr1), "sigusr1"):
        result = cli(str(svc.pid), "--log-dir", str(logs), "--signal", spelling,
                     "--timeout", "30", env=twin_env)
        assert result.returncode == 0, result.stderr
        assert Path(result.stdout.strip()) in reports(logs)
    assert len(reports(logs)) == 3
    assert svc.alive()


@pytest.mark.parametrize("word", ["FOO", "SIG_IGN", "SIG_DFL", "SIGBOGUS", "0", "-10", "99",
                                  "32", "12.0", ""])
def test_signal_must_be_a_real_signal(word: str) -> None:
    """Anything but a signal's name or number is one usage line (exit 2),
    before any process is looked at."""
    result = cli(str(os.getpid()), "--log-dir", "/nonexistent", f"--signal={word}")
    assert result.returncode == 2, result
    assert result.stdout == ""
    assert result.stderr == (f"gmr: --signal {word!r} is not a signal: give a name (SIGUSR2, "
                             "USR2) or the number of one\n")


def test_trigger_file_symlink_is_not_followed(report_service, twin_env,
                                              tmp_path: Path) -> None:
    """A symbolic link planted at the trigger file's path: refused in one
    line, the file it points to keeps its modification time, no report."""
    logs = tmp_path / "logs"
    logs.mkdir()
    trigger = tmp_path / "trigger"
    trigger.touch()
    svc = report_service(conf=f"[oslo_reports]\nlog_dir = {logs}\nfile_event_handler = {trigger}"
                              "\nfile_event_handler_interval = 0.01\n")
    victim = tmp_path / "victim"
    victim.write_text("precious\n")
    os.utime(victim, ns=(1_000_000_000_000_000_000, 1_000_000_000_000_000_000))
    before = victim.stat()
    trigger.unlink()
    trigger.symlink_to(victim)
    failed = one_line(cli(str(svc.pid), "--log-dir", str(logs), "--trigger-file", str(trigger),
                          "--timeout", "5", env=twin_env))
    assert failed == (f"gmr: the trigger file {trigger} is a symbolic link (to {victim}): gmr "
                      "does not follow it; give the file the service watches itself")
    after = victim.stat()
    assert (after.st_mtime_ns, after.st_atime_ns) == (before.st_mtime_ns, before.st_atime_ns)
    assert victim.read_text() == "precious\n"
    assert trigger.is_symlink()
    # A dangling link is refused too: nothing is created where it points.
    missing = tmp_path / "created-through-the-link"
    trigger.unlink()
    trigger.symlink_to(missing)
    assert "is a symbolic link" in one_line(
        cli(str(svc.pid), "--log-dir", str(logs), "--trigger-file", str(trigger),
            "--timeout", "5", env=twin_env))
    assert not missing.exists()
    assert svc.alive()


def test_stderr_file_while_the_service_keeps_logging(service, tmp_path: Path) -> None:
    """The service logs a line every millisecond to the file its stderr goes
    to: the CLI prints the report, whole, and none of the lines around it."""
    stderr_file = tmp_path / "service.err"
    svc = service("logging_service.py", str(stderr_file))
    svc.ready()
    for _ in range(2):
        result = cli(str(svc.pid), "--stderr-file", str(stderr_file), "--timeout", "30")
        assert result.returncode == 0, result.stderr
        report = result.stdout
        assert report.startswith("=" * 72 + "\n"), report[:500]
        assert f"\npid = {svc.pid}\n" in report
        assert "log line" not in report
        assert f"\n===={'Configuration':^64}====\n" in report
        assert report.endswith("\n\n")  # Configuration's last group, and nothing after it
        # It is the report as the service wrote it, between its log lines.
        logged = stderr_file.read_text()
        at = logged.index(report)
        assert logged[:at].rsplit("\n", 2)[-2].startswith("log line ")
        end = at + len(report)
        assert wait_for(lambda end=end: stderr_file.read_text()[end:].startswith("log line "))
    assert svc.alive()


def find(text: str, pid: int = 7, **kwargs: object) -> str | None:
    from gmr.cli import find_report

    return find_report(text, pid, **kwargs)  # type: ignore[arg-type]


def test_find_report_among_log_lines() -> None:
    """The report's end, from gmr's own text alone: after the Configuration
    section a line that is not one of its groups ends it; lines before it, a
    report of another process, and a report not yet whole are passed over."""
    from gmr.render import banner

    head = (f"{banner('Guru Meditation')}\n{'|' * 72}\n\ncaptured at = now\npid = 7\n"
            f"program = p\n\n{banner('Package')}\nversion = 1\n{banner('Configuration')}\n\n"
            "default: \n  debug = False\n\noslo_reports: \n  log_dir = None\n\n")
    other = head.replace("pid = 7", "pid = 8")
    assert find(f"log a\n{other}log b\n{head}log c\n") == head
    assert find(head, quiet=True) == head
    assert find(head) is None  # whole only once a line follows, or the file is quiet
    assert find(head[:-30] + "log") is None
    assert find(head + "{not json\n") == head
    # A section error, in place of the Configuration.
    broken = head[:head.index(banner("Configuration"))] + banner("Configuration") + \
        "\ngmr: RuntimeError: no\n"
    assert find(broken + "log\n") == broken
    # A registered section last: up to the bound of the data read with it.
    custom = head + f"{banner('Mine')}\nmy line\n"
    assert find(custom + "log\n") is None
    assert find(custom + "log\n", bound=len(custom)) == custom
    # JSON: exactly the document.
    document = '{"header": {"pid": 7}, "sections": []}'
    assert find(f"log\n{{no\n{document}\nlog\n") == document + "\n"


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
