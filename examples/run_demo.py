"""Start the demo service with a configuration file, send it SIGUSR2, and
print the Guru Meditation Report it writes to its log directory. The service
is the tests' native-threaded one (tests/programs/native_service.py): an
oslo.messaging RPC server (on the in-process fake:// transport) whose pool
of 64 workers has three calls busy in its endpoint, a fan-out pool with work
queued, a periodic-task thread, oslo.config options (one secret).
tests/process/test_demo.py runs it."""

import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

SERVICE = Path(__file__).resolve().parent.parent / "tests" / "programs" / "native_service.py"

CONFIG = """[demo]
workers = 3
connection = mysql+pymysql://demo:not-this-one@db.example/demo
admin_password = hunter2

[oslo_reports]
log_dir = {log_dir}
# The 61 idle workers of the RPC pool as one group (the default lists each).
group_stacks = true
"""


def main() -> int:
    with tempfile.TemporaryDirectory(prefix="gmr-demo-") as scratch:
        log_dir = Path(scratch, "reports")
        log_dir.mkdir()
        config = Path(scratch, "demo.conf")
        config.write_text(CONFIG.format(log_dir=log_dir))
        service = subprocess.Popen(
            [sys.executable, str(SERVICE), "--config-file", str(config)],
            stdout=subprocess.PIPE, text=True,
        )
        try:
            assert service.stdout is not None
            if service.stdout.readline().strip() != "ready":  # its pools stand still
                print("the demo service did not start", file=sys.stderr)
                return 1
            print(f"demo service {service.pid} is up; sending SIGUSR2", file=sys.stderr)
            os.kill(service.pid, signal.SIGUSR2)
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline:
                reports = [p for p in log_dir.iterdir() if not p.name.startswith(".")]
                if reports:
                    print(f"report written to {reports[0].name}:\n", file=sys.stderr)
                    print(reports[0].read_text())
                    return 0
                time.sleep(0.05)
            print("no report within 30 s", file=sys.stderr)
            return 1
        finally:
            service.terminate()
            service.wait(10)


if __name__ == "__main__":
    sys.exit(main())
