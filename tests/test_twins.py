"""The switch between the compiled core and its pure twin."""

import importlib
import os
import subprocess
import sys

from conftest import ROOT, UNITS, compiled_expected, twin


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


def test_twins_share_names(core) -> None:  # type: ignore[no-untyped-def]
    pure = twin("py")
    for name in ("IMPLEMENTATION", "GREENLET_NOT_STARTED", "GREENLET_SUSPENDED",
                 "GREENLET_RUNNING", "GREENLET_DEAD", "arm", "disarm", "is_armed",
                 "signal_count", "Channel", "lowered_switch_interval", "capture",
                 "RawCapture", "read_files", "list_dirs", "publish", "layout_problem",
                 "switch_interval_cell", "use_switch_interval"):
        assert hasattr(core, name), name
        assert hasattr(pure, name), name
    assert [core.GREENLET_NOT_STARTED, core.GREENLET_SUSPENDED, core.GREENLET_RUNNING,
            core.GREENLET_DEAD] == [0, 1, 2, 3]
