"""Churn and leaks, each in a process of its own, on both twins.

Churn: threads start and end and greenlets are born, parked and finished in
several threads while one thread captures continuously and the watcher
serves a stream of triggers (tests/programs/core_churn.py). This found the
compiled core holding greenlet references where gc.get_referrers() could
not see them, which greenlet's clean-up of a dead thread then dropped a
second time (a crash within a second of churn).

Leak: thousands of captures of parked threads and greenlets
(tests/programs/core_leak.py): the parked code objects' reference counts
and the RSS stay flat.
"""

from __future__ import annotations

import threading
import time

import pytest

pytestmark = pytest.mark.timeout(120)


def fields(line: str) -> dict[str, str]:
    return dict(part.split("=", 1) for part in line.split()[1:] if "=" in part)


def test_churn_while_capturing(service) -> None:  # type: ignore[no-untyped-def]
    svc = service("core_churn.py", "3").ready()
    code, stdout, stderr = svc.finish(timeout=60)
    assert code == 0, f"exit {code}\n{stdout}\n{stderr}"
    assert "errors" not in stdout, stdout
    result = fields(svc.wait_for_line("ok", 5))
    assert int(result["captures"]) > 100
    assert int(result["reports"]) > 10
    tasks_before, tasks_after = map(int, result["tasks"].split("->"))
    assert tasks_after <= tasks_before  # every thread ended, the watcher too
    fds_before, fds_after = map(int, result["fds"].split("->"))
    assert fds_after <= fds_before  # the watcher's pipe is closed, nothing else left
    refs_before, refs_after = result["refs"].split("->")
    assert refs_before == refs_after
    # Thread stacks and allocator arenas come and go; a leak per capture
    # (thousands of them) would be far larger than this.
    rss_before, rss_after = map(int, result["rss_kb"].split("->"))
    assert rss_after - rss_before < 16 * 1024
    assert "Fatal Python error" not in stderr


def test_no_leak_over_many_captures(service, twin_env) -> None:  # type: ignore[no-untyped-def]
    # The pure twin scans the heap with gc.get_objects() on every capture:
    # fewer of them keep the suite fast, and still show a leak per capture.
    captures = 10000 if twin_env["GMR_TEST_TWIN"] == "c" else 2000
    svc = service("core_leak.py", str(captures))
    code, stdout, stderr = svc.finish(timeout=90)
    assert code == 0, f"exit {code}\n{stdout}\n{stderr}"
    lines = {line.split()[0]: line.split(" ", 1)[1] for line in svc.stdout_lines}
    refs_before, refs_after = lines["refs"].split(" ", 1)
    assert refs_before == refs_after, lines["refs"]
    rss_before, rss_after = map(int, lines["rss_kb"].split())
    # A leaked frame record, code reference or snapshot per capture would
    # be megabytes over thousands of captures.
    assert rss_after - rss_before < 2 * 1024, lines["rss_kb"]
    assert lines["captures"].split()[:5] == [str(captures), "threads", "4", "greenlets", "20"]
    implementation = "compiled" if twin_env["GMR_TEST_TWIN"] == "c" else "pure"
    assert lines["captures"].endswith(f"implementation {implementation}")


def test_other_threads_build_tuples_while_the_heap_is_scanned(core) -> None:  # type: ignore[no-untyped-def]
    """tuple() of a generator resizes its tuple after running bytecode; a
    capture that holds the heap list (or runs bytecode while holding it)
    makes that resize fail with SystemError in the other thread. typing's
    deprecated aliases answer __class__ in Python: they are on the heap."""
    import typing  # noqa: F401 (its deprecated aliases are on the heap from here)

    import greenlet

    errors: list[BaseException] = []
    stop = threading.Event()

    def identity(value: int) -> int:
        return value

    def build() -> None:
        while not stop.is_set():
            try:
                tuple(identity(n) for n in range(50))
            except SystemError as error:
                errors.append(error)

    parked = [greenlet.greenlet(lambda: greenlet.getcurrent().parent.switch()) for _ in range(5)]
    for one in parked:
        one.switch()
    builders = [threading.Thread(target=build) for _ in range(2)]
    for thread in builders:
        thread.start()
    try:
        deadline = time.monotonic() + 2.0
        captures = 0
        while time.monotonic() < deadline:
            raw = core.capture(greenlet.greenlet)
            assert raw.greenlets >= 5
            raw.release()
            captures += 1
    finally:
        stop.set()
        for thread in builders:
            thread.join(10)
    assert captures > 10
    assert errors == []
