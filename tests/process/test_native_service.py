"""A native-threaded service (tests/programs/native_service.py: a real
oslo.messaging RPC server on the fake:// transport, its futurist pool of 64
workers with calls blocked in its endpoint, a concurrent.futures fan-out
pool with work queued, a periodic-task thread) gets SIGUSR2: the report says
what each pool is doing, which RPC server a pool serves, and which pool each
worker thread serves. The same names on every Python: 3.10's code objects
keep no qualified name, and the pools' functions give it."""

from __future__ import annotations

import importlib.util
import signal
from pathlib import Path
from typing import Any

import pytest

from conftest import next_report, section, validate_report
from gmr.render import banner

pytestmark = [
    pytest.mark.timeout(180),
    pytest.mark.skipif(importlib.util.find_spec("oslo_messaging") is None,
                       reason="oslo.messaging (a test extra) is not installed"),
]

PROGRAM = "__main__"
SERVES = {"type": "oslo_messaging.rpc.server.RPCServer", "kind": "rpc",
          "targets": [{"topic": "compute", "server": "compute-7", "exchange": None}],
          "endpoints": [f"{PROGRAM}.ComputeManager"]}


def _start(service: Any, tmp_path: Path, form: str) -> tuple[Any, Path]:
    logs = tmp_path / f"logs-{form}"
    logs.mkdir()
    config = tmp_path / f"native-{form}.conf"
    config.write_text(f"[DEFAULT]\nhost = compute-7\n\n"
                      f"[demo]\nconnection = mysql+pymysql://nova:not-this-one@db/nova\n"
                      f"admin_password = hunter2\n\n"
                      f"[oslo_reports]\nlog_dir = {logs}\nformat = {form}\n")
    svc = service("native_service.py", "--config-file", str(config)).ready(60)
    return svc, logs


def test_the_pools_of_a_native_threaded_service(service: Any, tmp_path: Path) -> None:
    svc, logs = _start(service, tmp_path, "json")
    document = validate_report(next_report(svc, logs).read_text())
    kinds = [entry["kind"] for entry in document["sections"]]
    assert kinds[:3] == ["package", "threads", "pools"]
    cells, rpc = sorted(section(document, "pools"), key=lambda pool: pool["type"])
    assert (cells["type"], cells["name"], cells["max_workers"], cells["threads"],
            cells["busy"], cells["idle"], cells["queued"], cells["serves"]) == (
        "concurrent.futures.ThreadPoolExecutor", "cell-fanout", 4, 4, 4, 0, 5, None)
    assert {worker["task"] for worker in cells["busy_workers"]} == {
        f"{PROGRAM}.CellFanout.scatter"}
    assert sorted(worker["name"] for worker in cells["busy_workers"]) == [
        f"cell-fanout_{n}" for n in range(4)]
    # The RPC server's executor, named as the server's; its busy workers run
    # the endpoint's method the server dispatched each call to.
    assert (rpc["type"], rpc["name"], rpc["max_workers"], rpc["threads"], rpc["busy"],
            rpc["idle"], rpc["queued"]) == ("futurist.ThreadPoolExecutor", None, 64, 64, 3, 61, 0)
    assert rpc["serves"] == SERVES
    assert all(worker["submitted_seconds_ago"] is None for worker in cells["busy_workers"])
    assert all(worker["submitted_seconds_ago"] >= 0 for worker in rpc["busy_workers"])
    assert {worker["task"] for worker in rpc["busy_workers"]} == {
        f"{PROGRAM}.ComputeManager.build_and_run_instance"}
    threads = section(document, "threads")
    workers = {thread["id"]: thread["pool"] for thread in threads if thread["pool"] is not None}
    assert len(workers) == 68
    assert sorted(set(workers.values())) == sorted([rpc["id"], cells["id"]])
    for pool in (rpc, cells):
        assert all(workers[worker["thread"]] == pool["id"] for worker in pool["busy_workers"])
    periodic = [thread for thread in threads if thread["name"] == "periodic-tasks"]
    assert periodic[0]["pool"] is None
    assert "run_periodic_tasks" in [frame[2] for frame in periodic[0]["frames"]]
    assert (periodic[0]["wait"]["type"], periodic[0]["wait"]["lock"]) == ("threading.Event", False)
    # The RPC pool's idle workers all wait on its queue.
    idle = {thread["wait"]["id"] for thread in threads
            if thread["pool"] == rpc["id"] and thread["wait"]["type"] == "queue.Queue"}
    assert len(idle) == 1
    # The API threads wait for the replies to their calls.
    callers = [thread for thread in threads if (thread["name"] or "").startswith("api-")]
    assert len(callers) == 3
    assert all(thread["pool"] is None and thread["wait"]["type"] == "queue.Queue"
               for thread in callers)

    # The calls let go: each gets its reply, and the pool is idle again.
    svc.kill(signal.SIGUSR1)
    replies = sorted(svc.wait_for_lines("replied ", 3))
    assert replies == [f"replied instance-{n}: claimed for instance-{n}" for n in range(3)]
    svc.wait_for_line("released")
    after = validate_report(next_report(svc, logs).read_text())
    (again,) = [pool for pool in section(after, "pools") if pool["id"] == rpc["id"]]
    assert (again["threads"], again["busy"], again["idle"], again["busy_workers"],
            again["serves"]) == (64, 0, 64, [], SERVES)


def test_the_text_report_and_its_groups(service: Any, tmp_path: Path) -> None:
    """Text, grouped: the Thread Pools blocks after Threads, and the idle
    workers of the RPC pool one group that names the pool."""
    logs = tmp_path / "logs"
    logs.mkdir()
    config = tmp_path / "native.conf"
    config.write_text(f"[oslo_reports]\nlog_dir = {logs}\ngroup_stacks = true\n")
    svc = service("native_service.py", "--config-file", str(config)).ready(60)
    text = next_report(svc, logs).read_text()
    threads_at, pools_at = text.index(banner("Threads")), text.index(banner("Thread Pools"))
    assert threads_at < pools_at < text.index(banner("Processes"))
    pools_text = text[pools_at:text.index(banner("Processes"))]
    assert ("(futurist.ThreadPoolExecutor)\n"
            "serves = oslo.messaging RPC server: topic compute, server compute-1\n"
            f"endpoints = {PROGRAM}.ComputeManager\n"
            "max workers = 64\nthreads = 64\nbusy = 3\nidle = 61\nqueued = 0") in pools_text
    assert ("(concurrent.futures.ThreadPoolExecutor, threads named cell-fanout_N)\n"
            "max workers = 4\nthreads = 4\nbusy = 4\nidle = 0\nqueued = 5") in pools_text
    handler = f": {PROGRAM}.ComputeManager.build_and_run_instance, submitted "
    assert pools_text.count(handler) == 3
    rpc_id = pools_text.split("(futurist.ThreadPoolExecutor)")[0].rsplit("Pool ", 1)[1].split()[0]
    idle = f"61 Threads of pool {rpc_id} with this stack"
    assert f"------{idle: ^60}------" in text[:pools_at]
