"""A service shaped like a native-threaded OpenStack service (nova-compute on
thread pools): oslo.config options read from a configuration file, a real
oslo.messaging RPC server (threading executor, on the in-process fake://
transport) whose pool of executor_thread_pool_size workers (64) has every
worker started and a few busy in calls that API threads make, a
concurrent.futures pool for cell fan-out with every worker busy and work
queued, and a periodic-task thread. It prints "ready" once every pool worker
stands where it will stay, and serves reports until killed.

SIGUSR1 lets the calls in the RPC server's endpoint return: each API thread
prints "replied <instance>: <result>", then the service prints "released"
once the server's workers are all idle again.

    python tests/programs/native_service.py --config-file demo.conf

Used by scripts/demo (examples/run_demo.py) and tests/process/test_native_service.py.
"""

import signal
import sys
import threading
import time
import warnings
from concurrent.futures import ThreadPoolExecutor

# futurist imports eventlet where it is installed, which warns at import.
warnings.filterwarnings("ignore", message=r"\s*Eventlet is deprecated")
import oslo_messaging as messaging  # noqa: E402
from oslo_config import cfg  # noqa: E402

import gmr  # noqa: E402
from gmr import opts as gmr_opts  # noqa: E402

CONF = cfg.CONF
CONF.register_opts([
    cfg.StrOpt("host", default="compute-1", help="The RPC server's name on its topic."),
])
CONF.register_opts(
    [
        cfg.StrOpt("listen", default="127.0.0.1:8774", help="Where the API listens."),
        cfg.IntOpt("workers", default=3, help="RPC calls blocked in the server when the "
                                              "report is asked."),
        cfg.IntOpt("cells", default=4, help="Cells the fan-out pool talks to at once."),
        cfg.IntOpt("queued_cells", default=5, help="Cell requests waiting for a worker."),
        cfg.StrOpt("connection", help="Database URL."),
        cfg.StrOpt("admin_password", secret=True, help="A secret: printed as ***."),
    ],
    group="demo",
)

TOPIC = "compute"


class Version:
    """A Nova-style version object."""

    def vendor_string(self) -> str:
        return "Example Org"

    def product_string(self) -> str:
        return "demo-compute"

    def version_string_with_package(self) -> str:
        return "1.0.0-1"


stop = threading.Event()
#: Set on SIGUSR1: the calls blocked in the RPC endpoint return.
release = threading.Event()
#: Each task that reached where it stays releases this once.
arrived = threading.Semaphore(0)
saying = threading.Lock()
#: Every worker of the RPC server's pool in a call at once (the warm-up).
started: threading.Barrier


class Placement:
    """A remote service that answers when the test says so."""

    def claim_resources(self, instance: str) -> str:
        arrived.release()
        release.wait()
        return f"claimed for {instance}"


class ComputeManager:
    """The RPC server's endpoint: what its pool runs."""

    def __init__(self) -> None:
        self.placement = Placement()

    def build_and_run_instance(self, context: dict, instance: str) -> str:
        return self.placement.claim_resources(instance)

    def warm_up(self, context: dict) -> None:
        # Every worker of the pool started (an RPC server under load once).
        started.wait()


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


def say(line: str) -> None:
    """One line on stdout, whole (print() writes the text and its newline
    apart: threads printing at once would mix them)."""
    with saying:
        print(line, flush=True)


def api_request(client: messaging.RPCClient, instance: str) -> None:
    """An API worker's call to the compute service, waiting for its reply."""
    reply = client.call({}, "build_and_run_instance", instance=instance)
    say(f"replied {instance}: {reply}")


def executed(server: messaging.MessageHandlingServer) -> int:
    """Work items the RPC server's pool has finished (futurist's statistics)."""
    return int(server._work_executor.statistics.executed)


def settle(server: messaging.MessageHandlingServer, count: int) -> None:
    """Wait until the RPC server's pool has finished count work items (futurist
    counts one as its worker ends it, on its way back to the queue)."""
    while executed(server) < count:
        time.sleep(0.01)


def serve_sigusr1(server: messaging.MessageHandlingServer, warmed: int,
                  callers: list[threading.Thread]) -> None:
    """On SIGUSR1 the calls blocked in the endpoint return; "released" once
    their replies came and the RPC server's workers are idle again."""
    signal.sigwait({signal.SIGUSR1})
    release.set()
    for caller in callers:
        caller.join()
    settle(server, warmed + len(callers))
    say("released")


def main() -> None:
    global started
    # SIGUSR1 is taken by one thread's sigwait(), no handler: blocked here,
    # before any thread starts, so that every thread inherits the mask.
    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGUSR1})
    gmr_opts.set_defaults(CONF)
    CONF(sys.argv[1:], project="demo")
    gmr.TextGuruMeditation.register_section(
        "Demo Queues", lambda: {"incoming": 3, "retries": [1, 2], "state": "draining"})
    gmr.TextGuruMeditation.setup_autorun(Version(), conf=CONF, service_name="demo-compute")

    # The in-process fake driver: a real RPC server and client, no broker.
    transport = messaging.get_rpc_transport(CONF, url="fake://")
    target = messaging.Target(topic=TOPIC, server=CONF.host)
    # Its executor is futurist's ThreadPoolExecutor: "threading", the default
    # where eventlet has not patched the thread module (the executor argument
    # that names it is deprecated).
    server = messaging.get_rpc_server(transport, target, [ComputeManager()])
    server.start()
    client = messaging.get_rpc_client(transport, target, timeout=3600)
    size = CONF.executor_thread_pool_size  # registered by the server
    started = threading.Barrier(size + 1)
    for _ in range(size):
        client.cast({}, "warm_up")
    started.wait(60)
    settle(server, size)
    callers = [threading.Thread(target=api_request, args=(client, f"instance-{number}"),
                                name=f"api-{number}", daemon=True)
               for number in range(CONF.demo.workers)]
    for caller in callers:
        caller.start()

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
    threading.Thread(target=serve_sigusr1, args=(server, size, callers), name="signals",
                     daemon=True).start()
    say("ready")
    try:
        # In waits of half a second: the pure twin's handler runs in the main
        # thread, and a signal the kernel gives another thread does not wake
        # a wait without a timeout (a pending SIGUSR1 can make it do so).
        while not stop.wait(0.5):
            pass
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
