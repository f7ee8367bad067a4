"""Forks after gmr is set up, and says what it saw.

    forks.py <log_dir> <alone|with-thread|during-report|chain>

gmr is set up (reports in log_dir, watchdog on), then a Python fork hook of
another library's is registered after gmr's. With "with-thread" a thread of
the service's own runs across the fork. The program forks once and prints
one JSON line: gmr's threads before and after the fork, the
multi-threaded-fork warnings it gave, and whether the child had a watcher
of its own. Then "ready", and it waits for signals. With "during-report"
it first asks for a report whose registered section takes a second, and
forks while that section runs: the JSON line says whether the report was
written by the time os.fork() returned. With "chain", five generations
are forked, each by the one before, and each prints a JSON line of its
descriptors and gmr's threads.
"""

import json
import os
import re
import sys
import threading
import warnings

from gmr import guru, watcher

log_dir, mode = sys.argv[1], sys.argv[2]
guru.TextGuruMeditation.setup_autorun("1.0", service_name="forks", log_dir=log_dir)


def gmr_threads() -> list[str]:
    names = []
    for tid in os.listdir("/proc/self/task"):
        try:
            with open(f"/proc/self/task/{tid}/comm") as comm:
                name = comm.read().strip()
        except OSError:
            continue
        if name.startswith("gmr-"):
            names.append(name)
    return sorted(names)


def descriptors() -> list[str]:
    """This process's descriptors: number and what each is."""
    found = []
    for fd in sorted(os.listdir("/proc/self/fd"), key=int):
        try:
            target = os.readlink(f"/proc/self/fd/{fd}")
        except OSError:  # the directory's own descriptor, gone once listed
            continue
        # pipe:[inode]: a pipe made anew in each process is still the same kind
        found.append(f"{fd} {re.sub(r'[[][0-9]+[]]', '', target)}")
    return found


if mode == "chain":
    for generation in range(6):
        if generation:
            pid = os.fork()
            if pid:  # the generation before waits for the rest of the chain
                os._exit(os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]))
        print(json.dumps({"generation": generation, "fds": descriptors(),
                          "threads": gmr_threads()}), flush=True)
    os._exit(0)

after_hook_ran = []
# Another library's hook, in Python, after gmr's: Python code runs in the
# parent after gmr's own hook and before os.fork() returns.
os.register_at_fork(after_in_parent=lambda: after_hook_ran.append(True))

if mode == "with-thread":
    stop = threading.Event()
    threading.Thread(target=stop.wait, name="service-worker", daemon=True).start()

in_section = threading.Event()


def slow_section() -> str:
    in_section.set()
    threading.Event().wait(1.0)  # a section that takes a second
    return "done"


if mode == "during-report":
    guru.TextGuruMeditation.register_section("Slow", slow_section)
    guru.TextGuruMeditation._watcher.request()
    in_section.wait()

before = gmr_threads()
with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always")
    pid = os.fork()
    if pid == 0:
        os._exit(0 if "gmr-watcher" in gmr_threads() else 3)
written = any("_gurumeditation_" in name for name in os.listdir(log_dir))
_, status = os.waitpid(pid, 0)
print(json.dumps({
    "report_written_at_fork": written,
    "before": before,
    "after": gmr_threads(),
    "warnings": [str(w.message) for w in caught if "multi-threaded" in str(w.message)],
    "child_status": os.waitstatus_to_exitcode(status),
    "after_hook_ran": after_hook_ran == [True],
    # The fork is over: gmr keeps no reference to the frame that forked.
    "fork_frame_kept": watcher._fork_point is not None,
}), flush=True)
print("ready", flush=True)
threading.Event().wait()
