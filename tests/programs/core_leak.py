"""Leak check: capture many times in one process, and print whether the
parked code objects' reference counts and the RSS stayed flat.

    refs <before> <after>
    rss_kb <before> <after>
    captures <n> threads <t> greenlets <g> implementation <name>
"""

import gc
import os
import sys
import threading

import greenlet

from gmr import snapshot
from gmr._impl import walker as core

captures = int(sys.argv[1]) if len(sys.argv) > 1 else 10000


def rss_kb() -> int:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") // 1024


def thread_park(depth: int, release: threading.Event) -> None:
    if depth:
        thread_park(depth - 1, release)
    else:
        release.wait(600)


def green_park(depth: int) -> None:
    if depth:
        green_park(depth - 1)
    else:
        greenlet.getcurrent().parent.switch()


release = threading.Event()
threads = [threading.Thread(target=thread_park, args=(30, release), daemon=True)
           for _ in range(4)]
for thread in threads:
    thread.start()
greens = [greenlet.greenlet(green_park) for _ in range(20)]
for green in greens:
    green.switch(30)

codes = (thread_park.__code__, green_park.__code__)


def refs() -> list[int]:
    return [sys.getrefcount(code) for code in codes]


def capture_many(count: int) -> tuple[int, int]:
    """count captures, every tenth one a whole snapshot, the others raw
    captures whose every thread and greenlet is handed out."""
    found = (0, 0)
    for index in range(count):
        if index % 10 == 0:
            taken = snapshot.take()
            found = (len(taken.threads), sum(g.state == "suspended" for g in taken.greenlets))
            continue
        raw = core.capture(greenlet.greenlet)
        for thread in range(raw.threads):
            raw.thread(thread)
        for green in range(raw.greenlets):
            raw.greenlet(green)
        if index % 2:
            raw.release()  # and the others are released when they die
        del raw
    return found


capture_many(500)  # warm up: line tables, allocator pools, capture size hints
gc.collect()
refs_before, rss_before = refs(), rss_kb()
found = capture_many(captures)
gc.collect()
refs_after, rss_after = refs(), rss_kb()
print(f"refs {','.join(map(str, refs_before))} {','.join(map(str, refs_after))}", flush=True)
print(f"rss_kb {rss_before} {rss_after}", flush=True)
print(f"captures {captures} threads {found[0]} greenlets {found[1]} "
      f"implementation {core.IMPLEMENTATION}", flush=True)
release.set()
for green in greens:
    green.throw(greenlet.GreenletExit)
