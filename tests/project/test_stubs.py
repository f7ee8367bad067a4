"""Each native unit's .pyi is the contract both of its twins meet: mypy's
stubtest checks the compiled module and the pure twin against the same stub
(names, signatures, defaults, properties)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import ROOT, UNITS, compiled_expected

pytestmark = [pytest.mark.compiled_only, pytest.mark.timeout(300)]

# What Cython adds to every module and cdef class; not part of the contract.
CYTHON_EXTRAS = r"""
gmr\._\w+\.__test__
gmr\._(walker|trigger)\.__reduce_cython__
gmr\._(walker|trigger)\.__setstate_cython__
"""


def _stubtest(modules: list[str], cwd: Path, allowlist: Path | None = None,
              mypy_path: Path | None = None) -> str:
    env = dict(os.environ, MYPYPATH=str(mypy_path)) if mypy_path is not None else None
    options = ["--allowlist", str(allowlist)] if allowlist is not None else []
    result = subprocess.run(
        [sys.executable, "-m", "mypy.stubtest", "--mypy-config-file", str(ROOT / "pyproject.toml"),
         *options, *modules],
        cwd=cwd, env=env, capture_output=True, text=True, timeout=280)
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


def test_compiled_units_meet_their_stubs(tmp_path: Path) -> None:
    if not compiled_expected():
        pytest.skip("the compiled core is not under test")
    allowlist = tmp_path / "allowlist.txt"
    allowlist.write_text(CYTHON_EXTRAS)
    _stubtest([f"gmr._{unit}" for unit in UNITS], ROOT, allowlist)


def test_pure_twins_meet_the_same_stubs(tmp_path: Path) -> None:
    """The pure twin of each unit, against a copy of the compiled unit's
    stub under the twin's name."""
    stubs = tmp_path / "stubs" / "gmr"
    stubs.mkdir(parents=True)
    (stubs / "__init__.pyi").write_text("")
    for unit in UNITS:
        stub = (ROOT / "gmr" / f"_{unit}.pyi").read_text()
        # A cdef class is a disjoint base by its C layout, the pure twin's by
        # its __slots__, which a stub must state as slots instead.
        stub = re.sub(r"@disjoint_base.*\nclass (\w+):",
                      r"class \1:\n    __slots__: tuple[str, ...]", stub)
        (stubs / f"_{unit}_py.pyi").write_text(stub)
    # Run outside the tree, so that mypy takes gmr from the stubs directory.
    _stubtest([f"gmr._{unit}_py" for unit in UNITS], tmp_path, mypy_path=tmp_path / "stubs")
