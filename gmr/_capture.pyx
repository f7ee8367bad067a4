# cython: language_level=3, boundscheck=False, wraparound=False, initializedcheck=False
"""The compiled capture core: the C signal handler, the self-pipe wait and the
frame walker. It is the only module of gmr that touches CPython internals.

Nothing here formats or resolves names. The walker holds the GIL (with the
cyclic GC disabled) only while it copies (code object, instruction offset)
pairs into malloc'd memory; RawCapture hands them out afterwards, a thread
at a time or every greenlet in one call. The file work a report needs
(reading /proc and sources, listing /proc directories, publishing the
report file) is plain C here, so that a report lets the GIL go, and waits
to get it back from a busy thread, as few times as it can. gmr/_capture.pyi is the typed boundary; gmr/_capture_py.py is the
pure-Python twin with the same names.
"""

import os

from cpython.object cimport PyObject, PyTypeObject
from cpython.bytes cimport PyBytes_FromStringAndSize
from libc.errno cimport EINTR, errno
from libc.stdlib cimport free, malloc, realloc
from libc.errno cimport EEXIST
from libc.stdio cimport snprintf
from libc.string cimport strcmp, strerror, strlen
from posix.fcntl cimport O_CLOEXEC, O_CREAT, O_EXCL, O_RDONLY, O_WRONLY, open
from posix.unistd cimport close, link, read, unlink, write

IMPLEMENTATION = "compiled"

GREENLET_NOT_STARTED = 0
GREENLET_SUSPENDED = 1
GREENLET_RUNNING = 2
GREENLET_DEAD = 3

cdef enum:
    # A bound on one stack, so a corrupted chain can never loop for ever.
    MAX_DEPTH = 1000000


# ---------------------------------------------------------------------------
# Declarations
# ---------------------------------------------------------------------------

cdef extern from "Python.h":
    object PyUnicode_DecodeFSDefault(const char *s)
    ctypedef struct PyThreadState
    ctypedef struct PyInterpreterState
    PyThreadState *PyThreadState_Get()
    PyInterpreterState *PyThreadState_GetInterpreter(PyThreadState *)
    PyThreadState *PyInterpreterState_ThreadHead(PyInterpreterState *)
    PyThreadState *PyThreadState_Next(PyThreadState *)
    int PyGC_Disable()
    int PyGC_Enable()
    int PyType_IsSubtype(PyTypeObject *, PyTypeObject *)
    void Py_INCREF(PyObject *)
    void Py_XDECREF(PyObject *)
    void PyErr_Clear()
    int PyObject_IsTrue(PyObject *)
    PyObject *Py_True
    PyObject *Py_None

cdef extern from "_watchdog_c.h":
    int gmr_wd_start(long long limit_ns, int signum, int fd) nogil
    void gmr_wd_stop() nogil
    void gmr_wd_forget() nogil
    void gmr_wd_set_target(const char *directory, const char *prefix) nogil
    void gmr_wd_waiting(int waiting) nogil
    unsigned long gmr_wd_dump_count() nogil

cdef extern from "_capture_c.h":
    ctypedef struct gmr_frame
    ctypedef int (*gmr_visit_fn)(PyObject *, void *) noexcept
    # signal handler and self-pipe
    int gmr_arm(int signum, int write_fd) nogil
    int gmr_disarm(int signum) nogil
    int gmr_is_armed(int signum) nogil
    unsigned long gmr_signal_count() nogil
    int gmr_wait_readable(int fd, int timeout_ms) nogil
    void gmr_find_switch_interval()
    void gmr_lower_switch_interval(unsigned long microseconds) nogil
    unsigned long gmr_take_interval_before()
    long long gmr_now_ns() nogil
    # frame shims: GIL held, borrowed pointers
    gmr_frame *gmr_thread_frame(PyThreadState *)
    gmr_frame *gmr_frame_of_object(PyObject *)
    gmr_frame *gmr_complete(gmr_frame *)
    gmr_frame *gmr_older(gmr_frame *)
    PyObject *gmr_frame_code(gmr_frame *)
    int gmr_frame_lasti(gmr_frame *)
    unsigned long gmr_thread_ident(PyThreadState *)
    unsigned long gmr_thread_native_id(PyThreadState *)
    void gmr_visit_heap(gmr_visit_fn visit, void *arg)
    PyObject *gmr_getset_get(PyObject *descriptor, PyObject *obj)
    int gmr_type_bool(PyObject *type, PyObject *obj)


# ---------------------------------------------------------------------------
# Signal handler and self-pipe
# ---------------------------------------------------------------------------

cdef _raise_errno(int error, str what):
    raise OSError(error, f"{what}: {strerror(error).decode()}")


def arm(int signum, int write_fd):
    """Install the C handler for signum; each signal writes one byte to write_fd."""
    cdef int error = gmr_arm(signum, write_fd)
    if error:
        _raise_errno(error, f"cannot install the handler for signal {signum}")


def disarm(int signum):
    """Restore the action the handler replaced (unless it was replaced since)."""
    cdef int error = gmr_disarm(signum)
    if error:
        _raise_errno(error, f"cannot restore the action of signal {signum}")


def quiet(int signum):
    """At exit: nothing to do. The C handler stays, and only writes a byte to
    a pipe nobody reads; the interpreter's finalization leaves it alone."""
    return None


def is_armed(int signum):
    """Whether gmr's handler is still the installed action for signum."""
    return bool(gmr_is_armed(signum))


def signal_count():
    """How many signals the handler has seen in this process, ever."""
    return gmr_signal_count()


gmr_find_switch_interval()


def read_trigger(int fd, timeout, switch_interval=0.0):
    """Wait until the pipe fd has bytes or timeout seconds pass (None: for
    ever), and read them, all without the GIL: the bytes, or b"" when the
    timeout passed first. With switch_interval (seconds), bytes lower the
    interpreter's switch interval to it before the GIL is taken back, so
    that a busy thread lets go of it at once; lowered_switch_interval()
    tells what it was."""
    cdef int timeout_ms = -1 if timeout is None else max(0, <int>(timeout * 1000))
    cdef unsigned long prompt_us = max(0, <long>(switch_interval * 1e6))
    cdef char buffer[4096]
    cdef Py_ssize_t got = 0
    cdef int ready, error = 0
    with nogil:
        ready = gmr_wait_readable(fd, timeout_ms)
        if ready == 1:
            gmr_lower_switch_interval(prompt_us)
            while True:
                got = read(fd, buffer, sizeof(buffer))
                if got >= 0 or errno != EINTR:
                    break
            error = errno if got < 0 else 0
            # From here until the GIL is ours, the watchdog times the wait.
            gmr_wd_waiting(1)
        elif ready < 0:
            error = errno
    if ready == 1:
        gmr_wd_waiting(0)
    if ready < 0 or got < 0:
        _raise_errno(error, "cannot read the trigger pipe")
    return PyBytes_FromStringAndSize(buffer, got) if ready == 1 else b""


def lowered_switch_interval():
    """The switch interval (seconds) that read_trigger last replaced, or
    None when it changed nothing; asked once, then forgotten."""
    cdef unsigned long before = gmr_take_interval_before()
    return before / 1e6 if before else None


# ---------------------------------------------------------------------------
# The walker
# ---------------------------------------------------------------------------

cdef struct Context:
    unsigned long ident       # thread ident (OS threads only)
    unsigned long native_id   # kernel thread id, 0 where the interpreter keeps none
    PyObject *greenlet        # new reference; NULL for an OS thread
    PyObject *parent          # new reference; NULL when none
    int state                 # GREENLET_* for greenlets
    Py_ssize_t first          # index of the innermost frame in RawCapture.frames
    Py_ssize_t depth          # how many frames, innermost first

cdef struct FrameRecord:
    PyObject *code            # new reference
    Py_ssize_t lasti          # byte offset of the current instruction, -1 before the first
                              # (pointer-sized: a record has no padding, so its bytes are a key)

cdef struct Found:
    PyObject **items          # new references to the greenlets found
    Py_ssize_t count
    Py_ssize_t capacity
    PyTypeObject *type        # greenlet.greenlet
    PyTypeObject *last_other  # one-entry cache: the last type seen that is not a greenlet
    Py_ssize_t visited        # objects visited
    int failed                # out of memory


# Sizes of the last capture, so the next one rarely reallocates in its pause.
cdef Py_ssize_t _hint_contexts = 64
cdef Py_ssize_t _hint_frames = 1024
cdef Py_ssize_t _hint_greenlets = 64


cdef int _grow(void **array, Py_ssize_t *capacity, Py_ssize_t needed, size_t item) noexcept:
    """Make room for `needed` items. Returns 0, or -1 when out of memory."""
    cdef Py_ssize_t size = capacity[0]
    cdef void *grown
    if needed <= size:
        return 0
    while size < needed:
        size = size * 2 if size else 16
    grown = realloc(array[0], <size_t>size * item)
    if grown == NULL:
        return -1
    array[0] = grown
    capacity[0] = size
    return 0


cdef inline int _visit(PyObject *obj, void *arg) noexcept:
    """Heap-visit callback: keep every greenlet. GIL held; C only. Inline, so
    that gmr_visit_heap's loop in _find_greenlets calls no function for the
    objects that are not greenlets (nearly all of them)."""
    cdef Found *found = <Found *>arg
    cdef PyTypeObject *tp = obj.ob_type
    found.visited += 1
    if tp != found.type:
        if tp == found.last_other:
            return 1
        if not PyType_IsSubtype(tp, found.type):
            found.last_other = tp
            return 1
    if _grow(<void **>&found.items, &found.capacity, found.count + 1, sizeof(PyObject *)) < 0:
        found.failed = 1
        return 0
    Py_INCREF(obj)
    found.items[found.count] = obj
    found.count += 1
    return 1


cdef void _find_greenlets(Found *found) noexcept:
    """Every greenlet on the heap into found.items. GIL held, GC disabled.
    A function of its own so that the compiler sees the callback as a
    constant and inlines gmr_visit_heap and _visit into one loop."""
    gmr_visit_heap(_visit, found)


cdef class RawCapture:
    """What one capture copied: OS threads first, then greenlets.

    Owns a new reference to every code object, greenlet and parent it holds;
    they are released when it is.
    """

    cdef Context *contexts
    cdef Py_ssize_t ncontexts
    cdef Py_ssize_t capacity_contexts
    cdef FrameRecord *frames
    cdef Py_ssize_t nframes
    cdef Py_ssize_t capacity_frames
    cdef readonly Py_ssize_t threads
    cdef readonly Py_ssize_t greenlets
    cdef readonly long long pause_ns
    cdef readonly Py_ssize_t heap_objects
    cdef int failed
    # The greenlets and parents above, once more, where gc.get_referrers()
    # can see them. greenlet's ThreadState destructor (a dead thread's clean-up)
    # takes a main greenlet that has one reference left and no referrer the GC
    # can find for a reference stranded on a dead C stack, and drops it: a
    # reference held only in malloc'd memory would be dropped twice.
    cdef list held
    # One tuple per distinct stack, keyed by its records' bytes: parked
    # greenlets mostly share a few stacks, and what resolves and renders a
    # stack after the capture does it once per tuple.
    cdef dict stacks

    def __dealloc__(self):
        self._release()

    cdef void _release(self) noexcept:
        cdef Py_ssize_t i
        for i in range(self.nframes):
            Py_XDECREF(self.frames[i].code)
        for i in range(self.ncontexts):
            Py_XDECREF(self.contexts[i].greenlet)
            Py_XDECREF(self.contexts[i].parent)
        free(self.frames)
        free(self.contexts)
        self.held = None
        self.stacks = None
        self.frames = NULL
        self.contexts = NULL
        self.nframes = self.ncontexts = 0
        self.capacity_frames = self.capacity_contexts = 0
        self.threads = self.greenlets = 0

    def release(self):
        """Drop every reference now rather than when the object dies."""
        self._release()

    # Handing the copy out, after the pause: one context per call, so the
    # interpreter may switch threads between calls.

    cdef tuple _frames_of(self, Context *context):
        cdef Py_ssize_t i
        cdef FrameRecord *record
        key = PyBytes_FromStringAndSize(<char *>&self.frames[context.first],
                                        context.depth * sizeof(FrameRecord))
        if self.stacks is None:
            self.stacks = {}
        known = self.stacks.get(key)
        if known is not None:
            return <tuple>known
        out = []
        for i in range(context.first, context.first + context.depth):
            record = &self.frames[i]
            out.append((<object>record.code, record.lasti))
        stack = tuple(out)
        self.stacks[key] = stack
        return stack

    def thread(self, Py_ssize_t index):
        """(ident, native_id or 0, frames innermost first) of OS thread `index`."""
        cdef Context *context
        if index < 0 or index >= self.threads:
            raise IndexError(index)
        context = &self.contexts[index]
        return (context.ident, context.native_id, self._frames_of(context))

    def greenlet(self, Py_ssize_t index):
        """(greenlet, parent or None, state, frames innermost first) of greenlet `index`."""
        cdef Context *context
        if index < 0 or index >= self.greenlets:
            raise IndexError(index)
        context = &self.contexts[self.threads + index]
        parent = <object>context.parent if context.parent != NULL else None
        return (<object>context.greenlet, parent, context.state, self._frames_of(context))

    def greenlet_columns(self):
        """Every greenlet at once, as four lists in step: the greenlets,
        their parents (or None), their states and their frames (innermost
        first). A thousand greenlets take one call, not a thousand."""
        cdef Py_ssize_t i
        cdef Context *context
        greenlets, parents, states, stacks = [], [], [], []
        for i in range(self.threads, self.threads + self.greenlets):
            context = &self.contexts[i]
            greenlets.append(<object>context.greenlet)
            parents.append(<object>context.parent if context.parent != NULL else None)
            states.append(context.state)
            stacks.append(self._frames_of(context))
        return greenlets, parents, states, stacks

    cdef Context *_new_context(self) noexcept:
        cdef Context *context
        if _grow(<void **>&self.contexts, &self.capacity_contexts, self.ncontexts + 1,
                 sizeof(Context)) < 0:
            self.failed = 1
            return NULL
        context = &self.contexts[self.ncontexts]
        self.ncontexts += 1
        context.ident = context.native_id = 0
        context.greenlet = context.parent = NULL
        context.state = 0
        context.first = self.nframes
        context.depth = 0
        return context

    cdef void _copy_stack(self, Context *context, gmr_frame *frame) noexcept:
        """Copy (code, lasti) from frame outwards. GIL held; no Python allocation."""
        cdef PyObject *code
        frame = gmr_complete(frame)
        while frame != NULL and context.depth < MAX_DEPTH:
            if _grow(<void **>&self.frames, &self.capacity_frames, self.nframes + 1,
                     sizeof(FrameRecord)) < 0:
                self.failed = 1
                return
            code = gmr_frame_code(frame)
            Py_INCREF(code)
            self.frames[self.nframes].code = code
            self.frames[self.nframes].lasti = gmr_frame_lasti(frame)
            self.nframes += 1
            context.depth += 1
            frame = gmr_older(frame)

    cdef void _copy_threads(self) noexcept:
        cdef PyThreadState *me = PyThreadState_Get()
        cdef PyThreadState *ts = PyInterpreterState_ThreadHead(PyThreadState_GetInterpreter(me))
        cdef Context *context
        while ts != NULL:
            # The capturing thread (the watcher) is not part of the picture.
            if ts != me:
                context = self._new_context()
                if context == NULL:
                    return
                context.ident = gmr_thread_ident(ts)
                context.native_id = gmr_thread_native_id(ts)
                self._copy_stack(context, gmr_thread_frame(ts))
                self.threads += 1
            ts = PyThreadState_Next(ts)

    cdef void _copy_greenlet(self, PyObject *greenlet, PyObject *tp_bool_owner,
                             PyObject *get_dead, PyObject *get_frame,
                             PyObject *get_parent) noexcept:
        """One greenlet: state, parent and, when suspended, its frames. The
        getters are greenlet's own C getters, called directly."""
        cdef Context *context = self._new_context()
        cdef PyObject *value
        if context == NULL:
            return
        Py_INCREF(greenlet)
        context.greenlet = greenlet
        context.parent = gmr_getset_get(get_parent, greenlet)
        if context.parent == NULL:
            PyErr_Clear()
        elif context.parent == Py_None:
            Py_XDECREF(context.parent)
            context.parent = NULL
        self.greenlets += 1

        value = gmr_getset_get(get_dead, greenlet)
        if value == NULL:
            PyErr_Clear()
            context.state = GREENLET_DEAD
            return
        if value == Py_True:
            Py_XDECREF(value)
            context.state = GREENLET_DEAD
            return
        Py_XDECREF(value)

        value = gmr_getset_get(get_frame, greenlet)
        if value == NULL:
            PyErr_Clear()
            context.state = GREENLET_DEAD
            return
        if value != Py_None:
            context.state = GREENLET_SUSPENDED
            self._copy_stack(context, gmr_frame_of_object(value))
            Py_XDECREF(value)
            return
        Py_XDECREF(value)
        # No saved frame: either running in some thread (its frames are that
        # thread's) or not started yet. greenlet's truth value is "active".
        if gmr_type_bool(tp_bool_owner, greenlet) > 0:
            context.state = GREENLET_RUNNING
        else:
            PyErr_Clear()
            context.state = GREENLET_NOT_STARTED


cdef dict _descriptors = {}


cdef tuple _greenlet_getters(type greenlet_type):
    """greenlet's getset descriptors for dead / gr_frame / parent, looked up
    once, before any pause."""
    cached = _descriptors.get(greenlet_type)
    if cached is None:
        getters = []
        for name in ("dead", "gr_frame", "parent"):
            descriptor = greenlet_type.__dict__.get(name)
            if type(descriptor).__name__ != "getset_descriptor":
                raise TypeError(f"{greenlet_type!r} has no C getter {name!r}: not a greenlet type")
            getters.append(descriptor)
        cached = _descriptors[greenlet_type] = tuple(getters)
    return cached


def capture(greenlet_type=None):
    """Copy every thread's stack and, given greenlet.greenlet, every greenlet's.

    Holds the GIL, with the cyclic GC disabled, only for the copy; the time it
    took is RawCapture.pause_ns. The calling thread is left out.
    """
    global _hint_contexts, _hint_frames, _hint_greenlets
    cdef RawCapture raw = RawCapture.__new__(RawCapture)
    cdef Found found
    cdef Py_ssize_t i
    cdef long long start
    cdef int gc_was_enabled
    cdef PyObject *get_dead = NULL
    cdef PyObject *get_frame = NULL
    cdef PyObject *get_parent = NULL

    if greenlet_type is not None:
        getters = _greenlet_getters(greenlet_type)
        get_dead = <PyObject *>getters[0]
        get_frame = <PyObject *>getters[1]
        get_parent = <PyObject *>getters[2]

    # Room for what the last capture needed, allocated before the pause.
    if (_grow(<void **>&raw.contexts, &raw.capacity_contexts, _hint_contexts, sizeof(Context)) < 0
            or _grow(<void **>&raw.frames, &raw.capacity_frames, _hint_frames,
                     sizeof(FrameRecord)) < 0):
        raise MemoryError()
    found.items = NULL
    found.count = found.capacity = found.visited = 0
    found.failed = 0
    found.last_other = NULL
    found.type = <PyTypeObject *>greenlet_type if greenlet_type is not None else NULL
    if found.type != NULL and _grow(<void **>&found.items, &found.capacity, _hint_greenlets,
                                    sizeof(PyObject *)) < 0:
        raise MemoryError()

    # ---- the pause: GIL held, no Python allocation, no switch to another thread
    start = gmr_now_ns()
    gc_was_enabled = PyGC_Disable()
    raw._copy_threads()
    if found.type != NULL:
        _find_greenlets(&found)
        for i in range(found.count):
            raw._copy_greenlet(found.items[i], <PyObject *>greenlet_type,
                               get_dead, get_frame, get_parent)
    if gc_was_enabled:
        PyGC_Enable()
    raw.pause_ns = gmr_now_ns() - start
    # ---- end of the pause

    # Before anything here can run Python code (and let a pending call run
    # greenlet's clean-up of a dead thread): make every greenlet reference
    # visible to the GC (see RawCapture.held).
    if raw.greenlets:
        held = []
        for i in range(raw.threads, raw.ncontexts):
            held.append(<object>raw.contexts[i].greenlet)
            if raw.contexts[i].parent != NULL:
                held.append(<object>raw.contexts[i].parent)
        raw.held = held

    for i in range(found.count):
        Py_XDECREF(found.items[i])
    free(found.items)
    raw.heap_objects = found.visited
    if raw.failed or found.failed:
        raw._release()
        raise MemoryError("out of memory while capturing stacks")
    _hint_contexts = max(raw.ncontexts + 16, 64)
    _hint_frames = max(raw.nframes + 256, 1024)
    _hint_greenlets = max(found.count + 16, 64)
    return raw


cdef extern from "<pthread.h>" nogil:
    ctypedef unsigned long pthread_t
    pthread_t pthread_self()
    int pthread_setname_np(pthread_t thread, const char *name)


def name_this_thread(str name):
    """The calling thread's name for the kernel (top -H, ps -L, py-spy):
    at most 15 bytes."""
    cdef bytes encoded = name.encode()[:15]
    pthread_setname_np(pthread_self(), encoded)


# ---------------------------------------------------------------------------
# Small files, many at once, for the report that follows a capture
# ---------------------------------------------------------------------------

cdef char *_read_whole(const char *path, Py_ssize_t limit, Py_ssize_t *size) noexcept nogil:
    """The file's bytes in a malloc'd buffer (size set), or NULL. /proc files
    say they are empty, so this reads until end of file."""
    cdef int fd
    cdef Py_ssize_t capacity = 4096, got
    cdef char *grown
    cdef char *buffer = <char *>malloc(capacity)
    size[0] = 0
    if buffer == NULL:
        return NULL
    while True:
        fd = open(path, O_RDONLY | O_CLOEXEC)
        if fd >= 0 or errno != EINTR:
            break
    if fd < 0:
        free(buffer)
        return NULL
    while size[0] < limit:
        if size[0] == capacity:
            grown = <char *>realloc(buffer, capacity * 2)
            if grown == NULL:
                break  # keep what was read
            buffer = grown
            capacity *= 2
        got = read(fd, buffer + size[0], min(capacity, limit) - size[0])
        if got > 0:
            size[0] += got
        elif got == 0:
            break
        elif errno != EINTR:
            free(buffer)
            buffer = NULL
            break
    close(fd)
    return buffer


def read_files(paths, Py_ssize_t limit=1 << 24, bint keep_gil=False):
    """The bytes of each file (None where it cannot be read), at most limit
    each. The GIL is let go once for all of them: a report reads dozens of
    small files (/proc, sources), and a read through Python lets it go once
    per system call, each time waiting to get it back from a busy thread.
    keep_gil: not even once, for files the kernel answers at once (this
    process's own /proc files): a few microseconds each, less than a wait."""
    cdef list encoded = [os.fsencode(path) for path in paths]
    cdef Py_ssize_t count = len(encoded), i
    if count == 0:
        return []  # without letting the GIL go for nothing
    cdef char **paths_c = <char **>malloc(max(count, 1) * sizeof(char *))
    cdef char **buffers = <char **>malloc(max(count, 1) * sizeof(char *))
    cdef Py_ssize_t *sizes = <Py_ssize_t *>malloc(max(count, 1) * sizeof(Py_ssize_t))
    if paths_c == NULL or buffers == NULL or sizes == NULL:
        free(paths_c)
        free(buffers)
        free(sizes)
        raise MemoryError()
    for i in range(count):
        paths_c[i] = <char *>(<bytes>encoded[i])
    if keep_gil:
        for i in range(count):
            buffers[i] = _read_whole(paths_c[i], limit, &sizes[i])
    else:
        with nogil:
            for i in range(count):
                buffers[i] = _read_whole(paths_c[i], limit, &sizes[i])
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


cdef extern from "<dirent.h>" nogil:
    ctypedef struct DIR
    struct dirent:
        char d_name[256]
    DIR *opendir(const char *name)
    dirent *readdir(DIR *directory)
    int closedir(DIR *directory)


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


cdef int _write_new(const char *path, const char *data, Py_ssize_t size) noexcept nogil:
    """Create path (it must not exist) holding data; 0, or an errno."""
    cdef Py_ssize_t done = 0, wrote
    cdef int fd, error = 0
    while True:
        fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o600)
        if fd >= 0 or errno != EINTR:
            break
    if fd < 0:
        return errno
    while done < size:
        wrote = write(fd, data + done, size - done)
        if wrote < 0:
            if errno == EINTR:
                continue
            error = errno
            break
        done += wrote
    if close(fd) < 0 and error == 0 and errno != EINTR:
        error = errno
    return error


def publish(str temporary, str final, bytes data):
    """Write data into a new file at `temporary`, then link it to `final`,
    or to final.1, final.2, ... if taken (an earlier file is never
    replaced), and remove `temporary`: the file appears whole, under its
    final name. The GIL is let go once for it all, where Python's calls
    would let it go, and wait to get it back, five times. Returns the name
    it was given; raises OSError, with the file it concerns."""
    cdef bytes temporary_c = os.fsencode(temporary)
    cdef bytes final_c = os.fsencode(final)
    cdef const char *tmp = temporary_c
    cdef const char *base = final_c
    cdef const char *content = data
    cdef Py_ssize_t size = len(data), capacity = len(final_c) + 16
    cdef char *name = <char *>malloc(capacity)
    cdef int error, attempt = 0, linked = 0, failed_at = 0
    if name == NULL:
        raise MemoryError()
    with nogil:
        error = _write_new(tmp, content, size)
        if error == 0:
            while attempt < 10000:
                if attempt == 0:
                    snprintf(name, capacity, "%s", base)
                else:
                    snprintf(name, capacity, "%s.%d", base, attempt)
                if link(tmp, name) == 0:
                    linked = 1
                    break
                if errno != EEXIST:
                    error = errno
                    failed_at = 1
                    break
                attempt += 1
        if error != EEXIST or linked:  # EEXIST at creation: not ours to remove
            unlink(tmp)
    try:
        if linked:
            return os.fsdecode(name[:strlen(name)])
        if error == 0:
            raise FileExistsError(f"no free report name for {final}")
        where = final if failed_at else temporary
        raise OSError(error, strerror(error).decode(errors="replace"), where)
    finally:
        free(name)


# ---------------------------------------------------------------------------
# The watchdog (gmr/_watchdog_c.h): a C thread that never takes the GIL
# ---------------------------------------------------------------------------

#: This core has a watchdog (the pure twin has none).
WATCHDOG = True


def start_watchdog(double limit, int signum, int fd):
    """Start (or reconfigure) the watchdog: past `limit` seconds of waiting
    for the GIL after a trigger, it raises `signum` (faulthandler registered
    on it, writing to `fd`) at itself to write a degraded report."""
    cdef int error = gmr_wd_start(<long long>(limit * 1e9), signum, fd)
    if error:
        _raise_errno(error, "cannot start the watchdog thread")


def stop_watchdog():
    with nogil:
        gmr_wd_stop()


def forget_watchdog():
    """In a forked child: the parent's watchdog thread does not exist here."""
    gmr_wd_forget()


def set_degraded_target(str directory, str prefix):
    """Where a degraded report goes: a file in `directory`, or stderr for ""."""
    cdef bytes d = directory.encode()
    cdef bytes p = prefix.encode()
    gmr_wd_set_target(d, p)


def degraded_reports():
    """How many degraded reports the watchdog has written."""
    return gmr_wd_dump_count()

