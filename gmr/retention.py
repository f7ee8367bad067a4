"""Retention in log_dir: keep at most max_reports reports, or max_bytes of
them, deleting the oldest first. Only gmr's own files are touched: the names
gmr gives the given service's reports, <service>_gurumeditation_<stamp>
with their ".<pid>", "_degraded" and ".N" tails.

Age is read from the name, never from the modification time: the UTC stamp
gmr wrote, then the modification time only among reports of the same
second. A file whose modification time lies in the future (a clock stepped
back, files copied in) cannot make the newest report look old, and the
report just written (keep) is never deleted."""

from __future__ import annotations

import os
import re
from pathlib import Path

#: What every report file name holds: <service>_gurumeditation_<when>.
MARK = "_gurumeditation_"

_TAIL = re.compile(r"(\d{14})((?:\.\d+|_degraded)*)")


def prune(directory: str | os.PathLike[str], service_name: str, max_reports: int = 0,
          max_bytes: int = 0, keep: str | os.PathLike[str] | None = None) -> list[Path]:
    """Delete the oldest reports of service_name beyond the limits (0 or
    less: no limit); returns what was deleted. The newest report, and keep
    (the report just written), are always kept."""
    if max_reports <= 0 and max_bytes <= 0:
        return []
    prefix = f"{service_name}{MARK}"
    kept = os.path.basename(os.fspath(keep)) if keep is not None else None
    reports = []
    for path in Path(directory).iterdir():
        if not path.name.startswith(prefix):
            continue
        tail = _TAIL.fullmatch(path.name[len(prefix):])
        if tail is None:
            continue  # not a name gmr gives a report of this service
        try:
            stat = path.stat()
        except FileNotFoundError:
            continue  # pruned by another process of the service meanwhile
        newest = path.name == kept
        reports.append(((newest, tail.group(1), stat.st_mtime_ns, path.name), path,
                        stat.st_size))
    reports.sort(key=lambda entry: entry[0], reverse=True)  # newest first
    deleted: list[Path] = []
    total = 0
    for index, (_, path, size) in enumerate(reports):
        total += size
        over_count = max_reports > 0 and index >= max_reports
        over_bytes = max_bytes > 0 and total > max_bytes and index > 0
        if (over_count or over_bytes) and path.name != kept:
            try:
                path.unlink()
                deleted.append(path)
            except FileNotFoundError:
                pass
    return deleted
