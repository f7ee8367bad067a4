"""A service for delivery tests: the watcher prints one line per report
("report <pid> <trigger> x<count> main-at=<function>").

argv[1] is what the main thread does after "ready":
  sleep      time.sleep in a loop
  read       a blocking os.read on a pipe nobody writes
  fork       fork a child that waits for a signal, then reports "child <pid>"
  storm      send itself 10,000 SIGUSR2, then idle
  churn      start and end threads continuously while idling
  displace   replace gmr's handler with signal.signal, then idle

The environment's REPORT_BURST and REPORT_INTERVAL set the watcher's rate
(1 and 0.5 s by default; REPORT_INTERVAL=0 lifts the limit).
"""

import os
import signal
import sys
import threading
import time

from churn import churn_threads

from gmr import snapshot, watcher

mode = sys.argv[1]


def say(line: str) -> None:
    """One whole line in one write: the watcher thread and the main thread
    both print, and print() writes the text and its newline apart."""
    os.write(1, (line + "\n").encode())


answered = 0  # the triggers the report lines written so far have answered


def report(captured: snapshot.Snapshot) -> None:
    global answered
    main = [t for t in captured.threads if t.is_main]
    frames = main[0].frames if main else ()
    where = frames[-1].function if frames else "-"
    stack = ",".join(frame.function for frame in frames) or "-"
    say(f"report {captured.pid} {captured.trigger} x{captured.coalesced} main-at={where} "
        f"main-stack={stack}")
    # Counted once its line is out: the storm's "after" line, which main
    # prints once every signal is answered, then comes after every report
    # line that answered one.
    answered += captured.coalesced


w = watcher.Watcher(report, min_interval=float(os.environ.get("REPORT_INTERVAL", "0.5")),
                    burst=int(os.environ.get("REPORT_BURST", "1")))
w.start()
w.arm(signal.SIGUSR2)


def idle(seconds: float = 30.0) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        time.sleep(0.05)


def fds() -> int:
    return len(os.listdir("/proc/self/fd"))


def tasks() -> int:
    return len(os.listdir("/proc/self/task"))


say("ready")
if mode == "sleep":
    idle()
elif mode == "read":
    r, _w = os.pipe()
    os.read(r, 1)
elif mode == "fork":
    pid = os.fork()
    if pid == 0:
        say(f"child {os.getpid()}")
        idle(5)
        os._exit(0)
    idle()
elif mode == "storm":
    before = (fds(), tasks())
    begun = time.monotonic()
    for _ in range(10000):
        # Sent to itself, unblocked: handled before kill() returns, so the
        # kernel merges none of them.
        os.kill(os.getpid(), signal.SIGUSR2)
    say(f"storm sent seconds={time.monotonic() - begun:.3f}")
    deadline = time.monotonic() + 60
    while answered < 10000 and time.monotonic() < deadline:  # every signal answered
        time.sleep(0.01)
    say(f"after fds={before[0]}->{fds()} tasks={before[1]}->{tasks()}")
    idle()
elif mode == "churn":
    stop = threading.Event()
    churners = [threading.Thread(target=churn_threads, args=(stop, 8)) for _ in range(2)]
    for thread in churners:
        thread.start()
    say("churning " + " ".join(str(thread.native_id) for thread in churners))
    idle()
elif mode == "displace":
    signal.signal(signal.SIGUSR2, lambda *_: say("application handler"))
    say(f"displaced {w.displaced()}")
    idle()
