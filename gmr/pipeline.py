"""The report pipeline, in one place: snapshot -> model -> render -> sink.

``gmr.guru`` (the public API) and the watcher's callback only call it:

- :func:`take`: the capture (gmr.snapshot), in the calling thread;
- :func:`model`: the report model of a snapshot (gmr.report builds it:
  sections of typed records pointing into one stack table, gmr.model);
- :func:`text`: the model rendered whole, as a str (``run()``'s answer);
- :func:`deliver`: the model rendered a piece at a time (gmr.render, about
  64 KiB each), each piece encoded, and the pieces written in batches of
  about 1 MiB to stderr or to the report's temporary file (published
  whole, gmr.sinks): no whole report is ever held as one string, and the
  GIL is let go once per batch (once for a typical report).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from gmr import render, report, sinks, snapshot
from gmr._impl import files
from gmr.model import Report


@dataclass(frozen=True, slots=True)
class Request:
    """What a report is made of, besides its snapshot."""

    version: Any
    conf: Any
    registered: tuple[tuple[str, Callable[[], Any]], ...]
    options: report.Options
    #: Signals whose gmr handler the application replaced.
    displaced: tuple[int, ...] = ()
    #: "text", "json" or "json-compact".
    form: str = "text"


@dataclass(frozen=True, slots=True)
class Destination:
    """Where a report goes: a new file in log_dir, or stderr (log_dir None)."""

    log_dir: str | None
    service_name: str
    #: ".<pid>" in a forked child, else "".
    suffix: str = ""
    max_reports: int = 0
    max_bytes: int = 0


def take(trigger: str = "api", coalesced: int = 1, include_caller: bool = False,
         turns: bool = False) -> snapshot.Snapshot:
    """The capture: every thread and greenlet now (gmr.snapshot.take)."""
    return snapshot.take(trigger=trigger, coalesced=coalesced, include_caller=include_caller,
                         skip=1 if include_caller else 0, turns=turns)


def model(captured: snapshot.Snapshot, request: Request) -> Report:
    """The report model of a snapshot."""
    return report.build(captured, request.version, request.conf, list(request.registered),
                        request.options, list(request.displaced))


def text(captured: snapshot.Snapshot, request: Request) -> str:
    """The whole report as one str, in request.form."""
    return render.render(model(captured, request), request.form)


def _encoded(pieces: Iterator[str | files.Listings]) -> Iterator[bytes | files.Listings]:
    """Each piece encoded; greenlet listings as they are (the sink asks them
    for their text as it writes)."""
    for piece in pieces:
        yield piece.encode(errors="replace") if isinstance(piece, str) else piece


def rehearse(captured: snapshot.Snapshot, request: Request) -> None:
    """The report made and rendered as deliver() makes it, and thrown away
    (gmr.watcher's rehearsal at set-up)."""
    for piece in _encoded(render.chunks(model(captured, request), request.form)):
        if not isinstance(piece, bytes):
            for _ in piece.pieces():
                pass


def deliver(captured: snapshot.Snapshot, request: Request, destination: Destination) -> str | None:
    """Make the report and write it, a piece at a time, where destination
    says; returns the report file's path (None for stderr). Raises OSError
    when it cannot be written (a report file is then not published)."""
    pieces = _encoded(render.chunks(model(captured, request), request.form))
    if destination.log_dir is None:
        sinks.to_stderr(pieces)
        return None
    return sinks.to_file(destination.log_dir, destination.service_name, pieces,
                         destination.suffix, destination.max_reports, destination.max_bytes)
