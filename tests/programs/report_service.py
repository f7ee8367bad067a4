"""A service for report tests: gmr set up through its public API only.

    report_service.py [options] [-- oslo.config arguments]

Prints "ready" once set up, then idles until killed.
"""

import argparse

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
args, oslo_args = parser.parse_known_args()

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
lets = [greenlet.greenlet(parked_in_named_function) for _ in range(args.greenlets)]
for one in lets:
    one.switch()

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

print("ready", flush=True)
while True:
    if args.monkey == "eventlet":
        import eventlet

        eventlet.sleep(0.05)
    else:
        time.sleep(0.05)
