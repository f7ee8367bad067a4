"""Real signals to real subprocesses (tests/programs/core_service.py), on
both twins: where the main thread is when the signal comes, chaining,
displacement, disarming, bursts and forks."""

from __future__ import annotations

import os
import signal
import time

import pytest

from conftest import SELECT_CALLS, SLEEP_CALLS, pending, wait_for, wait_in_futex, wait_in_syscall

pytestmark = pytest.mark.timeout(60)


def fields(line: str) -> dict[str, str]:
    return dict(part.split("=", 1) for part in line.split()[1:] if "=" in part)


def count_lines(svc, prefix: str, count: int, timeout: float = 10.0) -> None:  # type: ignore[no-untyped-def]
    """Wait until stdout has `count` lines starting with prefix, in any order
    with other lines."""
    svc.wait_for_lines(prefix, count, timeout)


def reports(svc) -> list[dict[str, str]]:  # type: ignore[no-untyped-def]
    return [fields(line) for line in svc.lines("report")]


def last_request(svc) -> int:  # type: ignore[no-untyped-def]
    """Ask for a report through the API (the program's SIGRTMIN handler),
    once every SIGUSR2 sent before has reached the process; how many SIGUSR2
    its handler had counted by then."""
    assert wait_for(lambda: not pending(svc.pid, signal.SIGUSR2)), "SIGUSR2 still pending"
    svc.kill(signal.SIGRTMIN)
    return int(fields(svc.wait_for_line("requested", 10))["signals"])


def test_busy_main_thread(service) -> None:  # type: ignore[no-untyped-def]
    """Main computes in Python: the report comes, and shows main computing."""
    svc = service("core_service.py", "busy", "20").ready()
    svc.wait_for_line("blocking")  # printed by busy_loop itself: main is inside it
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
    assert wait_in_syscall(svc.pid, SLEEP_CALLS if mode == "sleep" else SELECT_CALLS)
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
    assert wait_in_futex(svc.pid)  # main is inside the call
    svc.kill()
    line = svc.wait_for_line("report", blocked + 10)
    report = fields(line)
    if twin_env["GMR_TEST_TWIN"] == "c":
        assert float(report["at"]) < until
        assert report["main"].endswith("<module>,block_in_timedlock"), line
        assert not any(out.startswith("returned") for out in svc.stdout_lines)
    else:
        assert float(report["at"]) >= until - 0.01  # time.time() granularity
        # The handler runs as the call returns; main prints its line after it.
    # The call itself was not cut short: it timed out (ETIMEDOUT).
    count_lines(svc, "returned", 1, blocked + 10)
    assert "returned 110" in svc.stdout_lines


def test_chains_to_an_earlier_python_handler(service) -> None:  # type: ignore[no-untyped-def]
    """A handler installed with signal.signal before gmr armed still runs,
    and the report comes too: each signal its own report (no rate limit)."""
    svc = service("core_service.py", "chain", env={"REPORT_INTERVAL": "0"}).ready()
    for round in (1, 2):
        svc.kill()
        count_lines(svc, "python handler", round)
        count_lines(svc, "report", round)
    assert f"python handler pid={svc.pid}" in svc.stdout_lines
    assert [(report["trigger"], report["n"]) for report in reports(svc)] == [
        ("signal", "1"), ("signal", "1")]


def test_later_signal_signal_is_detected(service) -> None:  # type: ignore[no-untyped-def]
    """A later signal.signal silently replaces gmr's handler: is_armed says
    so, and from then on only the application's handler runs."""
    svc = service("core_service.py", "displace").ready()
    assert "armed True" in svc.stdout_lines
    assert (f"after signal.signal armed=False displaced=[{int(signal.SIGUSR2)}]"
            in svc.stdout_lines)
    svc.kill()
    svc.wait_for_line("python handler", 10)
    # gmr's handler did not count it: the first report, asked for through the
    # API after it, answers the request alone.
    assert last_request(svc) == 0
    svc.wait_for_line("report", 10)
    assert [(report["trigger"], report["n"]) for report in reports(svc)] == [("api", "1")]


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
    # gmr's handler did not count it: the first report, asked for through the
    # API after it, answers the request alone.
    assert last_request(svc) == 0
    svc.wait_for_line("report", 10)
    assert [(report["trigger"], report["n"]) for report in reports(svc)] == [("api", "1")]
    assert svc.alive()


def test_burst_is_coalesced(service) -> None:  # type: ignore[no-untyped-def]
    """200 signals as fast as they can be sent: a handful of reports, which
    together answer every signal the handler saw, and the service lives on."""
    interval = 0.5  # the program's default rate: burst 1, then one per 0.5 s
    svc = service("core_service.py", "idle").ready()
    begun = time.monotonic()
    for _ in range(200):
        os.kill(svc.pid, signal.SIGUSR2)
    # The kernel merges a pending signal with the next, so the handler may
    # see fewer than 200; never more. A last API request, once none is
    # pending, says how many it saw.
    seen = last_request(svc)
    span = time.monotonic() - begun
    assert 1 <= seen <= 200
    # Every trigger is answered once: the signals and the request, no more.
    wait_for(lambda: sum(int(report["n"]) for report in reports(svc)) >= seen + 1, 20)
    found = reports(svc)
    assert sum(int(report["n"]) for report in found) == seen + 1, found
    # Burst 1: one report at once, then at most one per interval until the
    # request, and one after it.
    assert 1 <= len(found) <= 2 + span / interval, (found, span)
    assert all(int(report["n"]) >= 1 for report in found)
    assert svc.alive()
    svc.kill()
    count_lines(svc, "report", len(found) + 1)


def test_signal_to_forked_child_does_not_wake_parent(service) -> None:  # type: ignore[no-untyped-def]
    """A child made by libc's fork(), which runs no at-fork hook, keeps the
    parent's handler and the parent's pipe: the pid check keeps its signal
    from waking the parent's watcher."""
    svc = service("core_service.py", "rawfork").ready()
    child = svc.wait_for_line("child", 20)
    assert child.endswith("done")
    # The parent's one report answers the API request it made after the
    # child ended, and nothing else: no signal was counted there.
    assert svc.wait_for_line("parent", 30) == "parent reports=1"
    assert [(report["pid"], report["trigger"], report["n"]) for report in reports(svc)] == [
        (str(svc.pid), "api", "1")]
    # The parent's own signals still are served.
    svc.kill()
    report = fields(svc.wait_for_line("report", 10))
    assert (report["pid"], report["trigger"], report["n"]) == (str(svc.pid), "signal", "1")


def test_os_fork_child_reports_for_itself(service) -> None:  # type: ignore[no-untyped-def]
    """After os.fork the child's own watcher answers its signal, with its
    pid; the parent's watcher counts no signal (its one report answers the
    API request it made after the child ended)."""
    svc = service("core_service.py", "fork").ready()
    child = svc.wait_for_line("child", 30).split()[1]
    assert svc.wait_for_line("parent", 30) == "parent reports=1"
    assert [(report["pid"], report["trigger"], report["n"]) for report in reports(svc)] == [
        (child, "signal", "1"), (str(svc.pid), "api", "1")]
