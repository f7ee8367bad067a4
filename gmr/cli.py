"""python -m gmr PID: ask a running service for a report and show where it is.

Sends the trigger (SIGUSR2 by default, or touches the trigger file), waits for
the new report in the service's log directory (or for it to appear in the file
its stderr goes to), prints the report's path (or, from stderr, the report),
and exits non-zero with one clear line when no report comes in time.

It never sends a signal a process has not armed gmr for (its default action
may end the process): the process must catch that signal (SigCgt in
/proc/PID/status) and run gmr's watcher thread ("gmr-watcher"), unless
--force. It never follows a symbolic link at the trigger file's path.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import stat
import sys
import time
from pathlib import Path
from typing import Any

from gmr import collect, facts
from gmr import diff as gmr_diff
from gmr.render import WIDTH, banner
from gmr.retention import MARK

#: The first lines of a text report, as gmr writes them.
START = f"{banner('Guru Meditation')}\n{'|' * WIDTH}\n"
#: The thread gmr's watcher runs in, by its kernel name.
WATCHER_THREAD = "gmr-watcher"
POLL = 0.02


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


def signal_number(text: str) -> int | None:
    """The signal text names (SIGUSR2, usr2, 12), or None when it names none."""
    valid = {int(one) for one in signal.valid_signals()}
    word = text.strip()
    if word.isdigit():
        number = int(word)
        return number if number in valid else None
    name = word.upper()
    member = signal.Signals.__members__.get(name if name.startswith("SIG") else "SIG" + name)
    return int(member) if member is not None and int(member) in valid else None


def _signal_name(signum: int) -> str:
    try:
        return signal.Signals(signum).name
    except ValueError:
        return f"signal {signum}"


def _mask(status: str, field: str) -> int:
    for line in status.splitlines():
        if line.startswith(field + ":"):
            return int(line.split(":", 1)[1].strip(), 16)
    return 0


def _watcher_running(pid: int) -> bool:
    try:
        tasks = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return False
    for task in tasks:
        try:
            comm = Path(f"/proc/{pid}/task/{task}/comm").read_text().strip()
        except OSError:
            continue  # that thread has just ended
        if comm == WATCHER_THREAD:
            return True
    return False


def _default_action(signum: int, name: str) -> str:
    """What signum does to a process that neither catches nor ignores it."""
    if signum in (signal.SIGCHLD, signal.SIGCONT, signal.SIGURG, signal.SIGWINCH):
        return ""
    if signum in (signal.SIGSTOP, signal.SIGTSTP, signal.SIGTTIN, signal.SIGTTOU):
        return f" ({name} would stop it)"
    return f" ({name} would end it)"


def refuse_without_gmr(pid: int, signum: int) -> None:
    """Refuse (Failure) to send signum to a process that has not armed gmr for
    it: it must catch the signal (SigCgt in /proc/PID/status) and run gmr's
    watcher thread. Otherwise the signal may end it, or reach a handler that
    is not gmr's."""
    name = _signal_name(signum)
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except FileNotFoundError as error:
        raise Failure(f"no process {pid}") from error
    except OSError as error:
        raise Failure(f"cannot tell whether process {pid} has set up gmr: /proc/{pid}/status: "
                      f"{error.strerror} (--force sends {name} anyway)") from error
    bit = 1 << (signum - 1)
    caught = bool(_mask(status, "SigCgt") & bit)
    ignored = bool(_mask(status, "SigIgn") & bit)
    watcher = _watcher_running(pid)
    if caught and watcher:
        return
    handling = f"ignores {name}" if ignored else f"does not catch {name}"
    if not caught and not watcher:
        reason = (f"has not set up gmr: it {handling} and has no {WATCHER_THREAD} thread"
                  + ("" if ignored else _default_action(signum, name)))
    elif not caught:
        reason = (f"runs gmr but {handling} (gmr may watch a trigger file or another "
                  "signal: see --trigger-file and --signal)")
    else:
        reason = (f"catches {name} but has no {WATCHER_THREAD} thread: the handler is not "
                  "gmr's")
    raise Failure(f"process {pid} {reason}; --force sends {name} anyway")


def touch_trigger(path: Path) -> None:
    """Touch the trigger file without following a symbolic link at its path
    (O_NOFOLLOW: one planted there after a check is refused as well), and
    only a regular file."""
    flags = os.O_RDONLY | os.O_CREAT | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC
    try:
        fd = os.open(path, flags, 0o666)
    except OSError as error:
        if os.path.islink(path):
            raise Failure(f"the trigger file {path} is a symbolic link (to "
                          f"{os.readlink(path)}): gmr does not follow it; give the file the "
                          "service watches itself") from error
        raise Failure(f"cannot touch the trigger file {path}: {error.strerror}") from error
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise Failure(f"the trigger file {path} is not a regular file")
        os.utime(fd)
    except OSError as error:
        raise Failure(f"cannot touch the trigger file {path}: {error.strerror}") from error
    finally:
        os.close(fd)


def trigger(pid: int, signum: int, trigger_file: Path | None) -> None:
    if trigger_file is not None:
        touch_trigger(trigger_file)
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


# -- a report among the lines a service logs to its stderr file -----------------


def _is_banner(lines: list[str], index: int) -> bool:
    return (index + 2 < len(lines) and lines[index] == "=" * WIDTH
            and lines[index + 2] == "=" * WIDTH and len(lines[index + 1]) == WIDTH
            and lines[index + 1].startswith("====") and lines[index + 1].endswith("===="))


def _configuration_end(lines: list[str], index: int) -> int | None:
    """The line after the Configuration section whose body starts at index,
    as gmr writes it (a blank line, then per group "name: ", its "  key =
    value" lines and a blank line; or one "gmr: ..." error line); None when
    the lines read so far end inside a group."""
    if index >= len(lines):
        return None
    if lines[index].startswith("gmr: "):
        return index + 1
    if lines[index] != "":
        return index
    index += 1
    while index < len(lines):
        group = lines[index]
        if not group.endswith(": ") or group[:1] in ("", " "):
            return index
        after = index + 1
        while after < len(lines) and lines[after].startswith("  ") and " = " in lines[after]:
            after += 1
        if after == len(lines):
            return None
        if lines[after] != "":
            return index  # not one of gmr's groups: the report ended before it
        index = after + 1
    return index  # the end of what is there: whole once the file is quiet


def _text_report(text: str, start: int, quiet: bool, bound: int) -> str | None:
    """The text report that starts at start: its sections are framed by
    banners that nothing else can write (gmr escapes every foreign line that
    would start with "="); the last one is gmr's own Configuration, whose
    lines it can tell from any log line after it. After a section the
    application registered, the report ends where the data read up to bound
    (or the quiet file) ends."""
    complete = text[start:text.rfind("\n") + 1]
    lines = complete.split("\n")[:-1]
    last_title, body = "", 0
    index = 0
    while index < len(lines):
        if _is_banner(lines, index):
            last_title, body = lines[index + 1][4:-4].strip(), index + 3
            index += 3
        else:
            index += 1
    if last_title == "Configuration":
        end = _configuration_end(lines, body)
        if end is None or (end == len(lines) and not quiet):
            return None  # more of it, or a line after it, is still to come
    elif quiet:
        end = len(lines)
    elif bound > start:
        end = text[start:bound].count("\n")
        if end <= body:
            return None
    else:
        return None
    return "".join(line + "\n" for line in lines[:end])


def _json_report(text: str, pid: int) -> str | None:
    decoder = json.JSONDecoder()
    at = 0
    while True:
        at = text.find("{", at)
        if at < 0:
            return None
        if at == 0 or text[at - 1] == "\n":
            try:
                document, end = decoder.raw_decode(text, at)
            except ValueError:
                document, end = None, at + 1
            if (isinstance(document, dict) and isinstance(document.get("header"), dict)
                    and "sections" in document and document["header"].get("pid") == pid):
                return text[at:end] + "\n"
        at += 1


def find_report(text: str, pid: int, quiet: bool = False, bound: int = -1) -> str | None:
    """The first report of process pid in text (what a service wrote to its
    stderr file, log lines before and after included), whole; None while it
    is not all there. quiet: the file has stopped growing."""
    at = 0
    while True:
        at = text.find(START, at)
        if at < 0:
            return _json_report(text, pid)
        if at == 0 or text[at - 1] == "\n":
            header_end = text.find("\n\n", at + len(START))
            if header_end < 0:
                return None
            if f"\npid = {pid}\n" in text[at:header_end + 1]:
                return _text_report(text, at, quiet, bound)
        at += len(START)


def wait_for_stderr(path: Path, offset: int, timeout: float, pid: int) -> str:
    """The report process pid writes to its stderr file after offset, found
    among the lines it logs before and after it."""
    deadline = time.monotonic() + timeout
    data = b""
    bound = -1
    while time.monotonic() < deadline:
        try:
            with path.open("rb") as handle:
                handle.seek(offset + len(data))
                new = handle.read()
        except OSError as error:
            raise Failure(f"cannot read {path}: {error.strerror}") from error
        data += new
        text = data.decode(errors="replace")
        if bound < 0 and START in text:
            bound = -2  # seen: the next read bounds a report that ends in a registered section
        elif bound == -2:
            bound = len(text)
        found = find_report(text, pid, quiet=bool(data) and not new, bound=bound)
        if found is not None:
            return found
        time.sleep(POLL)
    raise Failure(f"no report appeared in {path} within {timeout:g} s")


# -- gmr collect: many processes, one view; gmr diff: one process, two reports --


def children_of(pid: int) -> list[int]:
    """The processes whose parent is pid, by pid."""
    if not Path(f"/proc/{pid}").exists():
        raise Failure(f"no process {pid}")
    return sorted(facts.descendants(pid, generations=1))


def _armed(pid: int, signum: int, force: bool, by_file: bool) -> None:
    """Failure unless the trigger may be sent to pid (the checks of gmr PID)."""
    if by_file:
        if not Path(f"/proc/{pid}").exists():
            raise Failure(f"no process {pid}")
        return
    refuse_gunicorn_master(pid)
    if not force:
        refuse_without_gmr(pid, signum)


def _wait_for_reports(directories: list[Path], before: set[Path], waiting: set[int],
                      timeout: float) -> tuple[dict[int, tuple[Path, dict[str, Any]]],
                                               dict[int, str]]:
    """The new JSON report of each pid in waiting, from the files that
    appear in the directories (a report file appears whole); and why each
    of the others gave none."""
    deadline = time.monotonic() + timeout
    seen = set(before)
    got: dict[int, tuple[Path, dict[str, Any]]] = {}
    why: dict[int, str] = {}
    degraded: dict[int, Path] = {}
    while waiting - set(got) - set(why):
        new = set().union(*(_reports(directory) for directory in directories)) - seen
        for path in sorted(new):
            seen.add(path)
            pid, document, form = collect.report_pid(path)
            if pid not in waiting or pid in got:
                continue
            if path.name.endswith("_degraded"):
                degraded[pid] = path
            elif document is not None:
                got[pid] = (path, document)
                why.pop(pid, None)
            elif form == "text":
                why[pid] = (f"wrote a text report ({path}): collect reads JSON reports "
                            "([oslo_reports] format = json or json-compact)")
        if time.monotonic() >= deadline:
            break
        time.sleep(POLL)
    for pid in waiting - set(got) - set(why):
        why[pid] = (f"only a degraded report ({degraded[pid]}) within {timeout:g} s: the GIL "
                    "is held" if pid in degraded
                    else f"no new report within {timeout:g} s")
    return got, why


def _finish(sources: list[collect.Source], missing: list[dict[str, Any]],
            as_json: bool) -> int:
    merged = collect.merge(sources, missing)
    for gone in missing:
        print(f"gmr: {gone['reason']}", file=sys.stderr)
    if not merged.sources:
        print("gmr: no report to show", file=sys.stderr)
        return 1
    if as_json:
        print(json.dumps(collect.document(merged), indent=1, ensure_ascii=True))
    else:
        print(collect.text(merged), end="")
    return 3 if missing else 0


def collect_main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(
        prog="gmr collect",
        description="Ask many processes for a JSON report (or read saved ones) and show "
                    "them as one view: identical stacks once, with the processes they are in.",
        epilog="Exit status: 0 every process reported; 3 some did not (each is named on "
               "stderr and in the view), the others are shown; 1 none did; 2 bad usage.")
    parser.add_argument("pids", type=int, nargs="*", metavar="PID",
                        help="processes to ask for a report")
    parser.add_argument("--children-of", type=int, action="append", default=[],
                        metavar="PID", help="ask every child of this process (a uWSGI or "
                        "gunicorn master, an oslo.service launcher; not the parent itself)")
    parser.add_argument("--log-dir", type=Path, action="append", default=[],
                        help="the services' [oslo_reports] log_dir (repeat for several)")
    parser.add_argument("--files", type=Path, nargs="+", metavar="FILE",
                        help="merge saved JSON reports instead (files, directories, or "
                             "json-compact lines from a log pipeline); nothing is signalled")
    parser.add_argument("--signal", default="SIGUSR2",
                        help="signal to send: a name (SIGUSR2, USR2) or number (default SIGUSR2)")
    parser.add_argument("--trigger-file", type=Path,
                        help="touch this file once instead (uWSGI: every worker watches it)")
    parser.add_argument("--force", action="store_true",
                        help="signal even processes that have not armed gmr for it")
    parser.add_argument("--timeout", type=float, default=10.0,
                        help="seconds to wait for all the reports (10)")
    parser.add_argument("--json", action="store_true",
                        help="print the merged document (gmr/collect.schema.json)")
    args = parser.parse_args(argv)
    if args.files is not None:
        if args.pids or args.children_of or args.log_dir or args.trigger_file:
            parser.error("--files reads saved reports: give no PID, --children-of, --log-dir "
                         "or --trigger-file with it")
        sources, missing = [], []
        for path, given in collect.files_in(args.files):
            try:
                documents = collect.read_reports(path)
            except collect.NoReport as error:
                if given:  # a file found in a directory given may be any log
                    missing.append(collect.missing(str(error), source=str(path)))
                continue
            except collect.BadReport as error:
                missing.append(collect.missing(str(error), source=str(path)))
                continue
            sources += [collect.Source(document, str(path)) for document in documents]
        return _finish(sources, missing, args.json)
    if not args.log_dir:
        parser.error("give --log-dir (where the services write their reports) or --files")
    if not args.pids and not args.children_of:
        parser.error("give the processes: PID..., --children-of PID, or --files")
    signum = signal_number(args.signal)
    if signum is None:
        parser.error(f"--signal {args.signal!r} is not a signal: give a name (SIGUSR2, USR2) "
                     "or the number of one")
    try:
        targets = list(dict.fromkeys(args.pids))
        for parent in args.children_of:
            children = children_of(parent)
            if not children:
                raise Failure(f"process {parent} has no children")
            targets += [pid for pid in children if pid not in targets]
        before: set[Path] = set().union(*(_reports(directory) for directory in args.log_dir))
    except Failure as failure:
        print(f"gmr: {failure}", file=sys.stderr)
        return 1
    missing = []
    armed = []
    for pid in targets:
        try:
            _armed(pid, signum, args.force, args.trigger_file is not None)
            if args.trigger_file is None:
                trigger(pid, signum, None)
            armed.append(pid)
        except Failure as failure:
            missing.append(collect.missing(str(failure), pid=pid))
    if args.trigger_file is not None and armed:
        try:
            touch_trigger(args.trigger_file)
        except Failure as failure:
            print(f"gmr: {failure}", file=sys.stderr)
            return 1
    try:
        got, why = _wait_for_reports(args.log_dir, before, set(armed), args.timeout)
    except Failure as failure:  # the log directory went away meanwhile
        print(f"gmr: {failure}", file=sys.stderr)
        return 1
    for pid in armed:
        if pid in why:
            missing.append(collect.missing(f"process {pid} {why[pid]}", pid=pid))
    sources = [collect.Source(document, str(path)) for path, document in got.values()]
    return _finish(sources, missing, args.json)


def diff_main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(
        prog="gmr diff",
        description="What changed in one process between two of its JSON reports: threads "
                    "and greenlets stuck at the same place, new ones, gone ones, and the "
                    "numbers that grew (fds, RSS, counts, queued work).")
    parser.add_argument("first", type=Path, metavar="A", help="a JSON report")
    parser.add_argument("second", type=Path, metavar="B",
                        help="a later JSON report of the same process")
    parser.add_argument("--json", action="store_true", help="print the difference as JSON")
    args = parser.parse_args(argv)
    try:
        pair = []
        for path in (args.first, args.second):
            documents = collect.read_reports(path)
            if len(documents) != 1:
                raise Failure(f"{path} holds {len(documents)} reports: give a file of one")
            pair.append(documents[0])
        before, after = gmr_diff.in_order(pair[0], pair[1])
        result = gmr_diff.diff(before, after)
    except (collect.BadReport, gmr_diff.Mismatch) as error:
        print(f"gmr: {error}", file=sys.stderr)
        return 1
    except Failure as failure:
        print(f"gmr: {failure}", file=sys.stderr)
        return 1
    if args.json:
        print(json.dumps(result, indent=1, ensure_ascii=True))
    else:
        print(gmr_diff.text(result), end="")
    return 0


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["collect"]:
        return collect_main(argv[1:])
    if argv[:1] == ["diff"]:
        return diff_main(argv[1:])
    parser = argparse.ArgumentParser(
        prog="gmr", description=__doc__.split("\n\n")[0],
        epilog="Also: gmr collect PID... --log-dir DIR (many processes, one view), "
               "gmr collect --files FILE... (saved JSON reports), gmr diff A B (two reports "
               "of one process); each has --help.")
    parser.add_argument("pid", type=int, help="the process to ask for a report")
    where = parser.add_mutually_exclusive_group(required=True)
    where.add_argument("--log-dir", type=Path, help="the service's [oslo_reports] log_dir")
    where.add_argument("--stderr-file", type=Path, help="the file the service's stderr goes to")
    parser.add_argument("--signal", default="SIGUSR2",
                        help="signal to send: a name (SIGUSR2, USR2) or number (default SIGUSR2)")
    parser.add_argument("--trigger-file", type=Path,
                        help="touch this file ([oslo_reports] file_event_handler) instead; "
                             "a symbolic link there is refused")
    parser.add_argument("--force", action="store_true",
                        help="send the signal even to a process that has not armed gmr for it")
    parser.add_argument("--timeout", type=float, default=10.0, help="seconds to wait (10)")
    parser.add_argument("--json", action="store_true", help="print the (JSON) report itself")
    args = parser.parse_args(argv)
    signum = signal_number(args.signal)
    if signum is None:
        print(f"gmr: --signal {args.signal!r} is not a signal: give a name (SIGUSR2, USR2) "
              "or the number of one", file=sys.stderr)
        return 2
    try:
        before = _reports(args.log_dir) if args.log_dir is not None else set()
        if args.trigger_file is None:
            refuse_gunicorn_master(args.pid)
            if not args.force:
                refuse_without_gmr(args.pid, signum)
        if args.log_dir is not None:
            trigger(args.pid, signum, args.trigger_file)
            path = wait_for_file(args.log_dir, before, args.timeout)
            if args.json:
                text = path.read_text()
                try:
                    json.loads(text)
                except ValueError as error:
                    raise Failure(f"{path} is not a JSON report: the service writes text "
                                  "([oslo_reports] format = json changes that)") from error
                # As the file holds it: a json-compact report is one line, and
                # a blank line after it would be a message of its own to
                # systemd-cat or logger.
                sys.stdout.write(text if text.endswith("\n") else text + "\n")
            else:
                print(path)
        else:
            offset = args.stderr_file.stat().st_size if args.stderr_file.exists() else 0
            trigger(args.pid, signum, args.trigger_file)
            print(wait_for_stderr(args.stderr_file, offset, args.timeout, args.pid), end="")
    except Failure as failure:
        print(f"gmr: {failure}", file=sys.stderr)
        return 1
    return 0
