"""Picks each native unit: compiled, or its pure-Python twin. Nothing else in
gmr imports a unit directly.

- ``walker`` (gmr._walker / gmr._walker_py): the capture of every stack;
- ``trigger`` (gmr._trigger / gmr._trigger_py): signal handler, pipe wait,
  switch interval, watchdog;
- ``files`` (gmr._files / gmr._files_py): batched reads, the report file.

The pure twins are used where GMR_NO_EXTENSIONS=1 asks for them, where the
extension is not built or does not import, on a free-threaded build (a
compiled module that does not declare itself free-threading safe would turn
the GIL back on at import, behind the service's back), and, for the walker,
where its layouts do not check out against the running interpreter. Never
silently: FALLBACK says why, and setup_autorun and every report say it.
"""

from __future__ import annotations

import importlib
import os
import platform
import sysconfig
from types import ModuleType
from typing import TYPE_CHECKING

#: What the service loses on the pure twins, unit by unit.
LOSSES = {  # in the order the fallback line names them
    "trigger": "no report while the main thread is stuck in C, no watchdog",
    "walker": "a longer pause, frame objects made for every frame read",
    "files": "a report that lets the GIL go at every read",
}

_PYTHON = f"CPython {platform.python_version()}"


def _load(unit: str) -> tuple[ModuleType, str | None]:
    """The unit's module, and why it is the pure twin (None: compiled)."""
    pure = importlib.import_module(f"gmr._{unit}_py")
    if os.environ.get("GMR_NO_EXTENSIONS", "") not in ("", "0"):
        return pure, "GMR_NO_EXTENSIONS is set"
    if sysconfig.get_config_var("Py_GIL_DISABLED"):
        return pure, "a free-threaded build, where the compiled core is not used yet"
    try:
        compiled = importlib.import_module(f"gmr._{unit}")
    except ImportError as error:
        # Folded to one line: the reason goes into every report's header.
        return pure, f"gmr._{unit} does not import: {' '.join(str(error).split())}"
    if unit == "walker":
        problem = compiled.layout_problem()
        if problem is not None:
            return pure, f"its frame layouts do not check out: {' '.join(problem.split())}"
    return compiled, None


_chosen = {unit: _load(unit) for unit in LOSSES}
if TYPE_CHECKING:
    # Callers are checked against the typed boundary both twins meet.
    from gmr import _files as files
    from gmr import _trigger as trigger
    from gmr import _walker as walker
else:
    walker, trigger, files = (_chosen[unit][0] for unit in ("walker", "trigger", "files"))
# Each let-go of the GIL in a report is followed by taking it back at once
# (gmr/_switch.h): the walker knows how its holder is asked to let go, the
# trigger's watchdog thread asks, the walker and the files unit call it.
trigger.use_ask(walker.ask_capsule())
_HURRIED = [unit.use_hurry(trigger.hurry_capsule()) for unit in (walker, files)]


def hurried() -> bool:
    """Whether each let-go of the GIL in a report is hurried now (every unit
    compiled, a walker that can ask, the watchdog's thread running): then the
    watcher holds the GIL as long as the service's own switch interval lets
    any thread, and the interval is not lowered for the whole report."""
    return all(_HURRIED) and trigger.can_hurry()
# Greenlet discovery's one scan of the heap and its GC hook, at set-up rather
# than in the first report's pause.
walker.prepare()

#: "compiled" or "pure": which walker captures in this process.
IMPLEMENTATION: str = walker.IMPLEMENTATION


def _fallback() -> str | None:
    reasons = {unit: why for unit, (_, why) in _chosen.items() if why is not None}
    if not reasons:
        return None
    if len(set(reasons.values())) == 1:
        (why,) = set(reasons.values())
        causes = why
    else:
        causes = "; ".join(f"{unit}: {why}" for unit, why in reasons.items())
    pure = ", ".join(reasons)
    lost = "; ".join(LOSSES[unit] for unit in reasons)
    return f"pure-Python {pure} on {_PYTHON} ({causes}): {lost}"


#: One line, or None when every unit is compiled: which units run on their
#: pure twin, on which Python, why, and what the service loses.
FALLBACK: str | None = _fallback()

__all__ = ["FALLBACK", "IMPLEMENTATION", "LOSSES", "files", "hurried", "trigger", "walker"]
