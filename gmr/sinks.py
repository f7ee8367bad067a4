"""Where a report goes: stderr in one piece, or a new file in log_dir that
appears whole (written under a hidden temporary name, then linked into
place: an earlier report is never overwritten, and no temporary file stays).

No tempfile, no logging: their locks may be green under eventlet, and this
runs in the watcher's real OS thread.
"""

from __future__ import annotations

import os
import time

from gmr import _originals, retention
from gmr._impl import core
from gmr.retention import MARK


def to_stderr(text: str) -> None:
    """The whole report in as few writes as the pipe or terminal takes."""
    _originals.write_all(2, text.encode(errors="replace"))


def report_name(service_name: str, stamp: str, pid_suffix: str = "") -> str:
    """<service_name>_gurumeditation_<YYYYmmddHHMMSS>, as oslo.reports names it;
    a forked child adds ".<pid>"."""
    return f"{service_name}{MARK}{stamp}{pid_suffix}"


def to_file(directory: str, service_name: str, text: str, pid_suffix: str = "",
            max_reports: int = 0, max_bytes: int = 0) -> str:
    """Write a new report file in directory; returns its path. Raises
    OSError (with the path and the reason) when it cannot."""
    stamp = time.strftime("%Y%m%d%H%M%S", time.gmtime())
    base = report_name(service_name, stamp, pid_suffix)
    temporary = os.path.join(directory, f".{base}.{os.getpid()}.{time.monotonic_ns()}.tmp")
    # Not fsynced: the link makes the file appear whole, and a running
    # machine writes it back; an fsync would make the report wait for every
    # dirty page of the file system (seconds on a busy disk).
    final = core.publish(temporary, os.path.join(directory, base),
                         text.encode(errors="replace"))
    if max_reports or max_bytes:
        retention.prune(directory, service_name, max_reports, max_bytes)
    return final
