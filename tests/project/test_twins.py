"""The switch between the compiled core and its pure twin."""

import ast
import importlib
import os
import subprocess
import sys
import types
from pathlib import Path

import pytest

from conftest import ROOT, UNITS, compiled_expected


def test_compiled_core_loaded() -> None:
    """Fails when the extension should have been built and loaded, and was not."""
    from gmr import _impl

    if compiled_expected():
        assert _impl.FALLBACK is None, _impl.FALLBACK
        assert _impl.IMPLEMENTATION == "compiled", "gmr._walker did not load"
        for unit in UNITS:
            assert getattr(_impl, unit).IMPLEMENTATION == "compiled", unit
            importlib.import_module(f"gmr._{unit}")
    else:
        assert _impl.IMPLEMENTATION == "pure"
        assert _impl.FALLBACK is not None and "GMR_NO_EXTENSIONS" in _impl.FALLBACK


def test_env_switch_forces_pure() -> None:
    env = dict(os.environ, GMR_NO_EXTENSIONS="1", PYTHONPATH=str(ROOT))
    out = subprocess.run(
        [sys.executable, "-c", "from gmr._impl import IMPLEMENTATION; print(IMPLEMENTATION)"],
        env=env, capture_output=True, text=True, timeout=60, check=True,
    )
    assert out.stdout.strip() == "pure"


def _defined(tree: ast.Module) -> set[str]:
    """The public names a module or stub defines at its top level (in its
    if and try blocks too), imports left out."""
    names: set[str] = set()
    body = list(tree.body)
    while body:
        node = body.pop(0)
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.add(node.name)
        elif isinstance(node, ast.Assign):
            names.update(target.id for target in node.targets if isinstance(target, ast.Name))
        elif isinstance(node, (ast.AnnAssign, ast.AugAssign)) and isinstance(node.target,
                                                                             ast.Name):
            names.add(node.target.id)
        elif isinstance(node, ast.If):
            body += node.body + node.orelse
        elif isinstance(node, ast.Try):
            body += node.body + node.orelse + node.finalbody
            for handler in node.handlers:
                body += handler.body
    return {name for name in names if not name.startswith("_")}


def _imported(tree: ast.Module) -> set[str]:
    return {alias.asname or alias.name.split(".")[0] for node in tree.body
            if isinstance(node, (ast.Import, ast.ImportFrom)) for alias in node.names}


@pytest.mark.parametrize("unit", UNITS)
def test_twins_share_names(unit: str) -> None:
    """Each unit's stub is its contract: the pure twin defines exactly the
    stub's public names, and the compiled unit has every one of them and no
    other public name than what its stub imports (types it names)."""
    stub = ast.parse((ROOT / "gmr" / f"_{unit}.pyi").read_text())
    contract = _defined(stub)
    pure_source = importlib.import_module(f"gmr._{unit}_py").__file__
    assert pure_source is not None
    assert _defined(ast.parse(Path(pure_source).read_text())) == contract
    if compiled_expected():
        compiled = importlib.import_module(f"gmr._{unit}")
        public = {name for name in dir(compiled) if not name.startswith("_")
                  and not isinstance(getattr(compiled, name), types.ModuleType)}
        assert contract - public == set(), "missing in the compiled unit"
        assert public - contract <= _imported(stub), "not in the stub"


def test_greenlet_states(core) -> None:  # type: ignore[no-untyped-def]
    assert [core.GREENLET_NOT_STARTED, core.GREENLET_SUSPENDED, core.GREENLET_RUNNING,
            core.GREENLET_DEAD] == [0, 1, 2, 3]
