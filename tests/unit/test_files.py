"""The core's batch file reader and thread naming, both twins; the report's
source lines read through it."""

from __future__ import annotations

import importlib.util
import linecache
import os
import platform
import re
import threading
from collections.abc import Iterator
from pathlib import Path
from types import CodeType
from types import SimpleNamespace as ModuleType
from typing import Any

import pytest

from conftest import compiled_expected, wait_for
from gmr import resolve, snapshot
from gmr.model import GreenletRecord


def test_read_files_reads_whole_files_and_says_none_for_the_rest(
        core: ModuleType, tmp_path: Path) -> None:
    big = tmp_path / "big"
    big.write_bytes(bytes(range(256)) * 100)  # past the first buffer
    empty = tmp_path / "empty"
    empty.write_bytes(b"")
    paths = [str(big), str(empty), str(tmp_path / "missing"), str(tmp_path), "/proc/self/status"]
    got = core.read_files(paths)
    assert got[0] == big.read_bytes()
    assert got[1] == b""
    assert got[2] is None  # missing
    assert got[3] is None  # a directory cannot be read
    assert got[4] is not None and b"VmRSS" in got[4]  # /proc says size 0: read to the end
    assert core.read_files([str(big)], 1000) == [big.read_bytes()[:1000]]
    assert core.read_files([]) == []
    # Holding the GIL (this process's own /proc files) reads the same.
    assert core.read_files(paths[:4], keep_gil=True) == got[:4]
    assert b"VmRSS" in core.read_files(["/proc/self/status"], keep_gil=True)[0]


def test_list_dirs(core: ModuleType, tmp_path: Path) -> None:
    (tmp_path / "a").write_text("")
    (tmp_path / "b").mkdir()
    listed = core.list_dirs([str(tmp_path), str(tmp_path / "missing"), str(tmp_path / "a"),
                             "/proc/self/task"])
    assert sorted(listed[0]) == ["a", "b"]
    assert listed[1] is None and listed[2] is None  # missing; a file
    assert str(threading.get_native_id()) in listed[3]


def test_publish_links_a_whole_file_and_never_replaces_one(
        core: ModuleType, tmp_path: Path) -> None:
    data = bytes(range(256)) * 1000
    first = core.publish(str(tmp_path), "svc", "", data)
    name = Path(first).name
    assert re.fullmatch(r"svc_gurumeditation_\d{14}", name), name
    # Within one second the same name is taken: .1, .2 (unless the second
    # turned between two calls, when the stamp itself differs).
    second = core.publish(str(tmp_path), "svc", "", b"second")
    third = core.publish(str(tmp_path), "svc", "", b"third")
    assert len({first, second, third}) == 3
    if Path(third).name.startswith(name):
        assert (second, third) == (f"{first}.1", f"{first}.2")
    assert Path(first).read_bytes() == data
    assert Path(second).read_bytes() == b"second"
    assert Path(first).stat().st_mode & 0o777 == 0o600
    assert not [path for path in tmp_path.iterdir() if path.name.startswith(".")]
    assert core.publish(str(tmp_path), "svc", ".77", b"child").endswith(".77")
    # A directory that is not there: the error names it, and leaves nothing.
    with pytest.raises(FileNotFoundError) as error:
        core.publish(str(tmp_path / "gone"), "svc", "", b"x")
    assert error.value.filename == str(tmp_path / "gone")
    # An unwritable directory (not as root: root writes anyway).
    if os.geteuid() != 0:
        locked = tmp_path / "locked"
        locked.mkdir(mode=0o500)
        with pytest.raises(PermissionError):
            core.publish(str(locked), "svc", "", b"x")
        assert list(locked.iterdir()) == []


def test_publish_chunks_writes_batches_and_publishes_whole(
        core: ModuleType, tmp_path: Path) -> None:
    """A report made a piece at a time: the pieces are written a batch of
    about BATCH_BYTES at a time, while the later ones are made (the file
    grows; no whole report is held), the file published only once it is
    whole."""
    seen: list[int] = []
    piece_size = core.BATCH_BYTES // 4

    def pieces() -> Iterator[bytes]:
        for number in range(10):
            # What the earlier batches left in the hidden temporary file.
            hidden = [path for path in tmp_path.iterdir() if path.name.startswith(".")]
            assert len(hidden) <= 1
            seen.append(hidden[0].stat().st_size if hidden else 0)
            yield bytes([number]) * piece_size

    name = core.publish_chunks(str(tmp_path), "svc", "", pieces())
    assert seen[0] == 0 and seen == sorted(seen)
    assert seen[-1] >= core.BATCH_BYTES  # written before the last piece was made
    assert Path(name).read_bytes() == b"".join(bytes([n]) * piece_size for n in range(10))
    assert [path.name for path in tmp_path.iterdir()] == [Path(name).name]


def test_publish_chunks_of_many_small_pieces(core: ModuleType, tmp_path: Path) -> None:
    """More pieces than one writev() takes (IOV_MAX, 1024): still whole."""
    pieces = [bytes([n % 256]) for n in range(5000)]
    name = core.publish_chunks(str(tmp_path), "svc", "", iter(pieces))
    assert Path(name).read_bytes() == b"".join(pieces)


def test_publish_chunks_cut_short_leaves_no_file(core: ModuleType, tmp_path: Path) -> None:
    """A report whose making fails half-way (the pieces raise) is not
    published, and its temporary file is gone: a report is whole or not at all."""
    def pieces() -> Iterator[bytes]:
        yield b"first half"
        raise RuntimeError("the renderer failed")

    with pytest.raises(RuntimeError, match="the renderer failed"):
        core.publish_chunks(str(tmp_path), "svc", "", pieces())
    assert list(tmp_path.iterdir()) == []
    with pytest.raises(TypeError):
        core.publish_chunks(str(tmp_path), "svc", "", ["not bytes"])
    assert list(tmp_path.iterdir()) == []
    with pytest.raises(FileNotFoundError) as error:
        core.publish_chunks(str(tmp_path / "gone"), "svc", "", [b"x"])
    assert error.value.filename == str(tmp_path / "gone")


def test_name_this_thread(core: ModuleType) -> None:
    seen: list[str] = []

    def run() -> None:
        core.name_this_thread("gmr-test-thread-long-name")
        seen.append(Path(f"/proc/self/task/{threading.get_native_id()}/comm").read_text().strip())

    thread = threading.Thread(target=run)
    thread.start()
    thread.join()
    assert seen == ["gmr-test-thread"]  # the kernel keeps 15 bytes


def test_source_lines_decoded_as_the_interpreter_does(tmp_path: Path) -> None:
    source = tmp_path / "latin.py"
    source.write_bytes("# -*- coding: latin-1 -*-\r\ndef where():\r\n"
                       "    return 'caf\xe9'  # marker\r\n".encode("latin-1"))
    spec = importlib.util.spec_from_file_location("latin", source)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    code = module.where.__code__
    first = snapshot.Frame(code, 0)
    last = snapshot.Frame(code, len(code.co_code) - 2)  # the return, on line 3
    resolve.forget()
    located = resolve.resolve([(first.code, first.lasti, False), (last.code, last.lasti, False)])
    lines = source.read_bytes().decode("latin-1").splitlines()
    filename, line, function, text = located[0]
    assert (filename, function) == (str(source), "where")
    assert text == lines[line - 1].strip()  # line 2 or 3, as the version numbers it
    assert located[1][1:] == (3, "where", "return 'caf\xe9'  # marker")
    # Known by its line (gevent's spawning stacks): the same reader, the same text.
    assert resolve.resolve([(code, 3, True)])[0] == located[1]


def test_a_source_file_is_read_once(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """A new location in a file read before is resolved from the text kept
    (a read would let the GIL go again); the text kept is the one first
    read, the code the process runs. Past SOURCE_LIMIT the kept texts go."""
    source = tmp_path / "kept.py"
    source.write_text("def first():\n    return 1\n\n\ndef second():\n    return 2\n")
    spec = importlib.util.spec_from_file_location("kept", source)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    reads: list[list[str]] = []
    read_files = resolve.files.read_files

    def recording(paths: list[str], *args: object) -> list[bytes | None]:
        reads.append(list(paths))
        return read_files(paths, *args)  # type: ignore[no-any-return]

    monkeypatch.setattr(resolve, "files", ModuleType(read_files=recording))
    resolve.forget()
    assert resolve.resolve([(module.first.__code__, 2, True)])[0].source == "return 1"
    source.write_text("# changed under the process\n")
    assert resolve.resolve([(module.second.__code__, 6, True)])[0].source == "return 2"
    assert reads == [[str(source)]]
    monkeypatch.setattr(resolve, "SOURCE_LIMIT", 10)
    resolve.forget()
    resolve.resolve([(module.first.__code__, 2, True)])
    resolve.resolve([(threading.Thread.run.__code__, 0, False)])  # another file: over the limit
    assert list(resolve._sources) == [threading.Thread.run.__code__.co_filename]
    resolve.forget()


def _rss_bytes() -> int:
    return int(Path("/proc/self/statm").read_text().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def test_trim_heap_gives_the_free_c_heap_back(core: ModuleType) -> None:
    """What a big report's pieces took from the C heap goes back to the
    system once they are freed (glibc keeps it otherwise: lasting RSS)."""
    if core.IMPLEMENTATION != "compiled" or platform.libc_ver()[0] != "glibc":
        assert core.trim_heap() is False  # nothing to give it back with
        return
    pieces = [bytes(2048) for _ in range(30_000)]  # 60 MB of the C heap, not pymalloc's
    kept = bytes(2048)  # above them: the heap cannot shrink from its top
    del pieces
    before = _rss_bytes()
    assert core.trim_heap() is True
    assert before - _rss_bytes() > 30 << 20
    del kept


def test_publish_never_gives_a_freed_name_again(core: ModuleType, tmp_path: Path) -> None:
    """Retention deletes the oldest reports of a second first: the next one
    is named above every report still there, never with a freed lower name
    (which would sort as older than those after it)."""
    for _ in range(5):  # five reports within one second (the stamp may turn between)
        for path in tmp_path.iterdir():
            path.unlink()
        names = [core.publish(str(tmp_path), "svc", "", b"x") for _ in range(4)]
        for name in names[:2]:
            os.unlink(name)  # base and .1, as max_reports would
        fifth = core.publish(str(tmp_path), "svc", "", b"y")
        if len({Path(name).name.split(".")[0] for name in [*names, fifth]}) == 1:
            break
    assert names[1:] == [f"{names[0]}.{n}" for n in (1, 2, 3)]
    assert fifth == f"{names[0]}.4"


def test_a_frame_without_a_file_shows_the_lines_linecache_holds(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """One resolver: a frame of code exec'd from a string and a spawning
    stack known by its line get the same source, from linecache (no file is
    read for a "<...>" name)."""
    name = "<gmr-test-exec>"
    source = "def plugin(job):\n    return job.work()\n"
    code = next(const for const in compile(source, name, "exec").co_consts
                if isinstance(const, CodeType))
    monkeypatch.setitem(linecache.cache, name, (len(source), None, source.splitlines(True), name))
    read: list[list[str]] = []

    def no_file(paths: list[str], *args: object) -> list[bytes | None]:
        read.append(paths)
        return [None] * len(paths)

    monkeypatch.setattr(resolve, "files", ModuleType(read_files=no_file))
    resolve.forget()
    last = max(start for start, _end, line in code.co_lines() if line == 2)
    by_instruction, by_line = resolve.resolve([(code, last, False), (code, 2, True)])
    assert by_instruction == by_line == resolve.Location(name, 2, "plugin", "return job.work()")
    assert all(name not in paths for paths in read)
    monkeypatch.delitem(linecache.cache, name)
    resolve.forget()
    assert resolve.resolve([(code, last, False)])[0].source == ""


def text_listings(core: Any, stack: str) -> Any:
    """An empty text Listings of the core's files unit, with one stack, and
    render's own layout for each record (what the pure twin makes)."""
    def listing(green: GreenletRecord) -> str:
        return f"-- Green --\n\n({core.greenlet_facts(green, {}, str)})\n\n{stack}"

    return core.Listings("text", "-- Green --", [stack], str, str, listing)


def test_publish_chunks_writes_greenlet_listings_among_the_pieces(
        core: ModuleType, tmp_path: Path) -> None:
    """A files.Listings among a report's pieces is written where it stands,
    its text assembled as it is written (the compiled unit: in the same
    let-go of the GIL as each write), first, between, last or empty."""
    def listings(count: int) -> Any:
        made = text_listings(core, "a.py:1 in f\n    `f()`\n" * 3)
        made.add([GreenletRecord(0x1000 + n, "greenlet.greenlet", f"g{n}", n, "suspended",
                                 0x10, None, None, None, 0) for n in range(count)])
        return made

    many = listings(20000)  # about 2 MB: more than one batch
    text = many.text().encode()
    assert len(text) > 2 * core.BATCH_BYTES and text.count(b"(id 0x1000, greenlet.greenlet, "
                                                         b"g0 (#0), suspended, parent 0x10)")
    for pieces, expected in [
        ([b"head\n", many, b"tail\n"], b"head\n" + text + b"tail\n"),
        ([many], text),
        ([b"head\n", many], b"head\n" + text),
        ([b"head\n", listings(0), listings(1), b"tail\n"],
         b"head\n" + listings(1).text().encode() + b"tail\n"),
    ]:
        name = core.publish_chunks(str(tmp_path), "svc", "", iter(pieces))
        assert Path(name).read_bytes() == expected
        Path(name).unlink()
    assert list(tmp_path.iterdir()) == []


def test_the_compiled_listings_are_assembled_without_the_gil() -> None:
    """Another thread runs Python while the compiled files unit assembles
    the text of greenlet listings: it lets the GIL go for it. The other
    thread is let through a lock just before each listing is assembled (the
    first of its pieces is asked for; the rest are cut from it), and needs
    the GIL to count: had the call held the GIL throughout, it could count
    only after the call (no bytecode of this thread runs in between to hand
    the GIL over: a 4 MB str.encode() there lets it count 0 times out of
    200; the listings, all but a few)."""
    if not compiled_expected():
        pytest.skip("GMR_NO_EXTENSIONS is set: the compiled core is not under test")
    from gmr import _files
    stack = "deep.py:9 in h\n    `h()`\n" * 160000  # 4 MB: each listing a piece of its own
    listings = text_listings(_files, stack)
    listings.add([GreenletRecord(0x1000 + n, "greenlet.greenlet", None, None, "suspended",
                                 None, None, None, None, 0) for n in range(40)])
    counted = [0]
    gate = threading.Lock()
    gate.acquire()
    done = threading.Event()

    def count() -> None:
        while True:
            gate.acquire()
            if done.is_set():
                return
            counted[0] += 1

    counter = threading.Thread(target=count)
    counter.start()
    ran = 0
    pieces = listings.pieces()
    per_listing = -(-listings._text_size() // len(listings) // _files.PIECE_BYTES)
    try:
        for _ in range(len(listings)):
            before = counted[0]
            gate.release()
            assert next(pieces).startswith(b"-- Green --")  # a listing assembled
            ran += counted[0] > before
            wait_for(lambda last=before: counted[0] > last)  # and holds the gate again
            for _ in range(per_listing - 1):
                next(pieces)
        assert next(pieces, None) is None
    finally:
        done.set()
        gate.release()
        counter.join()
    assert ran > 0


def test_greenlet_listings_share_their_batches_with_the_pieces_around_them(
        core: ModuleType, tmp_path: Path) -> None:
    """Each batch is one let-go of the GIL: the pieces before a Listings go
    out in its first batch, and those after it in its last (its text is
    assembled in the same let-go as each write), not in batches of their
    own."""
    listings = text_listings(core, "a.py:1 in f\n    `f()`\n" * 3)
    listings.add([GreenletRecord(0x1000 + n, "greenlet.greenlet", None, None, "suspended",
                                 None, None, None, None, 0) for n in range(20000)])
    text = listings.text().encode()
    head = b"head\n" * 120000  # 600 KB
    assert 2 * core.BATCH_BYTES < len(text) < 2.5 * core.BATCH_BYTES
    written: list[int] = []

    def pieces() -> Iterator[Any]:
        yield head
        yield listings
        yield b"tail\n"
        # Asked for the second piece after it: what is out by now.
        written.append(sum(path.stat().st_size for path in tmp_path.iterdir()))
        yield b"end\n"

    name = core.publish_chunks(str(tmp_path), "svc", "", pieces())
    assert Path(name).read_bytes() == head + text + b"tail\nend\n"
    # Two batches of about BATCH_BYTES: the head and the start of the
    # listings, then more of them; the rest of them goes with the tail. (Had
    # the head a batch of its own, and the listings' end another, 600 KB and
    # the whole of the listings would be out.)
    # A batch ends past BATCH_BYTES by less than one piece (the pure twin)
    # and short of it by less than one listing (the compiled one).
    assert 2 * core.BATCH_BYTES - 200 <= written[0] <= 2 * (core.BATCH_BYTES + core.PIECE_BYTES)
