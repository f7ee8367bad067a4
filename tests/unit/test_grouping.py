"""Identical stacks are grouped; deep stacks keep their top and bottom."""

import greenlet

from gmr import snapshot
from gmr.grouping import group_stacks, trim


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
    groups = group_stacks(mine)
    sizes = sorted(len(group.members) for group in groups)
    assert sizes == [1, 4000, 6000]
    assert groups[0].frames[-1].function == "parked_in_b"
    assert {m.id for m in groups[0].members} <= {id(g) for g in lets}
    for one in lets + [third]:
        one.throw(greenlet.GreenletExit)


def test_trim_keeps_top_and_bottom() -> None:
    code = trim.__code__
    frames = [snapshot.Frame(code, n * 2) for n in range(1000)]
    outer, omitted, inner = trim(frames, 100)
    assert (len(outer), omitted, len(inner)) == (50, 900, 50)
    assert outer[0] is frames[0] and inner[-1] is frames[-1]
    assert trim(frames, 0) == (frames, 0, [])
    assert trim(frames[:10], 100) == (frames[:10], 0, [])
