"""The watcher under eventlet or gevent monkey-patching.

argv: <eventlet|gevent> <before|between|after> <seconds> <signal|api>
  before   patch, then import gmr.watcher and start the watcher
  between  import gmr.watcher, patch, then start the watcher
  after    import gmr.watcher and start the watcher, then patch

Prints "thread tasks=<before>-><after> ident=<watcher ident>" once the
watcher runs, "ready", then parks the main greenlet in a (patched)
time.sleep for argv[3] seconds, framed by "blocking" and "returned"; a green
thread prints "parked" once the main greenlet waits in the hub. Each
snapshot prints
    report real=<ident> green=<patched get_ident> native=<kernel id> tasks=<ids> park=<state>
from the watcher thread: park is the state of the greenlet parked in park().
"""

import os
import sys

library, order = sys.argv[1], sys.argv[2]
seconds = float(sys.argv[3]) if len(sys.argv) > 3 else 3.0
trigger = sys.argv[4] if len(sys.argv) > 4 else "signal"


def patch() -> None:
    if library == "eventlet":
        import eventlet

        eventlet.monkey_patch()
    else:
        from gevent import monkey

        monkey.patch_all()


def tasks() -> list[int]:
    return sorted(int(task) for task in os.listdir("/proc/self/task"))


if order == "before":
    patch()

import signal  # noqa: E402
import threading  # noqa: E402
import time  # noqa: E402

from gmr import _originals, snapshot, watcher  # noqa: E402

if order == "between":
    patch()


def say(line: str) -> None:
    _originals.write(1, (line + "\n").encode())


def report(captured: snapshot.Snapshot) -> None:
    park = [green.state for green in captured.greenlets
            if any(frame.code.co_name == "park" for frame in green.frames)]
    native = _originals.original("_thread", "get_native_id")()
    say(f"report real={_originals.get_ident()} green={threading.get_ident()} native={native} "
        f"tasks={','.join(map(str, tasks()))} park={','.join(park) or '-'} "
        f"main_native={os.getpid()}")


tasks_before = len(tasks())
w = watcher.Watcher(report)
w.start()
w.arm(signal.SIGUSR2)
say(f"thread tasks={tasks_before}->{len(tasks())} ident={w.ident}")

if order == "after":
    patch()


def park() -> None:
    time.sleep(seconds)  # patched: the main greenlet waits in the hub


def parked() -> None:
    say("parked")
    if trigger == "api":
        w.request()  # served by the watcher while the hub blocks


say("ready")
say(f"blocking until={time.time() + seconds:.6f}")
# A green thread (patched _thread): it runs once the main greenlet waits in the hub.
__import__("_thread").start_new_thread(parked, ())
park()
say("returned")
time.sleep(30)
