"""Greenlet identity read in process: gevent's records, and nothing made up."""

from __future__ import annotations

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
