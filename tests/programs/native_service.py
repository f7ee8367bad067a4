"""A service shaped like a native-threaded OpenStack service (nova-compute on
thread pools): oslo.config options read from a configuration file, an RPC
server's futurist pool of executor_thread_pool_size workers (64) with a few
handlers busy and the rest idle, a concurrent.futures pool for cell fan-out
with every worker busy and work queued, and a periodic-task thread. It
prints "ready" once every pool worker stands where it will stay, and serves
reports until killed.

    python tests/programs/native_service.py --config-file demo.conf

Used by scripts/demo (examples/run_demo.py) and tests/process/test_native_service.py.
"""

import sys
import threading
import warnings
from concurrent.futures import ThreadPoolExecutor

# futurist imports eventlet where it is installed, which warns at import.
warnings.filterwarnings("ignore", message=r"\s*Eventlet is deprecated")
import futurist  # noqa: E402
from oslo_config import cfg  # noqa: E402

import gmr  # noqa: E402
from gmr import opts as gmr_opts  # noqa: E402

CONF = cfg.CONF
CONF.register_opts([
    cfg.IntOpt("executor_thread_pool_size", default=64,
               help="Size of the RPC server's thread pool."),
])
CONF.register_opts(
    [
        cfg.StrOpt("listen", default="127.0.0.1:8774", help="Where the API listens."),
        cfg.IntOpt("workers", default=3, help="RPC handlers busy when the report is asked."),
        cfg.IntOpt("cells", default=4, help="Cells the fan-out pool talks to at once."),
        cfg.IntOpt("queued_cells", default=5, help="Cell requests waiting for a worker."),
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
        return "demo-compute"

    def version_string_with_package(self) -> str:
        return "1.0.0-1"


stop = threading.Event()
#: Each task that reached where it stays releases this once.
arrived = threading.Semaphore(0)


class Placement:
    """A remote service that never answers."""

    def claim_resources(self, instance: str) -> None:
        arrived.release()
        stop.wait()


class ComputeManager:
    """What the RPC server's pool runs."""

    def __init__(self) -> None:
        self.placement = Placement()

    def build_and_run_instance(self, instance: str) -> None:
        self.placement.claim_resources(instance)

    def warm_up(self, ready: threading.Barrier) -> None:
        # Every worker of the pool started (an RPC server under load once).
        ready.wait()


class CellFanout:
    """Cell fan-out in a concurrent.futures pool: every worker waits on its cell."""

    def scatter(self, cell: int) -> None:
        arrived.release()
        stop.wait()

    def queued(self, cell: int) -> None:
        """Work that is still in the queue when the report is made."""


def run_periodic_tasks() -> None:
    arrived.release()
    while not stop.wait(60):
        pass


def main() -> None:
    gmr_opts.set_defaults(CONF)
    CONF(sys.argv[1:], project="demo")
    gmr.TextGuruMeditation.register_section(
        "Demo Queues", lambda: {"incoming": 3, "retries": [1, 2], "state": "draining"})
    gmr.TextGuruMeditation.setup_autorun(Version(), conf=CONF, service_name="demo-compute")

    manager = ComputeManager()
    size = CONF.executor_thread_pool_size
    rpc_pool = futurist.ThreadPoolExecutor(max_workers=size)
    started = threading.Barrier(size + 1)
    warm = [rpc_pool.submit(manager.warm_up, started) for _ in range(size)]
    started.wait(60)
    for future in warm:
        future.result(60)
    for number in range(CONF.demo.workers):
        rpc_pool.submit(manager.build_and_run_instance, f"instance-{number}")

    fanout = CellFanout()
    cell_pool = ThreadPoolExecutor(max_workers=CONF.demo.cells, thread_name_prefix="cell-fanout")
    for cell in range(CONF.demo.cells):
        cell_pool.submit(fanout.scatter, cell)
    periodic = threading.Thread(target=run_periodic_tasks, name="periodic-tasks", daemon=True)
    periodic.start()
    for _ in range(CONF.demo.workers + CONF.demo.cells + 1):
        arrived.acquire()
    for cell in range(CONF.demo.queued_cells):
        cell_pool.submit(fanout.queued, cell)
    print("ready", flush=True)
    try:
        stop.wait()
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
