"""python -m gmr PID: ask a running service for a report and show where it is.

Sends the trigger (SIGUSR2 by default, or touches the trigger file), waits for
the new report in the service's log directory (or for it to appear in the file
its stderr goes to), prints the report's path (or, from stderr, the report),
and exits non-zero with one clear line when no report comes in time.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import time
from pathlib import Path

from gmr.retention import MARK

BANNER = "Guru Meditation"


class Failure(Exception):
    """One line for the operator, and a non-zero exit."""


def _reports(directory: Path) -> set[Path]:
    try:
        return {path for path in directory.iterdir()
                if MARK in path.name and not path.name.startswith(".")}
    except FileNotFoundError as error:
        raise Failure(f"log directory {directory} does not exist") from error
    except PermissionError as error:
        raise Failure(f"cannot read log directory {directory}: permission denied") from error


def _cmdline(pid: int) -> list[str]:
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return []
    return [part.decode(errors="replace") for part in raw.split(b"\0") if part]


def _parent(pid: int) -> int | None:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return int(stat[stat.rfind(")") + 2:].split()[1])


def refuse_gunicorn_master(pid: int) -> None:
    """A gunicorn master takes SIGUSR2 as "upgrade the binary": never send it there."""
    own = _cmdline(pid)
    if not any("gunicorn" in part for part in own):
        return
    parent = _parent(pid)
    if parent is not None and _cmdline(parent) == own:
        return  # a worker: forked from the master, it has the master's command line
    raise Failure(f"process {pid} is a gunicorn master, which takes SIGUSR2 as a binary "
                  "upgrade: give the pid of a worker")


def trigger(pid: int, signum: int, trigger_file: Path | None) -> None:
    if trigger_file is not None:
        try:
            trigger_file.touch()
            os.utime(trigger_file)
        except OSError as error:
            raise Failure(f"cannot touch the trigger file {trigger_file}: "
                          f"{error.strerror}") from error
        return
    try:
        os.kill(pid, signum)
    except ProcessLookupError as error:
        raise Failure(f"no process {pid}") from error
    except PermissionError as error:
        raise Failure(f"not allowed to signal process {pid}") from error


def wait_for_file(directory: Path, before: set[Path], timeout: float) -> Path:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        new = sorted(_reports(directory) - before, key=lambda path: path.stat().st_mtime)
        complete = [path for path in new if not path.name.endswith("_degraded")]
        if complete:
            return complete[-1]
        time.sleep(0.05)
    raise Failure(f"no new report in {directory} within {timeout:g} s")


def wait_for_stderr(path: Path, offset: int, timeout: float) -> str:
    """The report written to a stderr file after offset: it is written in one
    piece, so once the banner is there and the file stops growing, it is whole."""
    deadline = time.monotonic() + timeout
    last_size = -1
    while time.monotonic() < deadline:
        try:
            size = path.stat().st_size
        except OSError as error:
            raise Failure(f"cannot read {path}: {error.strerror}") from error
        if size > offset and size == last_size:
            with path.open("rb") as handle:
                handle.seek(offset)
                text = handle.read().decode(errors="replace")
            start = text.find("=" * 72)
            if start >= 0 and BANNER in text[start:]:
                return text[start:]
        last_size = size
        time.sleep(0.1)
    raise Failure(f"no report appeared in {path} within {timeout:g} s")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="gmr", description=__doc__.split("\n\n")[0])
    parser.add_argument("pid", type=int, help="the process to ask for a report")
    where = parser.add_mutually_exclusive_group(required=True)
    where.add_argument("--log-dir", type=Path, help="the service's [oslo_reports] log_dir")
    where.add_argument("--stderr-file", type=Path, help="the file the service's stderr goes to")
    parser.add_argument("--signal", default="SIGUSR2", help="signal to send (default SIGUSR2)")
    parser.add_argument("--trigger-file", type=Path,
                        help="touch this file ([oslo_reports] file_event_handler) instead")
    parser.add_argument("--timeout", type=float, default=10.0, help="seconds to wait (10)")
    parser.add_argument("--json", action="store_true", help="print the (JSON) report itself")
    args = parser.parse_args(argv)
    name = args.signal.upper()
    signum = int(getattr(signal, name if name.startswith("SIG") else "SIG" + name, 0))
    try:
        if not signum:
            raise Failure(f"unknown signal {args.signal}")
        if args.trigger_file is None:
            refuse_gunicorn_master(args.pid)
        if args.log_dir is not None:
            before = _reports(args.log_dir)
            trigger(args.pid, signum, args.trigger_file)
            path = wait_for_file(args.log_dir, before, args.timeout)
            if args.json:
                text = path.read_text()
                try:
                    json.loads(text)
                except ValueError as error:
                    raise Failure(f"{path} is not a JSON report: the service writes text "
                                  "([oslo_reports] format = json changes that)") from error
                print(text)
            else:
                print(path)
        else:
            offset = args.stderr_file.stat().st_size if args.stderr_file.exists() else 0
            trigger(args.pid, signum, args.trigger_file)
            print(wait_for_stderr(args.stderr_file, offset, args.timeout), end="")
    except Failure as failure:
        print(f"gmr: {failure}", file=sys.stderr)
        return 1
    return 0
