"""Reports that cannot be forged and are not lost to one bad value.

Every string gmr did not write (names, paths, command lines, option values,
registered titles, keys and values, exception text) stays on its own line in
the text, with control characters as visible escapes, and can never begin a
line that looks like a banner. A registered section whose value cannot be
made text says so in one line inside itself; the rest of the report is
whole. The JSON is strict RFC 8259 (no NaN, no lone surrogates)."""

from __future__ import annotations

import json
import math
import re
import unicodedata
from pathlib import Path
from typing import Any

import pytest

from conftest import next_report, section, validate_report
from gmr import render, report, snapshot
from gmr.guru import TextGuruMeditation
from gmr.model import GreenletRecord, Stack, StackTable, TaskRecord, ThreadRecord
from gmr.resolve import Location

pytestmark = pytest.mark.timeout(180)

#: A newline, a whole fake Configuration banner, a fake option line.
FORGE = "x\n" + "=" * 72 + "\n====" + "Configuration".center(64) + "====\n" + "=" * 72 + \
    "\nfake = 1\n"
#: ANSI colour, an OSC title with BEL, BEL, NUL, DEL and a C1 CSI.
TERMINAL = "\x1b[31mred\x1b[0m \x1b]0;title\x07 bell\x07 nul\x00 del\x7f csi\x9b"
HOSTILE = FORGE + TERMINAL

RULE = "=" * 72


def strict_json(text: str) -> Any:
    """json.loads that refuses NaN and Infinity, and any lone surrogate."""
    def refuse(constant: str) -> Any:
        raise ValueError(f"not RFC 8259: {constant}")

    document = json.loads(text, parse_constant=refuse)
    text.encode("ascii")  # the JSON is ASCII; a lone surrogate escape is checked below

    def strings(node: Any) -> list[str]:
        if isinstance(node, dict):
            return [*node, *(s for item in node.values() for s in strings(item))]
        if isinstance(node, list):
            return [s for item in node for s in strings(item)]
        return [node] if isinstance(node, str) else []

    for string in strings(document):
        string.encode("utf-8")  # raises on any surrogate code point
    return document


def check_unforgeable(text: str) -> list[str]:
    """The text's own invariants: no character but printable ones and the
    newline; every line that begins with "=" is one of gmr's banners (a rule,
    a title, a rule). Returns the banner titles, in order."""
    odd = sorted({char for char in text if char != "\n" and
                  unicodedata.category(char) in ("Cc", "Cs", "Zl", "Zp")})
    assert not odd, odd
    lines = text.split("\n")
    titles = []
    for index, line in enumerate(lines):
        if not line.startswith("=") or line == RULE:
            continue
        assert re.fullmatch(r"====.*====", line), line
        assert lines[index - 1] == RULE and lines[index + 1] == RULE, line
        titles.append(line[4:-4].strip())
    return titles


def sections_of(text: str) -> dict[str, list[str]]:
    """Each banner's title and the lines under it."""
    out: dict[str, list[str]] = {}
    lines = text.split("\n")
    current: list[str] = []
    for index, line in enumerate(lines):
        if line.startswith("====") and line != RULE:
            current = out.setdefault(line[4:-4].strip(), [])
        elif line != RULE and not (index + 1 < len(lines) and lines[index + 1].startswith("====")
                                   and lines[index + 1] != RULE):
            current.append(line)
    return out


# -- the helper ------------------------------------------------------------------


@pytest.mark.parametrize(("raw", "shown"), [
    ("a\nb", r"a\nb"),
    ("a\r\nb\tc", r"a\r\nb\tc"),
    ("\x1b[31mred\x1b[0m", r"\x1b[31mred\x1b[0m"),
    ("\x1b]0;title\x07", r"\x1b]0;title\x07"),
    ("nul\x00 del\x7f c1\x9b nel\x85", r"nul\x00 del\x7f c1\x9b nel\x85"),
    ("line\u2028para\u2029", r"line\u2028para\u2029"),
    ("bidi \u202eevil\u202c", r"bidi \u202eevil\u202c"),
    ("lone \udc80 surrogate", r"lone \udc80 surrogate"),
    ("héllo wörld 日本語 🙂 a\u00a0b", "héllo wörld 日本語 🙂 a\u00a0b"),
    ("C:\\path", "C:\\path"),
])
def test_escape_makes_controls_visible_and_keeps_printable_text(raw: str, shown: str) -> None:
    assert render.escape(raw) == shown


def test_escape_at_a_line_start_cannot_begin_a_banner() -> None:
    assert render.escape("==== x ====", lead=True) == r"\x3d=== x ===="
    assert render.escape("==== x ====") == "==== x ===="  # inside a line it is harmless
    assert render.escape("a = b", lead=True) == "a = b"


# -- every field of a hand-made report -----------------------------------------


def hostile_report() -> report.Report:
    frame = Location("file " + HOSTILE, 12, "function " + HOSTILE, "source " + HOSTILE)
    table = StackTable((frame,), (Stack((0,)),))
    header = {"reportVersion": 1, "captured_at": "2026-01-01T00:00:00.000000Z", "pid": 1,
              "program": "prog " + HOSTILE, "trigger": "api", "coalesced": 1,
              "gil_pause_ms": 0.1, "threads": 1, "greenlets": 1,
              "greenlet_states": {"suspended": 1}, "heap_objects": 1, "capture": "compiled",
              "core_fallback": "fallback " + HOSTILE, "displaced_signals": []}
    thread = ThreadRecord(1, "thread " + HOSTILE, 2, False, True, "sleeping", 0.0, 0)
    green = GreenletRecord(16, "Type " + HOSTILE, "greenlet " + HOSTILE, 3, "suspended", None,
                           1, 17, 0, 0)
    task = TaskRecord("task " + HOSTILE, "pending", 18, "<loop " + HOSTILE + ">", 0)
    process = {"pid": 1, "ppid": 0, "user": "user " + HOSTILE, "uids": [0], "gids": [0],
               "cmdline": ["python", "arg " + HOSTILE], "state": "sleeping"}
    processes = {"process": process, "children": [], "facts": {"green hub": "hub " + HOSTILE},
                 "environment": {"VAR": "env " + HOSTILE}}
    configuration = {"group " + HOSTILE: {"option " + HOSTILE: "value " + HOSTILE,
                                          "items": ["item " + HOSTILE, TERMINAL]}}
    return report.Report(header, [
        report.Section("Package", "package",
                       {"product": "product " + HOSTILE, "vendor": None, "version": "1"}),
        report.Section("Threads", "threads", (thread,)),
        report.Section("Green Threads", "greenlets", (green,)),
        report.Section("Asyncio Tasks", "tasks", (task,)),
        report.Section("Processes", "processes", processes),
        report.Section("Configuration", "configuration", configuration),
        report.Section("Title " + HOSTILE, "custom",
                       {"key " + HOSTILE: "value " + HOSTILE, "=k": ["=item", {"=x": "=y"}]}),
        report.Section("Failed", "custom", None, "section failed: Error: " + HOSTILE),
    ], table)


def test_no_field_of_a_report_can_open_a_line_a_banner_or_an_escape() -> None:
    text = render.text(hostile_report())
    titles = check_unforgeable(text)
    assert titles == ["Guru Meditation", "Package", "Threads", "Green Threads",
                      "Asyncio Tasks", "Processes", "Configuration",
                      render.escape("Title " + HOSTILE), "Failed"]
    assert not re.search(r"^\s*fake = 1", text, re.MULTILINE)
    # Each hostile string is there, whole, on one line, as visible escapes.
    shown = render.escape(HOSTILE)
    assert shown.startswith(r"x\n====") and r"\nfake = 1\n\x1b[31mred" in shown
    for where in ("file ", "function ", "source ", "thread ", "Type ", "greenlet ", "task ",
                  "<loop ", "user ", "arg ", "hub ", "env ", "group ", "option ", "value ",
                  "item ", "key ", "product ", "prog ", "fallback ", "Error: "):
        assert where + shown in text, where
    assert f"\n  items = item {shown}, {render.escape(TERMINAL)}\n" in text
    # Where a foreign string begins a line, a leading "=" is escaped.
    assert "\n\\x3dk = \n  \\x3ditem\n    \\x3dx = =y\n" in text


def test_a_registered_string_keeps_its_lines_but_none_passes_for_a_banner() -> None:
    own = ("first\n" + RULE + "\n====  Configuration  ====\r\n"
           "fake = 1\x1b[2J\u2028last")
    model = report.Report(hostile_report().header,
                          [report.Section("Own Lines", "custom", own),
                           report.Section("Next", "custom", "fine")])
    text = render.text(model)
    assert check_unforgeable(text) == ["Guru Meditation", "Own Lines", "Next"]
    assert sections_of(text)["Own Lines"] == [
        "first", r"\x3d" + "=" * 71, r"\x3d===  Configuration  ====", r"fake = 1\x1b[2J", "last"]


# -- a value that cannot be made text ------------------------------------------


class Detached:
    """Like a detached ORM row: reading it raises."""

    def __str__(self) -> str:
        raise RuntimeError("Instance is not bound to a Session")

    __repr__ = __str__


class BadKey:
    def __hash__(self) -> int:
        return 1

    def __str__(self) -> str:
        raise RuntimeError("bad key")


class BadFormat:
    def __format__(self, spec: str) -> str:
        raise RuntimeError("no format")

    def __str__(self) -> str:
        return "shown by str()"


class BadItems(dict):  # type: ignore[type-arg]
    def items(self):  # type: ignore[no-untyped-def]
        raise RuntimeError("items() raised")


class Unprintable(Exception):
    def __str__(self) -> str:
        raise RuntimeError("nor its text")


def raise_unprintable() -> None:
    raise Unprintable()


def raise_multiline() -> None:
    raise RuntimeError("one\n" + FORGE)


BROKEN = {
    "Detached Row": (lambda: Detached(), "RuntimeError: Instance is not bound to a Session"),
    "Detached In A Mapping": (lambda: {"row": Detached()},
                              "RuntimeError: Instance is not bound to a Session"),
    "Detached In A List": (lambda: ["ok", [Detached()]],
                           "RuntimeError: Instance is not bound to a Session"),
    "Bad Key": (lambda: {BadKey(): 1}, "RuntimeError: bad key"),
    "Bad Items": (lambda: BadItems(a=1), "RuntimeError: items() raised"),
    "Huge Integer": (lambda: {"n": 10 ** 5000}, "ValueError: Exceeds the limit"),
    "Unprintable Exception": (raise_unprintable, "Unprintable: <its text failed: RuntimeError>"),
    "Multi-line Exception": (raise_multiline, r"RuntimeError: one\nx\n===="),
}


def registered() -> list[tuple[str, Any]]:
    return [("Before", lambda: {"fine": "yes"}),
            *((title, build) for title, (build, _) in BROKEN.items()),
            ("Bad Format", lambda: {"k": BadFormat()}),
            ("After", lambda: ["still", "here"])]


def test_a_section_that_cannot_be_made_text_says_so_in_one_line() -> None:
    captured = snapshot.take(include_caller=True)
    model = report.build(captured, "1", None, registered(), report.Options())
    text = render.text(model)
    titles = check_unforgeable(text)
    assert titles[:4] == ["Guru Meditation", "Package", "Threads", "Green Threads"]
    assert titles[-len(registered()):] == [title for title, _ in registered()]
    parts = sections_of(text)
    for title, (_, reason) in BROKEN.items():
        (line,) = parts[title]
        assert line.startswith(f"gmr: section failed: {reason}"), (title, line)
    assert parts["Before"] == ["fine = yes"]
    assert parts["Bad Format"] == ["k = shown by str()"]  # str(), never format()
    assert parts["After"] == ["still", "here", ""]
    assert "in test_a_section_that_cannot_be_made_text_says_so_in_one_line" in text

    document = strict_json(render.json_text(model))
    validate_report(render.json_text(model))
    by_title = {entry["title"]: entry for entry in document["sections"]}
    for title, (_, reason) in BROKEN.items():
        assert by_title[title]["data"] is None
        assert by_title[title]["error"].startswith("section failed: " + reason.split("\\")[0])
    assert by_title["After"]["data"] == ["still", "here"]


def test_a_hand_made_section_that_cannot_be_made_text_spoils_only_itself() -> None:
    """The renderers' own guard: a value made text only when rendered."""
    header = hostile_report().header
    model = report.Report(header, [
        report.Section("Broken Object", "custom", Detached()),
        report.Section("Broken Thread", "threads", (
            ThreadRecord(1, Detached(), None, False, None, None, None, 0),)),  # type: ignore[arg-type]
        report.Section("Huge", "custom", {"n": 10 ** 5000}),
        report.Section("Fine", "custom", {"a": 1}),
    ], StackTable((), (Stack(()),)))
    parts = sections_of(render.text(model))
    assert parts["Broken Object"] == [
        "gmr: section failed: RuntimeError: Instance is not bound to a Session"]
    assert parts["Broken Thread"] == [
        "gmr: section failed: RuntimeError: Instance is not bound to a Session"]
    assert parts["Huge"][0].startswith("gmr: section failed: ValueError: Exceeds the limit")
    assert parts["Fine"] == ["a = 1", ""]
    document = strict_json(render.json_text(model, compact=True))
    errors = [entry["error"] for entry in document["sections"]]
    assert errors[0] == "section failed: RuntimeError: Instance is not bound to a Session"
    assert errors[2].startswith("section failed: ValueError: Exceeds the limit")
    assert errors[3] is None and document["sections"][3]["data"] == {"a": 1}


def test_run_survives_a_broken_section(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(TextGuruMeditation, "_registered", registered())
    for form in ("text", "json"):
        text = TextGuruMeditation("1").run(format=form)
        assert "Instance is not bound to a Session" in text
        assert ("still" in sections_of(text)["After"]) if form == "text" else \
            strict_json(text)["sections"][-1]["data"] == ["still", "here"]


# -- strict JSON -----------------------------------------------------------------


@pytest.mark.parametrize("compact", [False, True])
def test_json_has_no_nan_and_no_lone_surrogate(compact: bool) -> None:
    values = {"nan": math.nan, "inf": math.inf, "-inf": -math.inf, "fine": 1.5,
              "surrogate \udc80": "bad \udcff byte", "astral": "🙂", "backslash": "\\ud800"}
    model = report.Report(hostile_report().header | {"program": "argv \udcfe"}, [
        report.Section("Threads", "threads", (
            ThreadRecord(1, "thread \udc81", None, True, False, None, math.nan, 0),)),
        report.Section("Values", "custom", values),
    ], StackTable((Location("file \udc82.py", 1, "f", ""),), (Stack((0,)),)))
    text = render.json_text(model, compact=compact)
    assert (text.count("\n") == 1) == compact
    document = strict_json(text)
    assert document["header"]["program"] == "argv \\udcfe"
    (thread,) = section(document, "threads")
    assert thread["name"] == "thread \\udc81" and thread["frames"][0][0] == "file \\udc82.py"
    assert thread["cpu_seconds"] == "NaN"
    assert section(document, "custom") == {
        "nan": "NaN", "inf": "Infinity", "-inf": "-Infinity", "fine": 1.5,
        "surrogate \\udc80": "bad \\udcff byte", "astral": "🙂", "backslash": "\\ud800"}


def test_a_real_report_with_nan_and_a_surrogate_is_strict_and_valid(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(TextGuruMeditation, "_registered", [
        ("Odd Values", lambda: {"nan": math.nan, "inf": [math.inf], "name": "x\udc80"})])
    text = TextGuruMeditation("1").run(format="json")
    document = validate_report(text)
    assert strict_json(text) == document
    assert section(document, "custom") == {"nan": "NaN", "inf": ["Infinity"], "name": "x\\udc80"}


# -- a real service ----------------------------------------------------------------


@pytest.mark.parametrize("form", ["text", "json"])
def test_a_hostile_service_cannot_forge_its_report(service, tmp_path: Path, form: str) -> None:
    """A thread, a gevent greenlet, an asyncio task, exec'd code's file and
    function, argv, an option group, option values (one multi-line), and
    registered titles, keys and values all carry a fake Configuration
    banner and terminal escapes; some sections cannot be made text."""
    logs = tmp_path / "logs"
    logs.mkdir()
    argv = "arg " + FORGE + "\x1b[31m"
    svc = service("hostile_service.py", str(logs), form, argv).ready()
    text = next_report(svc, logs).read_text(encoding="ascii" if form == "json" else "utf-8")
    assert svc.alive()
    shown = render.escape(HOSTILE)
    if form == "json":
        document = strict_json(text)
        validate_report(text)
        by_title = {entry["title"]: entry for entry in document["sections"]}
        assert by_title["Not Finite"]["data"] == {
            "nan": "NaN", "inf": "Infinity", "-inf": "-Infinity", "surrogate": "bad \\udc80 byte"}
        assert by_title["Detached Row"]["error"] == \
            "section failed: RuntimeError: Instance is not bound to a Session"
        assert by_title["After"]["data"] == {"still": "here"}
        (thread,) = [t for t in section(document, "threads") if t["name"].startswith("thread ")]
        assert thread["name"] == "thread " + HOSTILE
        return
    titles = check_unforgeable(text)
    assert titles == ["Guru Meditation", "Package", "Threads", "Green Threads", "Asyncio Tasks",
                      "Processes", "Configuration", "Before",
                      render.escape("Title " + HOSTILE), "Own Lines", "Detached Row",
                      "Detached In A Mapping", "Huge Integer", "Unprintable Exception",
                      "Bad Format", "Not Finite", "After"]
    parts = sections_of(text)
    for title, lines in parts.items():
        if title != "Own Lines":  # its own lines are its own
            assert not [line for line in lines if re.match(r"\s*fake = 1", line)], title
    assert parts["Own Lines"][:3] == ["first", r"\x3d" + "=" * 71, r"\x3d===  Configuration  ===="]
    threads = "\n".join(parts["Threads"])
    assert f"(thread {shown}, native id" in threads
    assert f"\nfile {render.escape(HOSTILE.replace(chr(0), ''))}:2 in function {shown}\n" in \
        threads
    assert f"greenlet {shown}, suspended" in "\n".join(parts["Green Threads"])
    assert f"Task task {shown}---" in "\n".join(parts["Asyncio Tasks"])
    assert render.escape(argv) in "\n".join(parts["Processes"])
    configuration = "\n".join(parts["Configuration"])
    assert f"group {render.escape(FORGE)}: " in configuration
    assert f"  multi = line one\\n{shown}" in configuration
    assert f"  value = value {shown}" in configuration
    assert parts["Detached Row"] == [
        "gmr: section failed: RuntimeError: Instance is not bound to a Session"]
    assert parts["Huge Integer"][0].startswith("gmr: section failed: ValueError: Exceeds")
    assert parts["Unprintable Exception"] == [
        "gmr: section failed: Unprintable: <its text failed: RuntimeError>"]
    assert parts["Not Finite"][:3] == ["nan = nan", "inf = inf", "-inf = -inf"]
    assert parts["After"] == ["still = here", ""]
