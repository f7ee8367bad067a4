"""A small service to show gmr: real OS threads, greenlets parked in named
functions, and real oslo.config options (one of them secret) read from a
configuration file. It prints "ready" and serves reports until killed.

    python examples/demo_service.py --config-file demo.conf
"""

import sys
import threading

import greenlet
from oslo_config import cfg

import gmr
from gmr import opts as gmr_opts

CONF = cfg.CONF
CONF.register_opts(
    [
        cfg.StrOpt("listen", default="127.0.0.1:8774", help="Where the API listens."),
        cfg.IntOpt("workers", default=4, help="Worker threads."),
        cfg.StrOpt("connection", help="Database URL."),
        cfg.StrOpt("admin_password", secret=True, help="A secret: printed as ***."),
    ],
    group="demo",
)


class Version:
    """A Nova-style version object."""

    def vendor_string(self) -> str:
        return "Example Org"

    def product_string(self) -> str:
        return "demo-service"

    def version_string_with_package(self) -> str:
        return "1.0.0-1"


stop = threading.Event()


def handle_requests(worker: int) -> None:
    wait_for_work(worker)


def wait_for_work(worker: int) -> None:
    stop.wait()


def poll_database(connection: str) -> None:
    greenlet.getcurrent().parent.switch()  # parked, as a green thread waiting on I/O


def consume_queue(name: str) -> None:
    greenlet.getcurrent().parent.switch()


def main() -> None:
    gmr_opts.set_defaults(CONF)
    CONF(sys.argv[1:], project="demo")
    gmr.TextGuruMeditation.register_section(
        "Demo Queues", lambda: {"incoming": 3, "retries": [1, 2], "state": "draining"})
    gmr.TextGuruMeditation.setup_autorun(Version(), conf=CONF, service_name="demo-service")
    workers = [threading.Thread(target=handle_requests, args=(n,), name=f"api-worker-{n}",
                                daemon=True) for n in range(CONF.demo.workers)]
    for worker in workers:
        worker.start()
    parked = [greenlet.greenlet(poll_database), greenlet.greenlet(consume_queue)]
    parked[0].switch(CONF.demo.connection)
    parked[1].switch("notifications")
    print("ready", flush=True)
    try:
        stop.wait()
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
