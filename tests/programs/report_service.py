"""A service for report tests: gmr set up through its public API only.

    report_service.py [options] [-- oslo.config arguments]

Prints "ready" once set up, then idles until killed (in an asyncio loop with
--asyncio).
"""

import argparse
import os
import sys

parser = argparse.ArgumentParser()
parser.add_argument("--monkey", choices=["eventlet", "gevent"])
parser.add_argument("--log-dir")
parser.add_argument("--service-name")
parser.add_argument("--signum", type=int)
parser.add_argument("--version", default="nova", choices=["nova", "pbr", "str", "none"])
parser.add_argument("--twice", action="store_true", help="call setup_autorun twice")
parser.add_argument("--sections", action="store_true", help="register every kind of section")
parser.add_argument("--hold-locks", action="store_true",
                    help="a greenlet holds the logging lock and a patched lock across sleeps")
parser.add_argument("--greenlets", type=int, default=3)
parser.add_argument("--places", type=int, default=1, choices=[1, 2, 3],
                    help="park the greenlets in this many distinct functions, in turn")
parser.add_argument("--thread-kinds", action="store_true",
                    help="a sleeping non-daemon thread and a CPU-bound daemon thread")
parser.add_argument("--gevent-greenlets", action="store_true",
                    help="gevent greenlets: named, with an ident, never started, finished")
parser.add_argument("--asyncio", action="store_true",
                    help="named asyncio tasks in a loop of their own thread and in main")
parser.add_argument("--upstream", help="a URL on the command line (may hold credentials)")
parser.add_argument("--stderr-to", help="send stderr (and so the reports) to this file")
parser.add_argument("--asyncio-probe", action="store_true",
                    help="a section saying whether asyncio has been imported")
parser.add_argument("--block-in-c", type=float, metavar="SECONDS",
                    help='after "ready", block the main thread in C without the GIL, '
                         'framed by "blocking" and "released"')
args, oslo_args = parser.parse_known_args()

if args.stderr_to:
    os.dup2(os.open(args.stderr_to, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600), 2)

if args.monkey == "eventlet":
    import eventlet

    eventlet.monkey_patch()
elif args.monkey == "gevent":
    from gevent import monkey

    monkey.patch_all()

import logging  # noqa: E402
import threading  # noqa: E402
import time  # noqa: E402

import greenlet  # noqa: E402
from oslo_config import cfg  # noqa: E402

import gmr  # noqa: E402
from gmr import opts as gmr_opts  # noqa: E402

CONF = cfg.CONF
CONF.register_opts([
    cfg.StrOpt("connection", default="postgresql://app:dbpass@db/app"),
    cfg.StrOpt("api_token", secret=True, default="tok-123"),
    cfg.StrOpt("dsn", default="host=db"),
    cfg.IntOpt("workers", default=2),
], group="app")


class NovaVersion:
    def vendor_string(self) -> str:
        return "Test Vendor"

    def product_string(self) -> str:
        return "test-product"

    def version_string_with_package(self) -> str:
        return "9.8.7-1"


def version():  # type: ignore[no-untyped-def]
    if args.version == "nova":
        return NovaVersion()
    if args.version == "pbr":
        import pbr.version

        return pbr.version.VersionInfo("oslo.config")
    if args.version == "str":
        return "5.4.3"
    return None


def parked_in_named_function() -> None:
    greenlet.getcurrent().parent.switch()


def parked_elsewhere() -> None:
    greenlet.getcurrent().parent.switch()


def parked_in_a_third_place() -> None:
    greenlet.getcurrent().parent.switch()


PLACES = [parked_in_named_function, parked_elsewhere, parked_in_a_third_place][:args.places]


stop = threading.Event()


def worker_waits() -> None:
    stop.wait()


gmr_opts.set_defaults(CONF)
CONF(oslo_args, project="report-test")
if args.sections:
    from oslo_reports.models import base as oslo_base

    class Odd:
        def __str__(self) -> str:
            return "an object shown by str()"

    gmr.TextGuruMeditation.register_section("A String", lambda: "plain text\nsecond line")
    gmr.TextGuruMeditation.register_section("A Mapping", lambda: {"k": "v", "nested": {"a": 1}})
    gmr.TextGuruMeditation.register_section("A Sequence", lambda: ["one", "two", ["deeper"]])
    gmr.TextGuruMeditation.register_section("An Object", lambda: Odd())
    gmr.TextGuruMeditation.register_section(
        "An Oslo Model", lambda: oslo_base.ReportModel(data={"oslo_key": "oslo_value"}))
    gmr.TextGuruMeditation.register_section("A Broken One", lambda: 1 / 0)
if args.asyncio_probe:
    gmr.TextGuruMeditation.register_section(
        "Imported", lambda: {"asyncio": "asyncio" in sys.modules})

kwargs = {}
if args.log_dir:
    kwargs["log_dir"] = args.log_dir
if args.service_name:
    kwargs["service_name"] = args.service_name
if args.signum:
    kwargs["signum"] = args.signum
gmr.TextGuruMeditation.setup_autorun(version(), conf=CONF, **kwargs)
if args.twice:
    gmr.TextGuruMeditation.setup_autorun(version(), conf=CONF, **kwargs)

threads = [threading.Thread(target=worker_waits, name=f"worker-{n}", daemon=True)
           for n in range(2)]
for thread in threads:
    thread.start()
lets = [greenlet.greenlet(PLACES[n % len(PLACES)]) for n in range(args.greenlets)]
for one in lets:
    one.switch()


def sleeps() -> None:
    stop.wait()


def spins() -> None:
    import hashlib

    # One long hash (minutes), all of it without the GIL: the kernel sees
    # this thread running whenever it looks, even while the report holds the GIL.
    while True:
        hashlib.pbkdf2_hmac("sha256", b"password", b"salt", 100_000_000)


if args.thread_kinds:
    from gmr.facts import thread_facts

    threading.Thread(target=sleeps, name="sleeper", daemon=False).start()
    spinner = threading.Thread(target=spins, name="spinner", daemon=True)
    spinner.start()
    deadline = time.monotonic() + 10  # until the kernel has counted some CPU time
    while (thread_facts(spinner.native_id).cpu_seconds or 0) < 0.05 and time.monotonic() < deadline:
        time.sleep(0.01)


def parked_forever() -> None:
    import gevent

    gevent.sleep(3600)


def spawn_gevent_greenlets() -> list[object]:
    import gevent

    poller = gevent.Greenlet(parked_forever)
    poller.name = "poller"
    poller.start()
    numbered = gevent.spawn(parked_forever)
    print(f"minimal_ident {numbered.minimal_ident}", flush=True)  # assigned here, by gevent
    pending = gevent.Greenlet(parked_forever)
    pending.name = "never-started"
    finished = gevent.spawn(lambda: None)
    gevent.sleep(0.1)  # poller and numbered park, finished ends
    return [poller, numbered, pending, finished]


if args.gevent_greenlets:
    gevent_greenlets = spawn_gevent_greenlets()

if args.hold_locks:
    import eventlet  # the eventlet mode only

    lock = threading.Lock()

    def hold() -> None:
        while True:
            with lock, logging._lock:
                eventlet.sleep(0.05)
            eventlet.sleep(0)

    eventlet.spawn(hold)
    eventlet.sleep(0.1)



async def awaits_an_event(event) -> None:  # type: ignore[no-untyped-def]
    await event.wait()


async def serve_forever(tag: str, ready: threading.Event) -> None:
    import asyncio

    event = asyncio.Event()
    named = [asyncio.create_task(awaits_an_event(event), name=f"{tag}-waiter-{n}")
             for n in range(2)]
    await asyncio.sleep(0)  # the tasks start, and park in event.wait()
    ready.set()
    await asyncio.gather(*named)


if args.asyncio:
    import asyncio

    loops_ready = [threading.Event(), threading.Event()]
    threading.Thread(target=lambda: asyncio.run(serve_forever("thread", loops_ready[0])),
                     name="loop-thread", daemon=True).start()

    async def main() -> None:
        serving = asyncio.create_task(serve_forever("main", loops_ready[1]), name="main-server")
        while not all(ready.is_set() for ready in loops_ready):
            await asyncio.sleep(0.01)
        print("ready", flush=True)
        await serving

    asyncio.run(main())


def block_in_c(seconds: float) -> None:
    """pthread_mutex_timedlock on a mutex this thread already holds: ctypes.CDLL
    releases the GIL for the call, which waits out its timeout and never
    returns EINTR, so a Python-level signal handler cannot run meanwhile."""
    import ctypes

    class Timespec(ctypes.Structure):
        _fields_ = [("tv_sec", ctypes.c_long), ("tv_nsec", ctypes.c_long)]

    libc = ctypes.CDLL(None)
    mutex = ctypes.create_string_buffer(64)  # zeroed: PTHREAD_MUTEX_INITIALIZER
    libc.pthread_mutex_lock(mutex)
    until = time.time() + seconds
    deadline = Timespec(int(until), int(until % 1 * 1e9))
    libc.pthread_mutex_timedlock(mutex, ctypes.byref(deadline))


print("ready", flush=True)
if args.block_in_c:
    print("blocking", flush=True)
    block_in_c(args.block_in_c)
    print("released", flush=True)
while True:
    if args.monkey == "eventlet":
        import eventlet

        eventlet.sleep(0.05)
    else:
        time.sleep(0.05)
