"""gmr's threads do not run across os.fork(): they end before it and come
back on both sides, so a service that forks with no thread of its own gets
no multi-threaded-fork warning (Python 3.12+) because of gmr, and the
parent's reports go on."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from conftest import next_report

# On 3.13 the threads come back through the twin's call_in_main_thread (a
# pending call: ctypes on the pure twin), a path of that Python alone.
pytestmark = [pytest.mark.timeout(60), pytest.mark.pure_services_everywhere]


@pytest.mark.parametrize("mode", ["alone", "with-thread"])
def test_gmr_threads_do_not_run_across_a_fork(service, twin_env, tmp_path: Path,
                                              mode: str) -> None:
    svc = service("forks.py", str(tmp_path), mode)
    seen = json.loads(svc.wait_for_line("{"))
    svc.ready()
    compiled = twin_env["GMR_TEST_TWIN"] == "c"
    threads = ["gmr-watchdog", "gmr-watcher"] if compiled else ["gmr-watcher"]
    assert seen["before"] == threads
    assert seen["after"] == threads  # back in the parent once os.fork() returned
    assert seen["child_status"] == 0  # and in the child: a watcher of its own
    assert seen["after_hook_ran"]
    assert not seen["fork_frame_kept"]
    if mode == "alone" or sys.version_info < (3, 12):
        assert seen["warnings"] == []
    else:  # the service's own thread: Python warns, as it should
        assert len(seen["warnings"]) == 1
    report = next_report(svc, tmp_path)
    assert report.name.startswith("forks_gurumeditation_")
    assert "trigger = signal" in report.read_text()


def test_a_fork_waits_for_the_report_under_way(service, twin_env, tmp_path: Path) -> None:
    """The watcher is not stopped half-way through a report: os.fork() waits
    for it to be written (its registered section takes a second)."""
    svc = service("forks.py", str(tmp_path), "during-report")
    seen = json.loads(svc.wait_for_line("{"))
    svc.ready()
    assert seen["report_written_at_fork"]
    assert seen["warnings"] == [] and seen["child_status"] == 0
    (report,) = [path for path in tmp_path.iterdir() if "_gurumeditation_" in path.name]
    assert "done" in report.read_text()  # the section's own value: it was not cut short
    assert "gmr-section" in seen["before"]  # the section's own thread, then
    assert seen["after"] == [name for name in seen["before"] if name != "gmr-section"]


def test_a_chain_of_forks_leaks_no_descriptor(service, twin_env, tmp_path: Path) -> None:
    """Each forked generation has exactly its parent's descriptors (the
    watchdog's was opened anew in each child and the inherited one kept),
    and gmr's threads came back in each."""
    svc = service("forks.py", str(tmp_path), "chain")
    seen = [json.loads(svc.wait_for_line("{", 30)) for _ in range(6)]
    compiled = twin_env["GMR_TEST_TWIN"] == "c"
    threads = ["gmr-watchdog", "gmr-watcher"] if compiled else ["gmr-watcher"]
    assert [each["generation"] for each in seen] == list(range(6))
    for each in seen:
        assert each["fds"] == seen[0]["fds"], each["generation"]
        assert each["threads"] == threads, each["generation"]
