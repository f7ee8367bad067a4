"""gmr inside real application servers: gunicorn (sync and gevent workers,
with and without --preload) and uWSGI (--lazy-apps, and workers forked from a
master that loaded the application: --py-call-osafterfork,
--py-call-uwsgi-fork-hooks, and the uwsgidecorators.postfork recipe)."""

from __future__ import annotations

import os
import re
import signal
import socket
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from conftest import PROGRAMS, Service, catches, thread_ids, wait_for

pytestmark = pytest.mark.timeout(120)

BIN = Path(sys.executable).parent


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])




def children(pid: int) -> list[int]:
    found = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        text = (task / "children").read_text() if (task / "children").exists() else ""
        found += [int(child) for child in text.split()]
    return found


def report_pids(logs: Path) -> list[int]:
    pids = []
    for path in logs.iterdir():
        if "_gurumeditation_" in path.name and not path.name.startswith("."):
            match = re.search(r"^pid = (\d+)$", path.read_text(), re.MULTILINE)
            assert match, path
            pids.append(int(match.group(1)))
    return sorted(pids)


def get(port: int) -> str:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=10) as response:
        return str(response.read().decode().strip())


@pytest.fixture
def server(twin_env, tmp_path: Path) -> Iterator[object]:  # type: ignore[no-untyped-def]
    started: list[Service] = []

    def start(argv: list[str], conf: str, **env: str) -> tuple[Service, Path]:
        logs = tmp_path / "logs"
        logs.mkdir(exist_ok=True)
        config = tmp_path / "app.conf"
        config.write_text(f"[oslo_reports]\nlog_dir = {logs}\n{conf}")
        merged = dict(twin_env, GMR_TEST_CONFIG=str(config), **env)
        merged["PYTHONPATH"] = os.pathsep.join([str(PROGRAMS), merged["PYTHONPATH"]])
        proc = Service(argv, merged, cwd=tmp_path)
        started.append(proc)
        return proc, logs

    yield start
    for proc in started:
        # uWSGI workers outlive a master that dies first: end them too.
        workers = children(proc.pid) if proc.alive() else []
        if proc.alive():
            proc.process.send_signal(signal.SIGINT)
            try:
                proc.process.wait(10)
            except Exception:
                pass
        for worker in workers:
            try:
                os.kill(worker, signal.SIGKILL)
            except ProcessLookupError:
                pass
        proc.cleanup()


def worker_armed(pid: int) -> bool:
    """A gunicorn worker past its own signal set-up, with gmr armed after it."""
    try:
        return (catches(pid, signal.SIGABRT) and catches(pid, signal.SIGUSR2)
                and bool(thread_ids(pid, "gmr-watcher")))
    except OSError:
        return False


def _workers(master: int, count: int) -> list[int]:
    return sorted(wait_for(lambda: len(children(master)) >= count and children(master)) or [])


@pytest.mark.parametrize("args", [[], ["--preload"], ["-k", "gevent"]],
                         ids=["sync", "sync-preload", "gevent"])
def test_gunicorn_worker_reports_and_lives(server, args: list[str]) -> None:  # type: ignore[no-untyped-def]
    port = free_port()
    proc, logs = server([sys.executable, "-m", "gunicorn", "-w", "2", "-b", f"127.0.0.1:{port}",
                         *args, "server_app:application"], conf="")
    workers = _workers(proc.pid, 2)
    assert len(workers) == 2, proc.stderr_text()
    assert wait_for(lambda: get(port))
    # The worker has finished its own signal set-up (gunicorn's init_signals
    # catches SIGABRT, which the master does not) and gmr has armed after it.
    assert wait_for(lambda: worker_armed(workers[0])), proc.stderr_text()
    os.kill(workers[0], signal.SIGUSR2)
    assert wait_for(lambda: report_pids(logs) == [workers[0]]), (report_pids(logs),
                                                                  proc.stderr_text())
    assert Path(f"/proc/{workers[0]}").exists(), "the worker must survive SIGUSR2"
    assert workers[0] in children(proc.pid)
    assert "was sent SIGUSR2" not in proc.stderr_text()


def test_gunicorn_master_is_refused_by_the_cli(server) -> None:  # type: ignore[no-untyped-def]
    from gmr.cli import Failure, refuse_gunicorn_master

    port = free_port()
    proc, _ = server([sys.executable, "-m", "gunicorn", "-w", "1", "-b", f"127.0.0.1:{port}",
                      "server_app:application"], conf="")
    (worker,) = _workers(proc.pid, 1)
    with pytest.raises(Failure, match="gunicorn master"):
        refuse_gunicorn_master(proc.pid)
    refuse_gunicorn_master(worker)  # a worker is fine


# Each worker must have a watcher of its own. --lazy-apps loads the
# application (and gmr) in every worker. Otherwise the master loads it and
# forks: --py-call-osafterfork and --py-call-uwsgi-fork-hooks run Python's
# fork hooks in the worker (gmr's re-arms); without them, the README's
# postfork recipe calls gmr.rearm(), which must first finish the fork for
# CPython (the parent's thread states crashed the capture).
UWSGI_MODES = {
    "lazy-apps": (["--lazy-apps"], {}),
    "osafterfork": (["--py-call-osafterfork"], {}),
    "uwsgi-fork-hooks": (["--py-call-uwsgi-fork-hooks"], {}),
    "postfork-recipe": ([], {"GMR_TEST_POSTFORK": "1"}),
}

# uWSGI's --py-call-osafterfork calls PyOS_AfterFork_Child without
# PyOS_BeforeFork; from 3.13 that releases an import lock nobody took, and
# every worker aborts ("Fatal Python error: _PyRecursiveMutex_Unlock"), with
# or without gmr (uWSGI 2.0.31).
OSAFTERFORK_ABORTS = pytest.mark.skipif(
    sys.version_info >= (3, 13), reason="uWSGI's --py-call-osafterfork aborts workers on 3.13+")


@pytest.mark.parametrize("mode", [
    pytest.param(mode, marks=OSAFTERFORK_ABORTS) if mode == "osafterfork" else mode
    for mode in UWSGI_MODES])
def test_uwsgi_file_trigger_in_every_worker(server, tmp_path: Path, mode: str) -> None:  # type: ignore[no-untyped-def]
    flags, env = UWSGI_MODES[mode]
    port = free_port()
    trigger = tmp_path / "trigger"
    trigger.touch()
    past = time.time_ns() - 3600 * 10**9  # distinct from the touch below
    os.utime(trigger, ns=(past, past))
    proc, logs = server(
        [str(BIN / "uwsgi"), "--http-socket", f"127.0.0.1:{port}", "--master", "--processes",
         "2", "--enable-threads", "--die-on-term", "--need-app", "--module",
         "server_app:application", *flags],
        conf=f"file_event_handler = {trigger}\nfile_event_handler_interval = 1\n", **env)
    workers = _workers(proc.pid, 2)
    assert len(workers) == 2
    assert wait_for(lambda: get(port))
    # Each worker runs its own watcher, which read the file's time when it
    # started watching.
    assert wait_for(lambda: all(thread_ids(worker, "gmr-watcher") for worker in workers))
    os.utime(trigger, ns=(time.time_ns(), time.time_ns()))
    expected = set(workers)
    assert wait_for(lambda: expected <= set(report_pids(logs))), (report_pids(logs), workers)
    files = [p.name for p in logs.iterdir() if not p.name.startswith(".")]
    assert len(set(files)) == len(files) >= 2  # every process its own file
    for worker in workers:
        assert Path(f"/proc/{worker}").exists()
    log = proc.stderr_text() + "\n".join(proc.stdout_lines)
    assert "uWSGI owns SIGUSR2" in log
    assert "Segmentation Fault" not in log
