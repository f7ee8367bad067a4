"""Which /proc files are read with the GIL held: only those the kernel
answers without waiting. A command line (this process's own too) is read
from the process's memory under its memory-map lock, which a thread in
mmap() or a page fault can hold for long, so it is read without the GIL."""

from __future__ import annotations

import os
from typing import Any

import pytest

from gmr import facts


def test_no_command_line_is_read_with_the_gil_held(monkeypatch: pytest.MonkeyPatch) -> None:
    reads: list[tuple[str, bool]] = []
    read_files = facts.files.read_files

    def recording(paths: list[str], *args: Any, keep_gil: bool = False) -> Any:
        reads.extend((path, keep_gil) for path in paths)
        return read_files(paths, *args, keep_gil=keep_gil)

    monkeypatch.setattr(facts.files, "read_files", recording)
    me, parent = os.getpid(), os.getppid()
    entries = facts.process_entries([me, parent])
    assert [entry["pid"] for entry in entries] == [me, parent]
    assert entries[0]["cmdline"], entries  # read, all the same
    held = {path for path, keep_gil in reads if keep_gil}
    assert held == {f"/proc/{me}/stat", f"/proc/{me}/status"}
    assert {f"/proc/{me}/cmdline", f"/proc/{parent}/cmdline"} <= {path for path, _ in reads}
