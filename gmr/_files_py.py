"""The pure-Python twin of gmr._files: the same names and results; here
each system call lets the GIL go, as any Python read or write does."""

from __future__ import annotations

import errno
import os
import time
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from gmr import _originals
from gmr.retention import MARK

IMPLEMENTATION = "pure"

#: As the compiled core's: a report's pieces are written in batches of about
#: this many bytes, one writev() each.
BATCH_BYTES = 1 << 20

#: As the compiled core's: the most bytes of one piece Listings.pieces()
#: gives (below malloc's mmap threshold).
PIECE_BYTES = 1 << 16

_MAX_ATTEMPTS = 10000


def read_files(paths: list[str], limit: int = 1 << 24,
               keep_gil: bool = False) -> list[bytes | None]:
    """The bytes of each file (None where it cannot be read); keep_gil
    cannot change that each read lets the GIL go."""
    out: list[bytes | None] = []
    for path in paths:
        try:
            fd = _originals.open_file(path, os.O_RDONLY | os.O_CLOEXEC)
        except OSError:
            out.append(None)
            continue
        try:
            chunks = []
            size = 0
            while size < limit:
                chunk = _originals.read(fd, min(1 << 16, limit - size))
                if not chunk:
                    break
                chunks.append(chunk)
                size += len(chunk)
            out.append(b"".join(chunks))
        except OSError:
            out.append(None)
        finally:
            os.close(fd)
    return out


def may_have_children() -> bool:
    """False when this process has no child process at all (nothing is
    reaped: WNOWAIT)."""
    try:
        _originals.original("os", "waitid")(os.P_ALL, 0, os.WEXITED | os.WNOHANG | os.WNOWAIT)
    except ChildProcessError:
        return False
    except OSError:
        pass
    return True


def trim_heap() -> bool:
    """Python has no malloc_trim: the C heap keeps what it keeps."""
    return False


def use_hurry(capsule: object) -> bool:
    return False  # Python cannot ask for the GIL without it


def list_dirs(paths: list[str]) -> list[list[str] | None]:
    out: list[list[str] | None] = []
    for path in paths:
        try:
            out.append(os.listdir(path))
        except OSError:
            out.append(None)
    return out


def _first_free(base: str) -> int:
    """As gmr/_publish.h's gmr_first_free: the first suffix above every name
    of this second still there (a freed lower name is never given again)."""
    first, misses, attempt = 0, 0, 0
    while attempt < _MAX_ATTEMPTS and misses < 16:
        if os.path.lexists(base if attempt == 0 else f"{base}.{attempt}"):
            first, misses = attempt + 1, 0
        else:
            misses += 1
        attempt += 1
    return first


def publish(directory: str, prefix: str, suffix: str, data: bytes) -> str:
    """As the compiled core's (gmr/_publish.h): data in a hidden temporary
    file, linked to the first free name among base, base.1, ...; a short
    write leaves no file."""
    return publish_chunks(directory, prefix, suffix, [data])


def publish_chunks(directory: str, prefix: str, suffix: str,
                   chunks: Iterable[bytes | Listings]) -> str:
    """As publish(), the pieces of chunks written in batches of about
    BATCH_BYTES, one writev() each; a short write, or an exception from
    chunks (raised again), leaves no file."""
    stamp = time.strftime("%Y%m%d%H%M%S", time.gmtime())
    base = os.path.join(directory, f"{prefix}{MARK}{stamp}{suffix}")
    temporary = os.path.join(
        directory, f".{os.path.basename(base)}.{os.getpid()}.{time.monotonic_ns()}.tmp")
    try:
        fd = _originals.open_file(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC,
                                  0o600)
    except OSError as error:  # named by its directory, as the compiled twin names it
        raise OSError(error.errno, error.strerror, directory) from None
    try:
        try:
            for batch in _originals.batched(chunks, BATCH_BYTES):
                views = [memoryview(piece) for piece in batch]
                while views:
                    views = _originals.writev(fd, views)
        finally:
            os.close(fd)
        for attempt in range(_first_free(base), _MAX_ATTEMPTS):
            name = base if attempt == 0 else f"{base}.{attempt}"
            try:
                os.link(temporary, name)  # fails, rather than replace, if it exists
                return name
            except FileExistsError:
                continue
        raise OSError(errno.EEXIST, "no free report name", base)
    finally:
        try:
            os.unlink(temporary)
        except FileNotFoundError:
            pass


def _escaped(known: dict[str, str], value: str, escape: Callable[[Any], str]) -> str:
    """escape(value) for one of the few types and states, made once each."""
    text = known.get(value)
    if text is None:
        text = known[value] = escape(value)
    return text


def greenlet_facts(green: tuple[Any, ...], known: dict[str, str],
                   escape: Callable[[Any], str]) -> str:
    """As the compiled core's: a greenlet record's facts line, unbracketed."""
    if not isinstance(green, tuple) or len(green) != 10:
        raise TypeError("not a greenlet record")
    ident, kind_name, name, minimal_ident, state_name, parent, thread = green[:7]
    state = _escaped(known, state_name, escape)
    kind = _escaped(known, kind_name, escape)
    what = state
    if name:
        shown = escape(name)
        what = (f"{shown} (#{escape(minimal_ident)}), " if minimal_ident is not None
                else f"{shown}, ") + state
    facts = f"id {hex(ident)}, {kind}, {what}"
    if parent:
        facts += f", parent {hex(parent)}"
    if thread:
        facts += f", in thread #{escape(thread)}"
    if state == "running":
        facts += ", its frames are its thread's"
    return facts


class Listings:
    """As the compiled core's: the listings of greenlet records in the
    layout of a form of the report, each made by whole(record), render's
    own code, as add() reads them; between the separators of the form."""

    __slots__ = ("_after", "_between", "_first", "_rows", "_whole")

    def __init__(self, form: str, opening: str, stack_texts: list[str],
                 escape: Callable[[Any], str], spawned: Callable[[Any], str],
                 whole: Callable[[Any], str]) -> None:
        if form not in ("text", "json", "json-compact"):
            raise KeyError(form)
        self._first, self._between, self._after = {
            "text": ("", "", "\n"), "json": (opening, ",\n" + opening, ""),
            "json-compact": ("", ",", "")}[form]
        self._whole = whole
        self._rows: list[str] = []

    def __len__(self) -> int:
        return len(self._rows)

    def _add(self, texts: list[str]) -> None:
        """Each text a row, between the form's separators."""
        for text in texts:
            self._rows.append((self._between if self._rows else self._first) + text
                              + self._after)

    def add(self, records: Iterable[tuple[Any, ...]]) -> None:
        """A listing for each record; all of them or, when one raises, none."""
        texts: list[str] = []
        for green in records:
            if not isinstance(green, tuple) or len(green) != 10:
                raise TypeError("not a greenlet record")
            texts.append(self._whole(green))
        self._add(texts)

    def add_line(self, line: str) -> None:
        """A line in place of listings (why a slice of records failed)."""
        self._add([line])

    def pieces(self) -> Iterator[bytes]:
        """The text, encoded, in pieces of at most PIECE_BYTES."""
        for start, end in _spans(self._rows, PIECE_BYTES):
            encoded = "".join(self._rows[start:end]).encode("utf-8", "replace")
            for at in range(0, len(encoded), PIECE_BYTES):
                yield encoded[at:at + PIECE_BYTES]

    def text(self) -> str:
        return "".join(self._rows)


def _spans(rows: list[str], size: int) -> Iterator[tuple[int, int]]:
    """(start, end) of consecutive rows of about size characters together."""
    start, total = 0, 0
    for index, row in enumerate(rows):
        if total and total + len(row) > size:
            yield start, index
            start, total = index, 0
        total += len(row)
    if start < len(rows):
        yield start, len(rows)
