"""Where a report goes, a piece at a time as it is made: stderr, or a new
file in log_dir that appears whole (written under a hidden temporary name, then linked into
place: an earlier report is never overwritten, and no temporary file stays).

No tempfile, no logging: their locks may be green under eventlet, and this
runs in the watcher's real OS thread.
"""

from __future__ import annotations

import errno
import os
import time
from collections.abc import Iterable

from gmr import _originals, retention
from gmr._impl import files

#: The longest service name, in bytes of UTF-8, that a report file name
#: carries: with the stamp, a pid and a ".N" it stays well inside a file
#: name's 255 bytes, temporary name included.
MAX_NAME_BYTES = 128


def safe_name(service_name: str) -> str:
    """service_name as one file name that stays in log_dir: every path
    separator, NUL, control character and character that UTF-8 cannot
    encode becomes "_", as does each leading ".", and it is cut to
    MAX_NAME_BYTES. Any other name is kept as it is; an empty one is "_"."""
    separators = {"/", "\\", os.sep, os.altsep or "/"}
    chars = []
    for char in service_name:
        code = ord(char)
        if char in separators or code < 0x20 or code == 0x7F or 0xD800 <= code <= 0xDFFF:
            chars.append("_")
        else:
            chars.append(char)
    name = "".join(chars)
    stripped = name.lstrip(".")
    name = "_" * (len(name) - len(stripped)) + stripped
    while len(name.encode()) > MAX_NAME_BYTES:
        name = name[:-1]
    return name or "_"


#: Seconds stderr may stay full (a non-blocking pipe nobody reads) before a
#: report to it is given up, with one line that says how much went out.
STDERR_PATIENCE = 30.0


#: A report given whole, or a piece at a time: encoded pieces, and greenlet
#: listings whose text is assembled as they are written.
Pieces = str | Iterable[bytes | files.Listings]


def _pieces(report: Pieces) -> Iterable[bytes | files.Listings]:
    if isinstance(report, str):
        return (report.encode(errors="replace"),)
    return report


def to_stderr(report: Pieces) -> None:
    """The whole report, its pieces in batches of one writev() each (as
    many as the pipe or terminal takes), as they come. A non-blocking stderr
    that is full (EAGAIN) is waited for, not cut: raises OSError saying how
    much was written when it stays full too long."""
    total = 0
    for batch in _originals.batched(_pieces(report), files.BATCH_BYTES):
        views = [memoryview(piece) for piece in batch]
        deadline = None
        while views:
            left = sum(map(len, views))
            try:
                views = _originals.writev(2, views)
                deadline = None
            except BlockingIOError:
                if deadline is None:
                    deadline = time.monotonic() + STDERR_PATIENCE
                wait = deadline - time.monotonic()
                if wait <= 0 or not _originals.select_writable([2], wait):
                    raise OSError(errno.EAGAIN, f"stderr stayed full for {STDERR_PATIENCE:g} s: "
                                  f"report cut at {total} bytes") from None
            total += left - sum(map(len, views))


def to_file(directory: str, service_name: str, report: Pieces,
            pid_suffix: str = "", max_reports: int = 0, max_bytes: int = 0) -> str:
    """Write a new report file in directory, named as oslo.reports names it,
    <service_name>_gurumeditation_<YYYYmmddHHMMSS> (a forked child adds
    ".<pid>"), from the report given whole or as encoded pieces (each written
    as it comes; the file appears whole or not at all); returns its path.
    Raises OSError (with the path and the reason) when it cannot."""
    # Not fsynced: the link makes the file appear whole, and a running
    # machine writes it back; an fsync would make the report wait for every
    # dirty page of the file system (seconds on a busy disk).
    service_name = safe_name(service_name)
    final = files.publish_chunks(directory, service_name, pid_suffix, _pieces(report))
    if max_reports > 0 or max_bytes > 0:
        retention.prune(directory, service_name, max_reports, max_bytes, keep=final)
    return final
