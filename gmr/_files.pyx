# cython: language_level=3, boundscheck=False, wraparound=False, initializedcheck=False
"""The file work a report needs, in plain C: reading many small files
(/proc, sources) and listing directories with the GIL let go once, or not
at all, and publishing the report file whole (gmr/_publish.h, which the
watchdog shares). A read or write through Python lets the GIL go at each
system call, and waits to get it back from a busy thread each time.

gmr/_files.pyi is the typed boundary; gmr/_files_py.py is the pure twin.
"""

import os

from cpython.bytes cimport PyBytes_FromStringAndSize
from cpython.object cimport PyObject
from libc.errno cimport EEXIST, EIO
from libc.stdlib cimport free, malloc
from libc.string cimport strcmp, strerror, strlen
from posix.unistd cimport close, unlink

IMPLEMENTATION = "compiled"

#: A report's pieces are written in batches of about this many bytes, the
#: GIL let go once for each (nothing from gmr is imported here: the build
#: imports each unit on its own, to check it loads).
BATCH_BYTES = 1 << 20

cdef extern from "Python.h":
    object PyUnicode_DecodeFSDefault(const char *s)

cdef extern from "_publish.h" nogil:
    int gmr_report_base(char *out, size_t size, const char *directory, const char *prefix,
                        const char *suffix)
    int gmr_publish(const char *base, const char *data, size_t length, char *name,
                    size_t size, int *stage)
    int gmr_publish_step(int *fd, const char *base, char *temporary, size_t temporary_size,
                         const char *const *data, const size_t *sizes, size_t count, int last,
                         char *name, size_t size, int *stage)

cdef extern from "_read.h" nogil:
    char *gmr_read_whole(const char *path, Py_ssize_t limit, Py_ssize_t *size)

cdef extern from "_switch.h":
    int gmr_use_hurry_capsule(object capsule) except -1
    void gmr_hurry() nogil
    void gmr_hurried() nogil

cdef extern from "<dirent.h>" nogil:
    ctypedef struct DIR
    struct dirent:
        char d_name[256]
    DIR *opendir(const char *name)
    dirent *readdir(DIR *directory)
    int closedir(DIR *directory)


def read_files(paths, Py_ssize_t limit=1 << 24, bint keep_gil=False):
    """The bytes of each file (None where it cannot be read), at most limit
    each. The GIL is let go once for all of them. keep_gil: not even once,
    for files the kernel answers at once (this process's own /proc files):
    a few microseconds each, less than a wait for the GIL."""
    cdef list encoded = [os.fsencode(path) for path in paths]
    cdef Py_ssize_t count = len(encoded), i
    if count == 0:
        return []  # without letting the GIL go for nothing
    cdef char **paths_c = <char **>malloc(count * sizeof(char *))
    cdef char **buffers = <char **>malloc(count * sizeof(char *))
    cdef Py_ssize_t *sizes = <Py_ssize_t *>malloc(count * sizeof(Py_ssize_t))
    if paths_c == NULL or buffers == NULL or sizes == NULL:
        free(paths_c)
        free(buffers)
        free(sizes)
        raise MemoryError()
    for i in range(count):
        paths_c[i] = <char *>(<bytes>encoded[i])
    if keep_gil:
        for i in range(count):
            buffers[i] = gmr_read_whole(paths_c[i], limit, &sizes[i])
    else:
        with nogil:
            for i in range(count):
                buffers[i] = gmr_read_whole(paths_c[i], limit, &sizes[i])
            gmr_hurry()
        gmr_hurried()
    out = []
    for i in range(count):
        if buffers[i] == NULL:
            out.append(None)
        else:
            out.append(PyBytes_FromStringAndSize(buffers[i], sizes[i]))
            free(buffers[i])
    free(paths_c)
    free(buffers)
    free(sizes)
    return out


cdef extern from *:
    """
    #ifdef __GLIBC__
    #include <malloc.h>
    static int gmr_trim_heap(void) { (void)malloc_trim(0); return 1; }
    #else
    static int gmr_trim_heap(void) { return 0; }
    #endif
    """
    int gmr_trim_heap() nogil


cdef extern from *:
    """
    #include <errno.h>
    #include <sys/wait.h>
    /* 0: this process has no child at all; 1: it may have (or cannot tell). */
    static int gmr_may_have_children(void) {
        siginfo_t info;
        int error;
        do {
            error = waitid(P_ALL, 0, &info, WEXITED | WNOHANG | WNOWAIT) < 0 ? errno : 0;
        } while (error == EINTR);
        return error != ECHILD;
    }
    """
    int gmr_may_have_children() nogil


def may_have_children():
    """False when this process has no child process at all (waitid with
    WNOHANG | WNOWAIT: nothing is reaped, nothing waited for), with the GIL
    held: the kernel answers at once, and a let-go would cost a wait for
    the GIL behind busy threads."""
    return bool(gmr_may_have_children())


def trim_heap():
    """Give the C heap's free memory back to the system (glibc's
    malloc_trim), with the GIL let go: after a big report, whose tens of
    MB of short-lived pieces the heap would keep. Whether it could."""
    cdef int done
    with nogil:
        done = gmr_trim_heap()
    return bool(done)


def use_hurry(capsule):
    """The trigger's hurry_capsule(), or None (then nothing is hurried).
    True when this unit takes the GIL back at once after each batch of
    reads or writes (gmr/_switch.h)."""
    return gmr_use_hurry_capsule(capsule) == 1


def list_dirs(paths):
    """The names in each directory (None where it cannot be listed), with
    the GIL held: for this process's own /proc directories (its tasks, its
    file descriptors), which the kernel lists at once, where os.listdir
    would let the GIL go and wait to get it back."""
    cdef DIR *directory
    cdef dirent *entry
    out = []
    for path in paths:
        encoded = os.fsencode(path)
        directory = opendir(encoded)
        if directory == NULL:
            out.append(None)
            continue
        names = []
        while True:
            entry = readdir(directory)
            if entry == NULL:
                break
            if strcmp(entry.d_name, b".") and strcmp(entry.d_name, b".."):
                names.append(PyUnicode_DecodeFSDefault(entry.d_name))
        closedir(directory)
        out.append(names)
    return out


def publish(str directory, str prefix, str suffix, bytes data):
    """A new report file in directory holding data, named
    <prefix>_gurumeditation_<UTC stamp><suffix> (or that name with .1, .2,
    ... when taken: an earlier file is never replaced). It appears whole: a
    short write (a full disk) leaves no file. The GIL is let go once for it
    all. Returns the file's path; raises OSError naming the file."""
    cdef bytes directory_c = os.fsencode(directory)
    cdef bytes prefix_c = os.fsencode(prefix)
    cdef bytes suffix_c = os.fsencode(suffix)
    cdef char base[4096]
    cdef char name[4096 + 16]
    cdef const char *content = data
    cdef size_t size = len(data)
    cdef int error, stage = 0
    error = gmr_report_base(base, sizeof(base), directory_c, prefix_c, suffix_c)
    if error == 0:
        with nogil:
            error = gmr_publish(base, content, size, name, sizeof(name), &stage)
            gmr_hurry()
        gmr_hurried()
    return _published(error, stage, base, name, directory)


cdef str _published(int error, int stage, char *base, char *name, str directory):
    """The published file's name, or the OSError that says what failed
    where: the free name taken (stage 2) or the directory."""
    if error == 0:
        return os.fsdecode(name[:strlen(name)])
    where = os.fsdecode(base[:strlen(base)]) if stage == 2 else directory
    what = ("no free report name" if stage == 2 and error == EEXIST
            else strerror(error).decode(errors="replace"))
    raise OSError(error, what, where)


cdef int _publish_batch(int *fd, char *base, char *temporary, size_t temporary_size,
                        list batch, bint last, char *name, size_t size, int *stage) except -1:
    """gmr_publish_step for a list of bytes, without the GIL."""
    cdef size_t count = len(batch), i
    cdef const char **data = <const char **>malloc((count + 1) * sizeof(char *))
    cdef size_t *sizes = <size_t *>malloc((count + 1) * sizeof(size_t))
    cdef int error
    if data == NULL or sizes == NULL:
        free(data)
        free(sizes)
        raise MemoryError()
    for i in range(count):
        data[i] = <bytes>batch[i]
        sizes[i] = len(<bytes>batch[i])
    with nogil:
        error = gmr_publish_step(fd, base, temporary, temporary_size, data, sizes, count, last,
                                 name, size, stage)
        gmr_hurry()
    gmr_hurried()
    free(data)
    free(sizes)
    return error


def publish_chunks(str directory, str prefix, str suffix, chunks):
    """As publish(), for a report made a piece at a time (an iterable of
    bytes): the pieces are written in batches of about 1 MiB, the GIL
    let go once for each, the file created with the first batch and named
    with the last (most reports: once in all). The file appears whole or
    not at all: a short write, or an exception from chunks (raised again),
    leaves no file."""
    cdef bytes directory_c = os.fsencode(directory)
    cdef bytes prefix_c = os.fsencode(prefix)
    cdef bytes suffix_c = os.fsencode(suffix)
    cdef char base[4096]
    cdef char temporary[4096 + 64]
    cdef char name[4096 + 16]
    cdef int error, fd = -1, stage = 0
    cdef list batch
    cdef Py_ssize_t batched
    pieces = iter(chunks)
    error = gmr_report_base(base, sizeof(base), directory_c, prefix_c, suffix_c)
    try:
        following = next(pieces, None)
        while error == 0:
            batch, batched = [], 0
            while following is not None and batched < BATCH_BYTES:
                batch.append(<bytes?>following)
                batched += len(<bytes>following)
                following = next(pieces, None)
            error = _publish_batch(&fd, base, temporary, sizeof(temporary), batch,
                                   following is None, name, sizeof(name), &stage)
            if following is None:
                break
    except BaseException:
        if fd >= 0:
            close(fd)
            unlink(temporary)
        raise
    return _published(error, stage, base, name, directory)


cdef Py_ssize_t _BLOCK = 1 << 16  # characters after which a new block starts

cdef extern from "Python.h":
    PyObject *PyTuple_GET_ITEM(PyObject *, Py_ssize_t)
    Py_ssize_t PyTuple_GET_SIZE(PyObject *)


cdef inline str _escaped(dict known, object value, object escape):
    """escape(value) for one of the few types and states, made once each."""
    cdef object text = known.get(value)
    if text is None:
        text = escape(value)
        known[value] = text
    return <str?>text


cdef str _facts(object green, dict known, object escape):
    """greenlet_facts(), the record's fields read by position."""
    cdef PyObject *fields
    cdef str state, kind, what, facts
    cdef object name, minimal_ident, parent, thread
    if not isinstance(green, tuple) or PyTuple_GET_SIZE(<PyObject *>green) != 10:
        raise TypeError("not a greenlet record")
    fields = <PyObject *>green
    state = _escaped(known, <object>PyTuple_GET_ITEM(fields, 4), escape)
    kind = _escaped(known, <object>PyTuple_GET_ITEM(fields, 1), escape)
    what = state
    name = <object>PyTuple_GET_ITEM(fields, 2)
    if name:
        minimal_ident = <object>PyTuple_GET_ITEM(fields, 3)
        what = (f"{escape(name)} (#{escape(minimal_ident)}), " if minimal_ident is not None
                else f"{escape(name)}, ") + state
    facts = f"id {hex(<object>PyTuple_GET_ITEM(fields, 0))}, {kind}, {what}"
    parent = <object>PyTuple_GET_ITEM(fields, 5)
    if parent:
        facts += f", parent {hex(parent)}"
    thread = <object>PyTuple_GET_ITEM(fields, 6)
    if thread:
        facts += f", in thread #{escape(thread)}"
    if state == "running":
        facts += ", its frames are its thread's"
    return facts


def greenlet_facts(green, dict known, escape):
    """A greenlet record's facts line, unbracketed, as oslo.reports' layout
    shows it (gmr.model.GreenletRecord, read by field position)."""
    return _facts(green, known, escape)


def greenlet_listings(records, list stack_texts, dict known, escape, spawned, str banner):
    """The listing of each greenlet record (gmr.model.GreenletRecord, read by
    field position), as gmr/_files_py.py's twin makes it, in blocks of about
    64 KiB: the same text from C calls, without an interpreter loop."""
    cdef list blocks = [], lines = []
    cdef Py_ssize_t size = 0
    cdef str text
    for green in records:
        text = (f"{banner}\n\n({_facts(green, known, escape)})\n\n"
                f"{stack_texts[<object>PyTuple_GET_ITEM(<PyObject *>green, 9)]}")
        if <object>PyTuple_GET_ITEM(<PyObject *>green, 8) is not None:
            text += "\n" + spawned(green)
        lines.append(text)
        size += len(text) + 1
        if size >= _BLOCK:
            blocks.append("\n".join(lines))
            lines = []
            size = 0
    if lines:
        blocks.append("\n".join(lines))
    return blocks
