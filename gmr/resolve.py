"""The one resolver: a code location, (code object, instruction offset) as
the capture copies it or (code object, line) as gevent records a spawning
stack, made into what a person reads: file, line, function and source line.

It owns the only cache of resolved locations (bounded; an entry holds its
code object, so the id() in its key is not reused while it lives), and reads
the source files the new locations need in one batch (files.read_files: the
GIL let go once, not once per file). The text of each file read is kept
(bounded): a busy thread stands somewhere new at each report, and a file
read again would let the GIL go again, to wait behind the busy threads for
it. The text kept is the one first read, which is also the code the
process runs when a file changes under it.
"""

from __future__ import annotations

import bisect
import io
import itertools
import linecache
import tokenize
from array import array
from collections.abc import Iterable
from types import CodeType
from typing import NamedTuple

from gmr._impl import files

#: Entries the cache keeps before it starts again (a report rarely has more
#: than a few hundred distinct locations).
CACHE_LIMIT = 100_000


class Location(NamedTuple):
    """A resolved frame: what a report shows of it."""

    #: The file the code was compiled from.
    file: str
    #: The line being executed.
    line: int
    #: The function's qualified name where the interpreter keeps one (3.11+).
    function: str
    #: That line's source, stripped; empty when it cannot be read.
    source: str


def function_of(code: CodeType) -> str:
    """The qualified name where the interpreter keeps one (3.11+), else the name."""
    return getattr(code, "co_qualname", code.co_name)


def line_of(code: CodeType, lasti: int) -> int:
    """The source line of the instruction at byte offset lasti, as
    PyCode_Addr2Line gives it (co_firstlineno before the first instruction)."""
    if lasti < 0:
        return code.co_firstlineno
    starts: list[int] = []
    lines: list[int | None] = []
    for start, _end, line in code.co_lines():
        starts.append(start)
        lines.append(line)
    index = bisect.bisect_right(starts, lasti) - 1
    while index >= 0:
        line = lines[index]
        if line is not None:
            return line
        index -= 1
    return code.co_firstlineno


def _pseudo(filename: str) -> bool:
    """A name such as "<string>" or "<frozen os>": no file to read."""
    return filename.startswith("<") and filename.endswith(">")


class Source(NamedTuple):
    """A source file's text, decoded as the interpreter would (PEP 263),
    with where each line starts: one str and one array, not a str per line."""

    text: str
    #: Where each line starts in text, and one past the end.
    starts: array[int]

    def line(self, number: int) -> str:
        """Line `number` (1-based), "" where there is none."""
        if 0 < number < len(self.starts):
            return self.text[self.starts[number - 1]:self.starts[number] - 1]
        return ""


def source_of(data: bytes) -> Source:
    """A source file's Source."""
    try:
        encoding, _ = tokenize.detect_encoding(io.BytesIO(data).readline)
    except SyntaxError:
        encoding = "utf-8"
    text = data.decode(encoding, errors="replace")
    # Lines end where the interpreter counts them: at \n, \r\n or \r only.
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    lengths = (len(line) + 1 for line in text.split("\n"))
    return Source(text, array("q", itertools.accumulate(lengths, initial=0)))


#: The most characters of source text kept, all files together, before the
#: kept texts are dropped and read again as needed.
SOURCE_LIMIT = 8_000_000


#: A location by instruction is keyed (id(code), lasti); by line,
#: (id(code), line, LINE).
LINE = 0
_Key = tuple[int, int] | tuple[int, int, int]

#: The resolved locations, each with the code object its key's id() names.
_cache: dict[_Key, tuple[CodeType, Location]] = {}
#: The source files read, by name.
_sources: dict[str, Source] = {}


def forget() -> None:
    """Drop every resolved location, and with them the references the cache
    holds to code objects (a leak check counts those), and the kept sources."""
    _cache.clear()
    _sources.clear()


def _read_sources(paths: list[str]) -> None:
    """The files of paths not kept yet read, in one batch, and kept."""
    wanted = [path for path in paths if path not in _sources]
    if not wanted:
        return
    kept = sum(len(source.text) for source in _sources.values())
    for name, data in zip(wanted, files.read_files(wanted), strict=True):
        if data is None:
            continue  # read again when asked again
        source = source_of(data)
        if kept + len(source.text) > SOURCE_LIMIT:
            _sources.clear()
            kept = 0
        _sources[name] = source
        kept += len(source.text)


def _known(key: _Key, code: CodeType) -> Location | None:
    hit = _cache.get(key)
    return hit[1] if hit is not None and hit[0] is code else None


def resolve(wanted: Iterable[tuple[CodeType, int, bool]]) -> list[Location]:
    """The Location of each (code, number, by_line): number is an instruction
    offset, or a line when by_line. The new ones are resolved together, their
    source files read in one batch."""
    items = list(wanted)
    out: list[Location | None] = []
    new: list[tuple[int, _Key, CodeType, int]] = []  # (position, key, code, line)
    for position, (code, number, by_line) in enumerate(items):
        key: _Key = (id(code), number, LINE) if by_line else (id(code), number)
        known = _known(key, code)
        out.append(known)
        if known is None:
            new.append((position, key, code, number if by_line else line_of(code, number)))
    if new:
        _read_sources(sorted({code.co_filename for _, _, code, _ in new
                              if not _pseudo(code.co_filename)}))
        if len(_cache) + len(new) > CACHE_LIMIT:
            _cache.clear()
        for position, key, code, line in new:
            filename = code.co_filename
            if _pseudo(filename):
                # No file: the lines the interpreter's linecache holds for
                # it, if any (exec'd strings, doctests, IPython cells), the
                # same for a frame and for a spawning stack.
                source = linecache.getline(filename, line).strip()
            else:
                kept = _sources.get(filename)
                source = kept.line(line).strip() if kept is not None else ""
            location = Location(filename, line, function_of(code), source)
            _cache[key] = (code, location)
            out[position] = location
    return out  # type: ignore[return-value]  # every None was filled in


def location(code: CodeType, lasti: int) -> Location:
    """One frame's Location (resolve() does many at once)."""
    return resolve([(code, lasti, False)])[0]
