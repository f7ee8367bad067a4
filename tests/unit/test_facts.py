"""Thread and process facts, read from this very process."""

import os
import subprocess
import sys
import threading
import time
from typing import Any

import pytest

from conftest import compiled_expected, wait_for, wait_in_futex
from gmr import facts


def test_thread_facts_of_a_sleeping_and_a_spinning_thread() -> None:
    stop = threading.Event()
    ready = threading.Event()

    def spin() -> None:
        ready.set()
        end = time.monotonic() + 5
        while not stop.is_set() and time.monotonic() < end:
            pass

    sleeper = threading.Thread(target=stop.wait)
    spinner = threading.Thread(target=spin)
    sleeper.start()
    spinner.start()
    ready.wait()
    try:
        # The sleeper waits in its lock; the spinner has run long enough for
        # the kernel to count its CPU time.
        assert wait_in_futex(os.getpid(), sleeper.native_id)
        assert wait_for(lambda: (facts.thread_facts(spinner.native_id).cpu_seconds or 0) >= 0.05)
        asleep = facts.thread_facts(sleeper.native_id)
        busy = facts.thread_facts(spinner.native_id)
    finally:
        stop.set()
        sleeper.join()
        spinner.join()
    assert asleep.state == "sleeping"
    assert busy.cpu_seconds is not None and busy.cpu_seconds >= 0.05
    assert asleep.cpu_seconds is not None and asleep.cpu_seconds < busy.cpu_seconds


def test_unknown_thread_gives_nones() -> None:
    assert facts.thread_facts(None) == facts.ThreadFacts(None, None)
    assert facts.thread_facts(2**31 - 1) == facts.ThreadFacts(None, None)


def test_process_facts() -> None:
    found = facts.process_facts()
    assert found["rss bytes"] > 0 and found["peak rss bytes"] >= found["rss bytes"]
    assert 0 < found["open fds"] <= found["fd limit"] or found["fd limit"] == "unlimited"
    assert found["uptime seconds"] >= 0
    assert "nofile" in found["rlimits"]
    assert int(found["gc"]["thresholds"].split(" / ")[0]) > 0
    assert found["python"].startswith("CPython 3.")
    assert found["green hub"] == "none"
    assert set(found["cgroup memory"]) == {"limit", "usage"}


# Which /proc files are read with the GIL held: only those the kernel
# answers without waiting. A command line (this process's own too) is read
# from the process's memory under its memory-map lock, which a thread in
# mmap() or a page fault can hold for long, so it is read without the GIL.
def test_no_command_line_is_read_with_the_gil_held(monkeypatch: pytest.MonkeyPatch) -> None:
    reads: list[tuple[str, bool]] = []
    read_files = facts.files.read_files

    def recording(paths: list[str], *args: Any, keep_gil: bool = False) -> Any:
        reads.extend((path, keep_gil) for path in paths)
        return read_files(paths, *args, keep_gil=keep_gil)

    monkeypatch.setattr(facts.files, "read_files", recording)
    me, parent = os.getpid(), os.getppid()
    entries = facts.process_entries([me, parent])
    assert [entry["pid"] for entry in entries] == [me, parent]
    assert entries[0]["cmdline"], entries  # read, all the same
    held = {path for path, keep_gil in reads if keep_gil}
    assert held == {f"/proc/{me}/stat", f"/proc/{me}/status"}
    assert {f"/proc/{me}/cmdline", f"/proc/{parent}/cmdline"} <= {path for path, _ in reads}


CHILDREN_PROBE = """
import importlib, os, subprocess, sys
files = importlib.import_module(sys.argv[1])
from gmr import facts
seen = [files.may_have_children()]
child = subprocess.Popen(["sleep", "60"])
seen.append(files.may_have_children())
seen.append(facts.descendants(os.getpid()) == [child.pid])
child.kill()
os.waitid(os.P_PID, child.pid, os.WEXITED | os.WNOWAIT)  # a zombie now
seen.append(files.may_have_children())
seen.append(child.wait() == -9)  # still there to be reaped: nothing took it
seen.append(files.may_have_children())
seen.append(facts.descendants(os.getpid()) == [])
print(seen)
"""


@pytest.mark.parametrize("unit", ["gmr._files", "gmr._files_py"])
def test_a_process_without_children_reads_no_list_of_them(unit: str) -> None:
    """Whether this process has any child at all is asked first (waitid,
    WNOHANG and WNOWAIT: nothing reaped, nothing waited for): without one,
    no thread's list of children is read (one read per thread)."""
    if unit == "gmr._files" and not compiled_expected():
        pytest.skip("GMR_NO_EXTENSIONS is set: the compiled core is not under test")
    done = subprocess.run([sys.executable, "-c", CHILDREN_PROBE, unit], capture_output=True,
                          text=True, timeout=60, check=True)
    assert done.stdout.strip() == "[False, True, True, True, True, False, True]", done.stderr
