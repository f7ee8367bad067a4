"""What gmr's own threads do while nothing is asked: a service armed for
SIGUSR2 (watcher and watchdog), then one watching a trigger file, each left
idle; the kernel's count of each thread's context switches and its CPU time
over the window. A thread that is never switched in never runs, so never
takes the GIL.

    python benchmarks/idle.py [--seconds 10]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time

from gmr import facts

SERVICE = r"""
import sys, time
from oslo_config import cfg
import gmr
from gmr import opts
conf = cfg.ConfigOpts()
opts.set_defaults(conf)
conf([], project="idle")
if sys.argv[1] == "file":
    conf.set_override("file_event_handler", sys.argv[2] + "/trigger", "oslo_reports")
gmr.TextGuruMeditation.setup_autorun("1.0", conf=conf, log_dir=sys.argv[2])
print("ready", flush=True)
time.sleep(3600)
"""


def threads_of(pid: int) -> dict[str, tuple[int, float]]:
    """name -> (context switches, CPU seconds) of each of the process's threads."""
    tids = [int(tid) for tid in os.listdir(f"/proc/{pid}/task")]
    cpu = facts.threads_facts(tids, pid)
    texts = facts.read_texts(f"/proc/{pid}/task/{tid}/{name}"
                             for tid in tids for name in ("comm", "status"))
    out = {}
    for tid in tids:
        name = (texts[f"/proc/{pid}/task/{tid}/comm"] or "?").strip()
        status = facts.status_fields(texts[f"/proc/{pid}/task/{tid}/status"])
        switches = sum(int(status.get(kind, 0)) for kind in ("voluntary_ctxt_switches",
                                                              "nonvoluntary_ctxt_switches"))
        out[f"{name} ({tid})"] = (switches, cpu[tid].cpu_seconds or 0.0)
    return out


def measure(mode: str, seconds: float) -> list[str]:
    with tempfile.TemporaryDirectory() as scratch:
        service = subprocess.Popen([sys.executable, "-c", SERVICE, mode, scratch],
                                   stdout=subprocess.PIPE, text=True)
        try:
            assert service.stdout is not None and service.stdout.readline().strip() == "ready"
            time.sleep(1.0)
            before = threads_of(service.pid)
            time.sleep(seconds)
            after = threads_of(service.pid)
        finally:
            service.kill()
            service.wait(10)
    rows = []
    for name, (switches, cpu) in sorted(after.items()):
        was = before.get(name, (0, 0.0))
        rows.append(f"| {mode} | {name} | {switches - was[0]} | {cpu - was[1]:.2f} |")
    return rows


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=10.0)
    seconds = parser.parse_args().seconds
    print(f"Python {sys.version.split()[0]}, {seconds:g} s idle")
    print("| trigger | thread | context switches | CPU s |")
    print("| --- | --- | --- | --- |")
    for mode in ("signal", "file"):
        print("\n".join(measure(mode, seconds)), flush=True)


if __name__ == "__main__":
    main()
