"""Signals during interpreter shutdown neither hang nor crash the exit."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.timeout(60)


def test_signals_during_shutdown(service) -> None:  # type: ignore[no-untyped-def]
    for _ in range(3):
        svc = service("shutdown_storm.py").ready()
        code, _, stderr = svc.finish(timeout=20)
        assert code == 0, f"exit {code}: {stderr}"
        assert "Fatal Python error" not in stderr
