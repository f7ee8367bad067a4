/* gmr/_capture_c.h: the parts of the capture core that must be plain C.
 *
 * 1. The signal handler. It is C rather than Cython because Cython may put
 *    calls that take the GIL (line tracing in debug builds, refnanny) into any
 *    function it generates, and a signal handler may only call
 *    async-signal-safe functions.
 * 2. Version shims for reading frames without creating frame objects. The
 *    interpreter frame moved into the internal API in 3.11 and changed shape
 *    in 3.12 and 3.13; each shim hides one such difference from the walker.
 *    Every shim is called with the GIL held and returns borrowed pointers.
 */
#ifndef GMR_CAPTURE_C_H
#define GMR_CAPTURE_C_H

#include <Python.h>
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#if PY_VERSION_HEX >= 0x030B0000
#  ifndef Py_BUILD_CORE
#    define Py_BUILD_CORE 1
#  endif
#  include <internal/pycore_frame.h>
#endif
/* The GC's generation lists, for gmr_visit_heap. Their layout is the same
 * from 3.10 to 3.13 (interp->gc.generations[i].head); the free-threaded
 * build has none and uses the public visitor instead. */
#if !defined(Py_GIL_DISABLED)
#  define GMR_WALK_GENERATIONS 1
#  ifndef Py_BUILD_CORE
#    define Py_BUILD_CORE 1
#  endif
   /* Python.h's cpython/objimpl.h (3.10-3.12) defines a _PyGC_FINALIZED
    * macro that would rename pycore_gc.h's inline function of that name. */
#  undef _PyGC_FINALIZED
#  include <internal/pycore_interp.h>
#  include <internal/pycore_gc.h>
#  if PY_VERSION_HEX < 0x030C0000
#    include <internal/pycore_runtime.h>  /* _PyRuntime.ceval.gil */
#  endif
#endif

#ifndef NSIG
#  define NSIG 65
#endif

/* ------------------------------------------------------------------------ */
/* Signal handler                                                           */
/* ------------------------------------------------------------------------ */

/* Set by the handler, cleared by the watcher once it has drained the pipe. */
static volatile sig_atomic_t gmr_pending = 0;
/* Every signal the handler saw, for coalescing counts. Updated with an atomic
 * add, which is lock-free and so async-signal-safe. */
static unsigned long gmr_signals = 0;
/* Write end of the self-pipe (non-blocking, close-on-exec); -1 when unarmed. */
static volatile int gmr_write_fd = -1;
/* The process that armed the handler: a forked child inherits the handler
 * and the pipe, and must not wake its parent's watcher. */
static volatile pid_t gmr_armed_pid = 0;
/* The action each signal had before gmr, to chain to and to restore. */
static struct sigaction gmr_previous[NSIG];
static volatile sig_atomic_t gmr_has_previous[NSIG];

static void gmr_signal_handler(int signum, siginfo_t *info, void *context);

/* Call the handler that was in place before gmr, if it is a real function.
 * Never SIG_DFL (for SIGUSR2 that would terminate the process) nor SIG_IGN. */
static void
gmr_chain(int signum, siginfo_t *info, void *context)
{
    struct sigaction *previous;
    if (signum <= 0 || signum >= NSIG || !gmr_has_previous[signum]) {
        return;
    }
    previous = &gmr_previous[signum];
    if (previous->sa_flags & SA_SIGINFO) {
        if (previous->sa_sigaction != NULL && previous->sa_sigaction != gmr_signal_handler) {
            previous->sa_sigaction(signum, info, context);
        }
    }
    else if (previous->sa_handler != SIG_DFL && previous->sa_handler != SIG_IGN
             && previous->sa_handler != NULL) {
        previous->sa_handler(signum);
    }
}

/* This function is signal-safe and only calls signal-safe functions:
 * getpid(), write(), and whatever handler was installed before it.
 * It keeps errno for the code it interrupted. */
static void
gmr_signal_handler(int signum, siginfo_t *info, void *context)
{
    int saved_errno = errno;
    int fd = gmr_write_fd;

    gmr_pending = 1;
    __atomic_add_fetch(&gmr_signals, 1, __ATOMIC_RELAXED);
    if (fd >= 0 && getpid() == gmr_armed_pid) {
        char byte = 'S';
        /* The pipe is non-blocking: EAGAIN means it is full, so a report is
         * already pending and this signal is coalesced into it. */
        ssize_t written = write(fd, &byte, 1);
        (void)written;
    }
    gmr_chain(signum, info, context);
    errno = saved_errno;
}

static int
gmr_is_ours(const struct sigaction *action)
{
    return (action->sa_flags & SA_SIGINFO) && action->sa_sigaction == gmr_signal_handler;
}

/* Install the handler for signum, from any thread. Returns 0 or an errno. */
static int
gmr_arm(int signum, int write_fd)
{
    struct sigaction action, previous;

    if (signum <= 0 || signum >= NSIG) {
        return EINVAL;
    }
    gmr_armed_pid = getpid();
    gmr_write_fd = write_fd;
    if (sigaction(signum, NULL, &previous) != 0) {
        return errno;
    }
    if (gmr_is_ours(&previous)) {
        return 0; /* armed already: keep the original previous action */
    }
    /* Stored before installing, so the first signal can already chain. */
    gmr_previous[signum] = previous;
    gmr_has_previous[signum] = 1;

    memset(&action, 0, sizeof(action));
    action.sa_sigaction = gmr_signal_handler;
    sigemptyset(&action.sa_mask);
    /* SA_SIGINFO: the three-argument form, so a chained SA_SIGINFO handler
     *             receives the same info and context it would have had.
     * SA_RESTART: a system call interrupted in one of the service's threads
     *             resumes instead of failing with EINTR.
     * SA_ONSTACK: run on the alternate signal stack when the interrupted
     *             thread has one (faulthandler installs one), so a thread
     *             close to stack overflow survives the signal. */
    action.sa_flags = SA_SIGINFO | SA_RESTART | SA_ONSTACK;
    if (sigaction(signum, &action, NULL) != 0) {
        int error = errno;
        gmr_has_previous[signum] = 0;
        return error;
    }
    return 0;
}

/* Restore the action gmr replaced, unless someone else has replaced gmr since:
 * their handler stays. Returns 0 or an errno. */
static int
gmr_disarm(int signum)
{
    struct sigaction current;
    if (signum <= 0 || signum >= NSIG) {
        return EINVAL;
    }
    if (sigaction(signum, NULL, &current) != 0) {
        return errno;
    }
    if (gmr_is_ours(&current) && gmr_has_previous[signum]) {
        if (sigaction(signum, &gmr_previous[signum], NULL) != 0) {
            return errno;
        }
    }
    gmr_has_previous[signum] = 0;
    return 0;
}

/* 1 when gmr's handler is the installed action for signum (read back with
 * sigaction: signal.getsignal() cannot see a C handler). */
static int
gmr_is_armed(int signum)
{
    struct sigaction current;
    if (signum <= 0 || signum >= NSIG || sigaction(signum, NULL, &current) != 0) {
        return 0;
    }
    return gmr_is_ours(&current);
}

static unsigned long
gmr_signal_count(void)
{
    return __atomic_load_n(&gmr_signals, __ATOMIC_RELAXED);
}

/* Wait until fd is readable or timeout_ms passes (-1: for ever). Called
 * without the GIL. Returns 1 readable, 0 timed out, -1 error (errno set). */
static int
gmr_wait_readable(int fd, int timeout_ms)
{
    struct pollfd pfd;
    int ready;
    pfd.fd = fd;
    pfd.events = POLLIN;
    pfd.revents = 0;
    do {
        ready = poll(&pfd, 1, timeout_ms);
    } while (ready < 0 && errno == EINTR);
    if (ready < 0) {
        return -1;
    }
    return ready > 0 ? 1 : 0;
}

/* ------------------------------------------------------------------------ */
/* The switch interval, lowered before the watcher takes the GIL back       */
/* ------------------------------------------------------------------------ */

/* A thread that wants the GIL waits a whole switch interval (5 ms by
 * default) before it asks the holder to let go. The watcher, woken by a
 * trigger while a service thread is busy, would wait that long before its
 * report even starts; so it lowers the interval while it still has no GIL,
 * and the Python side puts it back after the report. The store is what
 * sys.setswitchinterval does (3.10 and 3.11 keep the interval in
 * _PyRuntime, 3.12+ in the interpreter's GIL), and take_gil reads it each
 * time a thread starts to wait. NULL on builds without a GIL. */
static unsigned long *gmr_interval = NULL;
/* The interval the last lowering replaced, in microseconds; 0: none. */
static unsigned long gmr_interval_before = 0;

/* Called once with the GIL held (at import). */
static void
gmr_find_switch_interval(void)
{
#if defined(GMR_WALK_GENERATIONS) && PY_VERSION_HEX >= 0x030C0000
    gmr_interval = &PyInterpreterState_Get()->ceval.gil->interval;
#elif defined(GMR_WALK_GENERATIONS)
    gmr_interval = &_PyRuntime.ceval.gil.interval;
#endif
}

/* Without the GIL: lower the interval to microseconds, when it is higher. */
static void
gmr_lower_switch_interval(unsigned long microseconds)
{
    volatile unsigned long *interval = gmr_interval;
    unsigned long before;
    if (interval == NULL || microseconds == 0) {
        return;
    }
    before = *interval;
    if (before > microseconds) {
        gmr_interval_before = before;
        *interval = microseconds;
    }
}

/* With the GIL: what the last lowering replaced (0: none), forgotten after. */
static unsigned long
gmr_take_interval_before(void)
{
    unsigned long before = gmr_interval_before;
    gmr_interval_before = 0;
    return before;
}

static long long
gmr_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

/* ------------------------------------------------------------------------ */
/* Frame shims                                                              */
/* ------------------------------------------------------------------------ */

#if PY_VERSION_HEX >= 0x030B0000
typedef _PyInterpreterFrame gmr_frame;
#  define GMR_OLDER(frame) ((frame)->previous)
#else
#  include <frameobject.h>
typedef PyFrameObject gmr_frame;
#  define GMR_OLDER(frame) ((frame)->f_back)
#endif

/* The innermost frame a thread is executing, or NULL. */
static inline gmr_frame *
gmr_thread_frame(PyThreadState *ts)
{
#if PY_VERSION_HEX >= 0x030D0000
    return ts->current_frame;
#elif PY_VERSION_HEX >= 0x030B0000
    return ts->cframe != NULL ? ts->cframe->current_frame : NULL;
#else
    return ts->frame;
#endif
}

/* The interpreter frame behind a frame object (a suspended greenlet's top). */
static inline gmr_frame *
gmr_frame_of_object(PyObject *frame_object)
{
#if PY_VERSION_HEX >= 0x030B0000
    return ((PyFrameObject *)frame_object)->f_frame;
#else
    return (PyFrameObject *)frame_object;
#endif
}

/* Frames that a traceback would not show: C-stack shims (3.12+) and frames
 * not yet past their prologue. Skipped as PyFrame_GetBack skips them. */
static inline int
gmr_frame_incomplete(gmr_frame *frame)
{
#if PY_VERSION_HEX >= 0x030B0000
    return _PyFrame_IsIncomplete(frame);
#else
    (void)frame;
    return 0;
#endif
}

static inline gmr_frame *
gmr_complete(gmr_frame *frame)
{
    while (frame != NULL && gmr_frame_incomplete(frame)) {
        frame = GMR_OLDER(frame);
    }
    return frame;
}

/* The next older complete frame, or NULL at the bottom of the stack. */
static inline gmr_frame *
gmr_older(gmr_frame *frame)
{
    return gmr_complete(GMR_OLDER(frame));
}

/* Borrowed reference to the frame's code object. */
static inline PyObject *
gmr_frame_code(gmr_frame *frame)
{
#if PY_VERSION_HEX >= 0x030D0000
    return (PyObject *)_PyFrame_GetCode(frame);
#else
    return (PyObject *)frame->f_code;
#endif
}

/* Byte offset of the instruction being executed, -1 before the first one:
 * the unit of frame.f_lasti. 3.10 keeps an instruction index, so double it. */
static inline int
gmr_frame_lasti(gmr_frame *frame)
{
#if PY_VERSION_HEX >= 0x030B0000
    int index = _PyInterpreterFrame_LASTI(frame);
#else
    int index = frame->f_lasti;
#endif
    return index < 0 ? -1 : index * (int)sizeof(_Py_CODEUNIT);
}

static inline unsigned long
gmr_thread_ident(PyThreadState *ts)
{
    return ts->thread_id;
}

/* The kernel's id of the thread where the interpreter keeps it (3.11+), else 0. */
static inline unsigned long
gmr_thread_native_id(PyThreadState *ts)
{
#if PY_VERSION_HEX >= 0x030B0000
    return ts->native_thread_id;
#else
    (void)ts;
    return 0;
#endif
}

/* ------------------------------------------------------------------------ */
/* Heap visit                                                               */
/* ------------------------------------------------------------------------ */

typedef int (*gmr_visit_fn)(PyObject *, void *);

/* Call visit(object, arg) for every object the cyclic GC tracks, until visit
 * returns 0. Called with the GIL held and the GC disabled; visit must not run
 * Python code, allocate Python objects or untrack anything, so the lists
 * cannot change under the walk and no reference needs to be taken.
 *
 * It walks the generation lists itself, exactly as gc.get_objects() and
 * 3.12's PyUnstable_GC_VisitObjects do, but without what makes the public
 * visitor cost ~6.3 ns per object instead of ~2.5: an incref and a decref of
 * every object (a write to each object's cache line, and on 3.12 the
 * immortality check) and a call through a function pointer it cannot inline.
 * Being static inline here, with `visit` a constant at its one call site,
 * the compiler inlines the callback into the loop. */
static inline void
gmr_visit_heap(gmr_visit_fn visit, void *arg)
{
#if defined(GMR_WALK_GENERATIONS)
    struct _gc_runtime_state *gcstate = &PyInterpreterState_Get()->gc;
    int i;
    for (i = 0; i < NUM_GENERATIONS; i++) {
        PyGC_Head *head = &gcstate->generations[i].head;
        PyGC_Head *gc;
        for (gc = _PyGCHead_NEXT(head); gc != head; gc = _PyGCHead_NEXT(gc)) {
            if (!visit((PyObject *)(gc + 1), arg)) {
                return;
            }
        }
    }
#else
    PyUnstable_GC_VisitObjects((gcvisitobjects_t)visit, arg);
#endif
}

/* The C getter behind a getset descriptor (greenlet's own `dead`, `gr_frame`,
 * `parent`), called directly so that a subclass's Python property of the
 * same name (gevent overrides `dead`) never runs inside the pause. */
static inline PyObject *
gmr_getset_get(PyObject *descriptor, PyObject *obj)
{
    PyGetSetDef *def = ((PyGetSetDescrObject *)descriptor)->d_getset;
    return def->get(obj, def->closure);
}

/* greenlet's own nb_bool ("active": started and not dead), never a
 * subclass's __bool__. 1 true, 0 false, -1 error set. */
static inline int
gmr_type_bool(PyObject *type, PyObject *obj)
{
    PyNumberMethods *number = ((PyTypeObject *)type)->tp_as_number;
    if (number == NULL || number->nb_bool == NULL) {
        return 0;
    }
    return number->nb_bool(obj);
}

#endif /* GMR_CAPTURE_C_H */
