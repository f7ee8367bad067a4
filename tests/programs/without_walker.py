"""Runs another test program in a process where the compiled walker cannot
be imported, as where gmr._walker is missing or does not load.

    without_walker.py PROGRAM [ARGS...]

None in sys.modules makes ``import gmr._walker`` raise ImportError for real,
before gmr is imported; the other compiled units load as usual.
"""

import runpy
import sys

sys.modules["gmr._walker"] = None  # type: ignore[assignment]
program = sys.argv[1]
sys.argv = sys.argv[1:]
runpy.run_path(program, run_name="__main__")
