# The typed boundary of the file helpers. gmr/_files.pyx (compiled) and
# gmr/_files_py.py (pure) both meet it; gmr/_impl.py picks one.
from collections.abc import Callable, Iterable, Sequence
from typing import Any, Final

IMPLEMENTATION: Final[str]  # "compiled" or "pure"

# A report's pieces are written in batches of about this many bytes.
BATCH_BYTES: Final[int]

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
# comes (the compiled core lets the GIL go for each write); a short write or
# an exception from chunks (raised again) leaves no file.
def publish_chunks(directory: str, prefix: str, suffix: str, chunks: Iterable[bytes]) -> str: ...

# A greenlet record's facts line (gmr.model.GreenletRecord, in field
# order), unbracketed; known: escape() of the few types and states.
def greenlet_facts(
    green: tuple[Any, ...], known: dict[str, str], escape: Callable[[Any], str],
) -> str: ...

# The text of greenlet records' listings (gmr.model.GreenletRecord, in
# field order), as render's oslo.reports layout prints each: banner, facts,
# stack, where it was spawned; the lines of whole records joined by newlines
# into blocks of about 64 KiB. known: escape() of the few types and states,
# made once each; stack_texts: the text of each stack of the table;
# spawned(record): the text of where a record was spawned.
def greenlet_listings(
    records: Sequence[tuple[Any, ...]], stack_texts: list[str], known: dict[str, str],
    escape: Callable[[Any], str], spawned: Callable[[Any], str], banner: str,
) -> list[str]: ...
