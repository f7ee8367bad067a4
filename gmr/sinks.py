"""Where a report goes: stderr in one piece, or a new file in log_dir that
appears whole (written under a hidden temporary name, then linked into
place: an earlier report is never overwritten, and no temporary file stays).

No tempfile, no logging: their locks may be green under eventlet, and this
runs in the watcher's real OS thread.
"""

from __future__ import annotations

from gmr import _originals, retention
from gmr._impl import files


def to_stderr(text: str) -> None:
    """The whole report in as few writes as the pipe or terminal takes."""
    _originals.write_all(2, text.encode(errors="replace"))


def to_file(directory: str, service_name: str, text: str, pid_suffix: str = "",
            max_reports: int = 0, max_bytes: int = 0) -> str:
    """Write a new report file in directory, named as oslo.reports names it,
    <service_name>_gurumeditation_<YYYYmmddHHMMSS> (a forked child adds
    ".<pid>"); returns its path. Raises OSError (with the path and the
    reason) when it cannot."""
    # Not fsynced: the link makes the file appear whole, and a running
    # machine writes it back; an fsync would make the report wait for every
    # dirty page of the file system (seconds on a busy disk).
    final = files.publish(directory, service_name, pid_suffix, text.encode(errors="replace"))
    if max_reports or max_bytes:
        retention.prune(directory, service_name, max_reports, max_bytes)
    return final
