# cython: language_level=3
"""The trigger: the C signal handler, the channel the watcher waits on
without the GIL (a semaphore: no descriptor the service could close or
reuse), the GIL taken back at once after a wake-up (gmr/_switch.h),
and the watchdog, a C thread that never takes the GIL (gmr/_watchdog.h).

It reads no CPython internals: how the holder of the GIL is asked to let
go of it comes from the walker (use_ask). gmr/_trigger.pyi is
the typed boundary; gmr/_trigger_py.py is the pure twin.
"""

import os

from cpython.bytes cimport PyBytes_FromStringAndSize
from cpython.pycapsule cimport PyCapsule_GetPointer, PyCapsule_IsValid, PyCapsule_New
from cpython.ref cimport Py_DECREF, Py_INCREF
from libc.errno cimport errno
from libc.stdlib cimport free, malloc
from libc.string cimport strerror

IMPLEMENTATION = "compiled"

cdef extern from "_trigger.h":
    ctypedef struct gmr_channel:
        pass
    int gmr_channel_open(gmr_channel *channel)
    void gmr_channel_close(gmr_channel *channel)
    void gmr_channel_post(gmr_channel *channel, int kind)
    int gmr_channel_wait(gmr_channel *channel, int timeout_ms) nogil
    size_t gmr_channel_take(gmr_channel *channel, char *out, size_t size) nogil
    int gmr_kind(char byte)
    int gmr_arm(int signum, gmr_channel *channel) nogil
    int gmr_disarm(int signum) nogil
    int gmr_is_armed(int signum) nogil
    int gmr_signal_taken(int signum) nogil
    unsigned long gmr_signal_count() nogil

cdef extern from "_watchdog.h":
    int gmr_wd_start(long long limit_ns, int signum, int fd) nogil
    void gmr_wd_stop() nogil
    void gmr_wd_forget() nogil
    void gmr_wd_set_target(const char *directory, const char *prefix) nogil
    void gmr_wd_waiting(int waiting) nogil
    unsigned long gmr_wd_dump_count() nogil
    void gmr_wd_use_ask(unsigned long (*ask)(unsigned long) noexcept nogil)
    int gmr_wd_can_hurry() nogil
    void gmr_wd_hurry() nogil
    void gmr_wd_hurried() nogil
    ctypedef struct gmr_hurry_calls:
        pass
    const gmr_hurry_calls gmr_wd_hurry_calls

cdef extern from "_read.h" nogil:
    char *gmr_read_whole(const char *path, Py_ssize_t limit, Py_ssize_t *size)

cdef extern from "Python.h":
    int Py_AddPendingCall(int (*func)(void *) except -1, void *arg)


cdef extern from "<pthread.h>" nogil:
    ctypedef unsigned long pthread_t
    pthread_t pthread_self()
    int pthread_setname_np(pthread_t thread, const char *name)


cdef _raise_errno(int error, str what):
    raise OSError(error, f"{what}: {strerror(error).decode()}")


# ---------------------------------------------------------------------------
# The channel: what wakes the watcher, with no descriptor to lose
# ---------------------------------------------------------------------------

# Every channel the handler was ever pointed at: a handler running in another
# thread may still post to one after it is replaced, so none is ever freed.
cdef list _armed = []


#: The most bytes read of each file read ahead on a wake-up (prefetch).
cdef Py_ssize_t PREFETCH_LIMIT = 1 << 20


cdef class Channel:
    """What wakes one watcher: a semaphore in gmr's own memory, and a count
    of each kind of wake-up (b"S" signal, b"A" API, b"Q" quit, b"W" wake)."""

    cdef gmr_channel *channel
    cdef tuple _names      # the files read on each wake-up (prefetch)
    cdef tuple _paths      # the same, encoded
    cdef list _fetched     # (name, bytes or None) read on the last wake-up

    def __cinit__(self):
        cdef int error
        self._names = self._paths = ()
        self._fetched = []
        self.channel = <gmr_channel *>malloc(sizeof(gmr_channel))
        if self.channel == NULL:
            raise MemoryError()
        error = gmr_channel_open(self.channel)
        if error:
            free(self.channel)
            self.channel = NULL
            _raise_errno(error, "cannot make the trigger channel")

    def __dealloc__(self):
        if self.channel != NULL:
            gmr_channel_close(self.channel)
            free(self.channel)

    def post(self, bytes kinds):
        """Wake the watcher, once for each byte (a kind) of kinds."""
        for byte in kinds:
            gmr_channel_post(self.channel, gmr_kind(byte))

    def prefetch(self, names):
        """Files to read on each wake-up, before the GIL is taken back:
        what a report needs that can be had without it (at most
        PREFETCH_LIMIT bytes each), for prefetched()."""
        self._names = tuple(names)
        self._paths = tuple(os.fsencode(name) for name in self._names)
        self._fetched = []

    def prefetched(self):
        """What the last wake-up read, once: [(name, bytes or None)]."""
        fetched, self._fetched = self._fetched, []
        return fetched

    def wait(self, timeout, prompt=False, watchdog=True):
        """Wait until something is posted or timeout seconds pass (None: for
        ever), without the GIL: what was posted since the last wait, one byte
        each, or b"" when the timeout passed first. With prompt, a wake-up
        takes the GIL back at once: its holder is asked to let go of it
        (gmr/_switch.h). With watchdog, the watchdog times the wait for the
        GIL after a wake-up (a report is coming: without one, no degraded
        report either)."""
        cdef bint timed = watchdog
        cdef bint hurry = prompt
        cdef int timeout_ms = -1 if timeout is None else max(0, <int>(timeout * 1000))
        cdef char buffer[4096]
        cdef size_t got = 0
        cdef int woken, error = 0
        cdef tuple paths = self._paths, names = self._names
        cdef Py_ssize_t count = len(paths), i
        cdef const char **paths_c = <const char **>malloc(count * sizeof(char *)) if count else NULL
        cdef char **read = <char **>malloc(count * sizeof(char *)) if count else NULL
        cdef Py_ssize_t *sizes = <Py_ssize_t *>malloc(count * sizeof(Py_ssize_t)) if count else NULL
        if count and (paths_c == NULL or read == NULL or sizes == NULL):
            count = 0  # nothing read ahead: the report reads them itself
        for i in range(count):
            paths_c[i] = <const char *>(<bytes>paths[i])
            read[i] = NULL
        with nogil:
            woken = gmr_channel_wait(self.channel, timeout_ms)
            if woken == 1:
                got = gmr_channel_take(self.channel, buffer, sizeof(buffer))
                # From here until the GIL is ours, the watchdog times the wait.
                if timed:
                    gmr_wd_waiting(1)
                for i in range(count):
                    read[i] = gmr_read_whole(paths_c[i], PREFETCH_LIMIT, &sizes[i])
                if hurry:
                    gmr_wd_hurry()
            elif woken < 0:
                error = errno
        if woken == 1 and hurry:
            gmr_wd_hurried()
        if woken == 1 and timed:
            gmr_wd_waiting(0)
        self._fetched = []
        for i in range(count):
            if woken == 1:
                self._fetched.append((names[i], None if read[i] == NULL
                                      else PyBytes_FromStringAndSize(read[i], sizes[i])))
            free(read[i])
        free(paths_c)
        free(read)
        free(sizes)
        if woken < 0:
            _raise_errno(error, "cannot wait for triggers")
        return PyBytes_FromStringAndSize(buffer, got) if woken == 1 else b""

    def close(self):
        """Nothing more to wait for (the memory stays while a handler may post)."""
        return None


# ---------------------------------------------------------------------------
# Signal handler
# ---------------------------------------------------------------------------

def arm(int signum, Channel channel):
    """Install the C handler for signum; each signal posts to channel."""
    cdef int error
    if not any(known is channel for known in _armed):
        _armed.append(channel)
    error = gmr_arm(signum, channel.channel)
    if error:
        _raise_errno(error, f"cannot install the handler for signal {signum}")


def disarm(int signum):
    """Restore the action the handler replaced (unless it was replaced since)."""
    cdef int error = gmr_disarm(signum)
    if error:
        _raise_errno(error, f"cannot restore the action of signal {signum}")


def quiet(int signum):
    """At exit: nothing to do. The C handler stays, and only writes a byte to
    a channel nobody waits on; the interpreter's finalization leaves it alone."""
    return None


def is_armed(int signum):
    """Whether gmr's handler is still the installed action for signum."""
    return bool(gmr_is_armed(signum))


def signal_taken(int signum):
    """Whether signum has an action other than the default, read back with
    sigaction: signal.getsignal() cannot see one installed in C (faulthandler,
    a C library)."""
    return bool(gmr_signal_taken(signum))


def signal_count():
    """How many signals the handler has seen in this process, ever."""
    return gmr_signal_count()


# ---------------------------------------------------------------------------
# Taking the GIL back at once
# ---------------------------------------------------------------------------

def use_ask(capsule):
    """How the holder of the GIL is asked to let go of it: the walker's
    ask_capsule(), or None (then no let-go is hurried)."""
    if capsule is None:
        gmr_wd_use_ask(NULL)
    elif PyCapsule_IsValid(capsule, b"gmr.ask"):
        gmr_wd_use_ask(<unsigned long (*)(unsigned long) noexcept nogil>PyCapsule_GetPointer(capsule, b"gmr.ask"))
    else:
        raise TypeError("not a gmr.ask capsule")


def hurry_capsule():
    """The two calls around each let-go of the GIL by which the other units
    have it back at once (gmr/_switch.h), for their use_hurry."""
    return PyCapsule_New(<void *>&gmr_wd_hurry_calls, b"gmr.hurry", NULL)


def can_hurry():
    """Whether a let-go of the GIL is hurried now: the holder can be asked,
    and the watchdog's thread runs to ask it."""
    return bool(gmr_wd_can_hurry())


def name_this_thread(str name):
    """The calling thread's name for the kernel (top -H, ps -L, py-spy):
    at most 15 bytes."""
    cdef bytes encoded = name.encode()[:15]
    pthread_setname_np(pthread_self(), encoded)


cdef int _call_pending(void *arg) except -1:
    cdef object function = <object>arg
    Py_DECREF(function)  # the reference call_in_main_thread took
    try:
        function()
    except Exception:  # the callable reports its own failures
        pass
    # A KeyboardInterrupt or SystemExit that a signal handler raised while
    # it ran was meant for the service: -1, and the main thread raises it.
    return 0


def call_in_main_thread(function):
    """Call function() in the main thread the next time it runs bytecode
    (CPython's pending calls); False when the queue is full."""
    Py_INCREF(function)
    if Py_AddPendingCall(_call_pending, <void *>function) != 0:
        Py_DECREF(function)
        return False
    return True


# ---------------------------------------------------------------------------
# The watchdog (gmr/_watchdog.h): a C thread that never takes the GIL
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
