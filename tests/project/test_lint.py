"""ruff on the whole tree and mypy (strict) on gmr/ are part of the tests."""

from __future__ import annotations

import subprocess
import sys

import pytest

from conftest import ROOT

pytestmark = [pytest.mark.compiled_only, pytest.mark.timeout(300)]


def test_ruff() -> None:
    paths = [name for name in ("gmr", "tests", "benchmarks", "examples", "scripts", "docs")
             if (ROOT / name).is_dir()]
    result = subprocess.run([sys.executable, "-m", "ruff", "check", "--no-cache", *paths],
                            cwd=ROOT, capture_output=True, text=True, timeout=240)
    assert result.returncode == 0, result.stdout + result.stderr


def test_mypy_strict() -> None:
    result = subprocess.run([sys.executable, "-m", "mypy", "--no-incremental"],
                            cwd=ROOT, capture_output=True, text=True, timeout=280)
    assert result.returncode == 0, result.stdout + result.stderr
