"""A service whose registered section blocks: it waits on a lock the main
thread holds while the main thread is stuck (or, with --monkey eventlet, on an
eventlet semaphore a parked greenlet holds).

    blocking_section.py [--monkey eventlet] [--api] [-- oslo.config arguments]

With --api, the main thread first asks for a report through the synchronous
API while it holds the lock, and prints "api" and that report's note line.
Prints "ready" once set up, then stays stuck holding the lock.
"""

import argparse

parser = argparse.ArgumentParser()
parser.add_argument("--monkey", choices=["eventlet"])
parser.add_argument("--api", action="store_true")
args, oslo_args = parser.parse_known_args()

if args.monkey == "eventlet":
    import eventlet

    eventlet.monkey_patch()

import threading  # noqa: E402

from oslo_config import cfg  # noqa: E402

import gmr  # noqa: E402
from gmr import opts as gmr_opts  # noqa: E402

CONF = cfg.CONF
gmr_opts.set_defaults(CONF)
CONF(oslo_args, project="blocking-test")

if args.monkey == "eventlet":
    from eventlet import semaphore

    held = semaphore.Semaphore(1)
    parked = eventlet.event.Event()

    def holder() -> None:
        with held:
            parked.wait()  # never sent: the greenlet stays parked holding it

    eventlet.spawn(holder)
    eventlet.sleep(0)  # the holder takes the semaphore and parks
    assert held.locked()
else:
    held = threading.Lock()  # type: ignore[assignment]
    held.acquire()  # the main thread holds it, and gets stuck below


def stuck_section() -> str:
    with held:
        return "never shown"


gmr.TextGuruMeditation.register_section("Before", lambda: {"before_key": "before_value"})
gmr.TextGuruMeditation.register_section("Stuck", stuck_section)
gmr.TextGuruMeditation.register_section("After", lambda: ["after_item"])
gmr.TextGuruMeditation.setup_autorun("1.0", conf=CONF, service_name="blocking")

if args.api:
    text = gmr.TextGuruMeditation("1.0").run()
    notes = [line for line in text.splitlines() if line.startswith("gmr: section")]
    print("api", *notes, sep="\n", flush=True)

print("ready", flush=True)
if args.monkey == "eventlet":
    while True:
        eventlet.sleep(0.05)
else:
    threading.Event().wait()  # stuck, holding the lock
