"""Greenlets as columns: the walker writes a snapshot's greenlets into arrays
(snapshot.GreenletTable), and the model makes their records a slice at a
time (model.GreenletRecords). A report of 10,000 greenlets keeps no object
per greenlet, on both twins."""

from __future__ import annotations

import functools
import gc
import sys
from collections.abc import Iterator
from types import SimpleNamespace
from typing import Any

import greenlet
import pytest

from gmr import render, report, snapshot
from gmr.model import GreenletRecord, GreenletRecords, Group

MANY = 10_000


def parked_deep(depth: int) -> None:
    if depth > 1:
        return parked_deep(depth - 1)
    greenlet.getcurrent().parent.switch()
    return None


def parked_elsewhere() -> None:
    greenlet.getcurrent().parent.switch()


@pytest.fixture
def take(core: SimpleNamespace, monkeypatch: pytest.MonkeyPatch) -> Any:
    """snapshot.take with the twin under test as its walker."""
    monkeypatch.setattr(snapshot, "walker", core)
    return snapshot.take


@pytest.fixture
def many() -> Iterator[list[greenlet.greenlet]]:
    """MANY greenlets parked 5 deep, a tenth of them somewhere else."""
    lets = []
    for index in range(MANY):
        green = greenlet.greenlet(parked_elsewhere if index % 10 == 0 else parked_deep)
        if index % 10 == 0:
            green.switch()
        else:
            green.switch(5)
        lets.append(green)
    yield lets
    for green in lets:
        green.throw(greenlet.GreenletExit)


def mine(captured: snapshot.Snapshot, lets: list[greenlet.greenlet]) -> list[int]:
    """The rows of the table that hold these greenlets, in their order."""
    wanted = {id(green) for green in lets}
    return [row for row, ident in enumerate(captured.greenlets.ids) if ident in wanted]


def test_the_table_holds_what_the_walker_saw(take: Any) -> None:
    parked = greenlet.greenlet(parked_deep)
    parked.switch(3)
    fresh = greenlet.greenlet(parked_elsewhere)
    done = greenlet.greenlet(lambda: None)
    done.switch()
    captured = take()
    table = captured.greenlets
    rows = {green.id: green for green in table}  # indexing makes the rows
    assert len(rows) == len(table)
    assert rows[id(parked)].state == "suspended"
    assert rows[id(parked)].parent_id == id(greenlet.getcurrent())
    assert [frame.function.rsplit(".", 1)[-1] for frame in rows[id(parked)].frames][-3:] == [
        "parked_deep"] * 3
    assert rows[id(parked)].greenlet is parked
    assert rows[id(parked)].type_name == "greenlet.greenlet"
    assert (rows[id(fresh)].state, rows[id(fresh)].frames) == ("not started", ())
    assert rows[id(done)].state == "dead"
    # Slices and negative indices are the rows in order.
    assert table[-1] == table[len(table) - 1] and table[1:3] == (table[1], table[2])
    with pytest.raises(IndexError):
        table[len(table)]  # noqa: B018  # the lookup is what is tested
    counts = table.state_counts()
    assert counts["dead"] >= 1 and counts["not started"] >= 1
    assert sum(counts.values()) == len(table)
    parked.throw(greenlet.GreenletExit)


def test_greenlets_in_one_stack_share_one_entry_of_frames(take: Any, core: SimpleNamespace,
                                                          many: list[greenlet.greenlet]) -> None:
    if core.IMPLEMENTATION == "pure":
        pytest.skip("the pure twin reads a tuple of frames for each greenlet")
    captured = take()
    table = captured.greenlets
    rows = mine(captured, many)
    assert len(rows) == MANY
    # Two places: every greenlet points at one of two stacks.
    assert len({table.stacks[row] for row in rows}) == 2
    assert len(table.frames) < 20


def test_records_are_made_for_the_slice_asked_for(take: Any,
                                                  many: list[greenlet.greenlet]) -> None:
    done = greenlet.greenlet(lambda: None)
    done.switch()
    captured = take()
    data = report.greenlets_data(captured, report.Options(), report.StackTableBuilder())
    assert isinstance(data, GreenletRecords)
    records = data[0:len(data)]
    assert all(type(record) is GreenletRecord for record in records)
    # The dead are left out; every other greenlet is there, once, in order.
    live = [row for row in captured.greenlets if row.state != "dead"]
    assert [record.id for record in records] == [row.id for row in live]
    assert id(done) not in {record.id for record in records}
    assert data[5] == records[5] and data[-1] == records[-1]
    assert data[100:228] == records[100:228]
    by_id = {record.id: record for record in records}
    one = by_id[id(many[1])]
    assert (one.state, one.parent, one.type) == (
        "suspended", id(greenlet.getcurrent()), "greenlet.greenlet")
    assert by_id[id(many[0])].stack != one.stack


def test_grouped_greenlets_count_every_member_and_name_the_first(
        take: Any, many: list[greenlet.greenlet]) -> None:
    captured = take()
    groups = report.greenlets_data(captured, report.Options(group_stacks=True),
                                   report.StackTableBuilder())
    assert all(isinstance(group, Group) for group in groups)
    counts = sorted(group.total for group in groups)
    assert MANY * 9 // 10 in counts and MANY // 10 in counts
    biggest = groups[0]
    assert biggest.total == MANY * 9 // 10
    # Its first members, in the order captured.
    deep = {id(green) for index, green in enumerate(many) if index % 10}
    assert [member.id for member in biggest.members] == [
        ident for ident in captured.greenlets.ids if ident in deep][:20]


def blocks_held(make: Any) -> tuple[int, Any]:
    """What make() returns, and how many more memory blocks of Python's
    allocator are in use while it is held (gc first, so that only what it
    holds counts)."""
    gc.collect()
    before = sys.getallocatedblocks()
    made = make()
    gc.collect()
    return sys.getallocatedblocks() - before, made


def test_a_report_of_ten_thousand_greenlets_keeps_no_object_for_each(
        take: Any, core: SimpleNamespace, many: list[greenlet.greenlet]) -> None:
    """A row or a record per greenlet would hold MANY blocks or more (with
    its id, 2 * MANY): made and dropped by thousands, they left the
    allocator holding arenas after the report. (The pure twin's snapshot
    holds a tuple of frames for each greenlet: it reads each one's frames.)"""
    held, captured = blocks_held(take)
    assert len(mine(captured, many)) == MANY
    if core.IMPLEMENTATION == "compiled":
        assert held < MANY // 5, held
    for options in (report.Options(), report.Options(group_stacks=True)):
        held, model = blocks_held(lambda options=options: report.build(
            captured, "1.0", None, [], options))
        assert held < MANY // 5, (options, held)
        assert render.text(model).count("parked_deep") >= (
            MANY * 9 // 10 * 5 if not options.group_stacks else 5)


def test_what_gevent_recorded_is_kept_in_columns(take: Any) -> None:
    gevent = pytest.importorskip("gevent")
    try:
        stop = gevent.event.Event()
        lets = [gevent.spawn(stop.wait) for _ in range(2000)]
        lets[0].name = "poller"
        gevent.sleep(0)
        held, captured = blocks_held(take)
        held, model = blocks_held(functools.partial(report.build, captured, "1.0", None, [],
                                                    report.Options()))
        assert held < 400, held
        section = next(section for section in model.sections if section.kind == "greenlets")
        records = {record.id: record for record in section.data[0:len(section.data)]}
        first, second = records[id(lets[0])], records[id(lets[1])]
        assert (first.name, second.name) == ("poller", None)
        assert first.spawned_by == second.spawned_by == id(greenlet.getcurrent())
        assert first.spawning_stack is not None
        assert first.spawning_stack == second.spawning_stack  # spawned from one place
        stop.set()
        gevent.joinall(lets)
        # The hub, suspended for good by destroy(), keeps the LoopExit it
        # raised, whose traceback keeps this frame: nothing may hang on it.
        del lets, captured, model, section, records, first, second
    finally:
        gevent.get_hub().destroy(destroy_loop=True)
