"""The stderr sink in process: a report of many pieces goes out whole."""

from __future__ import annotations

import pytest

from gmr import sinks


def test_many_small_pieces_to_stderr(capfd: pytest.CaptureFixture[str]) -> None:
    """More pieces than one writev() takes (IOV_MAX, 1024), and pieces of
    every size around them: every byte, in order."""
    pieces = [b"x"] * 3000 + [b"y" * 70_000, b"", b"z" * 3]
    sinks.to_stderr(iter(pieces))
    assert capfd.readouterr().err == "x" * 3000 + "y" * 70_000 + "zzz"
