"""The demo, README's first command (scripts/demo sets up a venv, then runs
examples/run_demo.py): run here with the interpreter under test, it starts
the native-threaded service (tests/programs/native_service.py), sends it
SIGUSR2, and prints the report the service wrote: a real one, with its
Thread Pools."""

from __future__ import annotations

import importlib.util
import os
import re
import subprocess
import sys

import pytest

from conftest import ROOT
from gmr.render import banner

pytestmark = [
    pytest.mark.compiled_only,
    pytest.mark.timeout(180),
    pytest.mark.skipif(importlib.util.find_spec("oslo_messaging") is None,
                       reason="oslo.messaging (a test extra) is not installed"),
]


def _between(text: str, first: str, last: str) -> str:
    return text[text.index(banner(first)):text.index(banner(last))]


def test_the_demo_prints_the_report_of_its_service() -> None:
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(
        filter(None, [str(ROOT), os.environ.get("PYTHONPATH", "")])))
    done = subprocess.run([sys.executable, str(ROOT / "examples" / "run_demo.py")],
                          capture_output=True, text=True, timeout=150, env=env)
    assert done.returncode == 0, done.stderr
    pid = int(re.search(r"^demo service (\d+) is up; sending SIGUSR2$", done.stderr,
                        re.MULTILINE).group(1))
    assert re.search(r"^report written to demo-compute_gurumeditation_\d{14}:$", done.stderr,
                     re.MULTILINE)
    text = done.stdout

    # A whole report of that process, its sections in oslo.reports' order,
    # gmr's own where they belong, and the section the service registered.
    titles = re.findall(r"^====  +(.+?)  +====$", text, re.MULTILINE)
    assert titles == ["Guru Meditation", "Package", "Threads", "Thread Pools", "Green Threads",
                      "Asyncio Tasks", "Processes", "Configuration", "Demo Queues"]
    assert f"\npid = {pid}\n" in text
    assert "\ntrigger = signal\n" in text
    assert "\ncapture = compiled\n" in text
    assert "product = demo-compute\nvendor = Example Org\nversion = 1.0.0-1\n" in text

    # The RPC server's pool: named as the server's, three calls busy in its
    # endpoint, the 61 idle workers one group in Threads that names the pool.
    pools = _between(text, "Thread Pools", "Green Threads")
    rpc = pools[pools.index("(futurist.ThreadPoolExecutor)"):]
    assert rpc.startswith("(futurist.ThreadPoolExecutor)\n"
                          "serves = oslo.messaging RPC server: topic compute, server compute-1\n"
                          "endpoints = __main__.ComputeManager\n"
                          "max workers = 64\nthreads = 64\nbusy = 3\nidle = 61\nqueued = 0\n")
    busy = re.findall(r"^  (Thread-\d+) \(Thread #\d+\): "
                      r"__main__\.ComputeManager\.build_and_run_instance, submitted [\d.]+ s ago$",
                      rpc, re.MULTILINE)
    assert len(busy) == 3
    rpc_id = pools[:pools.index("(futurist.ThreadPoolExecutor)")].rsplit("Pool ", 1)[1].split()[0]
    threads = _between(text, "Threads", "Thread Pools")
    assert f"------{f'61 Threads of pool {rpc_id} with this stack': ^60}------" in threads
    assert f"------{f'3 Threads of pool {rpc_id} with this stack': ^60}------" in threads
    # The fan-out pool, every worker busy and work queued.
    assert ("(concurrent.futures.ThreadPoolExecutor, threads named cell-fanout_N)\n"
            "max workers = 4\nthreads = 4\nbusy = 4\nidle = 0\nqueued = 5\n") in pools
    assert pools.count(": __main__.CellFanout.scatter\n") == 4
    # The periodic-task thread, its own group, waiting on its Event; the API
    # threads waiting for their replies.
    periodic = threads[threads.index(": periodic-tasks, "):]
    periodic = periodic[:periodic.index("------")]
    assert "waiting on threading.Event" in periodic.splitlines()[0]
    assert "in run_periodic_tasks\n    `while not stop.wait(60):`" in periodic
    assert len(re.findall(r": api-\d, .*waiting on queue\.Queue", threads)) == 3

    # Its configuration, secrets masked.
    configuration = _between(text, "Configuration", "Demo Queues")
    assert "  admin_password = ***\n" in configuration
    assert "  connection = mysql+pymysql://demo:***@db.example/demo\n" in configuration
    assert "  executor_thread_pool_size = 64\n" in configuration
    assert "hunter2" not in text and "not-this-one" not in text
