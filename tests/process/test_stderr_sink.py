"""A report to stderr is whole, even when stderr is a non-blocking pipe that
fills up faster than its reader drains it."""

from __future__ import annotations

import sys

from conftest import PROGRAMS, Service, wait_for


def test_a_full_non_blocking_stderr_is_waited_for_not_cut(twin_env: dict[str, str]) -> None:
    svc = Service([sys.executable, str(PROGRAMS / "big_stderr.py"), "3000"], twin_env)
    try:
        svc.ready()
        svc.kill()
        assert wait_for(lambda: "the end of the report" in svc.stderr_text(), 60), \
            svc.stderr_text()[-2000:]
        text = svc.stderr_text()
        assert len(text) > 256 * 1024
        assert "report failed" not in text and "report cut" not in text
        # Every greenlet is listed: the listing was not cut at 64 KiB.
        assert text.count("in park") >= 3000
        assert svc.alive()
    finally:
        svc.cleanup()
