"""What gmr does differently inside application servers that own signals.

- **gunicorn** resets SIGUSR2 to its default action in every worker when the
  worker sets up its signals (``Worker.init_signals``). With ``--preload``
  gmr is set up in the master, before that, so a SIGUSR2 would kill the
  worker. gmr wraps ``init_signals`` to re-install its handler right after
  it. The master uses SIGUSR2 itself (binary upgrade) and takes it back in
  its own signal set-up: never send SIGUSR2 to the master.
- **uWSGI** installs its own SIGUSR2 handler in its workers, so gmr leaves
  the signal alone there and relies on the file trigger. Its Python threads
  need ``--enable-threads``, and workers forked from a master that loaded the
  application run Python's fork hooks only with ``--py-call-osafterfork`` or
  ``--py-call-uwsgi-fork-hooks`` (otherwise: ``--lazy-apps``, or
  ``gmr.rearm()`` in a ``uwsgidecorators.postfork`` function). Without
  ``--py-call-uwsgi-fork-hooks`` uWSGI forks without taking the GIL, so a
  worker forked while another thread of the master holds it waits for it
  for ever: gmr's watcher holds it only briefly, and not at start-up.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any


def in_uwsgi() -> bool:
    return "uwsgi" in sys.modules and hasattr(sys.modules["uwsgi"], "opt")


def uwsgi_advice() -> list[str]:
    """What an operator must know about gmr in this uWSGI process, one line each."""
    if not in_uwsgi():
        return []
    options: dict[Any, Any] = dict(sys.modules["uwsgi"].opt)

    def option(name: str) -> bool:
        return bool(options.get(name) or options.get(name.encode()))

    advice = ["uWSGI owns SIGUSR2 in its workers: gmr does not install a signal handler here; "
              "use the file trigger ([oslo_reports] file_event_handler)"]
    if not (option("enable-threads") or option("threads")):
        advice.append("uWSGI runs without --enable-threads: gmr's watcher thread cannot run")
    hooks = ("lazy-apps", "lazy", "py-call-osafterfork", "py-call-uwsgi-fork-hooks")
    if not any(option(name) for name in hooks):
        advice.append("uWSGI forks workers without Python's fork hooks: use --lazy-apps or "
                      "--py-call-uwsgi-fork-hooks, or call gmr.rearm() first in a "
                      "uwsgidecorators.postfork function, so each worker has its own watcher")
    return advice


_GUNICORN_MARK = "_gmr_rearms_after"


def follow_gunicorn(rearm_signals: Callable[[], None]) -> bool:
    """Re-install gmr's handlers after each gunicorn worker's own signal set-up.
    Returns whether gunicorn's worker class was found (and wrapped)."""
    base = sys.modules.get("gunicorn.workers.base")
    worker = getattr(base, "Worker", None)
    if worker is None:
        return False
    original = worker.init_signals
    if getattr(original, _GUNICORN_MARK, False):
        return True

    def init_signals(self: Any) -> None:
        original(self)
        rearm_signals()

    setattr(init_signals, _GUNICORN_MARK, True)
    worker.init_signals = init_signals
    return True
