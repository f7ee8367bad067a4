"""The snapshot model: line_of against the interpreter's own f_lineno,
Frame's lazy properties, and snapshots built by hand."""

from __future__ import annotations

import dataclasses
import inspect
import linecache
import sys
from collections.abc import Iterator
from types import FrameType

import pytest

from gmr import snapshot
from gmr.resolve import line_of
from gmr.snapshot import Frame, GreenletStack, Snapshot, ThreadStack


def here() -> FrameType:
    frame = inspect.currentframe()
    assert frame is not None and frame.f_back is not None
    return frame.f_back


def multi_line_call() -> FrameType:
    return (
        here()
    )


def in_comprehension() -> list[FrameType]:
    return [here() for _ in range(1)]


def generator() -> Iterator[FrameType]:
    yield here()
    yield here()


def with_try() -> FrameType:
    try:
        raise ValueError
    except ValueError:
        return here()


def all_frames() -> list[FrameType]:
    frames = [here(), multi_line_call(), with_try(), *in_comprehension()]
    frames += list(generator())
    frame: FrameType | None = here()
    while frame is not None:  # and every caller, down to pytest's own frames
        frames.append(frame)
        frame = frame.f_back
    return frames


@pytest.mark.parametrize("index", range(8))
def test_line_of_is_f_lineno(index: int) -> None:
    """GIVEN a live frame WHEN line_of resolves its (code, f_lasti)
    THEN it gives the frame's own f_lineno."""
    frame = all_frames()[index]
    assert line_of(frame.f_code, frame.f_lasti) == frame.f_lineno


def test_line_of_every_caller() -> None:
    for frame in all_frames():
        assert line_of(frame.f_code, frame.f_lasti) == frame.f_lineno, frame


def test_line_of_every_instruction_matches_co_lines() -> None:
    """Every byte offset of a function resolves to the line co_lines gives it
    (or the closest earlier line where co_lines gives None)."""
    for code in (all_frames.__code__, with_try.__code__, generator.__code__):
        last = code.co_firstlineno
        for start, end, line in code.co_lines():
            for offset in range(start, end, 2):
                assert line_of(code, offset) == (line if line is not None else last)
            if line is not None:
                last = line


def test_line_of_before_the_first_instruction() -> None:
    """A generator that has not started: lasti -1 is the def line."""
    gen = generator()
    frame = gen.gi_frame
    assert line_of(frame.f_code, -1) == generator.__code__.co_firstlineno
    if sys.version_info < (3, 11):  # 3.11+ starts at RETURN_GENERATOR, not -1
        assert frame.f_lasti == -1
    assert line_of(frame.f_code, frame.f_lasti) == frame.f_lineno
    gen.close()


def test_frame_properties() -> None:
    """GIVEN a Frame for this very line WHEN its properties are read
    THEN they are this file, this function, this line and its source."""
    frame = here()
    model, lineno = Frame(frame.f_code, frame.f_lasti), frame.f_lineno
    assert model.filename == __file__
    assert model.function.endswith("test_frame_properties")
    assert model.line == lineno
    assert model.source == "model, lineno = Frame(frame.f_code, frame.f_lasti), frame.f_lineno"
    if sys.version_info >= (3, 11):
        assert model.function == "test_frame_properties"


def test_frame_function_is_qualified_on_311() -> None:
    class Holder:
        def method(self) -> FrameType:
            return here()

    frame = Holder().method()
    model = Frame(frame.f_code, frame.f_lasti)
    if sys.version_info >= (3, 11):
        assert model.function.endswith("Holder.method")
    else:
        assert model.function == "method"


def test_frame_source_of_a_missing_file_is_empty() -> None:
    code = compile("x = 1\n", "/nonexistent/gmr-test.py", "exec")
    model = Frame(code, -1)
    assert model.line == 1
    assert model.source == ""
    linecache.checkcache("/nonexistent/gmr-test.py")


def test_frames_are_frozen_and_compare_by_value() -> None:
    code = here().f_code
    assert Frame(code, 4) == Frame(code, 4)
    with pytest.raises(AttributeError):
        Frame(code, 4).lasti = 6  # type: ignore[misc]


def test_snapshot_built_by_hand() -> None:
    """GIVEN a snapshot built by hand (no capture)
    WHEN it is read as sections read it
    THEN its threads and greenlets say where they are, outermost first."""
    outer, inner = here(), multi_line_call()
    frames = (Frame(outer.f_code, outer.f_lasti), Frame(inner.f_code, inner.f_lasti))
    thread = ThreadStack(ident=1, native_id=None, name="MainThread", is_main=True,
                         frames=frames)
    green = GreenletStack(id=7, type_name="greenlet.greenlet", state="suspended",
                          parent_id=None, frames=frames[1:])
    taken = Snapshot(captured_at=0.0, pid=1, trigger="api", coalesced=1,
                     implementation="pure", pause_ns=0, heap_objects=0,
                     threads=(thread,), greenlets=(green,))
    assert [frame.function.rsplit(".", 1)[-1] for frame in taken.threads[0].frames] == [
        "test_snapshot_built_by_hand", "multi_line_call"]
    assert taken.threads[0].frames[-1].line == inner.f_lineno
    # multi_line_call has returned: its frame rests on its return statement.
    assert taken.greenlets[0].frames[0].source == "return ("
    assert dataclasses.replace(taken, trigger="signal").trigger == "signal"


def test_take_describes_this_process() -> None:
    """Frames outermost first: the watcher-to-be's view of a parked thread."""
    import threading

    release, parked = threading.Event(), threading.Event()

    def park() -> None:
        parked.set()
        release.wait(30)

    thread = threading.Thread(target=park, name="parked-one", daemon=True)
    thread.start()
    try:
        assert parked.wait(10)
        taken = snapshot.take(trigger="signal", coalesced=3)
    finally:
        release.set()
        thread.join(10)
    assert taken.trigger == "signal" and taken.coalesced == 3
    assert taken.implementation in ("compiled", "pure")
    assert taken.pause_ns > 0
    stacks = {stack.name: stack for stack in taken.threads}
    functions = [frame.function.rsplit(".", 1)[-1] for frame in stacks["parked-one"].frames]
    assert functions[0] == "_bootstrap"
    assert "park" in functions
    assert threading.get_ident() not in {stack.ident for stack in taken.threads}
