"""A report does not queue behind busy threads: each time the watcher lets
the GIL go (the wait for triggers, the hand-overs of a capture, the reads
and the write), it has it back at once, the holder asked to let go, and the
service's switch interval is left as it is. With an interval of one second
and two busy threads, a report that waited an interval at any let-go would
take more than a second; it comes in a few milliseconds."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import pytest

from conftest import reports, wait_for

pytestmark = pytest.mark.timeout(90)


@pytest.mark.parametrize("greenlets", [0, 10000])
def test_reports_beside_busy_threads_do_not_wait_an_interval(
        service, twin_env, tmp_path: Path, greenlets: int) -> None:
    if twin_env["GMR_TEST_TWIN"] == "py":
        pytest.skip("the pure twin lowers the interval for the whole report instead")
    svc = service("busy_threads.py", str(tmp_path), "1.0", str(greenlets)).ready()
    for made in range(1, 4):
        sent = time.monotonic()
        os.kill(svc.pid, signal.SIGUSR2)
        assert wait_for(lambda made=made: len(reports(tmp_path)) == made, 30)
        took = time.monotonic() - sent
        assert took < 0.5, (made, took)
    text = reports(tmp_path)[-1].read_text()
    assert "busy-worker" in text
    if greenlets:
        assert "holds" in text  # the capture let the GIL go between holds
    assert svc.alive()
