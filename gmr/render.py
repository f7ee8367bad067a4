"""Renderers of the report model: the oslo.reports text layout (its banners
live here and only here) and JSON (the same model, serialised)."""

from __future__ import annotations

import json
from collections.abc import Mapping
from importlib import resources
from typing import Any

from gmr.report import Report, Section

WIDTH = 72


def banner(title: str) -> str:
    """The oslo.reports section banner: 72 "=", the title centred in 64
    columns between "====", 72 "="."""
    return f"{'=' * WIDTH}\n===={title: ^64}====\n{'=' * WIDTH}"


def _context_banner(title: str) -> str:
    return f"------{title: ^60}------"


def _frame_lines(out: list[str], item: Mapping[str, Any],
                 rendered: dict[int, list[str]] | None = None) -> None:
    """The stack of a thread, greenlet or group. Contexts resolved to one
    shared frames list are rendered once (rendered maps its id to the lines)."""
    frames = item["frames"]
    lines = rendered.get(id(frames)) if rendered is not None else None
    if lines is None:
        lines = []
        if not frames and not item.get("innermost"):
            lines += ["No Traceback!", ""]
        else:
            _frames(lines, frames)
            if item.get("omitted"):
                lines += [f"... {item['omitted']} frames omitted ...", ""]
                _frames(lines, item["innermost"])
        if rendered is not None:
            rendered[id(frames)] = lines
    out += lines


def _frames(out: list[str], frames: list[Any]) -> None:
    """Each frame as oslo.reports prints it: where, then the source line."""
    for filename, line, function, source in frames:
        out.append(f"{filename}:{line} in {function}")
        out.append(f"    `{source}`")
        out.append("")


def _thread_facts(entry: Mapping[str, Any]) -> str:
    parts = [entry.get("name") or "(not a threading.Thread)"]
    if entry.get("native_id"):
        parts.append(f"native id {entry['native_id']}")
    if entry.get("main"):
        parts.append("main thread")
    if entry.get("daemon"):
        parts.append("daemon")
    if entry.get("state"):
        parts.append(entry["state"])
    if entry.get("cpu_seconds") is not None:
        parts.append(f"cpu {entry['cpu_seconds']:.2f} s")
    return ", ".join(parts)


def _greenlet_facts(entry: Mapping[str, Any]) -> str:
    # Written for speed: a report may list 10,000 greenlets (hex() is
    # quicker than a format spec).
    state = entry["state"]
    what = state
    name = entry["name"]
    if name:
        ident = entry["minimal_ident"]
        what = (f"{name} (#{ident}), " if ident is not None else f"{name}, ") + state
    facts = f"id {hex(entry['id'])}, {entry['type']}, {what}"
    parent = entry["parent"]
    if parent:
        facts += f", parent {hex(parent)}"
    thread = entry["thread"]
    if thread:
        facts += f", in thread #{thread}"
    if state == "running":
        facts += ", its frames are its thread's"
    return facts


def _spawning_stack(out: list[str], entry: Mapping[str, Any],
                    rendered: dict[tuple[Any, ...], list[str]]) -> None:
    """Where a greenlet was spawned: rendered once for all the greenlets one
    spawner started from the same place (rendered keeps the lines)."""
    key = (entry.get("spawned_by"), *entry["spawning_stack"])
    lines = rendered.get(key)
    if lines is None:
        spawner = key[0]
        lines = rendered[key] = ["Spawned" + (f" by {hex(spawner)}" if spawner else "") + " at:",
                                 ""]
        _frames(lines, entry["spawning_stack"])
    out += lines


def _contexts(out: list[str], items: list[Mapping[str, Any]], green: bool) -> None:
    facts = _greenlet_facts if green else _thread_facts
    rendered: dict[int, list[str]] = {}
    spawned: dict[tuple[Any, ...], list[str]] = {}
    green_banner = _context_banner("Green Thread")
    for item in items:
        if "members" in item:  # a group of identical stacks
            members = item["members"]
            noun = "Green Threads" if green else "Threads"
            out.append(_context_banner(f"{item['count']} {noun} with this stack"))
            out.append("")
            for member in members:
                label = f"Thread #{member['id']}: " if not green else ""
                out.append(f"  {label}{facts(member)}")
            if item["count"] > len(members):
                out.append(f"  ... and {item['count'] - len(members)} more")
            out.append("")
        else:
            out += (green_banner if green else _context_banner(f"Thread #{item['id']}"), "",
                    f"({facts(item)})", "")
        _frame_lines(out, item, rendered)
        if item.get("spawning_stack"):
            _spawning_stack(out, item, spawned)


def _nested(out: list[str], value: Any, indent: int) -> None:
    pad = "  " * indent
    if isinstance(value, Mapping):
        for key, item in value.items():
            if isinstance(item, Mapping | list | tuple | set | frozenset) and item:
                out.append(f"{pad}{key} = ")
                _nested(out, item, indent + 1)
            else:
                out.append(f"{pad}{key} = {_scalar(item)}")
    elif isinstance(value, list | tuple | set | frozenset):
        for item in value:
            if isinstance(item, Mapping | list | tuple | set | frozenset):
                _nested(out, item, indent + 1)
            else:
                out.append(f"{pad}{_scalar(item)}")
    else:
        out.append(f"{pad}{_scalar(value)}")


def _scalar(value: Any) -> str:
    if isinstance(value, list | tuple) and not value:
        return ""
    return str(value)


def _processes(out: list[str], data: Mapping[str, Any]) -> None:
    def line(entry: Mapping[str, Any], depth: int) -> None:
        uid = entry["uids"][0] if entry.get("uids") else "?"
        out.append(f"{'    ' * depth}Process {entry['pid']} (under {entry['ppid']}) "
                   f"[ run by: {entry['user']} ({uid}), state: {entry['state']} ]")
        out.append(f"{'    ' * depth}    cmdline: {' '.join(entry['cmdline'])}")
        if entry.get("gids"):
            out.append(f"{'    ' * depth}    uids: {entry['uids']}, gids: {entry['gids']}")

    line(data["process"], 0)
    for child in data["children"]:
        line(child, 1)
    out.append("")
    _nested(out, data["facts"], 0)
    if data.get("environment"):
        out.append("environment = ")
        _nested(out, data["environment"], 1)
    out.append("")


def _configuration(out: list[str], data: Mapping[str, Mapping[str, Any]]) -> None:
    out.append("")
    for group, values in data.items():
        out.append(f"{group}: ")
        for key, value in values.items():
            if isinstance(value, list | tuple):
                value = ", ".join(str(item) for item in value)
            out.append(f"  {key} = {value}")
        out.append("")


def _custom(out: list[str], data: Any) -> None:
    if isinstance(data, str):
        out.append(data)
    elif isinstance(data, Mapping | list | tuple | set | frozenset):
        _nested(out, data, 0)
    else:  # any object, oslo.reports models included
        out.append(str(data))


def _header(out: list[str], header: Mapping[str, Any]) -> None:
    out.append(banner("Guru Meditation"))
    out.append("|" * WIDTH)
    out.append("")
    states = ", ".join(f"{count} {state}" for state, count in
                       sorted(header["greenlet_states"].items()))
    lines = {
        "captured at": header["captured_at"],
        "pid": header["pid"],
        "program": header["program"],
        "trigger": f"{header['trigger']}" + (f" ({header['coalesced']} coalesced)"
                                             if header["coalesced"] > 1 else ""),
        "gil held by capture": f"{header['gil_pause_ms']:.3f} ms",
        "threads": header["threads"],
        "greenlets": f"{header['greenlets']}" + (f" ({states})" if states else ""),
        # Beside the core, why some of it runs on the pure twin, if it does.
        "capture": header["capture"] + (f" ({header['core_fallback']})"
                                        if header["core_fallback"] else ""),
    }
    if header["displaced_signals"]:
        lines["signal handler"] = ("displaced: the application replaced gmr's handler for "
                                   f"signal(s) {header['displaced_signals']}; "
                                   "setup_autorun() installs it again")
    for key, value in lines.items():
        out.append(f"{key} = {value}")
    out.append("")


def text(report: Report) -> str:
    out: list[str] = []
    _header(out, report.header)
    for section in report.sections:
        out.append(banner(section.title))
        if section.error is not None:
            out.append(f"gmr: {section.error}")
            continue
        _section_text(out, section)
    return "\n".join(out) + "\n"


def _section_text(out: list[str], section: Section) -> None:
    data = section.data
    if section.kind == "package":
        for key in ("product", "vendor", "version"):
            out.append(f"{key} = {data[key] if data[key] is not None else ''}")
    elif section.kind == "threads":
        _contexts(out, data, green=False)
    elif section.kind == "greenlets":
        if not data:
            out.append("No green threads.")
            out.append("")
        _contexts(out, data, green=True)
    elif section.kind == "tasks":
        for task in data:
            out.append(_context_banner(f"Task {task['name']}"))
            out.append("")
            out.append(f"({task['state']}, loop {task['loop_id']:#x} {task['loop']})")
            out.append("")
            _frame_lines(out, task)
    elif section.kind == "processes":
        _processes(out, data)
    elif section.kind == "configuration":
        _configuration(out, data)
    else:
        _custom(out, data)


def _jsonable(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {str(key): _jsonable(item) for key, item in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [_jsonable(item) for item in value]
    if value is None or isinstance(value, bool | int | float | str):
        return value
    return str(value)


#: Sections built by gmr from plain data (dicts, lists, tuples, str, numbers,
#: None) go to the encoder as they are; the others are made plain first.
_PLAIN_KINDS = frozenset({"threads", "greenlets", "tasks"})


def as_dict(report: Report) -> dict[str, Any]:
    return {
        "header": _jsonable(report.header),
        "sections": [
            {"title": section.title, "kind": section.kind,
             "data": section.data if section.kind in _PLAIN_KINDS else _jsonable(section.data),
             "error": section.error}
            for section in report.sections
        ],
    }


def json_schema() -> dict[str, Any]:
    """The JSON Schema (draft 2020-12) of the JSON report, shipped with gmr as
    gmr/report.schema.json; its version is header.reportVersion."""
    text = resources.files("gmr").joinpath("report.schema.json").read_text()
    schema: dict[str, Any] = json.loads(text)
    return schema


#: One line of JSON: no spaces (json-compact), or with spaces to read (a
#: record's line in the indented form). Objects JSON has no form for are str()ed.
_compact = json.JSONEncoder(separators=(",", ":"), default=str).encode
_spaced = json.JSONEncoder(separators=(", ", ": "), default=str).encode


def _is_record(value: Any) -> bool:
    """Plain values, and lists of them (a thread, a greenlet, a process, a
    frame): one line. Whatever holds a mapping is not a record. Lists are
    taken as their first item shows them: each list the report makes holds
    one kind of thing."""
    if isinstance(value, dict):
        value = value.values()
    elif not isinstance(value, list | tuple):
        return True
    for item in value:
        if isinstance(item, dict):
            return False
        if isinstance(item, list | tuple) and item and isinstance(item[0], dict):
            return False
    return True


def _pretty(out: list[str], value: Any, pad: str) -> None:
    """Indented JSON where a person reads it: mappings nest, one key per line;
    in a list, each record (a thread, a greenlet, a process, a frame) takes
    one line. Those lines come from the C encoder: fast with 10,000 greenlets."""
    inner = pad + "  "
    if isinstance(value, dict) and value:
        out.append("{\n")
        for index, (key, item) in enumerate(value.items()):
            out.append(f",\n{inner}" if index else inner)
            out.append(f"{json.dumps(str(key))}: ")
            _pretty(out, item, inner)
        out.append(f"\n{pad}}}")
    elif isinstance(value, list | tuple) and not _is_record(value):
        out.append("[\n")
        for index, item in enumerate(value):
            out.append(f",\n{inner}" if index else inner)
            if _is_record(item):
                out.append(_spaced(item))
            else:
                _pretty(out, item, inner)
        out.append(f"\n{pad}]")
    else:
        out.append(_spaced(value))


def json_text(report: Report, compact: bool = False) -> str:
    if compact:
        return _compact(as_dict(report)) + "\n"
    out: list[str] = []
    _pretty(out, as_dict(report), "")
    return "".join(out) + "\n"


def render(report: Report, form: str = "text") -> str:
    if form == "json":
        return json_text(report)
    if form == "json-compact":
        return json_text(report, compact=True)
    return text(report)
