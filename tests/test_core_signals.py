"""Real signals to real subprocesses (tests/programs/core_service.py), on
both twins: where the main thread is when the signal comes, chaining,
displacement, disarming, bursts and forks."""

from __future__ import annotations

import os
import signal
import time

import pytest

pytestmark = pytest.mark.timeout(60)


def fields(line: str) -> dict[str, str]:
    return dict(part.split("=", 1) for part in line.split()[1:] if "=" in part)


def count_lines(svc, prefix: str, count: int, timeout: float = 10.0) -> None:  # type: ignore[no-untyped-def]
    """Wait until stdout has `count` lines starting with prefix, in any order
    with other lines."""
    deadline = time.monotonic() + timeout
    while sum(line.startswith(prefix) for line in svc.stdout_lines) < count:
        assert time.monotonic() < deadline, (prefix, count, svc.stdout_lines)
        time.sleep(0.02)


def test_busy_main_thread(service) -> None:  # type: ignore[no-untyped-def]
    """Main computes in Python: the report comes, and shows main computing."""
    svc = service("core_service.py", "busy", "20").ready()
    svc.wait_for_line("blocking")
    time.sleep(0.1)  # main is past printing that line, inside busy_loop
    svc.kill()
    report = fields(svc.wait_for_line("report", 10))
    assert report["pid"] == str(svc.pid)
    assert report["trigger"] == "signal"
    assert report["watcher_seen"] == "False" and report["threads"] == "1"  # main only
    # The pure twin may catch main inside its own handler, called from busy_loop.
    assert report["main"].split(",")[:2] == ["<module>", "busy_loop"], report
    assert "returned" not in svc.stdout_lines


@pytest.mark.parametrize("mode", ["sleep", "select"])
def test_main_thread_idle_in_a_blocking_call(service, mode: str) -> None:  # type: ignore[no-untyped-def]
    """Main sleeps, or waits in select(): both twins serve the signal before
    the call returns (the pure twin's Python handler runs when the call sees
    EINTR, and the call then resumes)."""
    svc = service("core_service.py", mode, "20").ready()
    until = float(fields(svc.wait_for_line("blocking"))["until"])
    time.sleep(0.1)
    svc.kill()
    report = fields(svc.wait_for_line("report", 10))
    assert float(report["at"]) < until
    assert "returned" not in svc.stdout_lines
    assert svc.alive()


def test_main_thread_blocked_in_c(service, twin_env) -> None:  # type: ignore[no-untyped-def]
    """Main waits in pthread_mutex_timedlock, a C call without the GIL that
    glibc restarts after a signal. The compiled twin captures while main is
    still blocked, inside the call; the pure twin's Python handler cannot
    run until the call returns, so its capture comes after the deadline."""
    blocked = 3.0
    svc = service("core_service.py", "timedlock", str(blocked)).ready()
    until = float(fields(svc.wait_for_line("blocking"))["until"])
    time.sleep(0.1)
    svc.kill()
    line = svc.wait_for_line("report", blocked + 10)
    report = fields(line)
    if twin_env["GMR_TEST_TWIN"] == "c":
        assert float(report["at"]) < until
        assert report["main"].endswith("<module>,block_in_timedlock"), line
        assert not any(out.startswith("returned") for out in svc.stdout_lines)
    else:
        assert float(report["at"]) >= until - 0.01  # time.time() granularity
        assert any(out.startswith("returned") for out in svc.stdout_lines)
    # The call itself was not cut short: it timed out (ETIMEDOUT).
    count_lines(svc, "returned", 1, blocked + 10)
    assert "returned 110" in svc.stdout_lines


def test_chains_to_an_earlier_python_handler(service) -> None:  # type: ignore[no-untyped-def]
    """A handler installed with signal.signal before gmr armed still runs,
    and the report comes too."""
    svc = service("core_service.py", "chain").ready()
    for round in (1, 2):
        svc.kill()
        count_lines(svc, "python handler", round)
        count_lines(svc, "report", round)
        time.sleep(0.6)  # past min_interval
    assert f"python handler pid={svc.pid}" in svc.stdout_lines
    reports = [fields(line) for line in svc.stdout_lines if line.startswith("report")]
    assert [report["trigger"] for report in reports] == ["signal", "signal"]


def test_later_signal_signal_is_detected(service) -> None:  # type: ignore[no-untyped-def]
    """A later signal.signal silently replaces gmr's handler: is_armed says
    so, and from then on only the application's handler runs."""
    svc = service("core_service.py", "displace").ready()
    assert "armed True" in svc.stdout_lines
    assert (f"after signal.signal armed=False displaced=[{int(signal.SIGUSR2)}]"
            in svc.stdout_lines)
    svc.kill()
    svc.wait_for_line("python handler", 10)
    time.sleep(0.5)
    assert not any(line.startswith("report") for line in svc.stdout_lines)


@pytest.mark.parametrize("previous", ["python", "ignore", "default"])
def test_disarm_restores_the_previous_action(service, previous: str) -> None:  # type: ignore[no-untyped-def]
    svc = service("core_service.py", f"disarm-{previous}").ready()
    assert "armed True" in svc.stdout_lines
    assert "disarmed armed=False getsignal=True" in svc.stdout_lines
    svc.kill()
    if previous == "default":
        # SIG_DFL is back: SIGUSR2 terminates the process.
        code, _, _ = svc.finish(10)
        assert code == -signal.SIGUSR2
        return
    if previous == "python":
        svc.wait_for_line("python handler", 10)
    time.sleep(0.5)
    assert svc.alive()
    assert not any(line.startswith("report") for line in svc.stdout_lines)


def test_burst_is_coalesced(service) -> None:  # type: ignore[no-untyped-def]
    """200 signals as fast as they can be sent: a handful of reports, which
    together answer every signal the handler saw, and the service lives on."""
    svc = service("core_service.py", "idle").ready()
    for _ in range(200):
        os.kill(svc.pid, signal.SIGUSR2)
    first = fields(svc.wait_for_line("report", 10))
    time.sleep(1.5)  # past min_interval: any straggler report is out
    reports = [fields(line) for line in svc.stdout_lines if line.startswith("report")]
    assert first in reports
    assert 1 <= len(reports) <= 5, reports
    # The kernel merges a pending signal with the next one, so the handler
    # may see fewer than 200; never more.
    assert 1 <= sum(int(report["n"]) for report in reports) <= 200
    assert svc.alive()
    svc.kill()
    assert svc.wait_for_line("report", 10)


def test_signal_to_forked_child_does_not_wake_parent(service) -> None:  # type: ignore[no-untyped-def]
    """A child made by libc's fork(), which runs no at-fork hook, keeps the
    parent's handler and the parent's pipe: the pid check keeps its signal
    from waking the parent's watcher."""
    svc = service("core_service.py", "rawfork").ready()
    child = svc.wait_for_line("child", 20)
    assert child.endswith("done")
    assert svc.wait_for_line("parent", 10) == "parent reports=0"
    assert not any(line.startswith("report") for line in svc.stdout_lines)
    # The parent's own signals still are served.
    svc.kill()
    assert fields(svc.wait_for_line("report", 10))["pid"] == str(svc.pid)


def test_os_fork_child_reports_for_itself(service) -> None:  # type: ignore[no-untyped-def]
    """After os.fork the child's own watcher answers its signal, with its
    pid; the parent's watcher stays asleep."""
    svc = service("core_service.py", "fork").ready()
    child = svc.wait_for_line("child", 20).split()[1]
    assert svc.wait_for_line("parent", 10) == "parent reports=0"
    reports = [fields(line) for line in svc.stdout_lines if line.startswith("report")]
    assert [report["pid"] for report in reports] == [child]
