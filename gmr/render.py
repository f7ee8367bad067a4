"""Renderers of the report model: the oslo.reports text layout (its banners
live here and only here) and JSON (the same model, serialised).

Every string gmr did not write itself (names, paths, command lines, option
values, registered titles, keys and values, exception text) reaches the text
through one helper, :func:`escape`: control characters, line and paragraph
separators, bidirectional controls and lone surrogates become visible escapes
(``\\n``, ``\\x1b``, ``\\u2028``, ``\\udc80``), so such a string stays on its line
and opens no escape sequence; where it begins a line, a leading ``=`` is
written ``\\x3d``, so no line that gmr did not write can look like a banner.
A registered section's own string keeps its lines, each escaped so.

Each section is rendered under a guard: whatever a value does when made
text, the section says so in one line and the rest of the report is whole.
The JSON is strict RFC 8259: no NaN or Infinity (written as the strings
"NaN", "Infinity", "-Infinity") and no lone surrogates (written as the
visible escape, e.g. the six characters ``\\udc80``).
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable, Mapping
from importlib import resources
from typing import Any

from gmr.report import Report, Section, failure

WIDTH = 72

#: What no foreign string may carry into the text: C0 and C1 controls and
#: DEL (newlines, ESC, BEL, NUL, ...), the line and paragraph separators,
#: the bidirectional controls, and surrogates (only lone ones can be in a
#: str; they cannot be encoded).
_UNSAFE = re.compile("[\x00-\x1f\x7f-\x9f\u061c\u200e\u200f\u2028-\u202e"
                     "\u2066-\u2069\ud800-\udfff]")
_NAMED = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}


def _visible(match: re.Match[str]) -> str:
    char = match.group()
    named = _NAMED.get(char)
    if named is not None:
        return named
    code = ord(char)
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def escape(value: Any, lead: bool = False) -> str:
    """The one way a string gmr did not write reaches the text: on one line,
    with every control character, separator, bidirectional control and lone
    surrogate as a visible escape; ordinary printable text (any script) as it
    is. lead: the string begins a line, so a leading "=" is written \\x3d
    (no such line can pass for a banner). Not a str: its str(), which may
    raise (the section's guard says so)."""
    text: str = value if type(value) is str else (
        str.__str__(value) if isinstance(value, str) else str.__str__(str(value)))
    if not text.isprintable():
        text = _UNSAFE.sub(_visible, text)
    if lead and text[:1] == "=":
        text = "\\x3d" + text[1:]
    return text


def banner(title: str) -> str:
    """The oslo.reports section banner: 72 "=", the title centred in 64
    columns between "====", 72 "="."""
    return f"{'=' * WIDTH}\n===={escape(title): ^64}====\n{'=' * WIDTH}"


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


#: The two lines of each frame (FrameInfo, shared by every stack that
#: holds it), made and escaped once: a report may hold 100,000 frames. An
#: entry holds its frame, so the id() in its key is not reused while it lives.
_frame_text: dict[int, tuple[Any, str, str]] = {}


def _frame_text_of(frame: Any) -> tuple[Any, str, str]:
    filename, line, function, source = frame
    if len(_frame_text) > 100_000:
        _frame_text.clear()
    entry = _frame_text[id(frame)] = (
        frame, f"{escape(filename, lead=True)}:{escape(line)} in {escape(function)}",
        f"    `{escape(source)}`")
    return entry


def _frames(out: list[str], frames: list[Any]) -> None:
    """Each frame as oslo.reports prints it: where, then the source line."""
    known = _frame_text.get
    for frame in frames:
        entry = known(id(frame))
        if entry is None or entry[0] is not frame:
            entry = _frame_text_of(frame)
        out += (entry[1], entry[2], "")


def _thread_facts(entry: Mapping[str, Any]) -> str:
    name = entry.get("name")
    parts = [escape(name) if name else "(not a threading.Thread)"]
    if entry.get("native_id"):
        parts.append(f"native id {escape(entry['native_id'])}")
    if entry.get("main"):
        parts.append("main thread")
    if entry.get("daemon"):
        parts.append("daemon")
    if entry.get("state"):
        parts.append(escape(entry["state"]))
    if entry.get("cpu_seconds") is not None:
        parts.append(f"cpu {float(entry['cpu_seconds']):.2f} s")
    return ", ".join(parts)


def _greenlet_facts(entry: Mapping[str, Any]) -> str:
    # Written for speed: a report may list 10,000 greenlets (hex() is
    # quicker than a format spec).
    state = escape(entry["state"])
    what = state
    name = entry["name"]
    if name:
        name = escape(name)
        ident = entry["minimal_ident"]
        what = (f"{name} (#{escape(ident)}), " if ident is not None else f"{name}, ") + state
    facts = f"id {hex(entry['id'])}, {escape(entry['type'])}, {what}"
    parent = entry["parent"]
    if parent:
        facts += f", parent {hex(parent)}"
    thread = entry["thread"]
    if thread:
        facts += f", in thread #{escape(thread)}"
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
            out.append(_context_banner(f"{escape(item['count'])} {noun} with this stack"))
            out.append("")
            for member in members:
                label = f"Thread #{escape(member['id'])}: " if not green else ""
                out.append(f"  {label}{facts(member)}")
            if item["count"] > len(members):
                out.append(f"  ... and {item['count'] - len(members)} more")
            out.append("")
        else:
            out += (green_banner if green else _context_banner(f"Thread #{escape(item['id'])}"),
                    "",
                    f"({facts(item)})", "")
        _frame_lines(out, item, rendered)
        if item.get("spawning_stack"):
            _spawning_stack(out, item, spawned)


def _nested(out: list[str], value: Any, indent: int) -> None:
    pad = "  " * indent
    if isinstance(value, Mapping):
        for key, item in value.items():
            if isinstance(item, Mapping | list | tuple | set | frozenset) and item:
                out.append(f"{pad}{escape(key, lead=True)} = ")
                _nested(out, item, indent + 1)
            else:
                out.append(f"{pad}{escape(key, lead=True)} = {_scalar(item)}")
    elif isinstance(value, list | tuple | set | frozenset):
        for item in value:
            if isinstance(item, Mapping | list | tuple | set | frozenset):
                _nested(out, item, indent + 1)
            else:
                out.append(f"{pad}{_scalar(item, lead=True)}")
    else:
        out.append(f"{pad}{_scalar(value, lead=True)}")


def _scalar(value: Any, lead: bool = False) -> str:
    if isinstance(value, list | tuple) and not value:
        return ""
    return escape(value, lead)


def _processes(out: list[str], data: Mapping[str, Any]) -> None:
    def line(entry: Mapping[str, Any], depth: int) -> None:
        uid = escape(entry["uids"][0]) if entry.get("uids") else "?"
        out.append(f"{'    ' * depth}Process {escape(entry['pid'])} (under "
                   f"{escape(entry['ppid'])}) [ run by: {escape(entry['user'])} ({uid}), "
                   f"state: {escape(entry['state'])} ]")
        cmdline = " ".join(escape(part) for part in entry["cmdline"])
        out.append(f"{'    ' * depth}    cmdline: {cmdline}")
        if entry.get("gids"):
            out.append(f"{'    ' * depth}    uids: {escape(entry['uids'])}, "
                       f"gids: {escape(entry['gids'])}")

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
        out.append(f"{escape(group, lead=True)}: ")
        for key, value in values.items():
            if isinstance(value, list | tuple):
                value = ", ".join(escape(item) for item in value)
            out.append(f"  {escape(key, lead=True)} = {escape(value)}")
        out.append("")


def _custom(out: list[str], data: Any) -> None:
    if isinstance(data, Mapping | list | tuple | set | frozenset):
        _nested(out, data, 0)
        return
    # A string (the text of an oslo.reports model included):
    # its own lines are kept (split wherever Python sees a line boundary),
    # each escaped, and none can pass for a banner.
    text = str.__str__(data) if isinstance(data, str) else str.__str__(str(data))
    out += [escape(line, lead=True) for line in text.splitlines() or [""]]


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
    if header.get("frozen_unsearched"):
        lines["frozen objects"] = (f"{header['frozen_unsearched']} frozen by gc.freeze(), not "
                                   "searched for greenlets by this walker: frozen greenlets "
                                   "are not listed")
    if header["displaced_signals"]:
        lines["signal handler"] = ("displaced: the application replaced gmr's handler for "
                                   f"signal(s) {header['displaced_signals']}; "
                                   "setup_autorun() installs it again")
    for key, value in lines.items():
        out.append(f"{key} = {escape(value)}")
    out.append("")


def _guarded(out: list[str], render: Callable[[list[str], Any], None], item: Any) -> None:
    """Lines from render(lines, item), or one line saying why it failed: a
    value that cannot be made text spoils its own section, never the report."""
    lines: list[str] = []
    try:
        render(lines, item)
    except Exception as error:
        lines = [f"gmr: {escape(failure(error))}"]
    out += lines


def text(report: Report) -> str:
    out: list[str] = []
    _guarded(out, _header, report.header)
    for section in report.sections:
        try:
            out.append(banner(section.title))
        except Exception as error:  # a title that cannot be made text
            out.append(banner(f"<title failed: {type(error).__name__}>"))
        _guarded(out, _section_text, section)
    return "\n".join(out) + "\n"


def _section_text(out: list[str], section: Section) -> None:
    if section.error is not None:
        out.append(f"gmr: {escape(section.error)}")
        return
    data = section.data
    if section.kind == "package":
        for key in ("product", "vendor", "version"):
            out.append(f"{key} = {escape(data[key]) if data[key] is not None else ''}")
    elif section.kind == "threads":
        _contexts(out, data, green=False)
    elif section.kind == "greenlets":
        if not data:
            out.append("No green threads.")
            out.append("")
        _contexts(out, data, green=True)
    elif section.kind == "tasks":
        for task in data:
            out.append(_context_banner(f"Task {escape(task['name'])}"))
            out.append("")
            out.append(f"({escape(task['state'])}, loop {int(task['loop_id']):#x} "
                       f"{escape(task['loop'])})")
            out.append("")
            _frame_lines(out, task)
    elif section.kind == "processes":
        _processes(out, data)
    elif section.kind == "configuration":
        _configuration(out, data)
    else:  # an oslo.reports model as its own view made it, else its data
        _custom(out, data if section.text is None else section.text)


_SURROGATE = re.compile("[\ud800-\udfff]")


def _json_str(value: Any) -> str:
    """A str for JSON: an exact str (str() of anything else), its
    surrogates (only lone ones can be in a str) as visible escapes, the six
    characters \\udc80: RFC 8259 strings are Unicode, and strict parsers refuse
    an escaped lone surrogate."""
    text: str = value if type(value) is str else (
        str.__str__(value) if isinstance(value, str) else str.__str__(str(value)))
    if text.isascii() or not _SURROGATE.search(text):
        return text
    return _SURROGATE.sub(_visible, text)


def _jsonable(value: Any) -> Any:
    """Plain, strict JSON data: mappings with str keys, lists, exact str, int
    and float, True, False, None. A float that JSON has no number for is a
    string ("NaN", "Infinity", "-Infinity"); an int past
    sys.set_int_max_str_digits raises ValueError (the section says so)."""
    if value is None or value is True or value is False:
        return value
    if isinstance(value, str):
        return _json_str(value)
    if isinstance(value, Mapping):
        return {_json_str(key): _jsonable(item) for key, item in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [_jsonable(item) for item in value]
    if isinstance(value, float):
        value = float.__float__(value)
        if math.isfinite(value):
            return value
        return "NaN" if value != value else "Infinity" if value > 0 else "-Infinity"
    if isinstance(value, int):
        value = int.__int__(value)
        if value.bit_length() > 2000:  # might pass sys.get_int_max_str_digits()
            int.__repr__(value)
        return value
    return _json_str(value)


#: Sections built by gmr from plain data (dicts, lists, tuples, str, numbers,
#: None) go to the encoder as they are; the others are made plain first.
_PLAIN_KINDS = frozenset({"threads", "greenlets", "tasks"})


def _section_dict(section: Section, plain_all: bool) -> dict[str, Any]:
    """One section as JSON data, under a guard: a value that cannot be made
    JSON spoils its own section (data null, error saying why), never the
    report."""
    try:
        title = _json_str(section.title)
    except Exception as error:
        title = f"<title failed: {type(error).__name__}>"
    try:
        plain = section.kind in _PLAIN_KINDS and not plain_all
        data = section.data if plain else _jsonable(section.data)
        reason = None if section.error is None else _json_str(section.error)
    except Exception as failed:
        data, reason = None, _json_str(failure(failed))
    return {"title": title, "kind": section.kind, "data": data, "error": reason}


def as_dict(report: Report, plain_all: bool = False) -> dict[str, Any]:
    """The report as JSON data. Built-in sections of plain data go as they
    are, unless plain_all (every value checked: the slow, strict way)."""
    return {
        "header": _jsonable(report.header),
        "sections": [_section_dict(section, plain_all) for section in report.sections],
    }


def json_schema() -> dict[str, Any]:
    """The JSON Schema (draft 2020-12) of the JSON report, shipped with gmr as
    gmr/report.schema.json; its version is header.reportVersion."""
    text = resources.files("gmr").joinpath("report.schema.json").read_text()
    schema: dict[str, Any] = json.loads(text)
    return schema


def _not_plain(value: Any) -> Any:
    raise ValueError(f"not plain JSON data: {type(value).__name__}")


#: One line of JSON: no spaces (json-compact), or with spaces to read (a
#: record's line in the indented form). Strict: no NaN or Infinity, nothing
#: JSON has no form for (json_text then makes every value plain first).
_compact = json.JSONEncoder(separators=(",", ":"), allow_nan=False, default=_not_plain).encode
_spaced = json.JSONEncoder(separators=(", ", ": "), allow_nan=False, default=_not_plain).encode


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


def _encode(document: dict[str, Any], compact: bool) -> str:
    if compact:
        return _compact(document) + "\n"
    out: list[str] = []
    _pretty(out, document, "")
    return "".join(out) + "\n"


def json_text(report: Report, compact: bool = False) -> str:
    """The report as strict RFC 8259 JSON (ASCII). Built-in data goes to the
    encoder as it is; only when that meets a float JSON has no number for, an
    object it has no form for, or a surrogate (the output then holds a
    \\udXXXX escape; a character past U+FFFF does too) is every value made
    plain and the document encoded again."""
    try:
        text = _encode(as_dict(report), compact)
    except ValueError:
        text = None
    if text is None or "\\ud" in text:
        text = _encode(as_dict(report, plain_all=True), compact)
    return text


def render(report: Report, form: str = "text") -> str:
    if form == "json":
        return json_text(report)
    if form == "json-compact":
        return json_text(report, compact=True)
    return text(report)
