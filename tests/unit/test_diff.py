"""gmr.diff on hand-made JSON reports: identity by ident and native id
(threads) and id (greenlets), stuck / moved / new / gone, and the numbers
that grew, from custom sections too."""

from __future__ import annotations

import jsonschema
import pytest
from test_collect import LOOP, WAIT, greenlet, report, thread

from gmr import diff


def queue(depth: int) -> dict[str, object]:
    return {"title": "Pools", "kind": "custom", "error": None,
            "data": {"db": {"queued": depth, "size": 10}, "label": "x"}}


def test_stuck_moved_new_gone_and_numbers() -> None:
    before = report(1, [thread(1, "stuck", WAIT), thread(2, "moves", WAIT),
                        thread(3, "ends", LOOP), thread(4, "reused", WAIT, native=40)],
                    [greenlet(10, "suspended", LOOP), greenlet(11, "running", [])],
                    captured="2026-01-01T10:00:00.000000Z", extra=[queue(2)], fds=10, rss=100)
    after = report(1, [thread(1, "stuck", WAIT), thread(2, "moves", LOOP),
                       thread(5, "starts", LOOP), thread(4, "reused", WAIT, native=41)],
                   [greenlet(10, "suspended", LOOP), greenlet(11, "running", [])],
                   captured="2026-01-01T10:00:30.500000Z", extra=[queue(7)], fds=25, rss=90)
    result = diff.diff(before, after)
    jsonschema.Draft202012Validator(diff.diff_schema()).validate(result)
    names = {change: sorted(item["name"] for item in result["threads"][change])
             for change in ("stuck", "moved", "new", "gone")}
    assert names == {"stuck": ["stuck"], "moved": ["moves"], "new": ["reused", "starts"],
                     "gone": ["ends", "reused"]}
    assert [item["id"] for item in result["greenlets"]["stuck"]] == [10]  # not the running one
    assert result["seconds"] == 30.5
    grew = {row["what"]: (row["before"], row["after"]) for row in result["grew"]}
    assert grew["Processes › facts › open fds"] == (10, 25)
    assert grew["Pools › db › queued"] == (2, 7)
    assert "Pools › db › size" not in grew
    assert {row["what"] for row in result["shrank"]} == {"Processes › facts › rss bytes"}
    assert not any("uptime" in row["what"] or "fd limit" in row["what"]
                   for row in result["grew"] + result["shrank"])
    text = diff.text(result)
    assert "Stuck (at the same place in both reports): 1 thread, 1 greenlet" in text
    assert "  Pools › db › queued: 2 -> 7 (+5)" in text
    assert "  was at /srv/app.py:20 in wait" not in text  # the file of that frame
    assert "  was at /usr/lib/threading.py:20 in wait, now:" in text
    assert diff.in_order(after, before) == (before, after)


def test_two_processes_are_refused() -> None:
    with pytest.raises(diff.Mismatch, match="pid 1 and pid 2"):
        diff.diff(report(1, []), report(2, []))
