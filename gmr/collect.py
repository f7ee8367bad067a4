"""gmr collect: many processes' JSON reports, one view.

The reports are read as JSON documents (gmr/report.schema.json), never as
text. Threads, greenlets and asyncio tasks whose stacks are identical (the
same (file, function, line) frames: ids, names and addresses do not count)
are shown once, under a line that counts them and names the processes they
were seen in. The merged document is described by gmr/collect.schema.json.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timezone
from importlib import resources
from pathlib import Path
from typing import Any

from gmr.render import banner, escape

#: Version of the merged document (gmr/collect.schema.json).
COLLECT_VERSION = 1
#: The kinds of report sections whose entries have stacks, and their nouns.
STACK_KINDS = {"threads": ("thread", "threads"), "greenlets": ("greenlet", "greenlets"),
               "tasks": ("asyncio task", "asyncio tasks")}
#: Up to this many distinct names are listed under a merged stack.
NAMES_SHOWN = 5

Document = dict[str, Any]
StackKey = tuple[Any, ...]


class BadReport(Exception):
    """One line saying why a file holds no usable JSON report."""


class NoReport(BadReport):
    """The file holds nothing that looks like a report."""


def is_report(value: Any) -> bool:
    return (isinstance(value, dict) and isinstance(value.get("header"), dict)
            and isinstance(value["header"].get("pid"), int)
            and isinstance(value.get("sections"), list))


def documents_in(text: str) -> tuple[list[Document], int]:
    """The JSON reports in text: one document, or json-compact lines as a log
    pipeline or the journal keeps them (a prefix before the "{" on each line,
    such as a syslog header, is passed over); and how many lines look like
    the start of a report but do not parse (cut short, as syslog cuts long
    messages)."""
    decoder = json.JSONDecoder()
    found: list[Document] = []
    broken = 0
    at = 0
    while True:
        at = text.find("{", at)
        if at < 0:
            return found, broken
        try:
            value, end = decoder.raw_decode(text, at)
        except ValueError:
            if text.startswith('{"header"', at):
                broken += 1
            at += 1
            continue
        if is_report(value):
            found.append(value)
            at = end
        else:
            at += 1


def read_reports(path: Path) -> list[Document]:
    """The JSON reports a file holds; BadReport when it holds none."""
    try:
        raw = path.read_bytes()
    except IsADirectoryError as error:
        raise BadReport(f"{path} is a directory") from error
    except OSError as error:
        raise BadReport(f"cannot read {path}: {error.strerror}") from error
    text = raw.decode("utf-8", errors="replace")
    found, broken = documents_in(text)
    if found:
        return found
    if broken:
        raise BadReport(f"{path} holds a JSON report cut short (syslog cuts long lines: "
                        "ship json-compact through journald or a file)")
    if "\npid = " in text[:4096] or text.startswith("=" * 72):
        raise BadReport(f"{path} is a text report: collect reads JSON reports "
                        "([oslo_reports] format = json or json-compact)")
    raise NoReport(f"{path} holds no gmr JSON report")


def section(document: Document, kind: str) -> Any:
    """The data of the first section of that kind (None when absent or failed)."""
    for one in document.get("sections", ()):
        if isinstance(one, dict) and one.get("kind") == kind:
            return one.get("data")
    return None


def _frame_key(frame: Any) -> tuple[str, str, int]:
    return (str(frame[0]), str(frame[2]), int(frame[1]))


def stack_key(entry: Document, with_state: bool = False,
              members: list[Document] | None = None) -> StackKey:
    """What makes two stacks the same: their (file, function, line) frames
    and where they were cut; for an entry without frames (a running or
    unstarted greenlet), its state."""
    frames = tuple(_frame_key(frame) for frame in entry.get("frames", ()))
    innermost = tuple(_frame_key(frame) for frame in entry.get("innermost", ()))
    state = None
    if with_state and not frames and not innermost:
        state = entry.get("state") or (members[0].get("state") if members else None)
    return (frames, int(entry.get("omitted", 0)), innermost, state)


def entries(document: Document, kind: str) -> Iterator[tuple[Document, int, list[Document]]]:
    """Each listed entry of a stack section: (the entry with its stack, how
    many it stands for, its members' identities). A group of a report made
    with group_stacks stands for its count."""
    data = section(document, kind)
    if not isinstance(data, list):
        return
    for entry in data:
        if not isinstance(entry, dict):
            continue
        if "members" in entry and "count" in entry:
            yield entry, int(entry["count"]), list(entry["members"])
        else:
            yield entry, 1, [entry]


def start_time(document: Document) -> float | None:
    """When the process started, from the capture time and its uptime."""
    processes = section(document, "processes")
    try:
        uptime = float(processes["facts"]["uptime seconds"])
        captured = parse_time(document["header"]["captured_at"])
    except (TypeError, KeyError, ValueError):
        return None
    return captured - uptime


def parse_time(text: str) -> float:
    return datetime.strptime(text, "%Y-%m-%dT%H:%M:%S.%fZ").replace(
        tzinfo=timezone.utc).timestamp()


@dataclass
class Source:
    """One report taken into the merge, and where it came from."""

    document: Document
    origin: str
    label: str = ""

    @property
    def pid(self) -> int:
        return int(self.document["header"]["pid"])


@dataclass
class Merged:
    """The merge: the reports in it, what is missing, and the stacks."""

    sources: list[Source]
    missing: list[Document]
    superseded: int = 0
    groups: dict[str, list[Document]] = field(default_factory=dict)


def identity(source: Source) -> tuple[Any, ...]:
    """Who made a report: pid, program and start time (to the second), so that
    the same pid on two hosts is two processes, and two reports of one
    process are one."""
    started = start_time(source.document)
    header = source.document["header"]
    return (header.get("host"), source.pid, header.get("program"),
            None if started is None else round(started))


def latest_per_process(sources: Iterable[Source]) -> tuple[list[Source], int]:
    """The newest report of each process, in the order given; how many older
    ones were left out."""
    kept: dict[tuple[Any, ...], Source] = {}
    total = 0
    for source in sources:
        total += 1
        key = identity(source)
        old = kept.get(key)
        if old is None or (str(source.document["header"].get("captured_at", ""))
                           >= str(old.document["header"].get("captured_at", ""))):
            kept[key] = source
    ordered = sorted(kept.values(), key=lambda one: one.pid)
    return ordered, total - len(ordered)


def _label(sources: list[Source]) -> None:
    """Each report's label: its pid; where pids clash, with its host after it
    (reports from a fleet), or where that does not tell them apart either,
    with its origin."""
    pids: dict[int, int] = {}
    hosts: dict[tuple[Any, int], int] = {}
    for source in sources:
        pids[source.pid] = pids.get(source.pid, 0) + 1
        key = (source.document["header"].get("host"), source.pid)
        hosts[key] = hosts.get(key, 0) + 1
    for source in sources:
        host = source.document["header"].get("host")
        if pids[source.pid] == 1:
            source.label = str(source.pid)
        elif isinstance(host, str) and hosts[(host, source.pid)] == 1:
            source.label = f"{source.pid} ({host})"
        else:
            source.label = f"{source.pid} ({source.origin})"


def merge(sources: list[Source], missing: list[Document] | None = None) -> Merged:
    """Merge reports: the newest of each process, identical stacks once."""
    kept, superseded = latest_per_process(sources)
    _label(kept)
    merged = Merged(kept, list(missing or []), superseded)
    for kind in STACK_KINDS:
        groups: dict[StackKey, Document] = {}
        for source in kept:
            for entry, count, members in entries(source.document, kind):
                key = stack_key(entry, kind == "greenlets", members)
                group = groups.get(key)
                if group is None:
                    group = groups[key] = {
                        "frames": list(entry.get("frames", [])),
                        "omitted": int(entry.get("omitted", 0)),
                        "innermost": list(entry.get("innermost", [])),
                        "state": key[3], "count": 0, "processes": []}
                group["count"] += count
                per = group["processes"]
                if not per or per[-1]["label"] != source.label:
                    per.append({"pid": source.pid, "label": source.label, "count": 0,
                                "names": []})
                per[-1]["count"] += count
                for member in members:
                    name = member.get("name")
                    if isinstance(name, str) and name not in per[-1]["names"]:
                        per[-1]["names"].append(name)
        ordered = sorted(groups.items(), key=lambda item: (
            -len(item[1]["processes"]), -item[1]["count"], repr(item[0])))
        merged.groups[kind] = [group for _key, group in ordered]
    return merged


def document(merged: Merged) -> Document:
    """The merged document (gmr/collect.schema.json)."""
    reports = []
    for source in merged.sources:
        header = source.document["header"]
        reports.append({"pid": source.pid, "host": header.get("host"), "label": source.label,
                        "source": source.origin,
                        "program": header.get("program"),
                        "captured_at": header.get("captured_at"),
                        "threads": header.get("threads"), "greenlets": header.get("greenlets")})
    return {"collectVersion": COLLECT_VERSION, "reports": reports,
            "missing": merged.missing, "superseded": merged.superseded,
            **{kind: merged.groups.get(kind, []) for kind in STACK_KINDS}}


def collect_schema() -> dict[str, Any]:
    """The JSON Schema of the merged document, shipped as gmr/collect.schema.json."""
    text = resources.files("gmr").joinpath("collect.schema.json").read_text()
    schema: dict[str, Any] = json.loads(text)
    return schema


def plural(count: int, one: str, many: str) -> str:
    return f"{count} {one if count == 1 else many}"


def frame_text(frame: Any) -> str:
    return (f"  {escape(frame[0], lead=True)}:{escape(frame[1])} in {escape(frame[2])}\n"
            f"      `{escape(frame[3])}`")


def stack_text(group: Document) -> list[str]:
    frames = group.get("frames", [])
    innermost = group.get("innermost", [])
    if not frames and not innermost:
        state = group.get("state")
        return [f"  No Traceback! ({escape(state)})" if state else "  No Traceback!"]
    lines = [frame_text(frame) for frame in frames]
    if group.get("omitted"):
        lines.append(f"  ... {group['omitted']} frames omitted ...")
        lines += [frame_text(frame) for frame in innermost]
    return lines


_PID_LIST = 20


def processes_line(group: Document, nouns: tuple[str, str]) -> str:
    """"3 processes (pids 101, 102, 103): 6 threads with this stack"."""
    per = group["processes"]
    labels = [escape(one["label"]) for one in per]
    shown = ", ".join(labels[:_PID_LIST]) + (
        f", ... ({len(labels) - _PID_LIST} more)" if len(labels) > _PID_LIST else "")
    word = "pid" if len(labels) == 1 else "pids"
    return (f"{plural(len(per), 'process', 'processes')} ({word} {shown}): "
            f"{plural(group['count'], *nouns)} with this stack")


def names_line(group: Document) -> str | None:
    names: list[str] = []
    for one in group["processes"]:
        names += [name for name in one["names"] if name not in names]
    if not names:
        return None
    more = len(names) - NAMES_SHOWN
    return ("  named " + ", ".join(escape(name) for name in names[:NAMES_SHOWN])
            + (f" and {more} more" if more > 0 else ""))


def text(merged: Merged) -> str:
    """The merged view, for a terminal."""
    out = [banner("Guru Meditation: collected"), ""]
    out.append(f"{plural(len(merged.sources), 'process', 'processes')} reported"
               + (f", {len(merged.missing)} did not" if merged.missing else "")
               + (f" ({plural(merged.superseded, 'older report', 'older reports')} of the "
                  "same processes left out)" if merged.superseded else ""))
    for source in merged.sources:
        header = source.document["header"]
        out.append(f"  pid {escape(source.label)}  {escape(header.get('captured_at'))}  "
                   f"{escape(header.get('program'))}  {escape(source.origin)}")
    if merged.missing:
        out += ["", "Not in this view:"]
        out += [f"  {escape(gone['reason'])}" for gone in merged.missing]
    for kind, nouns in STACK_KINDS.items():
        groups = merged.groups.get(kind, [])
        if not groups:
            continue
        title = {"threads": "Threads", "greenlets": "Green Threads",
                 "tasks": "Asyncio Tasks"}[kind]
        out += ["", banner(title)]
        for group in groups:
            out += ["", processes_line(group, nouns)]
            names = names_line(group)
            if names:
                out.append(names)
            out += stack_text(group)
    return "\n".join(out) + "\n"


def missing(reason: str, pid: int | None = None, source: str | None = None) -> Document:
    return {"pid": pid, "source": source, "reason": reason}


def report_pid(path: Path) -> tuple[int | None, Document | None, str]:
    """The pid of the report in a new file, its document when it is JSON, and
    its form ("json" or "text")."""
    try:
        raw = path.read_text(errors="replace")
    except OSError:
        return None, None, "unreadable"
    found, _ = documents_in(raw) if raw.lstrip().startswith("{") else ([], 0)
    if found:
        return int(found[0]["header"]["pid"]), found[0], "json"
    match = re.search(r"^pid = (\d+)$", raw[:8192], re.MULTILINE)
    return (int(match.group(1)) if match else None), None, "text"


def files_in(paths: Iterable[Path]) -> Iterator[tuple[Path, bool]]:
    """The files given, and the files under the directories given (hidden
    ones passed over), sorted; each with whether it was given by name."""
    for path in paths:
        if path.is_dir():
            yield from ((one, False) for one in sorted(path.rglob("*"))
                        if one.is_file() and not one.name.startswith("."))
        else:
            yield path, True
