"""Retention in log_dir: keep at most max_reports reports, or max_bytes of
them, deleting the oldest first. Only gmr's own files are touched: names with
"_gurumeditation_" that belong to the given service."""

from __future__ import annotations

import os
from pathlib import Path

#: What every report file name holds: <service>_gurumeditation_<when>.
MARK = "_gurumeditation_"


def prune(directory: str | os.PathLike[str], service_name: str, max_reports: int = 0,
          max_bytes: int = 0) -> list[Path]:
    """Delete the oldest reports of service_name beyond the limits (0: no
    limit); returns what was deleted. The newest report is always kept."""
    if max_reports <= 0 and max_bytes <= 0:
        return []
    prefix = f"{service_name}{MARK}"
    reports = []
    for path in Path(directory).iterdir():
        if path.name.startswith(prefix):
            try:
                stat = path.stat()
            except FileNotFoundError:
                continue  # pruned by another process of the service meanwhile
            reports.append((stat.st_mtime_ns, path.name, path, stat.st_size))
    reports.sort(reverse=True)  # newest first
    deleted: list[Path] = []
    total = 0
    for index, (_, _, path, size) in enumerate(reports):
        total += size
        over_count = max_reports > 0 and index >= max_reports
        over_bytes = max_bytes > 0 and total > max_bytes and index > 0
        if over_count or over_bytes:
            try:
                path.unlink()
                deleted.append(path)
            except FileNotFoundError:
                pass
    return deleted
