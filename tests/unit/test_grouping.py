"""Identical stacks are grouped; deep stacks keep their top and bottom."""

import greenlet

from gmr import snapshot
from gmr.grouping import MEMBERS_SHOWN, group_stacks
from gmr.model import Stack, StackTableBuilder


def parked_in_a() -> None:
    greenlet.getcurrent().parent.switch()


def parked_in_b() -> None:
    greenlet.getcurrent().parent.switch()


def test_ten_thousand_greenlets_in_three_places_make_three_groups() -> None:
    places = [parked_in_a, parked_in_b, parked_in_a, parked_in_b, parked_in_b]
    lets = [greenlet.greenlet(place) for place in places * 2000]
    for one in lets:
        one.switch()
    third = greenlet.greenlet(lambda: greenlet.getcurrent().parent.switch())
    third.switch()
    captured = snapshot.take()
    places_seen = ("parked_in_a", "parked_in_b", "<lambda>")
    mine = [g for g in captured.greenlets if g.state == "suspended"
            and g.frames and g.frames[-1].function.endswith(places_seen)]
    # The snapshot shares one frames tuple per distinct stack; the model's
    # stack table numbers them.
    builder = StackTableBuilder()
    groups = group_stacks(builder.stack(green.frames) for green in mine)
    assert sorted(group.count for group in groups) == [1, 4000, 6000]
    # Only the first few of each group are kept, in the order given.
    assert [len(group.first) for group in groups] == [MEMBERS_SHOWN, MEMBERS_SHOWN, 1]
    assert list(groups[0].first) == sorted(groups[0].first)
    first = mine[groups[0].first[0]]
    assert first.frames[-1].function == "parked_in_b"
    table = builder.table()
    assert table.frames[table.stacks[groups[0].key].frames[-1]].function == "parked_in_b"
    assert {mine[at].id for at in groups[0].first} <= {id(g) for g in lets}
    for one in lets + [third]:
        one.throw(greenlet.GreenletExit)


def test_a_deep_stack_keeps_top_and_bottom() -> None:
    code = group_stacks.__code__
    frames = tuple(snapshot.Frame(code, n * 2) for n in range(1000))
    builder = StackTableBuilder(max_depth=100)
    deep = builder.stack(frames)
    shallow = builder.stack(frames[:10])
    whole = StackTableBuilder(max_depth=0)
    table, untrimmed = builder.table(), whole.table() if whole.stack(frames) == 0 else None
    outer, omitted, inner = table.stacks[deep]
    assert (len(outer), omitted, len(inner)) == (50, 900, 50)
    # Indices of the distinct (code, instruction) frames, in order of first sight.
    assert outer[0] == 0 and inner[-1] == 999
    assert table.stacks[shallow] == Stack(tuple(range(10)))
    assert untrimmed is not None and untrimmed.stacks[0] == Stack(tuple(range(1000)))
