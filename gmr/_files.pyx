# cython: language_level=3, boundscheck=False, wraparound=False, initializedcheck=False, auto_pickle=False
"""The file work a report needs, in plain C: reading many small files
(/proc, sources) and listing directories with the GIL let go once, or not
at all, and publishing the report file whole (gmr/_publish.h, which the
watchdog shares). A read or write through Python lets the GIL go at each
system call, and waits to get it back from a busy thread each time.

gmr/_files.pyi is the typed boundary; gmr/_files_py.py is the pure twin.
"""

import os

from cpython.bytes cimport PyBytes_FromStringAndSize
from cpython.long cimport PyLong_AsUnsignedLongLong
from cpython.object cimport PyObject
from libc.errno cimport EEXIST, EIO
from libc.stdlib cimport free, malloc
from libc.string cimport memcpy, strcmp, strerror, strlen
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
                        list batch, Py_ssize_t slot, _TextView view, size_t *next_row,
                        size_t room, bint last, char *name, size_t size,
                        int *stage) except -1:
    """gmr_publish_step for a batch of bytes without the GIL; where slot is
    not -1, batch[slot] stands for the text of a Listings' rows from
    *next_row on (view), as many as fit in room bytes, assembled in the
    same let-go (*next_row moved past them)."""
    cdef size_t count = len(batch), i
    cdef const char **data = <const char **>malloc((count + 1) * sizeof(char *))
    cdef size_t *sizes = <size_t *>malloc((count + 1) * sizeof(size_t))
    cdef gmr_listing *rows = NULL
    cdef size_t rows_count = 0
    cdef int error
    if data == NULL or sizes == NULL:
        free(data)
        free(sizes)
        raise MemoryError()
    for i in range(count):
        if <Py_ssize_t>i != slot:
            data[i] = <bytes>batch[i]
            sizes[i] = len(<bytes>batch[i])
    if slot >= 0:
        rows, rows_count = view.listings.rows, view.listings.count
        data[slot] = view.buffer
    with nogil:
        if slot >= 0:
            sizes[slot] = gmr_listings_fill(rows, rows_count, view.after, next_row, &view.view,
                                            view.buffer, room)
        error = gmr_publish_step(fd, base, temporary, temporary_size, data, sizes, count, last,
                                 name, size, stage)
        gmr_hurry()
    gmr_hurried()
    free(data)
    free(sizes)
    return error


def publish_chunks(str directory, str prefix, str suffix, chunks):
    """As publish(), for a report made a piece at a time (an iterable of
    bytes, and of Listings): the pieces are written in batches of about
    1 MiB, the GIL let go once for each, the file created with the first
    batch and named with the last (most reports: once in all). A Listings'
    text is assembled in the let-go of the batches it is written in, among
    the pieces before and after it. The file appears whole or not at all: a
    short write, or an exception from chunks (raised again), leaves no file."""
    cdef bytes directory_c = os.fsencode(directory)
    cdef bytes prefix_c = os.fsencode(prefix)
    cdef bytes suffix_c = os.fsencode(suffix)
    cdef char base[4096]
    cdef char temporary[4096 + 64]
    cdef char name[4096 + 16]
    cdef int error, fd = -1, stage = 0
    cdef list batch
    cdef Py_ssize_t batched, slot
    cdef _TextView view = None  # the Listings being written
    cdef size_t next_row = 0, room = 0, left
    cdef bint last
    pieces = iter(chunks)
    error = gmr_report_base(base, sizeof(base), directory_c, prefix_c, suffix_c)
    try:
        following = next(pieces, None)
        while error == 0:
            batch, batched, slot = [], 0, -1
            while batched < BATCH_BYTES:
                if isinstance(following, Listings):
                    if view is not None:
                        break  # one Listings a batch
                    view = _TextView(<Listings>following)
                    view.listings.writing += 1
                    next_row = 0
                    following = next(pieces, None)
                if view is not None and slot < 0:
                    # Its rows from next_row on, as many as fill the batch.
                    slot = len(batch)
                    batch.append(None)
                    room = max(BATCH_BYTES - batched, view.longest)
                    left = view.size_from(next_row)
                    batched += min(left, room)
                    if left > room:
                        break  # it goes on in the next batch
                    continue
                if following is None or isinstance(following, Listings):
                    break
                batch.append(<bytes?>following)
                batched += len(<bytes>following)
                following = next(pieces, None)
            last = following is None and (view is None or view.size_from(next_row) <= room)
            error = _publish_batch(&fd, base, temporary, sizeof(temporary), batch, slot, view,
                                   &next_row, room, last, name, sizeof(name), &stage)
            if view is not None and next_row == <size_t>view.listings.count:
                view.listings.writing -= 1
                view = None
            if last:
                break
    except BaseException:
        if fd >= 0:
            close(fd)
            unlink(temporary)
        raise
    finally:
        if view is not None:
            view.listings.writing -= 1
    return _published(error, stage, base, name, directory)


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


cdef extern from "_listings.h" nogil:
    ctypedef struct gmr_listing:
        unsigned long long id, minimal_ident, parent, thread, spawned_by
        size_t name_at, name_size, kind, state, stack, spawned
        int flags
    ctypedef struct gmr_listing_texts:
        const char *const *data
        const size_t *sizes
        const char *names
        int layout
    int GMR_LISTING_MINIMAL, GMR_LISTING_RUNNING, GMR_LISTING_PARENT, GMR_LISTING_THREAD
    int GMR_LISTING_SPAWNER, GMR_LISTING_TEXT, GMR_LISTING_JSON, GMR_LISTING_JSON_COMPACT
    size_t GMR_LISTING_WHOLE, GMR_LISTING_NONE
    size_t gmr_listing_size(const gmr_listing *rows, size_t index,
                            const gmr_listing_texts *texts)
    size_t gmr_listings_fill(const gmr_listing *rows, size_t count, const size_t *after,
                             size_t *next, const gmr_listing_texts *texts, char *buffer,
                             size_t capacity)


#: Each form's layout in gmr/_listings.h.
_LAYOUTS = {"text": GMR_LISTING_TEXT, "json": GMR_LISTING_JSON,
            "json-compact": GMR_LISTING_JSON_COMPACT}


cdef inline bint _number(object value, unsigned long long *out):
    """Whether value is None (out: 0) or an exact int of 0 to 2**64 - 1
    (out: it): what a row holds as a number, shown as hex() and str() show it."""
    if value is None:
        out[0] = 0
        return True
    if type(value) is not int or value < 0:
        return False
    try:
        out[0] = PyLong_AsUnsignedLongLong(value)
    except OverflowError:
        return False
    return True


cdef extern from "_mapped.h" nogil:
    int gmr_grow(void **array, Py_ssize_t *capacity, Py_ssize_t needed, size_t item)
    void gmr_unmap(void **array, Py_ssize_t *capacity, size_t item)


#: The most bytes of one piece Listings.pieces() gives: below malloc's mmap
#: threshold (gmr/_mapped.h).
PIECE_BYTES = 1 << 16
cdef Py_ssize_t _PIECE = PIECE_BYTES


cdef class _TextView:
    """The C view of a Listings' texts (pointers into the bytes of its list:
    the Listings is kept alive here), the size of its rows' text (from each row to
    the last), and a buffer that holds BATCH_BYTES, and the text of its
    longest row at least. All mapped (gmr/_mapped.h)."""
    cdef Listings listings
    cdef const char **data
    cdef size_t *sizes
    cdef size_t *after
    cdef Py_ssize_t data_room, sizes_room, after_room
    cdef char *buffer
    cdef Py_ssize_t capacity
    cdef size_t longest
    cdef gmr_listing_texts view

    def __cinit__(self, Listings listings):
        cdef Py_ssize_t count = len(listings.texts), i
        cdef size_t row_size
        self.listings = listings
        if (gmr_grow(<void **>&self.data, &self.data_room, count, sizeof(char *)) < 0
                or gmr_grow(<void **>&self.sizes, &self.sizes_room, count, sizeof(size_t)) < 0
                or gmr_grow(<void **>&self.after, &self.after_room, listings.count + 1,
                            sizeof(size_t)) < 0):
            raise MemoryError()
        for i in range(count):
            self.data[i] = <bytes>listings.texts[i]
            self.sizes[i] = len(<bytes>listings.texts[i])
        self.view.data = self.data
        self.view.sizes = self.sizes
        self.view.names = listings.names
        self.view.layout = listings.layout
        self.longest = 0
        self.after[listings.count] = 0
        for i in range(listings.count - 1, -1, -1):
            row_size = gmr_listing_size(listings.rows, i, &self.view)
            self.longest = max(self.longest, row_size)
            self.after[i] = self.after[i + 1] + row_size
        if gmr_grow(<void **>&self.buffer, &self.capacity,
                    <Py_ssize_t>max(<size_t>BATCH_BYTES, self.longest), 1) < 0:
            raise MemoryError()

    cdef size_t size_from(self, size_t row):
        """The bytes of the text of the rows from row on."""
        return self.after[row]

    def __dealloc__(self):
        gmr_unmap(<void **>&self.data, &self.data_room, sizeof(char *))
        gmr_unmap(<void **>&self.sizes, &self.sizes_room, sizeof(size_t))
        gmr_unmap(<void **>&self.after, &self.after_room, sizeof(size_t))
        gmr_unmap(<void **>&self.buffer, &self.capacity, 1)


cdef class Listings:
    """The listings of greenlet records (gmr.model.GreenletRecord, read by
    field position) in the layout of a form of the report (render's text
    listing, or a JSON record on its line), as a job of columns: add() reads
    the records with the GIL held, and their text is assembled from the rows
    and a table of encoded texts (gmr/_listings.h) with the GIL let go, as
    the report is written (publish_chunks) or asked for its pieces. A record
    that is not plain data is made by whole(record), render's own code;
    gmr/_files_py.py's twin makes every record so. The rows and the names
    are mapped arrays (gmr/_mapped.h)."""

    cdef gmr_listing *rows
    cdef Py_ssize_t count, rows_room
    cdef char *names
    cdef Py_ssize_t names_size, names_room
    cdef int layout
    #: Writers of the text at work (the arrays must not move under them).
    cdef int writing
    cdef list texts
    cdef Py_ssize_t stacks
    cdef dict known, text_index, spawned_index
    cdef object escape, spawned, whole

    def __init__(self, str form, str opening, list stack_texts, escape, spawned, whole):
        if self.texts is not None:
            raise TypeError("a Listings is made once")
        self.layout = _LAYOUTS[form]
        self.stacks = len(stack_texts)
        if self.layout == GMR_LISTING_TEXT:
            framing = [f"{opening}\n\n(id 0x", "", "", "\n"]
        elif self.layout == GMR_LISTING_JSON:
            framing = ["", opening, ",\n" + opening, ""]
        else:
            framing = ["", "", ",", ""]
        # GMR_LISTING_OPENING, _FIRST (before the first row), _BETWEEN (two
        # rows) and _AFTER (each row), then each stack's text.
        self.texts = [(<str>text).encode("utf-8", "replace") for text in framing]
        self.texts += [(<str?>text).encode("utf-8", "replace") for text in stack_texts]
        self.known, self.text_index, self.spawned_index = {}, {}, {}
        self.escape, self.spawned, self.whole = escape, spawned, whole

    def __dealloc__(self):
        gmr_unmap(<void **>&self.rows, &self.rows_room, sizeof(gmr_listing))
        gmr_unmap(<void **>&self.names, &self.names_room, 1)

    def __len__(self):
        return self.count

    cdef size_t _text(self, str text):
        """The index of a text of the table, encoded once."""
        index = self.text_index.get(text)
        if index is None:
            index = self.text_index[text] = len(self.texts)
            self.texts.append(text.encode("utf-8", "replace"))
        return index

    cdef size_t _escaped(self, object value) except? 0:
        """The index of escape(value) in the table, for the few types and
        states (made once each)."""
        text = self.known.get(value)
        if text is None:
            text = self.known[value] = self._text(<str?>self.escape(value))
        return text

    cdef gmr_listing *_row(self) except NULL:
        if self.writing:
            raise RuntimeError("the listings are being written")
        if gmr_grow(<void **>&self.rows, &self.rows_room, self.count + 1,
                    sizeof(gmr_listing)) < 0:
            raise MemoryError()
        return &self.rows[self.count]

    cdef int _name(self, gmr_listing *row, str shown) except -1:
        """The escaped name's UTF-8 bytes, added to the names."""
        cdef bytes encoded = shown.encode("utf-8", "replace")
        cdef Py_ssize_t size = len(encoded)
        if gmr_grow(<void **>&self.names, &self.names_room, self.names_size + size, 1) < 0:
            raise MemoryError()
        memcpy(self.names + self.names_size, <const char *>encoded, size)
        row.name_at, row.name_size = self.names_size, size
        self.names_size += size
        return 0

    cdef int _whole(self, str text) except -1:
        """A row that is this text whole."""
        cdef gmr_listing *row = self._row()
        row.kind = GMR_LISTING_WHOLE
        row.stack = len(self.texts)
        self.texts.append(text.encode("utf-8", "replace"))
        self.count += 1
        return 0

    cdef str _shown_name(self, object name):
        """The name as the row shows it, or None: text, the escaped name
        where it is not empty; JSON, its string (null: None)."""
        cdef str text
        if self.layout == GMR_LISTING_TEXT:
            if not name:
                return None
            return name if (<str>name).isprintable() else <str?>self.escape(name)
        if name is None:
            return None
        text = <str>name
        if text.isascii() and text.isprintable() and "\"" not in text and "\\" not in text:
            return f'"{text}"'
        return <str?>self.escape(name)

    cdef int _listing(self, object green) except -1:
        cdef gmr_listing *row
        cdef PyObject *fields
        cdef unsigned long long ident, parent, thread, spawner, minimal_ident = 0
        cdef bint text = self.layout == GMR_LISTING_TEXT
        cdef str shown
        cdef object name, minimal, where, stack, kind, state, key, index
        if not isinstance(green, tuple) or PyTuple_GET_SIZE(<PyObject *>green) != 10:
            raise TypeError("not a greenlet record")
        fields = <PyObject *>green
        kind = <object>PyTuple_GET_ITEM(fields, 1)
        name = <object>PyTuple_GET_ITEM(fields, 2)
        minimal = <object>PyTuple_GET_ITEM(fields, 3)
        state = <object>PyTuple_GET_ITEM(fields, 4)
        where = <object>PyTuple_GET_ITEM(fields, 8)
        stack = <object>PyTuple_GET_ITEM(fields, 9)
        if not (<object>PyTuple_GET_ITEM(fields, 0) is not None
                and _number(<object>PyTuple_GET_ITEM(fields, 0), &ident)
                and _number(<object>PyTuple_GET_ITEM(fields, 5), &parent)
                and _number(<object>PyTuple_GET_ITEM(fields, 6), &thread)
                and _number(<object>PyTuple_GET_ITEM(fields, 7), &spawner)
                and type(kind) is str and type(state) is str
                and (name is None or type(name) is str)
                and _number(minimal, &minimal_ident)
                and type(stack) is int and 0 <= stack < <object>self.stacks):
            # Not plain data: render's own code makes its text.
            return self._whole(<str?>self.whole(green))
        shown = self._shown_name(name)
        row = self._row()
        row.id, row.parent, row.thread = ident, parent, thread
        row.minimal_ident, row.spawned_by = minimal_ident, spawner
        row.kind, row.state = self._escaped(kind), self._escaped(state)
        row.stack = 4 + <size_t>stack
        row.flags = (
            (GMR_LISTING_RUNNING if text and state == "running" else 0)
            | (GMR_LISTING_MINIMAL if minimal is not None else 0)
            | (GMR_LISTING_PARENT if <object>PyTuple_GET_ITEM(fields, 5) is not None else 0)
            | (GMR_LISTING_THREAD if <object>PyTuple_GET_ITEM(fields, 6) is not None else 0)
            | (GMR_LISTING_SPAWNER if <object>PyTuple_GET_ITEM(fields, 7) is not None else 0))
        row.name_size = 0
        if shown is not None:
            self._name(row, shown)
        row.spawned = GMR_LISTING_NONE
        if where is not None or not text:
            # Where a greenlet was spawned is made once for each spawner and
            # place (render's spawned() depends on those two fields only).
            key = (<object>PyTuple_GET_ITEM(fields, 7), where) if (
                where is None or type(where) is int) else None
            index = None if key is None else self.spawned_index.get(key)
            if index is None:
                index = len(self.texts)
                self.texts.append((<str?>self.spawned(green)).encode("utf-8", "replace"))
                if key is not None:
                    self.spawned_index[key] = index
            row.spawned = index
        self.count += 1
        return 0

    def add(self, records):
        """A listing for each record; all of them or, when one raises, none."""
        cdef size_t before = self.count
        try:
            for green in records:
                self._listing(green)
        except BaseException:
            self.count = before
            raise

    def add_line(self, str line):
        """A line in place of listings (why a slice of records failed)."""
        self._whole(line)

    def pieces(self):
        """The text, encoded, in pieces of at most 64 KiB: each BATCH_BYTES of
        it assembled with the GIL let go, then cut (a bytes object over
        malloc's mmap threshold would raise it for good, gmr/_mapped.h)."""
        cdef _TextView view = _TextView(self)
        cdef size_t next = 0, size
        cdef Py_ssize_t at
        self.writing += 1
        try:
            while next < <size_t>self.count:
                with nogil:
                    size = gmr_listings_fill(self.rows, self.count, view.after, &next,
                                             &view.view, view.buffer, view.capacity)
                    gmr_hurry()
                gmr_hurried()
                for at in range(0, size, _PIECE):
                    yield PyBytes_FromStringAndSize(view.buffer + at, min(_PIECE, size - at))
        finally:
            self.writing -= 1

    def _text_size(self):
        """The bytes of the text, as the rows' sizes add up (the tests hold
        them to the text: a buffer is filled by them)."""
        return _TextView(self).size_from(0)

    def text(self):
        """The whole text, as one str (run()'s report)."""
        return b"".join(self.pieces()).decode("utf-8")
