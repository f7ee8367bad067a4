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

import functools
import json
import math
import re
from bisect import bisect_left
from collections.abc import Callable, Iterator, Mapping, Sequence
from importlib import resources
from itertools import accumulate
from operator import add
from typing import Any

from gmr._impl import files
from gmr.model import (
    DeadlockRecord,
    GreenletRecord,
    Group,
    PoolRecord,
    Report,
    Section,
    StackTable,
    TaskRecord,
    ThreadRecord,
)
from gmr.pools import MessagingServer, MessagingTarget
from gmr.report import failure
from gmr.resolve import Location
from gmr.waits import Wait

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


#: Types that are no Mapping, told without asking collections.abc: its
#: answer for a type it has not seen is kept for good (in the ABC's caches),
#: made in the middle of a report's many short-lived objects, where it
#: keeps a whole allocator arena alive.
_NOT_MAPPINGS = frozenset({str, int, float, bool, type(None), bytes, list, tuple, set, frozenset})
_SEQUENCES = (list, tuple, set, frozenset)


def _is_mapping(value: Any) -> bool:
    kind = type(value)
    return kind is dict or (kind not in _NOT_MAPPINGS and isinstance(value, Mapping))


def _is_container(value: Any) -> bool:
    return isinstance(value, _SEQUENCES) or _is_mapping(value)


def banner(title: str) -> str:
    """The oslo.reports section banner: 72 "=", the title centred in 64
    columns between "====", 72 "="."""
    return f"{'=' * WIDTH}\n===={escape(title): ^64}====\n{'=' * WIDTH}"


def _context_banner(title: str) -> str:
    return f"------{title: ^60}------"


class _StackText:
    """The text of a report's stack table: each distinct frame and each
    distinct stack made (and escaped) once, when first needed, and reused by
    every listing that stands in it."""

    def __init__(self, table: StackTable) -> None:
        self._table = table
        self._frames: list[str | None] = [None] * len(table.frames)
        self._stacks: list[str | None] = [None] * len(table.stacks)
        self._spawned: dict[tuple[int | None, int], str] = {}

    def frame(self, index: int) -> str:
        """A frame as oslo.reports prints it: where, then the source line
        (and the blank line after them)."""
        text = self._frames[index]
        if text is None:
            where = self._table.frames[index]
            text = self._frames[index] = (
                f"{escape(where.file, lead=True)}:{escape(where.line)} in "
                f"{escape(where.function)}\n    `{escape(where.source)}`\n")
        return text

    def stack(self, index: int) -> str:
        """A whole stack, its cut said where it is cut."""
        text = self._stacks[index]
        if text is None:
            stack = self._table.stacks[index]
            if not stack.frames and not stack.innermost:
                text = "No Traceback!\n"
            else:
                frame = self.frame
                parts = [frame(where) for where in stack.frames]
                if stack.omitted:
                    parts.append(f"... {stack.omitted} frames omitted ...\n")
                    parts += [frame(where) for where in stack.innermost]
                text = "\n".join(parts)
            self._stacks[index] = text
        return text

    def texts(self) -> list[str]:
        """The text of every stack of the table, by index."""
        return [self.stack(index) for index in range(len(self._stacks))]

    def spawned(self, spawner: int | None, index: int, ids: list[int] | None = None) -> str:
        """Where a greenlet was spawned, made once for all the greenlets one
        spawner started from the same place; ids: the greenlets it is said
        for, where a group's members were spawned in more than one place."""
        key = (spawner, index)
        text = None if ids else self._spawned.get(key)
        if text is None:
            which = f" ({', '.join(f'id {hex(ident)}' for ident in ids)})" if ids else ""
            head = "Spawned" + (f" by {hex(spawner)}" if spawner else "") + f" at{which}:\n"
            text = "\n".join([head, self.stack(index)])
            if not ids:
                self._spawned[key] = text
        return text


def _thread_facts(thread: ThreadRecord) -> str:
    name = thread.name
    # Inside the facts' own parentheses: no second pair.
    parts = [escape(name) if name else "not a threading.Thread"]
    if thread.native_id:
        parts.append(f"native id {escape(thread.native_id)}")
    if thread.main:
        parts.append("main thread")
    if thread.daemon:
        parts.append("daemon")
    if thread.state:
        parts.append(escape(thread.state))
    if thread.cpu_seconds is not None:
        parts.append(f"cpu {float(thread.cpu_seconds):.2f} s")
    if thread.pool is not None:
        parts.append(f"pool {int(thread.pool):#x}")
    if thread.wait is not None:
        parts.append(_wait_text(thread.wait))
    return ", ".join(parts)


def _wait_text(wait: Wait) -> str:
    """What a thread waits on, as the JVM says it: "waiting to lock
    _thread.RLock 0x7f... held by Thread #N", "waiting on threading.Event 0x7f..."."""
    what = f"{escape(wait.type)} {int(wait.id):#x}"
    if not wait.lock:
        return f"waiting on {what}"
    held = "" if wait.owner is None else f" held by Thread #{int(wait.owner)}"
    return f"waiting to lock {what}{held}"


def _deadlocks(out: list[str], items: tuple[DeadlockRecord, ...]) -> None:
    for number, deadlock in enumerate(items, 1):
        out += (_context_banner(f"Deadlock {number}: {len(deadlock.links)} threads"), "")
        for link in deadlock.links:
            name = f" ({escape(link.name)})" if link.name else ""
            out.append(f"Thread #{int(link.thread)}{name} is {_wait_text(link.lock)}")
        out.append("")


def _threads(out: list[str], items: tuple[ThreadRecord | Group, ...],
             stacks: _StackText) -> None:
    for item in items:
        if isinstance(item, Group):
            _group(out, item, ("Thread", "Threads"),
                   [f"  Thread #{escape(member.id)}: {_thread_facts(member)}"
                    for member in item.members])
        else:
            out += (_context_banner(f"Thread #{escape(item.id)}"), "",
                    f"({_thread_facts(item)})", "")
        out.append(stacks.stack(item.stack))


#: Greenlet records per call of files.Listings.add (a slice whose records
#: cannot all be read is one line that says why; the others are listed).
LISTINGS_SLICE = 128


def _one_by_one(items: Sequence[GreenletRecord | Group]) -> bool:
    """Whether greenlets are listed one at a time (not grouped, not none)."""
    return bool(items) and not isinstance(items[0], Group)


def _greenlet_listings(items: Sequence[GreenletRecord | Group],
                       stacks: _StackText) -> files.Listings:
    """The listings of greenlets one at a time, as a job of the files unit:
    it reads the records' fields now, LISTINGS_SLICE at a time, and
    assembles their text from the stack texts as the report is written
    (the compiled unit: with the GIL let go, gmr/_listings.h)."""
    known: dict[str, str] = {}  # escape() of the few types and states
    texts, banner = stacks.texts(), _context_banner("Green Thread")

    def spawned(green: GreenletRecord) -> str:
        where = green.spawning_stack  # the files unit asks only where there is one
        return "" if where is None else stacks.spawned(green.spawned_by, where)

    def listing(green: GreenletRecord) -> str:
        """A greenlet's listing, made here (the pure twin, and a record the
        compiled one cannot read as plain data)."""
        text = f"{banner}\n\n({files.greenlet_facts(green, known, escape)})\n\n{texts[green[9]]}"
        return text if green[8] is None else f"{text}\n{spawned(green)}"

    listings = files.Listings("text", banner, texts, escape, spawned, listing)
    for start in range(0, len(items), LISTINGS_SLICE):
        try:
            listings.add(items[start:start + LISTINGS_SLICE])
        except Exception as error:
            listings.add_line(f"gmr: {escape(failure(error))}")
    return listings


def _greenlets(out: list[str], items: Sequence[GreenletRecord | Group],
               stacks: _StackText) -> None:
    """No greenlets, or their groups (_text_sections streams the listings of
    ungrouped ones, _greenlet_listings)."""
    if not items:
        out += ("No green threads.", "")
        return
    known: dict[str, str] = {}  # escape() of the few types and states
    for group in items:
        if not isinstance(group, Group):
            raise TypeError("ungrouped greenlets are listed by _greenlet_listings")
        _group(out, group, ("Green Thread", "Green Threads"),
               [f"  {files.greenlet_facts(member, known, escape)}" for member in group.members])
        out.append(stacks.stack(group.stack))
        # Where the members named were spawned, as JSON's members say.
        spawned: dict[tuple[int | None, int], list[int]] = {}
        for member in group.members:
            if member.spawning_stack is not None:
                spawned.setdefault((member.spawned_by, member.spawning_stack),
                                   []).append(member.id)
        for (spawner, where), ids in spawned.items():
            out.append(stacks.spawned(spawner, where, ids if len(spawned) > 1 else None))


def _group(out: list[str], group: Group, nouns: tuple[str, str], members: list[str]) -> None:
    """A group's banner ("1 Thread", "2 Threads" with this stack, "of pool
    0x..." for a pool's workers) and members."""
    noun = nouns[0] if group.total == 1 else nouns[1]
    pool = "" if group.pool is None else f" of pool {int(group.pool):#x}"
    out.append(_context_banner(f"{escape(group.total)} {noun}{pool} with this stack"))
    out.append("")
    out += members
    if group.total > len(group.members):
        out.append(f"  ... and {group.total - len(group.members)} more")
    out.append("")


def _count(value: int | None) -> str:
    return "unknown" if value is None else str(int(value))


#: How the text calls each kind of oslo.messaging server.
_SERVER_KINDS = {"rpc": "oslo.messaging RPC server",
                 "notification": "oslo.messaging notification listener"}


def _messaging_target(target: MessagingTarget) -> str:
    parts = [f"{what} {escape(value)}" for what, value in (
        ("topic", target.topic), ("server", target.server), ("exchange", target.exchange))
        if value is not None]
    return ", ".join(parts) or "no topic"


def _serves(server: MessagingServer) -> list[str]:
    """The lines that name the oslo.messaging server a pool is the executor of."""
    kind = _SERVER_KINDS.get(server.kind) or f"oslo.messaging server {escape(server.type)}"
    targets = "; ".join(_messaging_target(target) for target in server.targets)
    lines = [f"serves = {kind}" + (f": {targets}" if targets else "")]
    if server.endpoints:
        lines.append(f"endpoints = {', '.join(escape(name) for name in server.endpoints)}")
    return lines


def _pools(out: list[str], items: tuple[PoolRecord, ...]) -> None:
    for pool in items:
        named = f", threads named {escape(pool.name)}_N" if pool.name else ""
        out += (_context_banner(f"Pool {int(pool.id):#x}"), "",
                f"({escape(pool.type)}{named})")
        if pool.serves is not None:
            out += _serves(pool.serves)
        out += (f"max workers = {_count(pool.max_workers)}",
                f"threads = {_count(pool.threads)}",
                f"busy = {_count(pool.busy)}",
                f"idle = {_count(pool.idle)}",
                f"queued = {_count(pool.queued)}", "")
        if pool.busy_workers:
            out.append("busy workers:")
            for worker in pool.busy_workers:
                name = escape(worker.name) if worker.name else "a thread"
                task = escape(worker.task) if worker.task else "a callable with no Python frame"
                ago = worker.submitted_seconds_ago
                since = "" if ago is None else f", submitted {float(ago):.1f} s ago"
                out.append(f"  {name} (Thread #{int(worker.thread)}): {task}{since}")
            out.append("")


def _tasks(out: list[str], items: tuple[TaskRecord, ...], stacks: _StackText) -> None:
    for task in items:
        out += (_context_banner(f"Task {escape(task.name)}"), "",
                f"({escape(task.state)}, loop {int(task.loop_id):#x} {escape(task.loop)})", "",
                stacks.stack(task.stack))


def _nested(out: list[str], value: Any, indent: int) -> None:
    pad = "  " * indent
    if _is_mapping(value):
        for key, item in value.items():
            if _is_container(item) and item:
                out.append(f"{pad}{escape(key, lead=True)} = ")
                _nested(out, item, indent + 1)
            else:
                out.append(f"{pad}{escape(key, lead=True)} = {_scalar(item)}")
    elif isinstance(value, _SEQUENCES):
        for item in value:
            if _is_container(item):
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
            if _is_mapping(value):
                # A DictOpt, as oslo.reports' configuration view shows a
                # mapping: a blank line, "key: ", each item on its line, sorted.
                out += ("", f"  {escape(key, lead=True)}: ")
                out += [f"    {escape(item, lead=True)} = {_option_value(value[item])}"
                        for item in sorted(value, key=str)]
                continue
            out.append(f"  {escape(key, lead=True)} = {_option_value(value)}")
        out.append("")


def _option_value(value: Any) -> str:
    """An option's value: a list's items comma-joined, anything else as text."""
    if isinstance(value, list | tuple):
        return ", ".join(escape(item) for item in value)
    return escape(value)


def _custom(out: list[str], data: Any) -> None:
    if _is_container(data):
        _nested(out, data, 0)
        return
    # A string (the text of an oslo.reports model included):
    # its own lines are kept (split wherever Python sees a line boundary),
    # each escaped, and none can pass for a banner.
    text = str.__str__(data) if isinstance(data, str) else str.__str__(str(data))
    out += [escape(line, lead=True) for line in text.splitlines() or [""]]


def _gil_held(header: Mapping[str, Any]) -> str:
    """The longest hold of the GIL, and where the capture took several (the
    greenlets are copied in bounded holds), how many and their total."""
    longest = f"{header['gil_pause_ms']:.3f} ms"
    holds = header.get("gil_holds", 1)
    if holds <= 1:
        return longest
    return f"{longest} (longest of {holds} holds, {header['gil_held_ms']:.3f} ms in all)"


def _header(out: list[str], header: Mapping[str, Any]) -> None:
    out.append(banner("Guru Meditation"))
    out.append("|" * WIDTH)
    out.append("")
    states = ", ".join(f"{count} {state}" for state, count in
                       sorted(header["greenlet_states"].items()))
    lines = {
        "captured at": header["captured_at"],
        "host": header.get("host"),
        "pid": header["pid"],
        "program": header["program"],
        "trigger": f"{header['trigger']}" + (f" ({header['coalesced']} coalesced)"
                                             if header["coalesced"] > 1 else ""),
        "gil held by capture": _gil_held(header),
        "threads": header["threads"],
        "greenlets": f"{header['greenlets']}" + (f" ({states})" if states else ""),
        # Beside the core, why some of it runs on the pure twin, if it does.
        "capture": header["capture"] + (f" ({header['core_fallback']})"
                                        if header["core_fallback"] else ""),
    }
    if lines["host"] is None:  # unknown, or a report made before hosts were named
        del lines["host"]
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
        if key == "trigger":
            out += _stall_lines(header.get("stall"))
    out.append("")


#: How each kind of loop is named in the header.
_LOOP_KINDS = {"eventlet": "eventlet hub", "gevent": "gevent hub", "asyncio": "asyncio loop"}


def _stall_lines(stall: Mapping[str, Any] | None) -> list[str]:
    """One line for each loop that had not come round (gmr.stall), right
    after the trigger; and the stalls that went unreported."""
    if not stall:
        return []
    out = []
    for loop in stall["loops"]:
        kind = _LOOP_KINDS.get(loop["kind"], escape(loop["kind"]))
        where = "in a thread not captured"
        if loop["thread"] is not None:
            facts = [escape(loop["thread_name"]) if loop["thread_name"] else
                     "not a threading.Thread"]
            if loop["native_id"]:
                facts.append(f"native id {escape(loop['native_id'])}")
            where = f"in Thread #{int(loop['thread'])} ({', '.join(facts)})"
        after = ("still blocked after the capture" if loop["blocked_after_capture"] else
                 "it came round during the capture: the stacks may not show what blocked it")
        out.append(f"stalled = {kind} {int(loop['loop_id']):#x} ({escape(loop['type'])}) "
                   f"{where}: has not come round for at least {float(loop['seconds']):.3f} s "
                   f"(stall_report_after = {float(stall['after']):g} s); {after}")
    if stall["unreported"]:
        out.append(f"stalls unreported = {int(stall['unreported'])} since the last report of "
                   "a stall: they ended before stall_report_interval allowed one")
    return out


#: About how many characters each piece of a rendered report holds: a
#: report is made and written a piece at a time, never as one string.
CHUNK = 1 << 16


def _guarded(render: Callable[[list[str]], None]) -> list[str]:
    """Lines from render(lines), or one line saying why it failed: a value
    that cannot be made text spoils its own section, never the report. A
    "line" may be a block of lines (a stack's text): lines are joined by
    newlines."""
    lines: list[str] = []
    try:
        render(lines)
    except Exception as error:
        lines = [f"gmr: {escape(failure(error))}"]
    return lines


def _text_sections(report: Report) -> Iterator[list[str] | files.Listings]:
    """The lines of the header, then of each section, one section at a time;
    greenlets listed one at a time are a files.Listings."""
    stacks = _StackText(report.table)
    yield _guarded(lambda out: _header(out, report.header))
    for section in report.sections:
        try:
            title = banner(section.title)
        except Exception as error:  # a title that cannot be made text
            title = banner(f"<title failed: {type(error).__name__}>")
        yield [title]
        if section.kind == "greenlets" and section.error is None and _one_by_one(section.data):
            # Thousands of listings: their text is never held whole (a
            # section of 20 MB, held whole, stayed in the heap), and is
            # assembled as it is written.
            try:
                yield _greenlet_listings(section.data, stacks)
            except Exception as error:  # a stack that cannot be made text
                yield [f"gmr: {escape(failure(error))}"]
            continue
        yield _guarded(functools.partial(_section_text, section=section, stacks=stacks))


def text_chunks(report: Report) -> Iterator[str | files.Listings]:
    """The text report, in pieces of about CHUNK characters: each piece ends
    after the first line that brings it to CHUNK or more (the cut found by
    bisection over a section's running sizes, not a step per line). The
    listings of greenlets one at a time are one piece, a files.Listings,
    whose text the sink asks for as it writes."""
    pending: list[str] = []
    size = 0
    for lines in _text_sections(report):
        if not isinstance(lines, list):
            if pending:
                pending.append("")
                yield "\n".join(pending)
                pending, size = [], 0
            yield lines
            continue
        # ends[i]: the size of lines[:i + 1], a newline after each.
        ends = list(accumulate(map(len, lines), initial=0))
        ends = list(map(add, ends[1:], range(1, len(ends))))
        start, before = 0, 0
        while start < len(lines):
            cut = bisect_left(ends, CHUNK - size + before, lo=start)
            if cut == len(lines):
                pending += lines[start:]
                size += ends[-1] - before
                break
            pending += lines[start:cut + 1]
            pending.append("")
            yield "\n".join(pending)
            pending, size = [], 0
            start, before = cut + 1, ends[cut]
    pending.append("")
    yield "\n".join(pending)


def text(report: Report) -> str:
    return _joined(text_chunks(report))


def _section_text(out: list[str], section: Section, stacks: _StackText) -> None:
    if section.error is not None:
        out.append(f"gmr: {escape(section.error)}")
        return
    data = section.data
    if section.kind == "package":
        for key in ("product", "vendor", "version"):
            out.append(f"{key} = {escape(data[key]) if data[key] is not None else ''}")
    elif section.kind == "threads":
        _threads(out, data, stacks)
    elif section.kind == "deadlocks":
        _deadlocks(out, data)
    elif section.kind == "pools":
        _pools(out, data)
    elif section.kind == "greenlets":
        _greenlets(out, data, stacks)
    elif section.kind == "tasks":
        _tasks(out, data, stacks)
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
    if _is_mapping(value):
        return {_json_str(key): _jsonable(item) for key, item in value.items()}
    if isinstance(value, _SEQUENCES):
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
#: JSON has no form for.
_compact = json.JSONEncoder(separators=(",", ":"), allow_nan=False, default=_not_plain).encode
_spaced = json.JSONEncoder(separators=(", ", ": "), allow_nan=False, default=_not_plain).encode


class _Json:
    """Strict RFC 8259 JSON (ASCII), a piece at a time. Data gmr built goes
    to the C encoder as it is; only a piece where that meets a float JSON
    has no number for, an object it has no form for, or a surrogate (the
    piece then holds a \\udXXXX escape; a character past U+FFFF does too) is
    made plain (_jsonable) and encoded again: the same text as making the
    whole document plain first."""

    def __init__(self, compact: bool) -> None:
        self.compact = compact
        self._encode = _compact if compact else _spaced

    def value(self, value: Any) -> str:
        """A value on one line."""
        try:
            text = self._encode(value)
        except ValueError:
            text = None
        if text is None or "\\ud" in text:
            text = self._encode(_jsonable(value))
        return text

    def key(self, key: Any) -> str:
        text = json.dumps(str(key))
        return json.dumps(_json_str(key)) if "\\ud" in text else text

    def record(self, fields: dict[str, Any], tail: str = "") -> _Encoded:
        """A record (a thread, a greenlet) on one line: its fields, then
        tail, the already encoded rest of it (its stack, shared)."""
        head = self.value(fields)
        if not tail:
            return _Encoded(head, "")
        return _Encoded(head[:-1] + ("," if self.compact else ", "), tail)

    def pieces(self, value: Any, pad: str) -> Iterator[str | files.Listings]:
        """Indented JSON where a person reads it: mappings nest, one key per
        line; in a list, each record (a thread, a greenlet, a process, a
        frame) takes one line. Compact: the same document on one line."""
        if type(value) is _Encoded:
            yield value.head
            yield value.tail
        elif type(value) is _JsonListings:
            # Greenlet records, one a line: their text is assembled as the
            # report is written (files.Listings).
            yield "[" if self.compact else "[\n"
            yield value.listings
            yield "]" if self.compact else f"\n{pad}]"
        elif self.compact:
            if _is_record(value):
                yield self.value(value)
            elif isinstance(value, dict):
                yield "{"
                for index, (key, item) in enumerate(value.items()):
                    yield f",{self.key(key)}:" if index else f"{self.key(key)}:"
                    yield from self.pieces(item, pad)
                yield "}"
            else:
                yield "["
                for index, item in enumerate(value):
                    if index:
                        yield ","
                    yield from self.pieces(item, pad)
                yield "]"
        elif isinstance(value, dict) and value:
            inner = pad + "  "
            yield "{\n"
            for index, (key, item) in enumerate(value.items()):
                yield f",\n{inner}{self.key(key)}: " if index else f"{inner}{self.key(key)}: "
                yield from self.pieces(item, inner)
            yield f"\n{pad}}}"
        elif isinstance(value, list | tuple) and not _is_record(value):
            inner = pad + "  "
            yield "[\n"
            for index, item in enumerate(value):
                yield f",\n{inner}" if index else inner
                if type(item) is not _Encoded and _is_record(item):
                    yield self.value(item)
                else:
                    yield from self.pieces(item, inner)
            yield f"\n{pad}]"
        else:
            yield self.value(value)


class _JsonListings:
    """A section's greenlets listed one at a time, as a files.Listings of
    JSON records: the encoder writes it between the brackets of its list."""

    __slots__ = ("listings",)

    def __init__(self, listings: files.Listings) -> None:
        self.listings = listings


class _Encoded:
    """A record already encoded: its head and its shared tail."""

    __slots__ = ("head", "tail")

    def __init__(self, head: str, tail: str) -> None:
        self.head = head
        self.tail = tail


def _is_record(value: Any) -> bool:
    """Plain values, and lists of them (a thread, a greenlet, a process, a
    frame): one line. Whatever holds a mapping is not a record. Lists are
    taken as their first item shows them: each list the report makes holds
    one kind of thing."""
    if type(value) is _Encoded:
        return True
    if isinstance(value, dict):
        value = value.values()
    elif not isinstance(value, list | tuple):
        return True
    for item in value:
        if isinstance(item, dict | _Encoded | _JsonListings):
            return False
        if isinstance(item, list | tuple) and item and isinstance(item[0], dict | _Encoded):
            return False
    return True


#: Sections built by gmr from typed records (gmr.model).
_RECORD_KINDS = frozenset({"threads", "greenlets", "tasks"})


class _JsonStacks:
    """Each distinct stack of the table as JSON, encoded once."""

    def __init__(self, table: StackTable, encoder: _Json) -> None:
        self._table = table
        self._encoder = encoder
        self._tails: list[str | None] = [None] * len(table.stacks)

    def fields(self, index: int) -> dict[str, Any]:
        stack = self._table.stacks[index]
        return {"frames": self._table.locations(stack.frames), "omitted": stack.omitted,
                "innermost": self._table.locations(stack.innermost)}

    def tail(self, index: int) -> str:
        """The stack's fields as the end of a record: '"frames": ...}'."""
        tail = self._tails[index]
        if tail is None:
            tail = self._tails[index] = self._encoder.value(self.fields(index))[1:]
        return tail

    def tails(self) -> list[str]:
        """tail() of every stack of the table, by index."""
        return [self.tail(index) for index in range(len(self._tails))]

    def spawning(self, index: int | None) -> list[Location]:
        if index is None:
            return []
        return self._table.locations(self._table.stacks[index].frames)


def _thread_fields(thread: ThreadRecord) -> dict[str, Any]:
    return {"id": thread.id, "name": thread.name, "native_id": thread.native_id,
            "main": thread.main, "daemon": thread.daemon, "state": thread.state,
            "cpu_seconds": thread.cpu_seconds, "pool": thread.pool,
            "wait": None if thread.wait is None else _wait_fields(thread.wait)}


def _wait_fields(wait: Wait) -> dict[str, Any]:
    return {"type": wait.type, "id": wait.id, "lock": wait.lock, "owner": wait.owner}


def _deadlock_fields(deadlock: DeadlockRecord) -> list[dict[str, Any]]:
    return [{"thread": link.thread, "name": link.name, "waits_for": _wait_fields(link.lock)}
            for link in deadlock.links]


def _pool_fields(pool: PoolRecord) -> dict[str, Any]:
    return {"id": pool.id, "type": pool.type, "name": pool.name,
            "max_workers": pool.max_workers, "threads": pool.threads, "busy": pool.busy,
            "idle": pool.idle, "queued": pool.queued,
            "serves": None if pool.serves is None else _server_fields(pool.serves),
            "busy_workers": [{"thread": worker.thread, "name": worker.name, "task": worker.task,
                              "submitted_seconds_ago": worker.submitted_seconds_ago}
                             for worker in pool.busy_workers]}


def _server_fields(server: MessagingServer) -> dict[str, Any]:
    return {"type": server.type, "kind": server.kind,
            "targets": [{"topic": target.topic, "server": target.server,
                         "exchange": target.exchange} for target in server.targets],
            "endpoints": list(server.endpoints)}


def _greenlet_fields(green: GreenletRecord, stacks: _JsonStacks) -> dict[str, Any]:
    return {"id": green.id, "type": green.type, "name": green.name,
            "minimal_ident": green.minimal_ident, "state": green.state, "parent": green.parent,
            "thread": green.thread, "spawned_by": green.spawned_by,
            "spawning_stack": stacks.spawning(green.spawning_stack)}


def _task_fields(task: TaskRecord) -> dict[str, Any]:
    return {"name": task.name, "state": task.state, "loop_id": task.loop_id, "loop": task.loop}


#: Where the indented JSON puts a section's entries, and the records of its
#: data (in the list of the entry's "data" key).
_SECTION_PAD = "    "
_RECORD_PAD = _SECTION_PAD + "    "


def _greenlet_records(items: Sequence[GreenletRecord], stacks: _JsonStacks,
                      encoder: _Json) -> _JsonListings:
    """Greenlets listed one at a time, as a job of the files unit: it reads
    the records' fields now, LISTINGS_SLICE at a time (all of them, or the
    section fails), and
    assembles their JSON as the report is written (the compiled unit: with
    the GIL let go, gmr/_listings.h)."""
    def spawning(green: GreenletRecord) -> str:
        return encoder.value(stacks.spawning(green.spawning_stack))

    def record(green: GreenletRecord) -> str:
        """A greenlet's record, made here (the pure twin, and a record the
        compiled one cannot read as plain data)."""
        encoded = encoder.record(_greenlet_fields(green, stacks), stacks.tail(green[9]))
        return encoded.head + encoded.tail

    listings = files.Listings("json-compact" if encoder.compact else "json", _RECORD_PAD,
                              stacks.tails(), encoder.value, spawning, record)
    for start in range(0, len(items), LISTINGS_SLICE):
        listings.add(items[start:start + LISTINGS_SLICE])
    return _JsonListings(listings)


def _records(kind: str, items: tuple[Any, ...], stacks: _JsonStacks,
             encoder: _Json) -> list[Any] | _JsonListings:
    """A section of records as JSON data: each record encoded on its line,
    a group as a mapping of them."""
    if kind == "greenlets" and _one_by_one(items):
        return _greenlet_records(items, stacks, encoder)
    def fields(record: Any) -> dict[str, Any]:
        if kind == "threads":
            return _thread_fields(record)
        if kind == "greenlets":
            return _greenlet_fields(record, stacks)
        return _task_fields(record)

    out: list[Any] = []
    for item in items:
        if isinstance(item, Group):
            group: dict[str, Any] = {
                "count": item.total,
                "members": [encoder.record(fields(member)) for member in item.members]}
            group.update(stacks.fields(item.stack))
            out.append(group)
        else:
            out.append(encoder.record(fields(item), stacks.tail(item.stack)))
    return out


def _section_dict(section: Section, stacks: _JsonStacks, encoder: _Json) -> dict[str, Any]:
    """One section as JSON data, under a guard: a value that cannot be made
    JSON spoils its own section (data null, error saying why), never the
    report."""
    try:
        title = _json_str(section.title)
    except Exception as error:
        title = f"<title failed: {type(error).__name__}>"
    try:
        if section.kind in _RECORD_KINDS and section.error is None:
            data = _records(section.kind, section.data, stacks, encoder)
        elif section.kind == "pools" and section.error is None:
            data = _jsonable([_pool_fields(pool) for pool in section.data])
        elif section.kind == "deadlocks" and section.error is None:
            data = _jsonable([_deadlock_fields(deadlock) for deadlock in section.data])
        else:
            data = _jsonable(section.data)
        reason = None if section.error is None else _json_str(section.error)
    except Exception as failed:
        data, reason = None, _json_str(failure(failed))
    return {"title": title, "kind": section.kind, "data": data, "error": reason}


def _json_pieces(report: Report, compact: bool) -> Iterator[str | files.Listings]:
    encoder = _Json(compact)
    stacks = _JsonStacks(report.table, encoder)
    header = _jsonable(report.header)
    if compact:
        yield '{"header":'
        yield from encoder.pieces(header, "")
        yield ',"sections":['
        for index, section in enumerate(report.sections):
            if index:
                yield ","
            yield from encoder.pieces(_section_dict(section, stacks, encoder), "")
        yield "]}\n"
        return
    yield '{\n  "header": '
    yield from encoder.pieces(header, "  ")
    yield ',\n  "sections": '
    if not report.sections:
        yield "[]"
    else:
        yield "[\n"
        for index, section in enumerate(report.sections):
            yield ",\n    " if index else "    "
            entry = _section_dict(section, stacks, encoder)
            if _is_record(entry):
                yield encoder.value(entry)
            else:
                yield from encoder.pieces(entry, _SECTION_PAD)
        yield "\n  ]"
    yield "\n}\n"


def json_chunks(report: Report, compact: bool = False) -> Iterator[str | files.Listings]:
    """The report as strict RFC 8259 JSON (ASCII), in pieces of about CHUNK
    characters; greenlets listed one at a time are one piece, a
    files.Listings, whose text the sink asks for as it writes."""
    pending: list[str] = []
    size = 0
    for piece in _json_pieces(report, compact):
        if not isinstance(piece, str):
            if pending:
                yield "".join(pending)
                pending, size = [], 0
            yield piece
            continue
        pending.append(piece)
        size += len(piece)
        if size >= CHUNK:
            yield "".join(pending)
            pending, size = [], 0
    if pending:
        yield "".join(pending)


def json_text(report: Report, compact: bool = False) -> str:
    """The report as strict RFC 8259 JSON (ASCII)."""
    return _joined(json_chunks(report, compact))


def _joined(pieces: Iterator[str | files.Listings]) -> str:
    return "".join(piece if isinstance(piece, str) else piece.text() for piece in pieces)


def chunks(report: Report, form: str = "text") -> Iterator[str | files.Listings]:
    """The report in form ("text", "json" or "json-compact"), in pieces of
    about CHUNK characters (and its greenlets listed one at a time, a
    files.Listings): what a sink writes as they come."""
    if form == "json":
        return json_chunks(report)
    if form == "json-compact":
        return json_chunks(report, compact=True)
    return text_chunks(report)


def render(report: Report, form: str = "text") -> str:
    return _joined(chunks(report, form))
