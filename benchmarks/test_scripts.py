"""The side-by-side scripts, run small: that they work, not how fast."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent


def run(*argv: str) -> str:
    done = subprocess.run([sys.executable, *argv], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_compare_smoke() -> None:
    out = run(str(HERE / "compare.py"), "--smoke", "--cells", "base,stuck",
              "--reporters", "gmr,oslo.reports,faulthandler")
    rows = {line.split("|")[1].strip(): line for line in out.splitlines()
            if line.startswith("| ") and "reporter" not in line and "---" not in line}
    assert set(rows) == {"gmr", "oslo.reports", "faulthandler"}
    # gmr's report is whole, in both cells (the last row of each name is the stuck cell's).
    assert rows["gmr"].rstrip(" |").endswith("5/5 | 100% | 100% | 100%")
    assert rows["oslo.reports"].split("|")[6].strip() == "—"  # only gmr states its pause
    assert "### base" in out and "### stuck" in out


def test_idle_smoke() -> None:
    out = run(str(HERE / "idle.py"), "--seconds", "0.5")
    assert "| signal | gmr-watcher" in out
    assert "| file | gmr-watcher" in out


def test_stall_cost_smoke() -> None:
    out = run(str(HERE / "stall_cost.py"), "--seconds", "0.5", "--tick-seconds", "0.5",
              "--kinds", "gevent", "asyncio", "--check-threads", "10")
    assert "| gevent | 2 |" in out and "| asyncio | 0 |" in out
    assert "One check beside 10 idle threads" in out
