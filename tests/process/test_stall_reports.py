"""Stall reports in real services (tests/programs/stall_service.py): an
eventlet hub (monkey-patched), a gevent hub (patch_all, the hub made after
set-up) and an asyncio loop started in a thread after set-up, each blocked by
the unpatched time.sleep, give one report by themselves while they are still
blocked, whose header names the loop and how long it had not come round and
whose stacks show the blocking call; an idle loop gives none; a signal
during a stall is answered at once; bad values are one line and off."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from conftest import next_report, reports, section, validate_report, wait_for

pytestmark = pytest.mark.timeout(120)

KINDS = ["eventlet", "gevent", "asyncio"]
AFTER = 0.5


def start(service, kind: str, logs: Path, mode: str, seconds: float,  # type: ignore[no-untyped-def]
          *options: str, after: float = AFTER):
    svc = service("stall_service.py", kind, str(logs), f"{after:g}", mode, f"{seconds:g}",
                  *options)
    svc.wait_for_line("watching")
    return svc


def errors(svc) -> list[str]:  # type: ignore[no-untyped-def]
    """gmr's lines on stderr, but the pure twin's line from set-up."""
    return [line for line in svc.stderr_lines if line.startswith("gmr:")
            and not line.startswith("gmr: pure-Python ")]


def stack_functions(document: dict[str, Any], ident: int) -> list[str]:
    """The functions on the stack of thread ident, innermost last."""
    (thread,) = [thread for thread in section(document, "threads") if thread["id"] == ident]
    return [frame[2] for frame in thread["frames"] + thread["innermost"]]


@pytest.mark.parametrize("kind", KINDS)
def test_a_blocked_loop_is_reported_while_it_is_blocked(service, tmp_path: Path,
                                                       kind: str) -> None:
    """GIVEN a loop watched with stall_report_after = 0.5
    WHEN it is blocked by a synchronous sleep of 60 s
    THEN one report comes by itself while it is still blocked: trigger stall,
    the loop, its thread and at least 0.5 s in its header, the blocking call
    innermost on that thread's stack."""
    logs = tmp_path / "logs"
    logs.mkdir()
    svc = start(service, kind, logs, "block", 60)
    svc.wait_for_line("blocking")
    (path,) = wait_for(lambda: reports(logs), 30)
    assert not svc.lines("unblocked")
    document = validate_report(path.read_text())
    header = document["header"]
    assert header["trigger"] == "stall"
    ((loop,),) = [header["stall"]["loops"]]
    assert loop["kind"] == kind
    assert loop["type"] == {"eventlet": "eventlet.hubs.epolls.Hub", "gevent": "gevent.hub.Hub",
                            "asyncio": "asyncio.unix_events._UnixSelectorEventLoop"}[kind]
    assert loop["thread_name"] == ("loop-thread" if kind == "asyncio" else "MainThread")
    assert loop["native_id"] and loop["blocked_after_capture"] is True
    assert AFTER <= loop["seconds"] < 30
    assert header["stall"] == {"after": AFTER, "loops": [loop], "unreported": 0}
    functions = stack_functions(document, loop["thread"])
    assert functions[-1:] == ["block_the_loop"], functions
    assert len(reports(logs)) == 1
    assert svc.alive()


@pytest.mark.parametrize("kind", KINDS)
def test_an_idle_loop_gives_no_report(service, tmp_path: Path, kind: str) -> None:
    """A loop that only waits (a sleep of the loop's own) for 5 times
    stall_report_after, while gmr checks it: no report."""
    logs = tmp_path / "logs"
    logs.mkdir()
    svc = start(service, kind, logs, "idle", 5 * AFTER)
    line = svc.wait_for_line("idled")
    checks, watched = (int(part.split("=")[1]) for part in line.split()[1:])
    assert watched == 1 and checks >= 3, line
    assert reports(logs) == [], svc.stderr_text()
    assert errors(svc) == []


@pytest.mark.parametrize("kind", ["gevent", "asyncio"])
def test_one_report_per_stall_and_a_rate_across_stalls(service, tmp_path: Path,
                                                       kind: str) -> None:
    """Two stalls of 1 s, the loop coming round between: with
    stall_report_interval = 0, a report each (one each, however long); with
    60, the first only."""
    for interval, expected in ((0, 2), (60, 1)):
        logs = tmp_path / f"logs-{interval}"
        logs.mkdir()
        svc = start(service, kind, logs, "block", 1.0, "--blocks", "2",
                    "--interval", str(interval))
        svc.wait_for_line("done", 60)
        made = wait_for(lambda folder=logs, count=expected: len(reports(folder)) >= count, 10)
        assert made
        documents = [validate_report(path.read_text()) for path in reports(logs)]
        assert len(documents) == expected
        assert [document["header"]["trigger"] for document in documents] == ["stall"] * expected
        svc.cleanup()


def test_a_signal_during_a_stall_is_answered_at_once_and_shows_the_stall(
        service, tmp_path: Path) -> None:
    logs = tmp_path / "logs"
    logs.mkdir()
    svc = start(service, "gevent", logs, "block", 60)
    (stalled,) = wait_for(lambda: reports(logs), 30)
    signalled = validate_report(next_report(svc, logs, 10).read_text())
    assert signalled["header"]["trigger"] == "signal"
    ((loop,),) = [signalled["header"]["stall"]["loops"]]
    assert loop["kind"] == "gevent" and loop["seconds"] > AFTER
    assert validate_report(stalled.read_text())["header"]["trigger"] == "stall"
    assert not svc.lines("unblocked")


@pytest.mark.parametrize(("value", "line"), [
    ("-1", "gmr: [oslo_reports] stall_report_after: -1.0 is neither 0 nor within 0.1..3600; "
           "using 0.0"),
    ("abc", "gmr: [oslo_reports] stall_report_after: Value for option stall_report_after "),
])
def test_a_bad_value_is_one_line_and_no_stall_reports(service, tmp_path: Path, value: str,
                                                     line: str) -> None:
    logs = tmp_path / "logs"
    logs.mkdir()
    svc = start(service, "asyncio", logs, "block", 2, "--conf", f"stall_report_after={value}",
                after=0)
    svc.wait_for_line("unblocked", 30)
    (said,) = errors(svc)
    assert said.startswith(line), said
    assert reports(logs) == []
    assert svc.alive()
