"""Under eventlet and gevent, a report makes no hub of its own: the watcher
reads the hub of the thread that started gmr, and never calls a get_hub()
that would give the watcher thread a second hub (its own epoll descriptor
and greenlet), nor a patched call that makes one (eventlet's os.open), nor
a greenlet of the watcher's thread; neither does the report gmr makes and
throws away at set-up."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.timeout(60)

PATCH = {
    "eventlet": "import eventlet; eventlet.monkey_patch(); "
                "from eventlet import spawn, sleep; from eventlet.hubs.hub import BaseHub as Hub",
    "gevent": "from gevent import monkey; monkey.patch_all(); "
              "from gevent import spawn, sleep; from gevent.hub import Hub",
}

PROGRAM = """
import gc, json, os
import greenlet
from gmr import guru

def count():
    epolls = 0
    for fd in os.listdir("/proc/self/fd"):
        try:
            epolls += os.readlink(f"/proc/self/fd/{fd}") == "anon_inode:[eventpoll]"
        except OSError:
            pass
    objects = gc.get_objects()
    return [sum(isinstance(o, Hub) for o in objects), epolls,
            sum(isinstance(o, greenlet.greenlet) and o.parent is None for o in objects)]

green = [spawn(sleep, 3600) for _ in range(3)]
sleep(0)
at_start = count()
guru.TextGuruMeditation.setup_autorun("1.0", log_dir=".")  # a report made and thrown away
before = count()
watcher = guru.TextGuruMeditation._watcher
watcher.request()  # a report made in the watcher thread, as for a signal
while watcher.reports == 0:
    sleep(0.01)
print(json.dumps([at_start, before, count()]), flush=True)
"""

HUB_LINE = {"eventlet": "green hub = eventlet (eventlet.hubs.epolls)",
            "gevent": "green hub = gevent "}


@pytest.mark.parametrize("library", ["eventlet", "gevent"])
def test_a_report_makes_no_green_hub(library: str, twin_env: dict[str, str],
                                     tmp_path: Path) -> None:
    done = subprocess.run([sys.executable, "-c", PATCH[library] + PROGRAM], env=twin_env,
                          capture_output=True, text=True, timeout=50, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    at_start, before, after = json.loads(done.stdout)
    if twin_env.get("GMR_NO_EXTENSIONS") == "1" and library == "eventlet":
        # The pure walker's scan of the heap asks each object whether it is
        # a greenlet, and eventlet's corolocal.local answers in Python, with
        # a greenlet for the asking thread: the one greenlet gmr makes.
        at_start, before, after = at_start[:2], before[:2], after[:2]
    # The service's own hub, epoll and main greenlet, no more.
    assert at_start == before == after, done.stdout
    assert before == [1, 1, 1][:len(before)], done.stdout
    text = next(tmp_path.glob("*_gurumeditation_*")).read_text()
    assert HUB_LINE[library] in text, text
