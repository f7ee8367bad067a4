"""Soak: many whole reports, one trigger at a time, while threads and
greenlets churn.

    soak_service.py <log_dir> <triggers>

gmr is set up through its public API (reports in log_dir, service name
"soak", max_reports = 20 so the disk does not fill). The watcher's storm
interval is lowered to nothing: triggers here come one at a time, each
after the previous report, so coalescing would only slow the soak down.

The main thread sends the triggers, SIGUSR2 and the API in turn, and after
each waits for the watcher's report count to move, then reads the new
report file: whole (it ends with the last registered section, which names
the trigger) and how many triggers its header says it answered. It prints

    progress reports=100 rss_kb=<n> fds=<n>
    done triggers=<n> reports=<n> answered=<n> whole=<n> lost=<n> rss_kb=<a>-><b>
         fds=<a>-><b> seconds=<s> threads_churned=<n> greenlets_churned=<n>

(on one line; rss_kb and fds from the 100th report to the end).
"""

import os
import re
import signal
import sys
import threading
import time

import greenlet
from churn import churn_threads
from oslo_config import cfg

import gmr
from gmr import opts as gmr_opts

log_dir, triggers = sys.argv[1], int(sys.argv[2])

CONF = cfg.ConfigOpts()
gmr_opts.set_defaults(CONF)
CONF([], project="soak")
CONF.set_override("max_reports", 20, group="oslo_reports")

sent = 0  # triggers sent so far, named by the last section of each report
gmr.TextGuruMeditation.register_section("Soak", lambda: f"trigger {sent}")
gmr.TextGuruMeditation.setup_autorun("1.0", service_name="soak", log_dir=log_dir, conf=CONF)
watcher = gmr.TextGuruMeditation._watcher
assert watcher is not None
watcher.min_interval = 0.0

stop = threading.Event()
churned = {"threads": 0, "greenlets": 0}


def count_threads(batch: int) -> None:
    churned["threads"] += batch


def thread_churn() -> None:
    churn_threads(stop, 4, count_threads)


def parked_green() -> None:
    greenlet.getcurrent().parent.switch()


def greenlet_churn() -> None:
    while not stop.is_set():
        batch = [greenlet.greenlet(parked_green) for _ in range(20)]
        for green in batch:
            green.switch()  # parked
        time.sleep(0.002)
        for green in batch:
            green.switch()  # finished
        churned["greenlets"] += len(batch)


def rss_kb() -> int:
    with open("/proc/self/status") as status:
        return int(re.search(r"^VmRSS:\s+(\d+)", status.read(), re.MULTILINE).group(1))


def fds() -> int:
    return len(os.listdir("/proc/self/fd"))


def listing() -> set[tuple[str, int, int]]:
    """(name, inode, mtime_ns) of every report file: a name freed by retention
    may come back, as a new file."""
    found = set()
    for entry in os.scandir(log_dir):
        if not entry.name.startswith("."):
            stat = entry.stat()
            found.add((entry.name, stat.st_ino, stat.st_mtime_ns))
    return found


def read(name: str) -> str:
    with open(os.path.join(log_dir, name)) as report:
        return report.read()


churners = [threading.Thread(target=thread_churn), threading.Thread(target=greenlet_churn)]
for churner in churners:
    churner.start()
print("ready", flush=True)

started = time.monotonic()
answered = whole = lost = 0
files = listing()
at_100 = (0, 0)
for index in range(triggers):
    reports_before = watcher.reports
    sent += 1
    if index % 2:
        watcher.request()
    else:
        os.kill(os.getpid(), signal.SIGUSR2)
    deadline = time.monotonic() + 10
    while watcher.reports == reports_before and time.monotonic() < deadline:
        time.sleep(0.001)
    if watcher.reports == reports_before:
        lost += 1
        continue
    # The watcher counts a report once its file is in place (and retention
    # done), and waits for the next trigger: the directory holds still.
    now = listing()
    texts = [read(name) for name, _, _ in now - files]
    files = now
    mine = [text for text in texts if text.endswith(f"trigger {sent}\n")]
    if len(mine) == 1 and "section failed" not in mine[0]:
        whole += 1
        coalesced = re.search(r"^trigger = \w+(?: \((\d+) coalesced\))?$", mine[0], re.MULTILINE)
        answered += int(coalesced.group(1) or 1) if coalesced else 0
    if watcher.reports == 100:
        at_100 = (rss_kb(), fds())
        print(f"progress reports=100 rss_kb={at_100[0]} fds={at_100[1]}", flush=True)

seconds = time.monotonic() - started
stop.set()
for churner in churners:
    churner.join()
print(f"done triggers={sent} reports={watcher.reports} answered={answered} whole={whole} "
      f"lost={lost} rss_kb={at_100[0]}->{rss_kb()} fds={at_100[1]}->{fds()} "
      f"seconds={seconds:.1f} threads_churned={churned['threads']} "
      f"greenlets_churned={churned['greenlets']}", flush=True)
