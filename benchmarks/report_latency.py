"""Wall time from SIGUSR2 to a complete report file, gmr against
oslo.reports, on the same service: 10 threads parked 30 frames deep, 1,000
parked greenlets, 100 oslo.config options. Fresh processes, one run.

    python benchmarks/report_latency.py [--runs 5]
"""

from __future__ import annotations

import argparse
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

SERVICE = r'''
import sys, threading, greenlet
from oslo_config import cfg
reporter, log_dir = sys.argv[1], sys.argv[2]
if reporter == "gmr":
    import gmr
    from gmr import opts as gmr_opts
else:
    from oslo_reports import guru_meditation_report as gmr
    from oslo_reports import opts as gmr_opts
CONF = cfg.CONF
CONF.register_opts([cfg.StrOpt(f"option_{n}", default=f"value-{n}") for n in range(100)],
                   group="service")
gmr_opts.set_defaults(CONF)
CONF(["--config-file", sys.argv[3]], project="latency")
stop = threading.Event()
def deep(n):
    if n: return deep(n - 1)
    stop.wait()
for _ in range(10):
    threading.Thread(target=deep, args=(27,), daemon=True).start()
def parked():
    greenlet.getcurrent().parent.switch()
lets = [greenlet.greenlet(parked) for _ in range(1000)]
for one in lets:
    one.switch()
gmr.TextGuruMeditation.setup_autorun("1.0", conf=CONF, service_name="latency", log_dir=log_dir)
print("ready", flush=True)
stop.wait()
'''


def complete(directory: Path, reporter: str) -> bool:
    files = [p for p in directory.iterdir() if not p.name.startswith(".")]
    if not files:
        return False
    if reporter == "gmr":
        return True  # linked into place whole
    # oslo.reports writes in place: complete once its last section is there
    # and the size has stopped changing.
    text = files[0].read_text(errors="replace")
    if "====                         Configuration" not in text:
        return False
    size = files[0].stat().st_size
    time.sleep(0.02)
    return files[0].stat().st_size == size


def one_run(reporter: str) -> float:
    with tempfile.TemporaryDirectory() as scratch:
        logs = Path(scratch, "logs")
        logs.mkdir()
        config = Path(scratch, "c.conf")
        config.write_text("")
        proc = subprocess.Popen([sys.executable, "-c", SERVICE, reporter, str(logs), str(config)],
                                stdout=subprocess.PIPE, text=True)
        try:
            assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"
            time.sleep(0.3)
            sent = time.perf_counter()
            os.kill(proc.pid, signal.SIGUSR2)
            deadline = sent + 60
            while time.perf_counter() < deadline:
                if complete(logs, reporter):
                    return time.perf_counter() - sent
                time.sleep(0.002)
            return float("inf")
        finally:
            proc.kill()
            proc.wait(10)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=5)
    runs = parser.parse_args().runs
    results = {}
    for reporter in ("gmr", "oslo.reports"):
        results[reporter] = [one_run(reporter) for _ in range(runs)]
    gmr_median = statistics.median(results["gmr"])
    print(f"Python {sys.version.split()[0]}, {runs} fresh processes each")
    print("| reporter | median ms | max ms | ratio to gmr |")
    print("| --- | --- | --- | --- |")
    for reporter, times in results.items():
        median = statistics.median(times)
        print(f"| {reporter} | {median * 1e3:.1f} | {max(times) * 1e3:.1f} | "
              f"{median / gmr_median:.0f}× |")


if __name__ == "__main__":
    main()
