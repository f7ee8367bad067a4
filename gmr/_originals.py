"""The OS-level primitives the watcher needs, as they were before any
monkey-patching. Under eventlet or gevent, ``_thread.start_new_thread`` makes
green threads and ``os.read`` yields to a hub; the watcher must stay a real OS
thread whose blocking calls block only itself.

eventlet is asked first: when eventlet did the patching, gevent's
``get_original`` would hand back eventlet's patched function.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Iterable, Iterator
from typing import Any


def original(module: str, name: str) -> Any:
    """``module.name`` as it was before eventlet or gevent patched it."""
    patcher = sys.modules.get("eventlet.patcher")
    if patcher is not None and patcher.is_monkey_patched(_eventlet_name(module)):
        return getattr(patcher.original(module), name)
    monkey = sys.modules.get("gevent.monkey")
    if monkey is not None and monkey.is_module_patched(module):
        return monkey.get_original(module, name)
    return getattr(importlib.import_module(module), name)


def _eventlet_name(module: str) -> str:
    # eventlet names the thread module "thread" in is_monkey_patched().
    return {"_thread": "thread", "threading": "thread"}.get(module, module)


def start_new_thread(function: Any, args: tuple[Any, ...]) -> int:
    starter = original("_thread", "start_new_thread")
    ident: int = starter(function, args)
    return ident


def get_ident() -> int:
    ident: int = original("_thread", "get_ident")()
    return ident


def allocate_lock() -> Any:
    return original("_thread", "allocate_lock")()


def open_file(path: str, flags: int, mode: int = 0o777) -> int:
    """os.open, unpatched: eventlet's tells the calling thread's hub of the
    new descriptor, making a hub in a thread that has none."""
    fd: int = original("os", "open")(path, flags, mode)
    return fd


def read(fd: int, size: int) -> bytes:
    data: bytes = original("os", "read")(fd, size)
    return data


def write(fd: int, data: bytes | memoryview) -> int:
    written: int = original("os", "write")(fd, data)
    return written


def write_all(fd: int, data: bytes) -> None:
    """All of data, in as many writes as the file takes."""
    view = memoryview(data)
    while view:
        view = view[write(fd, view):]


#: writev() takes at most IOV_MAX (1024 on Linux) pieces.
MAX_PIECES = 512


def _flat(pieces: Iterable[Any]) -> Iterator[bytes]:
    """bytes as they are; a files.Listings as its own encoded pieces."""
    for piece in pieces:
        if type(piece) is bytes:
            yield piece
            continue
        listings = getattr(piece, "pieces", None)
        if listings is None:
            raise TypeError(f"a report's piece is bytes, not {type(piece).__name__}")
        yield from listings()


def batched(pieces: Iterable[Any], size: int) -> Iterator[list[bytes]]:
    """The pieces (bytes, or a files.Listings: its own pieces) in lists of
    about size bytes, at most MAX_PIECES (one writev() each: each write lets
    the GIL go, and the watcher then waits to get it back behind the
    service's busy threads). They are never joined: a buffer over malloc's
    mmap threshold (128 KiB), once freed, raises that threshold for good,
    and later ones stay in the service's heap."""
    batch: list[bytes] = []
    batched_size = 0
    for piece in _flat(pieces):
        batch.append(piece)
        batched_size += len(piece)
        if batched_size >= size or len(batch) >= MAX_PIECES:
            yield batch
            batch, batched_size = [], 0
    if batch:
        yield batch


def writev(fd: int, views: list[memoryview]) -> list[memoryview]:
    """One writev() of views: what is left of them to write."""
    written: int = original("os", "writev")(fd, views)
    while views and written >= len(views[0]):
        written -= len(views[0])
        views = views[1:]
    if views and written:
        views = [views[0][written:], *views[1:]]
    return views


def select(rlist: list[int], timeout: float | None) -> list[int]:
    ready, _, _ = original("select", "select")(rlist, [], [], timeout)
    return list(ready)


def select_writable(wlist: list[int], timeout: float | None) -> list[int]:
    _, ready, _ = original("select", "select")([], wlist, [], timeout)
    return list(ready)
