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
from gmr.retention import MARK


def write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        written = _originals.write(fd, view)
        view = view[written:]


def to_stderr(text: str) -> None:
    """The whole report in as few writes as the pipe or terminal takes."""
    write_all(2, text.encode(errors="replace"))


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
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
    try:
        try:
            # Not fsynced: the link below makes the file appear whole, and a
            # running machine writes it back; an fsync would make the report
            # wait for every dirty page of the file system (seconds on a busy disk).
            write_all(fd, text.encode(errors="replace"))
        finally:
            os.close(fd)
        for attempt in range(10000):
            final = os.path.join(directory, base if attempt == 0 else f"{base}.{attempt}")
            try:
                os.link(temporary, final)  # fails, rather than replace, if it exists
                break
            except FileExistsError:
                continue
        else:
            raise FileExistsError(f"no free report name for {base} in {directory}")
    finally:
        try:
            os.unlink(temporary)
        except FileNotFoundError:
            pass
    if max_reports or max_bytes:
        retention.prune(directory, service_name, max_reports, max_bytes)
    return final
