"""The text report in process: deep stacks shown whole or cut with an
explicit line, and the header's counts."""

from __future__ import annotations

import json
import re
import sys
import threading
from typing import Any

import greenlet
import pytest

from gmr import _files_py, render, report, snapshot
from gmr._impl import files
from gmr.guru import TextGuruMeditation
from gmr.model import GreenletRecord, Group, Stack, StackTable, StackTableBuilder, ThreadRecord
from gmr.resolve import Location


def recurse(depth: int, then):  # type: ignore[no-untyped-def]
    if depth:
        return recurse(depth - 1, then)
    return then()


def test_a_deep_stack_is_shown_whole() -> None:
    limit = sys.getrecursionlimit()
    sys.setrecursionlimit(10_000)
    try:
        text = recurse(3000, lambda: TextGuruMeditation("1").run())
    finally:
        sys.setrecursionlimit(limit)
    # The calling thread's stack, all 3,001 recurse frames of it, nothing omitted.
    assert text.count(" in recurse\n") == 3001
    assert "frames omitted" not in text


def test_max_stack_depth_keeps_top_and_bottom_and_says_so() -> None:
    captured = recurse(300, lambda: snapshot.take(include_caller=True))
    model = report.build(captured, "1", None, [], report.Options(max_stack_depth=20))
    text = render.text(model)
    (caller,) = [section for section in model.sections if section.kind == "threads"][0].data[:1]
    stack = model.table.stacks[caller.stack]
    assert stack.omitted > 250
    assert f"\n... {stack.omitted} frames omitted ...\n" in text
    assert len(stack.frames) + len(stack.innermost) == 20


def test_header_counts_threads_and_greenlets() -> None:
    stop = threading.Event()
    workers = [threading.Thread(target=stop.wait) for _ in range(3)]
    for worker in workers:
        worker.start()
    before = snapshot.take().greenlets
    suspended_before = sum(1 for green in before if green.state == "suspended")
    del before
    lets = [greenlet.greenlet(lambda: greenlet.getcurrent().parent.switch()) for _ in range(4)]
    for one in lets:
        one.switch()
    try:
        expected_threads = threading.active_count()
        text = TextGuruMeditation("1").run()
    finally:
        stop.set()
        for worker in workers:
            worker.join()
        for one in lets:
            one.throw(greenlet.GreenletExit)
    assert re.search(rf"^threads = {expected_threads}$", text, re.MULTILINE)
    # Every greenlet counted by state: this test's four are suspended.
    line = re.search(r"^greenlets = (\d+) \((.*)\)$", text, re.MULTILINE)
    assert line is not None
    states = {state: int(count) for count, state in
              (part.split(" ", 1) for part in line.group(2).split(", "))}
    assert states["suspended"] == suspended_before + 4
    assert states["running"] >= 1
    assert int(line.group(1)) == sum(states.values())


def test_a_report_is_made_a_piece_at_a_time() -> None:
    """Text and JSON come in pieces of about render.CHUNK characters, never
    as one string; joined, they are the report."""
    lets = [greenlet.greenlet(lambda: recurse(20, greenlet.getcurrent().parent.switch))
            for _ in range(300)]
    for one in lets:
        one.switch()
    try:
        captured = snapshot.take(include_caller=True)
        model = report.build(captured, "1", None, [], report.Options())
    finally:
        for one in lets:
            one.throw(greenlet.GreenletExit)
    for form in ("text", "json", "json-compact"):
        pieces = list(render.chunks(model, form))
        # The greenlets, listed one at a time, are one piece of the files
        # unit, whose text comes in pieces of at most PIECE_BYTES.
        (listings,) = [piece for piece in pieces if not isinstance(piece, str)]
        whole = "".join(piece if isinstance(piece, str) else piece.text() for piece in pieces)
        assert whole == render.render(model, form)
        assert len(whole) > 4 * render.CHUNK
        # Each piece but the last about CHUNK long (a piece ends after the line
        # or record that passes it; the one before the listings where they start).
        texts = [piece for piece in pieces if isinstance(piece, str)]
        before = pieces.index(listings) - 1
        assert all(render.CHUNK <= len(piece) < 2 * render.CHUNK
                   for index, piece in enumerate(texts[:-1]) if index != before), form
        assert len(listings) > 300  # and the main greenlet
        encoded = list(listings.pieces())
        assert b"".join(encoded).decode() == listings.text()
        assert all(len(piece) <= files.PIECE_BYTES for piece in encoded)
    assert whole.count(" in recurse\n") == 0  # json-compact: one line
    assert render.text(model).count(" in recurse\n") >= 300 * 21


# -- hand-made models: one section each -------------------------------------------

HEADER = {"reportVersion": 1, "captured_at": "2026-01-01T00:00:00.000000Z", "pid": 1,
          "program": "p", "trigger": "api", "coalesced": 1, "gil_pause_ms": 0.1, "threads": 1,
          "greenlets": 0, "greenlet_states": {}, "heap_objects": 0, "capture": "compiled",
          "core_fallback": None, "displaced_signals": []}
#: Frame 0 in a real file, frame 1 in a string run by exec (linecache holds it).
TABLE = StackTable(
    (Location("/srv/app.py", 3, "work", "return job()"),
     Location("<string>", 2, "plugin", "return job.work()")),
    (Stack(()), Stack((0,)), Stack((0, 1))))
EMPTY, ONE, TWO = 0, 1, 2


def lines_of(kind: str, data: Any, table: StackTable = TABLE) -> list[str]:
    """The text of one section of a hand-made model, its banner left out."""
    text = render.text(report.Report(dict(HEADER), [report.Section("S", kind, data)], table))
    return text.split(render.banner("S") + "\n", 1)[1].split("\n")


def thread(ident: int, stack: int, name: str | None = "worker") -> ThreadRecord:
    return ThreadRecord(ident, name, None, False, None, None, None, stack)


def green(ident: int, stack: int, state: str = "suspended", spawned_by: int | None = None,
          spawning: int | None = None) -> GreenletRecord:
    return GreenletRecord(ident, "greenlet.greenlet", None, None, state, None, None, spawned_by,
                          spawning, stack)


def test_a_group_of_one_is_named_in_the_singular() -> None:
    threads = lines_of("threads", (Group(2, (thread(1, ONE), thread(2, ONE)), ONE),
                                   Group(1, (thread(3, TWO),), TWO)))
    assert [line.strip("- ") for line in threads if line.startswith("------")] == [
        "2 Threads with this stack", "1 Thread with this stack"]
    greens = lines_of("greenlets", (Group(1, (green(16, ONE),), ONE),
                                    Group(3, (green(17, TWO),), TWO)))
    assert [line.strip("- ") for line in greens if line.startswith("------")] == [
        "1 Green Thread with this stack", "3 Green Threads with this stack"]
    assert "  ... and 2 more" in greens


def test_a_thread_threading_does_not_know_has_one_pair_of_parentheses() -> None:
    lines = lines_of("threads", (thread(7, EMPTY, name=None), thread(8, EMPTY)))
    assert "(not a threading.Thread)" in lines and "(worker)" in lines
    assert not [line for line in lines if "((" in line]
    grouped = lines_of("threads", (Group(1, (thread(7, EMPTY, name=None),), EMPTY),))
    assert "  Thread #7: not a threading.Thread" in grouped


def test_a_running_greenlet_is_not_grouped_with_one_not_started() -> None:
    """Neither has frames of its own, for different reasons: a running
    greenlet's frames are its thread's; one not started has none yet."""
    parked = (snapshot.Frame(recurse.__code__, 0),)
    rows = [(1, "running", ()), (2, "not started", ()), (3, "suspended", parked),
            (4, "not started", ()), (5, "suspended", parked)]
    captured = snapshot.Snapshot(
        captured_at=0.0, pid=1, trigger="api", coalesced=1, implementation="compiled",
        pause_ns=0, heap_objects=0, threads=(),
        greenlets=tuple(snapshot.GreenletStack(ident, "greenlet.greenlet", state, None, frames)
                        for ident, state, frames in rows))
    groups = report.greenlets_data(captured, report.Options(group_stacks=True),
                                   StackTableBuilder())
    assert [[member.id for member in group.members] for group in groups] == [
        [2, 4], [3, 5], [1]]


def test_a_group_says_where_its_members_were_spawned() -> None:
    """Grouped, the text keeps the spawning stacks JSON's members keep: once
    for a group spawned in one place, once per place (naming its members)
    for one spawned in several."""
    one = lines_of("greenlets", (Group(3, (green(16, ONE, spawned_by=0x10, spawning=TWO),
                                           green(17, ONE, spawned_by=0x10, spawning=TWO),
                                           green(18, ONE)), ONE),))
    assert one.count("Spawned by 0x10 at:") == 1
    assert one[one.index("Spawned by 0x10 at:") + 2] == "/srv/app.py:3 in work"
    two = lines_of("greenlets", (Group(2, (green(16, ONE, spawned_by=0x10, spawning=TWO),
                                           green(17, ONE, spawning=ONE)), ONE),))
    assert "Spawned by 0x10 at (id 0x10):" in two and "Spawned at (id 0x11):" in two
    assert not [line for line in two if line == "Spawned by 0x10 at:"]


def test_a_dict_option_shows_its_items_not_a_python_repr() -> None:
    lines = lines_of("configuration", {"database": {
        "connection": "sqlite://", "engine_options": {"pool_recycle": "3600", "echo": "false"},
        "hosts": ["a", "b"]}})
    assert lines[:8] == ["", "database: ", "  connection = sqlite://", "",
                         "  engine_options: ", "    echo = false", "    pool_recycle = 3600",
                         "  hosts = a, b"]
    assert not [line for line in lines if "{" in line]


def _listings_case() -> tuple[list[str], list[Any], Any, list[int]]:
    """Stack texts, greenlet records of every kind the files unit reads
    (names, idents, hostile text, running greenlets, spawning stacks, values
    that are not plain: ints of other types, past 64 bits, negative), and
    a spawned() as render's, that records which records it was asked for."""
    stack_texts = ["a.py:1 in f\n    `x()`\n", "No Traceback!\n",
                   "b.py:2 in g\n    `\u00e9t\u00e9()`\n"]
    asked: list[int] = []
    records = [
        GreenletRecord(0x7F0000001000, "greenlet.greenlet", None, None, "suspended",
                       0x7F0000000100, None, None, None, 0),
        GreenletRecord(0x7F0000002000, "gevent.greenlet.Greenlet", "poller", 3, "suspended",
                       0x7F0000000200, 140000000000100, None, None, 0),
        GreenletRecord(0x7F0000003000, "gevent.greenlet.Greenlet", "green\u2028one\x1b]0;t\x07",
                       None, "not started", None, 140000000000100, 0x7F0000000200, 1, 1),
        GreenletRecord(0x7F0000004000, "x\ny", None, None, "running", None, None, None, None, 1),
        GreenletRecord(0, "gevent.greenlet.Greenlet", "\u00fcber-\U0001f600 \"q\" \\", 0,
                       "suspended", 0, 0, 0, 2, 2),
        GreenletRecord(2**64 - 1, "t", "=lead", 2**64 - 1, "dead", 2**64 - 1, 2**64 - 1, 7, 0,
                       0),
        GreenletRecord(0x20, "t", "", None, "suspended", None, None, None, None, 1),
        GreenletRecord(0x30, "t", "lone \udc80", 1, "suspended\udc80", 0, None, None, None, 1),
        # Not plain: render's own code makes their text.
        GreenletRecord(2**64, "t", "n", -1, "suspended", -5, 2**70, None, None, 0),
        GreenletRecord(True, "t", "n", False, "suspended", True, None, None, None, 0),
        GreenletRecord(0x10, "t", "", 5, "suspended", None, None, None, None, -1),
    ]
    records += [record._replace(id=record.id + 16 * n)
                for n in range(1, 700) for record in records[:3]]

    def spawned(green: GreenletRecord) -> str:
        asked.append(green.id)
        spawner = "" if green.spawned_by is None else f" by {hex(green.spawned_by)}"
        return f"Spawned{spawner} at:\n\n{stack_texts[green.spawning_stack]}"

    return stack_texts, records, spawned, asked


def test_greenlet_facts_and_listings_of_both_twins(core: Any) -> None:
    """The files unit makes the listings of ungrouped greenlets, thousands
    at a time (the compiled one from columns, without the GIL), and the
    facts line of each (a group's members too): both twins give the same
    facts and the listings those facts and the stack texts make, for every
    kind of record."""
    stack_texts, records, spawned, asked = _listings_case()
    banner = render._context_banner("Green Thread")

    def listing(green: GreenletRecord) -> str:
        text = (f"{banner}\n\n({core.greenlet_facts(green, {}, render.escape)})\n\n"
                f"{stack_texts[green.stack]}")
        return text if green.spawning_stack is None else f"{text}\n{spawned(green)}"

    listings = core.Listings("text", banner, stack_texts, render.escape, spawned, listing)
    listings.add(records)
    assert len(listings) == len(records)
    facts = [core.greenlet_facts(green, {}, render.escape) for green in records[:4]]
    assert facts == [
        "id 0x7f0000001000, greenlet.greenlet, suspended, parent 0x7f0000000100",
        "id 0x7f0000002000, gevent.greenlet.Greenlet, poller (#3), suspended, "
        "parent 0x7f0000000200, in thread #140000000000100",
        "id 0x7f0000003000, gevent.greenlet.Greenlet, green\\u2028one\\x1b]0;t\\x07, "
        "not started, in thread #140000000000100",
        "id 0x7f0000004000, x\\ny, running, its frames are its thread's",
    ]
    expected = "".join(listing(green) + "\n" for green in records)
    text = listings.text()
    assert text == expected
    assert b"".join(listings.pieces()) == text.encode()
    assert "its frames are its thread's" in text
    assert ("(id 0x0, gevent.greenlet.Greenlet, \u00fcber-\U0001f600 \"q\" \\ (#0), "
            "suspended)") in text
    assert "(id 0xffffffffffffffff, t, =lead (#18446744073709551615), dead, parent " in text
    assert "(id 0x10000000000000000, t, n (#-1), suspended, parent -0x5, in thread #" in text
    assert "(id 0x10, t, suspended)\n\nb.py:2 in g\n" in text  # an empty name; stack -1
    assert set(asked) >= {0x7F0000003000, 0, 2**64 - 1}
    # Records that cannot be read: a call adds all of its records or none.
    with pytest.raises(TypeError):
        listings.add([records[0], Group(2, (), 0)])
    with pytest.raises(IndexError):
        listings.add([records[1], records[0]._replace(stack=len(stack_texts))])
    listings.add_line("gmr: one slice failed")
    assert len(listings) == len(records) + 1
    assert listings.text() == expected + "gmr: one slice failed\n"
    writing = listings.pieces()
    next(writing)
    if core.IMPLEMENTATION == "compiled":  # its rows must not move while they are read
        with pytest.raises(RuntimeError, match="being written"):
            listings.add(records[:1])
    writing.close()


def _listings_model() -> report.Report:
    """A model whose greenlets are _listings_case's records, one at a time."""
    _, records, _, _ = _listings_case()
    deep = StackTable(TABLE.frames, (*TABLE.stacks, Stack((0, 1) * 40000)))  # 2 MB of text
    records += [records[1]._replace(stack=3), records[0]]
    header = dict(HEADER, greenlets=len(records))
    return report.Report(header, [report.Section("Green Threads", "greenlets", tuple(records))],
                         deep)


@pytest.mark.parametrize("form", ["text", "json", "json-compact"])
def test_the_listings_of_both_twins_are_the_same_bytes(monkeypatch: pytest.MonkeyPatch,
                                                       form: str) -> None:
    """Rendered through render, the compiled listings, assembled from
    columns without the GIL, are the pure twin's (render's own code for
    each record) byte for byte, in every form, and come in pieces of at most
    PIECE_BYTES (below malloc's mmap threshold); the compiled rows' sizes,
    which its buffers are filled by, are exact."""
    if files is _files_py:
        pytest.skip("the compiled files unit is not loaded")
    model = _listings_model()
    texts = []
    for unit in (files, _files_py):
        monkeypatch.setattr(render, "files", unit)
        pieces = list(render.chunks(model, form))
        (listings,) = [piece for piece in pieces if not isinstance(piece, str)]
        assert len(listings) == len(model.sections[0].data)
        encoded = list(listings.pieces())
        assert all(len(piece) <= files.PIECE_BYTES for piece in encoded)
        assert b"".join(encoded).decode() == listings.text()
        if unit is files:
            assert listings._text_size() == len(listings.text().encode())
        texts.append(render.render(model, form))
    assert texts[0] == texts[1]
    if form != "text":
        document = json.loads(texts[0])
        assert len(document["sections"][0]["data"]) == len(model.sections[0].data)
