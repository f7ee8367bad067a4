"""A service that sets up gmr with its stderr in a file and keeps logging to
it, one line at a time, for as long as it runs (as a busy service does while
an operator takes a report from that file).

    logging_service.py STDERR_FILE

Prints "ready" once gmr is set up and the first line is logged, then logs
"log line N" for ever.
"""

import os
import sys
import time

os.dup2(os.open(sys.argv[1], os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600), 2)

import gmr  # noqa: E402

gmr.TextGuruMeditation.setup_autorun("1.0", service_name="logging-service")
# Made apart: the report shows the main thread's source line, and the test
# looks for this text to tell a log line that got into the report.
PREFIX = "log" + " line"
number = 0
while True:
    os.write(2, f"{PREFIX} {number}\n".encode())
    if number == 0:
        print("ready", flush=True)
    number += 1
    time.sleep(0.001)
