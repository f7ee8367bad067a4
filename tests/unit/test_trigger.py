"""The pure trigger's Python signal handler, called as the interpreter calls
it: a signal that comes while the handler is posting (a nested call of the
handler) is not lost, since the watcher may have read and answered the
first byte already."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import pytest

from gmr import _trigger_py


class NestedSignal(_trigger_py.Channel):
    """A channel whose first post from the handler lets one more signal in,
    at the moment CPython could run the handler again: inside the post."""

    __slots__ = ("nested",)

    def _post_from_handler(self, kinds: bytes) -> None:
        super()._post_from_handler(kinds)
        if not self.nested:
            self.nested = True
            assert self.wait(0) == b"S"  # the watcher took the first byte
            _trigger_py._handler(signal.SIGUSR2, None)


def test_a_signal_during_the_post_is_posted_again(monkeypatch: pytest.MonkeyPatch) -> None:
    channel = NestedSignal()
    channel.nested = False
    monkeypatch.setattr(_trigger_py, "_armed", channel)
    monkeypatch.setattr(_trigger_py, "_armed_pid", os.getpid())
    monkeypatch.setattr(_trigger_py, "_previous", {})
    before = _trigger_py.signal_count()
    try:
        _trigger_py._handler(signal.SIGUSR2, None)
        assert _trigger_py.signal_count() == before + 2
        assert channel.wait(0) == b"S"  # posted again: the second signal wakes the watcher
        assert channel.wait(0) == b""
    finally:
        channel.close()


def test_the_same_function_queued_twice_runs_twice(core) -> None:  # type: ignore[no-untyped-def]
    """call_in_main_thread keeps each queued call until it has run: a fork
    hook queues the same function at each fork, and two forks in a row must
    not free the first callback before CPython calls it."""
    calls: list[int] = []

    def note() -> None:
        calls.append(len(calls))

    assert core.call_in_main_thread(note) and core.call_in_main_thread(note)
    for _ in range(1000):  # bytecode: the main thread runs its pending calls
        if len(calls) == 2:
            break
    assert calls == [0, 1]


def test_a_keyboard_interrupt_during_a_main_thread_call_stays_the_service_s(core) -> None:  # type: ignore[no-untyped-def]
    """A call queued for the main thread (stall reports look for its loop
    that way) swallows its own failures, but a KeyboardInterrupt raised while
    it runs (a SIGINT handled meanwhile) was meant for the service: the main
    thread still gets it."""
    if core.IMPLEMENTATION != "compiled":
        pytest.skip("a ctypes callback cannot hand an exception back to the main thread")
    ran: list[str] = []

    def interrupted() -> None:
        ran.append("called")
        raise KeyboardInterrupt

    def failed() -> None:
        ran.append("failed")
        raise RuntimeError("the call's own failure")

    assert core.call_in_main_thread(failed)
    for _ in range(1000):  # bytecode: the main thread runs its pending calls
        if ran:
            break
    assert ran == ["failed"]  # and nothing raised here
    with pytest.raises(KeyboardInterrupt):
        assert core.call_in_main_thread(interrupted)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:  # bytecode, until the interrupt comes
            pass
    assert ran == ["failed", "called"]


def test_a_wake_up_reads_ahead_what_it_was_given(core, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """The files given to prefetch() are read on each wake-up, before the GIL
    is taken back, and handed out once; a wait that times out reads none."""
    present, missing = tmp_path / "present", tmp_path / "missing"
    present.write_bytes(b"serve\0--config-file\0")
    channel = core.Channel()
    try:
        channel.prefetch([str(present), str(missing)])
        assert channel.wait(0.0) == b""
        assert channel.prefetched() == []
        channel.post(b"A")
        assert channel.wait(5.0) == b"A"
        present.write_bytes(b"later")  # what the wake-up read stays
        assert channel.prefetched() == [(str(present), b"serve\0--config-file\0"),
                                        (str(missing), None)]
        assert channel.prefetched() == []
    finally:
        channel.close()
