"""Real oslo.messaging servers on the in-process fake:// transport, and what
gmr.pools reads of them: an RPC server with two calls blocked in its
endpoint (behind oslo.messaging's expected_exceptions wrapper), beside an
endpoint that records every attribute looked up on it the ordinary way (a
__getattr__, a __class__ property), and a notification listener with a
notification blocked in its endpoint. It takes a snapshot, prints one JSON
line (each pool that serves a server, what its busy workers run, and the
lookups the report caused) and exits.

    python tests/programs/messaging_servers.py

Used by tests/unit/test_pools.py.
"""

import json
import sys
import threading
import warnings
from dataclasses import asdict

# futurist imports eventlet where it is installed, which warns at import.
warnings.filterwarnings("ignore", message=r"\s*Eventlet is deprecated")
import oslo_messaging as messaging  # noqa: E402
from oslo_config import cfg  # noqa: E402

from gmr import pools, snapshot  # noqa: E402

go = threading.Event()
arrived = threading.Semaphore(0)
#: The attributes looked up on Watchful the ordinary way.
looked_up: list[str] = []


class Watchful:
    """An endpoint whose every ordinary lookup of a missing attribute, and
    of its __class__, is recorded: reading it must cause none."""

    def __getattr__(self, name: str) -> object:
        looked_up.append(name)
        raise AttributeError(name)

    @property  # type: ignore[misc]
    def __class__(self) -> type:
        looked_up.append("__class__")
        return Watchful


class Compute:
    @messaging.expected_exceptions(ValueError)
    def build(self, context: dict, instance: str) -> str:
        arrived.release()
        go.wait(60)
        return instance


class Audit:
    def info(self, context: dict, publisher_id: str, event_type: str, payload: dict,
             metadata: dict) -> None:
        arrived.release()
        go.wait(60)


def main() -> None:
    cfg.CONF([])
    transport = messaging.get_rpc_transport(cfg.CONF, url="fake://")
    target = messaging.Target(topic="compute", server="node-1", exchange="nova")
    rpc = messaging.get_rpc_server(transport, target, [Watchful(), Compute()])
    rpc.start()
    notifications = messaging.get_notification_transport(cfg.CONF, url="fake://")
    listener = messaging.get_notification_listener(
        notifications, [messaging.Target(topic="notifications")], [Audit()])
    listener.start()

    client = messaging.get_rpc_client(transport, target, timeout=60)
    callers = [threading.Thread(target=client.call, args=({}, "build"),
                                kwargs={"instance": f"i-{n}"}) for n in range(2)]
    for caller in callers:
        caller.start()
    notifier = messaging.Notifier(notifications, publisher_id="compute.node-1",
                                  driver="messaging", topics=["notifications"])
    notifier.info({}, "compute.instance.create.end", {"instance": "i-0"})
    for _ in range(3):
        assert arrived.acquire(timeout=60)

    looked_up.clear()
    captured = snapshot.take()
    running = pools.Tasks(captured.pools).running
    stacks = {thread.ident: [frame.code for frame in thread.frames]
              for thread in captured.threads}
    found = [{"serves": asdict(pool.serves),
              "busy": sorted(task for task in (running(stacks[ident]) for ident in pool.workers
                                               if ident in stacks) if task is not None)}
             for pool in captured.pools if pool.serves is not None]
    print(json.dumps({"pools": found, "looked_up": looked_up}), flush=True)

    go.set()
    for caller in callers:
        caller.join(60)
    for server in (rpc, listener):
        server.stop()
        server.wait()


if __name__ == "__main__":
    sys.exit(main())
