"""A C call holds the GIL: the watchdog writes a degraded report without it,
then the full report comes once the GIL is free."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import pytest

from conftest import wait_for, wait_in_futex

pytestmark = pytest.mark.timeout(60)




def test_degraded_report_while_a_c_call_holds_the_gil(service, twin_env, tmp_path: Path) -> None:
    svc = service("watchdog_stuck.py", str(tmp_path), "3")
    has_watchdog = svc.wait_for_line("watchdog").split()[1] == "True"
    svc.ready()
    svc.wait_for_line("blocking")
    assert wait_in_futex(svc.pid)  # inside the C call, holding the GIL
    sent = time.monotonic()
    svc.kill()
    if twin_env["GMR_TEST_TWIN"] == "py":
        # The pure twin has no thread without the GIL: nothing until it is free.
        assert not has_watchdog
        code, stdout, stderr = svc.finish(20)
        assert code == 0, stderr
        assert "released" in stdout and "captured main-at=" in stdout
        assert not list(tmp_path.iterdir())
        return
    assert has_watchdog
    degraded = wait_for(lambda: list(tmp_path.glob("stuck_gurumeditation_*_degraded*")), 2.5)
    assert degraded, "no degraded report while the GIL was held"
    arrived = time.monotonic() - sent
    assert svc.alive(), "the service must survive"
    assert svc.stdout_lines[-1] == "blocking", "degraded report came before the GIL was free"
    text = degraded[0].read_text()
    assert "DEGRADED REPORT" in text and "a C call is holding it" in text
    assert "hold_the_gil" in text and "watchdog_stuck.py" in text
    assert degraded[0].stat().st_mode & 0o777 == 0o600
    # The temporary name goes just after the report is linked to its own.
    assert wait_for(lambda: not list(tmp_path.glob(".*.tmp")), 5)
    # Then the full capture, once the GIL is back, shows where main was.
    code, stdout, stderr = svc.finish(20)
    assert code == 0, stderr
    assert any(line.startswith("captured main-at=") for line in stdout.splitlines())
    assert arrived < 2.5


def test_degraded_report_in_a_forked_child(service, twin_env, tmp_path: Path) -> None:
    """The child's watchdog, re-armed by the fork hook on the descriptor it
    inherited, writes the child's degraded report with its stacks."""
    if twin_env["GMR_TEST_TWIN"] == "py":
        pytest.skip("the pure twin has no watchdog")
    svc = service("watchdog_stuck.py", str(tmp_path), "3", env={"GMR_TEST_FORK": "1"})
    child = int(svc.wait_for_line("child").split()[1])
    svc.wait_for_line("blocking")
    assert wait_in_futex(child)
    os.kill(child, signal.SIGUSR2)
    degraded = wait_for(lambda: list(tmp_path.glob("stuck_gurumeditation_*_degraded*")), 2.5)
    assert degraded, "no degraded report in the child while the GIL was held"
    text = degraded[0].read_text()
    assert "hold_the_gil" in text and "no stacks here" not in text
    code, stdout, stderr = svc.finish(20)
    assert code == 0, stderr
    assert any(line.startswith("captured main-at=") for line in stdout.splitlines())


def test_a_degraded_report_cut_short_is_not_published(service, twin_env,
                                                      tmp_path: Path) -> None:
    """Files limited to 600 bytes (a disk that fills up): the degraded report
    cannot be written whole, so it never gets a report's name; one line says
    so, and the full report still comes once the GIL is free."""
    if twin_env["GMR_TEST_TWIN"] == "py":
        pytest.skip("the pure twin has no watchdog")
    svc = service("watchdog_stuck.py", str(tmp_path), "2", "600")
    assert svc.wait_for_line("watchdog").split()[1] == "True"
    svc.ready()
    svc.wait_for_line("blocking")
    assert wait_in_futex(svc.pid)  # inside the C call, holding the GIL
    svc.kill()
    code, stdout, stderr = svc.finish(20)
    assert code == 0, stderr
    assert "gmr: degraded report not written in" in stderr
    assert not list(tmp_path.iterdir()), "a cut degraded report was published"
    assert any(line.startswith("captured main-at=") for line in stdout.splitlines())


SIGNAL_OWNER = """
import faulthandler, os, signal, sys
# The service's own dump on the highest spare real-time signal, installed in C:
# signal.getsignal() still says SIG_DFL for it.
dump = open(sys.argv[1], "w")
faulthandler.register(signal.SIGRTMAX - 1, file=dump, all_threads=True)
from gmr import guru
guru.TextGuruMeditation.setup_autorun("1.0", log_dir=sys.argv[2])
print(guru.TextGuruMeditation._watcher._watchdog is not None, flush=True)
os.kill(os.getpid(), signal.SIGRTMAX - 1)
print("dumped", flush=True)
"""


def test_the_watchdog_takes_no_signal_in_use(twin_env, tmp_path: Path) -> None:
    """The watchdog's real-time signal is one whose action is the default,
    read back with sigaction: a faulthandler registration of the service's
    own (invisible to signal.getsignal) keeps its signal and its file."""
    import subprocess
    import sys

    dump = tmp_path / "dump.txt"
    done = subprocess.run([sys.executable, "-c", SIGNAL_OWNER, str(dump), str(tmp_path)],
                          env=twin_env, capture_output=True, text=True, timeout=30)
    assert done.returncode == 0, done.stderr
    has_watchdog, dumped = done.stdout.split()
    assert has_watchdog == ("True" if twin_env["GMR_TEST_TWIN"] == "c" else "False")
    assert dumped == "dumped"
    assert "Current thread" in dump.read_text() or "Thread 0x" in dump.read_text()


@pytest.mark.parametrize("burst", [1, 2])
def test_no_degraded_report_for_a_trigger_the_rate_limit_folds(service, twin_env, burst: int,
                                                                tmp_path: Path) -> None:
    """Degraded reports keep to the rate limit: a trigger that comes when
    the bucket is empty is folded into a later report, and the watchdog does
    not time its wait for the GIL. With a token left (burst 2), the same
    trigger gives its degraded report."""
    if twin_env["GMR_TEST_TWIN"] == "py":
        pytest.skip("the pure twin has no watchdog")
    svc = service("stuck_rate_limited.py", str(tmp_path), str(burst))
    svc.ready()
    svc.kill()
    svc.wait_for_line("reported")
    svc.wait_for_line("blocking")
    assert wait_in_futex(svc.pid)  # inside the C call, holding the GIL
    for _ in range(3):
        svc.kill()
    svc.wait_for_line("released")
    code, _, stderr = svc.finish(20)
    assert code == 0, stderr
    degraded = list(tmp_path.glob("limited_gurumeditation_*_degraded*"))
    assert len(degraded) == (0 if burst == 1 else 1), degraded
