# The typed boundary of the file helpers. gmr/_files.pyx (compiled) and
# gmr/_files_py.py (pure) both meet it; gmr/_impl.py picks one.
from collections.abc import Callable, Iterable, Iterator
from typing import Any, Final

from typing_extensions import disjoint_base

IMPLEMENTATION: Final[str]  # "compiled" or "pure"

# A report's pieces are written in batches of about this many bytes.
BATCH_BYTES: Final[int]

# Listings.pieces() gives pieces of at most this many bytes.
PIECE_BYTES: Final[int]

# The bytes of each file (None where it cannot be read), at most limit each;
# the compiled core lets the GIL go once for all of them (keep_gil: not at all).
def read_files(
    paths: list[str], limit: int = ..., keep_gil: bool = False
) -> list[bytes | None]: ...

# False when this process has no child process at all (waitid, WNOHANG |
# WNOWAIT: nothing reaped); the compiled core keeps the GIL for it.
def may_have_children() -> bool: ...

# The C heap's free memory given back to the system (glibc's malloc_trim),
# the GIL let go; whether it could (the pure twin cannot).
def trim_heap() -> bool: ...

# The trigger's hurry_capsule() (or None): True when this unit takes the GIL
# back at once after each batch of reads or writes (gmr/_switch.h; the
# compiled twin only).
def use_hurry(capsule: object) -> bool: ...

# The names in each directory (None where it cannot be listed); the compiled
# core keeps the GIL (for this process's own /proc directories).
def list_dirs(paths: list[str]) -> list[list[str] | None]: ...

# data in a new file directory/<prefix>_gurumeditation_<UTC stamp><suffix>
# (or .1, .2, ...: never replacing a file), appearing whole; returns its path.
def publish(directory: str, prefix: str, suffix: str, data: bytes) -> str: ...

# The same, for a report made a piece at a time: each piece written as it
# comes (the compiled core lets the GIL go for each batch of writes, and
# assembles a Listings' text in the same let-go); a short write or an
# exception from chunks (raised again) leaves no file.
def publish_chunks(
    directory: str, prefix: str, suffix: str, chunks: Iterable[bytes | Listings]
) -> str: ...

# A greenlet record's facts line (gmr.model.GreenletRecord, in field
# order), unbracketed; known: escape() of the few types and states.
def greenlet_facts(
    green: tuple[Any, ...], known: dict[str, str], escape: Callable[[Any], str],
) -> str: ...

# The listings of greenlet records (gmr.model.GreenletRecord, in field
# order) in the layout of a form of the report ("text": render's listing,
# then a newline; "json", "json-compact": a JSON record, between the
# separators of its list, opening: the records' indentation), as a job:
# add() reads the records' fields (all of a call's records, or none when one
# raises), and the text is assembled when asked for (the compiled core:
# from columns, with the GIL let go). Render's functions: escape (of a
# type, a state, a name); spawned(record), where a record was spawned, a
# function of its spawned_by and spawning_stack; whole(record), the whole
# text of a record (the pure twin makes each so; the compiled core, those
# that are not plain data). stack_texts: the text of each stack of the
# table (JSON: the end of a record, its stack's fields).
@disjoint_base  # a cdef class; slots in the pure twin
class Listings:
    def __init__(
        self, form: str, opening: str, stack_texts: list[str], escape: Callable[[Any], str],
        spawned: Callable[[Any], str], whole: Callable[[Any], str],
    ) -> None: ...
    def __len__(self) -> int: ...
    def add(self, records: Iterable[tuple[Any, ...]]) -> None: ...
    # A line in place of listings (why a slice of records failed).
    def add_line(self, line: str) -> None: ...
    # The text, encoded, in pieces of at most PIECE_BYTES.
    def pieces(self) -> Iterator[bytes]: ...
    def text(self) -> str: ...
