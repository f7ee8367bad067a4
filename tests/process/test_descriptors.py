"""gmr uses only what it owns: a service that closes every descriptor after
set-up and reuses the numbers gets no byte of gmr's in its sockets or files,
and still gets its reports."""

from __future__ import annotations

import signal
import sys
from pathlib import Path

from conftest import PROGRAMS, Service, next_report


def test_closed_and_reused_descriptors(twin_env: dict[str, str], tmp_path: Path) -> None:
    svc = Service([sys.executable, str(PROGRAMS / "closes_fds.py"), str(tmp_path)], twin_env)
    try:
        svc.ready()
        for _ in range(3):
            # The pure twin notices a lost pipe at its next check (5 s at most).
            report = next_report(svc, tmp_path, timeout=30)
            assert "Threads" in report.read_text()
            svc.kill(signal.SIGUSR1)
            assert svc.wait_for_line("peer") == "peer 0 file b\"the service's own data\\n\""
        assert svc.alive()
        assert "gmr:" not in svc.stderr_text().replace(
            "gmr: pure-Python", "")  # only the fallback line, on the pure twin
    finally:
        svc.cleanup()
