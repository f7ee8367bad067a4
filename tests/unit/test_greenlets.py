"""Greenlet identity read in process: gevent's records, and nothing made up."""

from __future__ import annotations

import ctypes
from collections.abc import Iterator
from typing import Any

import greenlet
import pytest

from gmr.greenlets import GreenletIdentity, identity


@pytest.fixture
def gevent() -> Iterator[Any]:
    """gevent, unpatched; its hub for this thread is destroyed afterwards."""
    module = pytest.importorskip("gevent")
    yield module
    module.get_hub().destroy(destroy_loop=True)


def test_a_plain_greenlet_has_no_gevent_identity() -> None:
    assert identity(greenlet.greenlet(lambda: None)) == GreenletIdentity(None, None, None, ())


def test_gevent_names_and_idents_are_read_never_assigned(gevent: Any) -> None:
    named = gevent.Greenlet(lambda: None)
    named.name = "poller"
    numbered = gevent.Greenlet(lambda: None)
    ident = numbered.minimal_ident  # assigned by gevent, in this thread
    fresh = gevent.Greenlet(lambda: None)
    assert (identity(named).name, identity(named).minimal_ident) == ("poller", None)
    assert (identity(numbered).name, identity(numbered).minimal_ident) == (
        f"Greenlet-{ident}", ident)
    assert (identity(fresh).name, identity(fresh).minimal_ident) == (None, None)
    # Reading did not assign one: gevent's next ident is the one after.
    assert fresh.minimal_ident == ident + 1
    spawned = identity(named)
    assert spawned.spawned_by == id(greenlet.getcurrent())
    spawner_code, _line = spawned.spawning_stack[-1]
    assert spawner_code.co_name == "test_gevent_names_and_idents_are_read_never_assigned"


def test_nothing_recorded_without_the_greenlet_tree(gevent: Any,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(gevent.config, "track_greenlet_tree", False)
    untracked = identity(gevent.Greenlet(lambda: None))
    assert (untracked.spawned_by, untracked.spawning_stack) == (None, ())


def _dict_pointer(obj: object) -> int | None:
    """Where the object's type keeps its instance dict, read as a bare pointer."""
    return ctypes.c_void_p.from_address(id(obj) + type(obj).__dictoffset__).value


def _parked() -> greenlet.greenlet:
    green = greenlet.greenlet(lambda: greenlet.getcurrent().parent.switch())
    green.switch()
    return green


def test_instance_dict_reads_and_never_makes(core: Any) -> None:
    """Both twins read an instance's own dict where its type keeps it, and
    make none where there is none (green.__dict__ would, for good)."""
    plain, named = _parked(), _parked()
    named.name = "poller"
    before = _dict_pointer(plain)  # greenlet makes one at once on some Pythons (3.12)
    own = core.instance_dict(plain)
    assert (own is None) if before is None else (own == {} and id(own) == before)
    assert _dict_pointer(plain) == before
    assert core.instance_dict(named) == {"name": "poller"}
    assert core.instance_dict(42) is None  # no dict slot
    for green in (plain, named):
        green.throw(greenlet.GreenletExit)


def test_a_report_makes_no_instance_dict() -> None:
    """A report reads greenlet names without making an instance dict on the
    greenlets that have none (greenlet has none on 3.13): 10,000 of them
    made 0.6 MB that stayed."""
    from gmr import pipeline, report

    parked = [_parked() for _ in range(50)]
    before = [_dict_pointer(green) for green in parked]
    request = pipeline.Request(None, None, (), report.Options())
    assert "Green Thread" in pipeline.text(pipeline.take(), request)
    assert [_dict_pointer(green) for green in parked] == before
    for green in parked:
        green.throw(greenlet.GreenletExit)
