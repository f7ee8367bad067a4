"""multiprocessing children of a service that set up gmr.

    mp_service.py <log_dir>

After setting up gmr (service name "mp", reports in log_dir) it starts three
children, waits until each is running, and prints

    children fork=<pid> spawn=<pid> spawn-gmr=<pid>

  fork       a "fork" context child: gmr came with the fork and re-armed
  spawn      a "spawn" context child that does not set up gmr
  spawn-gmr  a "spawn" context child whose entry point calls setup_autorun
             (service name "mp-spawned")

then "exit <pid> <exitcode>" as each child ends. Children idle for 30 s.
"""

import multiprocessing
import sys
import threading
import time

import gmr


def idle(ready) -> None:  # type: ignore[no-untyped-def]
    ready.set()
    time.sleep(30)


def idle_with_gmr(ready, log_dir: str) -> None:  # type: ignore[no-untyped-def]
    gmr.TextGuruMeditation.setup_autorun("1.0", service_name="mp-spawned", log_dir=log_dir)
    idle(ready)


def report_exit(child: multiprocessing.process.BaseProcess) -> None:
    child.join(60)
    print(f"exit {child.pid} {child.exitcode}", flush=True)


if __name__ == "__main__":
    log_dir = sys.argv[1]
    gmr.TextGuruMeditation.setup_autorun("1.0", service_name="mp", log_dir=log_dir)
    fork, spawn = multiprocessing.get_context("fork"), multiprocessing.get_context("spawn")
    plans = [(fork, idle, ()), (spawn, idle, ()), (spawn, idle_with_gmr, (log_dir,))]
    children = []
    for context, target, args in plans:
        ready = context.Event()
        child = context.Process(target=target, args=(ready, *args), daemon=True)
        child.start()
        if not ready.wait(30):
            sys.exit(f"child {child.pid} did not start")
        children.append(child)
        threading.Thread(target=report_exit, args=(child,), daemon=True).start()
    pids = [child.pid for child in children]
    print(f"children fork={pids[0]} spawn={pids[1]} spawn-gmr={pids[2]}", flush=True)
    print("ready", flush=True)
    time.sleep(30)
