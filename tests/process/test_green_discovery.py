"""Greenlet discovery in a real service under eventlet or gevent
monkey-patching, on both twins: greenlets spawned by the library after the
walker was set up (gmr imported before or after the patch), collections of
every generation and gc.freeze() between reports, thousands of short-lived
greenlets meanwhile. Every report finds every greenlet a full heap scan
finds, and every greenlet the service holds; on the compiled walker, no
report after set-up scans the heap but the one after a freeze.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from conftest import ROOT

pytestmark = pytest.mark.timeout(120)

PROGRAM = r'''
import sys
library, order = sys.argv[1], sys.argv[2]


def patch():
    if library == "eventlet":
        import eventlet
        eventlet.monkey_patch()
    else:
        from gevent import monkey
        monkey.patch_all()


if order == "before":
    patch()
import gc
from gmr._impl import walker
if order == "after":
    patch()
import greenlet

if library == "eventlet":
    import eventlet
    spawn, sleep = eventlet.spawn, eventlet.sleep
else:
    import gevent
    spawn, sleep = gevent.spawn, gevent.sleep

held = []


def park(depth):
    if depth:
        return park(depth - 1)
    sleep(3600)


def spawn_parked(count):
    for _ in range(count):
        held.append(spawn(park, 5))
    sleep(0)  # they run to their sleep


def churn(count):
    done = [spawn(lambda: [[] for _ in range(50)]) for _ in range(count)]
    for green in done:
        green.wait() if library == "eventlet" else green.join()


def check(step, frozen=False):
    raw = walker.capture(greenlet.greenlet)
    found = {id(green) for green in raw.greenlet_columns()[0]}
    scanned = raw.heap_scanned
    raw.release()
    heap = {id(o) for o in gc.get_objects() if isinstance(o, greenlet.greenlet)}
    mine = {id(green) for green in held}
    missed = len(heap - found)
    if not frozen or walker.SEES_FROZEN:
        missed += len(mine - found)
    print(f"{step} missed={missed} scanned={int(scanned)} found={len(found)}", flush=True)


spawn_parked(50)
check("first")
for generation in (0, 1, 2):
    spawn_parked(20)
    churn(500)
    gc.collect(generation)
    check(f"gen{generation}")
spawn_parked(20)
churn(3000)  # collections the allocator starts
check("automatic")
gc.freeze()
spawn_parked(10)
check("frozen", frozen=True)
churn(500)
gc.collect(1)
check("after-freeze", frozen=True)
gc.unfreeze()
gc.collect()
check("thawed")
print("done", flush=True)
'''


@pytest.mark.parametrize("order", ["before", "after"])
@pytest.mark.parametrize("library", ["eventlet", "gevent"])
def test_every_greenlet_found_under_monkey_patching(
        twin_env: dict[str, str], tmp_path: Path, library: str, order: str) -> None:
    pytest.importorskip(library)
    program = tmp_path / "green_discovery.py"
    program.write_text(PROGRAM)
    env = dict(twin_env, PYTHONPATH=f"{ROOT}")
    result = subprocess.run([sys.executable, str(program), library, order], env=env,
                            capture_output=True, text=True, timeout=100)
    assert result.returncode == 0, result.stderr[-3000:]
    lines = {line.split()[0]: dict(part.split("=") for part in line.split()[1:])
             for line in result.stdout.splitlines() if "missed=" in line}
    assert "done" in result.stdout, result.stdout + result.stderr[-3000:]
    assert lines and all(fields["missed"] == "0" for fields in lines.values()), lines
    assert int(lines["thawed"]["found"]) >= 120
    if twin_env.get("GMR_TEST_TWIN") != "py":
        # Without a heap scan, but the report right after the freeze.
        scanned = {step for step, fields in lines.items() if fields["scanned"] == "1"}
        assert scanned <= {"frozen"}, lines
