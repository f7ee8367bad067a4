"""gmr diff A B: what changed in one process between two of its JSON reports.

Threads are the same thread in both reports by ident and native id,
greenlets by id and type, asyncio tasks by loop and name. A thread or
greenlet at the same place in both (the same (file, function, line) frames)
is stuck there; the others are new, gone, or moved. Then every number of
the report that changed: open fds, RSS, thread and greenlet counts, GC
figures, and the numbers of registered sections (queued work, pools).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

from gmr.collect import (
    STACK_KINDS,
    Document,
    collect_schema,
    entries,
    frame_text,
    parse_time,
    plural,
    section,
    stack_key,
)
from gmr.render import banner, escape

#: Numbers that name something or are settings, not a state that grows.
IGNORED = frozenset({"pid", "ppid", "id", "loop_id", "native_id", "minimal_ident", "parent",
                     "thread", "spawned_by", "reportVersion", "uptime seconds", "coalesced",
                     "gil_pause_ms", "uids", "gids", "fd limit", "rlimits", "thresholds",
                     "stall"})
#: Sections whose numbers are not compared as figures.
NOT_FIGURES = frozenset({"threads", "greenlets", "tasks", "configuration", "package"})
_PER_GENERATION = re.compile(r"^-?\d+( / -?\d+)+$")


def _identity(kind: str, member: Document) -> tuple[Any, ...]:
    if kind == "threads":
        return (member.get("id"), member.get("native_id"))
    if kind == "greenlets":
        return (member.get("id"), member.get("type"))
    return (member.get("loop_id"), member.get("name"))


def contexts(document: Document, kind: str) -> dict[tuple[Any, ...], tuple[Document, Document]]:
    """Each thread, greenlet or task of a report by identity: (its identity
    fields, the entry holding its stack). A group's members share its stack;
    members past those a group lists are not known."""
    found: dict[tuple[Any, ...], tuple[Document, Document]] = {}
    for entry, _count, members in entries(document, kind):
        for member in members:
            found[_identity(kind, member)] = (member, entry)
    return found


def numbers(document: Document) -> dict[str, float]:
    """Every number of the report that is a state (not an id, a limit or a
    setting), by a path that names it; a list's length as "(items)"."""
    found: dict[str, float] = {}

    def walk(path: str, value: Any, in_gc: bool) -> None:
        if isinstance(value, bool) or value is None:
            return
        if isinstance(value, (int, float)):
            found[path] = value
        elif isinstance(value, str) and in_gc and _PER_GENERATION.match(value):
            for generation, figure in enumerate(value.split(" / ")):
                found[f"{path} gen{generation}"] = int(figure)
        elif isinstance(value, dict):
            for key, inner in value.items():
                if str(key) not in IGNORED:
                    walk(f"{path} › {key}" if path else str(key), inner, in_gc or key == "gc")
        elif isinstance(value, list):
            found[f"{path} (items)"] = len(value)
            for index, inner in enumerate(value):
                if isinstance(inner, (dict, list)):
                    walk(f"{path} [{index}]", inner, in_gc)

    header = document.get("header", {})
    for key, value in header.items():
        if key not in IGNORED and key != "displaced_signals":
            walk(f"header › {key}", value, False)
    for one in document.get("sections", ()):
        if isinstance(one, dict) and one.get("kind") not in NOT_FIGURES:
            walk(str(one.get("title")), one.get("data"), False)
    return found


class Mismatch(Exception):
    """The two reports cannot be compared (one line)."""


def diff(before: Document, after: Document) -> Document:
    """What changed from before to after (two reports of one process, in
    capture order): stuck, moved, new and gone threads, greenlets and tasks,
    and the numbers that grew or shrank."""
    pids = before["header"]["pid"], after["header"]["pid"]
    if pids[0] != pids[1]:
        raise Mismatch(f"the reports are of two processes (pid {pids[0]} and pid {pids[1]}): "
                       "diff compares two reports of one process")
    result: Document = {"pid": pids[0], "program": after["header"].get("program"),
                        "from": before["header"].get("captured_at"),
                        "to": after["header"].get("captured_at")}
    try:
        result["seconds"] = round(parse_time(result["to"]) - parse_time(result["from"]), 3)
    except (TypeError, ValueError):
        result["seconds"] = None
    for kind in STACK_KINDS:
        old, new = contexts(before, kind), contexts(after, kind)
        stuck, moved, appeared, ended = [], [], [], []
        for key, (member, entry) in new.items():
            if key not in old:
                appeared.append(_item(member, entry))
                continue
            was_member, was = old[key]
            same = (stack_key(was, kind == "greenlets", [was_member])
                    == stack_key(entry, kind == "greenlets", [member]))
            if same and (entry.get("frames") or entry.get("innermost")):
                item = _item(member, entry)
                cpu = member.get("cpu_seconds"), was_member.get("cpu_seconds")
                if isinstance(cpu[0], (int, float)) and isinstance(cpu[1], (int, float)):
                    item["cpu_seconds_spent"] = round(cpu[0] - cpu[1], 3)
                stuck.append(item)
            elif not same:
                item = _item(member, entry)
                item["was"] = _where(was)
                moved.append(item)
        ended = [_item(member, entry) for key, (member, entry) in old.items() if key not in new]
        result[kind] = {"stuck": stuck, "moved": moved, "new": appeared, "gone": ended}
    first, second = numbers(before), numbers(after)
    changed: list[Document] = []
    for path, value in second.items():
        earlier = first.get(path)
        if earlier is not None and value != earlier:
            changed.append({"what": path, "before": earlier, "after": value,
                            "change": round(value - earlier, 6)})
    result["grew"] = [one for one in changed if one["change"] > 0]
    result["shrank"] = [one for one in changed if one["change"] < 0]
    return result


def _where(entry: Document) -> list[Any] | None:
    """The innermost frame of a stack, or None."""
    frames = entry.get("innermost") or entry.get("frames") or []
    return list(frames[-1]) if frames else None


def _item(member: Document, entry: Document) -> Document:
    keep = ("id", "name", "native_id", "main", "daemon", "state", "cpu_seconds", "type",
            "loop_id")
    item = {key: member[key] for key in keep if key in member}
    item["frames"] = list(entry.get("frames", []))
    item["omitted"] = int(entry.get("omitted", 0))
    item["innermost"] = list(entry.get("innermost", []))
    return item


def _who(kind: str, item: Document) -> str:
    noun = STACK_KINDS[kind][0]
    name = item.get("name")
    named = f" {escape(name)}" if isinstance(name, str) else ""
    if kind == "threads":
        facts = [f"native id {item['native_id']}" if item.get("native_id") is not None
                 else f"ident {item.get('id')}"]
    elif kind == "greenlets":
        facts = [f"id {hex(item['id'])}" if isinstance(item.get("id"), int) else "",
                 escape(item.get("type", ""))]
    else:
        facts = [f"loop {hex(item['loop_id'])}" if isinstance(item.get("loop_id"), int) else ""]
    if item.get("state"):
        facts.append(escape(item["state"]))
    if "cpu_seconds_spent" in item:
        facts.append(f"{item['cpu_seconds_spent']:+g} s CPU between the reports")
    return f"{noun}{named} ({', '.join(fact for fact in facts if fact)})"


def _stack(item: Document) -> Iterator[str]:
    frames, innermost = item.get("frames", []), item.get("innermost", [])
    if not frames and not innermost:
        yield "  No Traceback!"
        return
    for frame in frames:
        yield frame_text(frame)
    if item.get("omitted"):
        yield f"  ... {item['omitted']} frames omitted ..."
        for frame in innermost:
            yield frame_text(frame)


def _at(frame: list[Any] | None) -> str:
    if not frame:
        return "no stack"
    return f"{escape(frame[0])}:{frame[1]} in {escape(frame[2])}"


def _figure(value: float) -> str:
    return f"{value:,}" if isinstance(value, int) else f"{value:,.3f}".rstrip("0").rstrip(".")


def text(result: Document) -> str:
    """The difference, for a terminal."""
    seconds = result.get("seconds")
    out = [banner("Guru Meditation: diff"), "",
           f"process {result['pid']}: {escape(result.get('program'))}",
           f"from {escape(result.get('from'))} to {escape(result.get('to'))}"
           + (f" ({seconds:g} s apart)" if isinstance(seconds, (int, float)) else "")]
    headings = (("stuck", "Stuck: at the same place in both reports"),
                ("new", "New: in the second report only"),
                ("gone", "Gone: in the first report only"),
                ("moved", "Moved: elsewhere in the second report"))
    for change, heading in headings:
        counts = [plural(len(result[kind][change]), *STACK_KINDS[kind])
                  for kind in STACK_KINDS if result[kind][change]]
        title, said = heading.split(": ", 1)
        if not counts:
            out += ["", f"{title} ({said}): none"]
            continue
        out += ["", banner(title), f"{title} ({said}): {', '.join(counts)}"]
        for kind in STACK_KINDS:
            for item in result[kind][change]:
                out += ["", _who(kind, item)]
                if change == "moved":
                    out.append(f"  was at {_at(item['was'])}, now:")
                if change == "gone":
                    out.append("  last seen at:")
                out += list(_stack(item))
    out += ["", banner("Numbers")]
    for change, word in (("grew", "Grew"), ("shrank", "Shrank")):
        rows = result[change]
        out.append(f"{word}:" + (" none" if not rows else ""))
        for row in rows:
            out.append(f"  {escape(row['what'])}: {_figure(row['before'])} -> "
                       f"{_figure(row['after'])} ({'+' if row['change'] > 0 else ''}"
                       f"{_figure(row['change'])})")
    return "\n".join(out) + "\n"


def diff_schema() -> dict[str, Any]:
    """The JSON Schema of `gmr diff --json`: $defs/diff of gmr/collect.schema.json."""
    schema = collect_schema()
    return {"$schema": schema["$schema"], "$defs": schema["$defs"], "$ref": "#/$defs/diff"}


def in_order(first: Document, second: Document) -> tuple[Document, Document]:
    """The two reports in capture order."""
    try:
        if parse_time(first["header"]["captured_at"]) > parse_time(
                second["header"]["captured_at"]):
            return second, first
    except (KeyError, TypeError, ValueError):
        pass
    return first, second


__all__ = ["diff", "in_order", "numbers", "section", "text", "Mismatch"]
