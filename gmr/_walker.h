/* gmr/_walker.h: the only code of gmr that reads CPython's internal
 * structures. Each shim hides one difference between versions from the
 * walker (gmr/_walker.pyx); every shim is called with the GIL held and
 * returns borrowed pointers, unless it says otherwise.
 *
 * What is read, and through what, by version:
 *
 *   3.10        PyFrameObject (frameobject.h): f_back, f_code, f_lasti.
 *   3.11        _PyInterpreterFrame (internal/pycore_frame.h): previous,
 *               f_code, prev_instr; the thread's frame via its cframe.
 *   3.12        as 3.11, the code and the instruction offset through the
 *               PyUnstable_InterpreterFrame_* API.
 *   3.13        the thread's frame is ts->current_frame, its code f_executable.
 *   3.14, 3.15  internal/pycore_interpframe.h: f_executable is a tagged
 *               _PyStackRef; new owners (FRAME_OWNED_BY_INTERPRETER: the
 *               thread-state base frame and entry frames) are skipped as
 *               _PyFrame_IsIncomplete skips them.
 *
 * Every frame is checked before it is trusted, as CPython's faulthandler
 * does for the live threads it dumps (Python/traceback.c): its executable
 * must be a code object and its instruction pointer inside that code; a frame
 * that is not ends the walk of that stack. On 3.13+ the offsets this file
 * was compiled with are compared at import with the running interpreter's
 * own _Py_DebugOffsets (gmr_layout_problem): a mismatch (a layout changed in
 * a patch release) means the compiled walker is refused.
 *
 * A CPython newer than the newest this file knows (GMR_NEWEST_KNOWN) gets the
 * walker of gmr/_walker_offsets.h, which reads every field through the
 * interpreter's debug offsets and is used only when its check passes. A
 * free-threaded build gets no walker at all (GMR_WALKER == 0): the module
 * still builds, and gmr_layout_problem says why the walk is refused.
 */
#ifndef GMR_WALKER_H
#define GMR_WALKER_H

#include <Python.h>
#include <pthread.h>
#include <string.h>
#include <time.h>

/* The newest CPython minor version these shims were written and tested for. */
#define GMR_NEWEST_KNOWN 0x030F0000
#define GMR_NEWEST_KNOWN_TEXT "3.15"

#if defined(Py_GIL_DISABLED)
#  define GMR_WALKER 0
#  define GMR_REFUSED "a free-threaded build: the compiled walker needs the GIL to hold every thread still"
#elif PY_VERSION_HEX >= GMR_NEWEST_KNOWN + 0x00010000 || defined(GMR_WALKER_OFFSETS)
   /* Newer than the newest known: the walker driven by the interpreter's
    * debug offsets alone (gmr/_walker_offsets.h), used only if they check out. */
#  define GMR_WALKER 2
#else
#  define GMR_WALKER 1
#endif

/* 1 where the heap walk also sees what gc.freeze() froze. */
#define GMR_SEES_FROZEN (GMR_WALKER == 1)

#if GMR_WALKER == 1
#  ifndef Py_BUILD_CORE
#    define Py_BUILD_CORE 1
#  endif
   /* Python.h's cpython/objimpl.h (3.10-3.12) defines a _PyGC_FINALIZED
    * macro that would rename pycore_gc.h's inline function of that name. */
#  undef _PyGC_FINALIZED
#  include <internal/pycore_interp.h>
#  include <internal/pycore_gc.h>
#  if PY_VERSION_HEX >= 0x030E0000
#    include <internal/pycore_interpframe.h>
#    include <internal/pycore_frame.h>  /* PyFrameObject's f_frame */
#  elif PY_VERSION_HEX >= 0x030B0000
#    include <internal/pycore_frame.h>
#  else
#    include <frameobject.h>
#  endif
#  if PY_VERSION_HEX < 0x030C0000 || PY_VERSION_HEX >= 0x030D0000
#    include <internal/pycore_runtime.h>  /* _PyRuntime: the GIL (3.10-3.11), debug offsets (3.13+) */
#  endif
#  if PY_VERSION_HEX >= 0x030D0000
#    include <internal/pycore_ceval.h>  /* a thread's eval breaker bits */
#  endif
#endif

static inline long long
gmr_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

#if GMR_WALKER == 1

/* ------------------------------------------------------------------------ */
/* Frames                                                                   */
/* ------------------------------------------------------------------------ */

#if PY_VERSION_HEX >= 0x030B0000
typedef _PyInterpreterFrame gmr_frame;
#  define GMR_OLDER(frame) ((frame)->previous)
#else
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

/* The frame's executable, unchecked (borrowed). */
static inline PyObject *
gmr_frame_executable(gmr_frame *frame)
{
#if PY_VERSION_HEX >= 0x030E0000
    /* A tagged _PyStackRef: the low bits say how the reference is counted. */
    return (PyObject *)(frame->f_executable.bits & ~(uintptr_t)Py_TAG_BITS);
#elif PY_VERSION_HEX >= 0x030D0000
    return frame->f_executable;
#else
    return (PyObject *)frame->f_code;
#endif
}

/* Frames that a traceback would not show: shims on the C stack, the
 * interpreter's own entry and base frames (3.14+), and frames not yet past
 * their prologue. Skipped as PyFrame_GetBack skips them. Only called on a
 * frame whose executable is a code object. */
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

/* 1 when the frame can be trusted: its executable is a code object. */
static inline int
gmr_frame_valid(gmr_frame *frame)
{
    PyObject *executable = gmr_frame_executable(frame);
    return executable != NULL && PyCode_Check(executable);
}

/* The first frame from here outwards that a traceback shows (the others
 * are passed over); NULL at the bottom, and *broken set when a frame fails
 * its check: the walk of that stack stops there. */
static inline gmr_frame *
gmr_complete(gmr_frame *frame, int *broken)
{
    while (frame != NULL) {
#if PY_VERSION_HEX >= 0x030E0000
        if (frame->owner >= FRAME_OWNED_BY_INTERPRETER) {  /* and FRAME_OWNED_BY_CSTACK */
            frame = GMR_OLDER(frame);
            continue;
        }
#elif PY_VERSION_HEX >= 0x030C0000
        if (frame->owner == FRAME_OWNED_BY_CSTACK) {
            frame = GMR_OLDER(frame);
            continue;
        }
#endif
        if (!gmr_frame_valid(frame)) {
            *broken = 1;
            return NULL;
        }
        if (!gmr_frame_incomplete(frame)) {
            return frame;
        }
        frame = GMR_OLDER(frame);
    }
    return NULL;
}

/* New reference to the frame's code object (a valid frame). */
static inline PyObject *
gmr_frame_code(gmr_frame *frame)
{
#if PY_VERSION_HEX >= 0x030C0000
    return PyUnstable_InterpreterFrame_GetCode(frame);
#else
    PyObject *code = gmr_frame_executable(frame);
    Py_INCREF(code);
    return code;
#endif
}

/* Byte offset of the instruction being executed, -1 before the first one
 * or when it does not lie inside the code: the unit of frame.f_lasti. */
static inline int
gmr_frame_lasti(gmr_frame *frame)
{
    PyCodeObject *code = (PyCodeObject *)gmr_frame_executable(frame);
    int offset;
#if PY_VERSION_HEX >= 0x030C0000
    offset = PyUnstable_InterpreterFrame_GetLasti(frame);
#elif PY_VERSION_HEX >= 0x030B0000
    offset = _PyInterpreterFrame_LASTI(frame) * (int)sizeof(_Py_CODEUNIT);
#else
    /* 3.10 keeps an instruction index. */
    offset = frame->f_lasti < 0 ? -1 : frame->f_lasti * (int)sizeof(_Py_CODEUNIT);
#endif
#if PY_VERSION_HEX >= 0x030B0000
    if (offset >= (int)(Py_SIZE(code) * sizeof(_Py_CODEUNIT))) {
        return -1;
    }
#else
    if (offset >= PyBytes_GET_SIZE(code->co_code)) {
        return -1;
    }
#endif
    return offset < 0 ? -1 : offset;
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
 * It walks the generation lists itself (interp->gc.generations[i].head and
 * the permanent generation, the same from 3.10 to 3.15 in builds with a GIL), as gc.get_objects() and
 * PyUnstable_GC_VisitObjects do, but without what makes the public visitor
 * cost ~6.3 ns per object instead of ~2.5: an incref and a decref of every
 * object and a call through a function pointer it cannot inline. Being
 * static inline here, with `visit` a constant at its one call site, the
 * compiler inlines the callback into the loop. */
static inline int
gmr_visit_list(PyGC_Head *head, gmr_visit_fn visit, void *arg)
{
    PyGC_Head *gc;
    for (gc = _PyGCHead_NEXT(head); gc != head; gc = _PyGCHead_NEXT(gc)) {
        if (!visit((PyObject *)(gc + 1), arg)) {
            return 0;
        }
    }
    return 1;
}

static inline void
gmr_visit_heap(gmr_visit_fn visit, void *arg)
{
    struct _gc_runtime_state *gcstate = &PyInterpreterState_Get()->gc;
    int i;
    for (i = 0; i < NUM_GENERATIONS; i++) {
        if (!gmr_visit_list(&gcstate->generations[i].head, visit, arg)) {
            return;
        }
    }
    /* And what gc.freeze() moved out of the collector's sight, which
     * gc.get_objects() does not show: services freeze before forking workers. */
    gmr_visit_list(&gcstate->permanent_generation.head, visit, arg);
}
/* The young generations (0 and 1), where every object the GC starts to
 * track goes (gen0) and stays until a collection of generation 1 or 2, or
 * gc.freeze(), moves it to an old list (generation 2, the permanent one):
 * the same from 3.10 to 3.15 in builds with a GIL (3.14.10 and 3.15 keep
 * 3.13's three generations; their headers say so: `dummy` fields where
 * the incremental collector's state was). Greenlet discovery scans these
 * at every report and keeps what leaves them (gmr/_walker.pyx). */
#define GMR_HAS_GENERATIONS 1

static inline void
gmr_visit_young(gmr_visit_fn visit, void *arg)
{
    struct _gc_runtime_state *gcstate = &PyInterpreterState_Get()->gc;
    if (gmr_visit_list(&gcstate->generations[0].head, visit, arg)) {
        gmr_visit_list(&gcstate->generations[1].head, visit, arg);
    }
}

/* The objects the GC started to track since mark was, oldest first: those
 * after it in its generation and, when that is generation 1, all of
 * generation 0. A new object goes to the end of generation 0, and a
 * collection of generation 0 appends what stays of it to the end of
 * generation 1 in its order (what it moves back to the end of the young
 * list was there before the mark, or after it): until a collection of
 * generation 1 or 2, or gc.freeze(), moves the mark into an old list,
 * nothing before it is new. Returns 1 when every new object was visited;
 * 0 when mark is in an old list (the caller walks the young generations
 * whole), with nothing visited past the first list end met. GIL held, the
 * GC disabled; mark a tracked object the caller holds. */
static inline int
gmr_visit_young_after(PyObject *mark, gmr_visit_fn visit, void *arg)
{
    struct _gc_runtime_state *gcstate = &PyInterpreterState_Get()->gc;
    PyGC_Head *young = &gcstate->generations[0].head;
    PyGC_Head *middle = &gcstate->generations[1].head;
    PyGC_Head *start = (PyGC_Head *)mark - 1;
    PyGC_Head *gc;
    int i;

    if (!PyObject_GC_IsTracked(mark)) {
        return 0;
    }
    for (gc = _PyGCHead_NEXT(start); gc != young && gc != middle; gc = _PyGCHead_NEXT(gc)) {
        if (gc == start || gc == &gcstate->permanent_generation.head) {
            return 0;
        }
        for (i = 2; i < NUM_GENERATIONS; i++) {
            if (gc == &gcstate->generations[i].head) {
                return 0;
            }
        }
        if (!visit((PyObject *)(gc + 1), arg)) {
            return 0;
        }
    }
    return gc == young || gmr_visit_list(young, visit, arg);
}

/* 1 while a collection runs (its callbacks included). */
static inline int
gmr_gc_collecting(void)
{
    return PyInterpreterState_Get()->gc.collecting;
}

/* ------------------------------------------------------------------------ */
/* Taking the GIL back at once (gmr/_switch.h)                              */
/* ------------------------------------------------------------------------ */

#define GMR_CAN_HURRY 1

/* This interpreter's GIL, and the interpreter (3.10-3.12 keep the request
 * to let go there). Set once, with the GIL (gmr_ask_prepare). */
static struct _gil_runtime_state *gmr_gil = NULL;
static PyInterpreterState *gmr_gil_interp = NULL;

static inline void
gmr_ask_prepare(void)
{
    gmr_gil_interp = PyInterpreterState_Get();
#if PY_VERSION_HEX >= 0x030C0000
    gmr_gil = gmr_gil_interp->ceval.gil;
#else
    gmr_gil = &_PyRuntime.ceval.gil;
#endif
}

/* What take_gil does after waiting a whole switch interval: ask the holder
 * of the GIL to let go of it at its next check of the eval breaker, unless
 * it is the thread `unless` (pthread id: the watcher, which wants the GIL
 * and may have it already). For the watcher, which wants the GIL back at
 * once (gmr/_switch.h). Returns the GIL's switch number (it changes at each
 * take of the GIL): the asker can tell a GIL that moves from one that a C
 * call sits on. No GIL.
 *
 * Under the GIL's mutex, as take_gil asks: while the GIL is locked, its last
 * holder is the thread that holds it, which cannot free its thread state
 * before it lets go, and letting go takes this mutex. */
static unsigned long
gmr_ask_holder_to_let_go(unsigned long unless)
{
    PyThreadState *holder;
    unsigned long switches;
    if (gmr_gil == NULL) {
        return 0;
    }
    pthread_mutex_lock(&gmr_gil->mutex);
    switches = gmr_gil->switch_number;
#if PY_VERSION_HEX >= 0x030D0000
    if (__atomic_load_n(&gmr_gil->locked, __ATOMIC_RELAXED)) {
        holder = (PyThreadState *)__atomic_load_n(&gmr_gil->last_holder, __ATOMIC_RELAXED);
        if (holder != NULL && holder->thread_id != unless) {
            /* 3.13+: the holder's own bit. */
            _Py_set_eval_breaker_bit(holder, _PY_GIL_DROP_REQUEST_BIT);
        }
    }
#else
    if (_Py_atomic_load_relaxed(&gmr_gil->locked)) {
        holder = (PyThreadState *)_Py_atomic_load_relaxed(&gmr_gil->last_holder);
        if (holder != NULL && holder->thread_id != unless) {
            /* 3.10-3.12: the interpreter's request, as SET_GIL_DROP_REQUEST
             * makes it (the thread that takes the GIL next resets it). */
            _Py_atomic_store_relaxed(&gmr_gil_interp->ceval.gil_drop_request, 1);
            _Py_atomic_store_relaxed(&gmr_gil_interp->ceval.eval_breaker, 1);
        }
    }
#endif
    pthread_mutex_unlock(&gmr_gil->mutex);
    return switches;
}

/* The GIL's switch counter: every take of the GIL adds one. Read without
 * the GIL (relaxed) to see whether another thread took it. GIL held. */
static inline unsigned long *
gmr_switch_number(void)
{
#if PY_VERSION_HEX >= 0x030C0000
    return &PyInterpreterState_Get()->ceval.gil->switch_number;
#else
    return &_PyRuntime.ceval.gil.switch_number;
#endif
}

/* ------------------------------------------------------------------------ */
/* The layouts, checked against the interpreter's own (3.13+)               */
/* ------------------------------------------------------------------------ */

/* Tests only (tests/test_build.py): a build that pretends to have been made
 * for another layout, to see the check refuse it. */
#ifndef GMR_LAYOUT_SKEW
#  define GMR_LAYOUT_SKEW 0
#endif

#if PY_VERSION_HEX >= 0x030D0000
#  define GMR_CHECK(field, expected)                                            \
    if ((uint64_t)(offsets->field) != (uint64_t)(expected)) {                   \
        snprintf(problem, size, "the interpreter's " #field " is %llu, the "   \
                 "walker was built for %llu", (unsigned long long)offsets->field,\
                 (unsigned long long)(expected));                              \
        return 1;                                                               \
    }
#endif

/* 0 when every offset the walker reads is the one the running interpreter
 * publishes for debuggers; else 1, with the first difference in problem. */
static int
gmr_layout_problem(char *problem, size_t size)
{
#if PY_VERSION_HEX >= 0x030D0000
    const _Py_DebugOffsets *offsets = &_PyRuntime.debug_offsets;
    if (memcmp(offsets->cookie, "xdebugpy", 8) != 0) {
        snprintf(problem, size, "the interpreter publishes no debug offsets");
        return 1;
    }
    if ((offsets->version >> 16) != (PY_VERSION_HEX >> 16)) {
        snprintf(problem, size, "built for CPython %d.%d, running %d.%d",
                 PY_MAJOR_VERSION, PY_MINOR_VERSION, (int)((offsets->version >> 24) & 0xff),
                 (int)((offsets->version >> 16) & 0xff));
        return 1;
    }
    GMR_CHECK(free_threaded, 0)
    GMR_CHECK(interpreter_state.gc, offsetof(PyInterpreterState, gc))
    GMR_CHECK(interpreter_state.ceval_gil, offsetof(PyInterpreterState, ceval.gil))
    GMR_CHECK(thread_state.current_frame, offsetof(PyThreadState, current_frame))
    GMR_CHECK(thread_state.thread_id, offsetof(PyThreadState, thread_id))
    GMR_CHECK(thread_state.native_thread_id, offsetof(PyThreadState, native_thread_id))
    GMR_CHECK(interpreter_frame.size, sizeof(_PyInterpreterFrame))
    GMR_CHECK(interpreter_frame.previous, offsetof(_PyInterpreterFrame, previous) + GMR_LAYOUT_SKEW)
    GMR_CHECK(interpreter_frame.executable, offsetof(_PyInterpreterFrame, f_executable))
    GMR_CHECK(interpreter_frame.instr_ptr, offsetof(_PyInterpreterFrame, instr_ptr))
    GMR_CHECK(interpreter_frame.owner, offsetof(_PyInterpreterFrame, owner))
    GMR_CHECK(code_object.co_code_adaptive, offsetof(PyCodeObject, co_code_adaptive))
#else
    (void)problem;
    (void)size;
#endif
    return 0;
}

#elif GMR_WALKER == 2
#  include "_walker_offsets.h"
#endif

#if GMR_WALKER
/* The next older frame a traceback shows (see gmr_complete). */
static inline gmr_frame *
gmr_older(gmr_frame *frame, int *broken)
{
    return gmr_complete(GMR_OLDER(frame), broken);
}
#else /* GMR_WALKER == 0 */

/* No walker: these keep gmr/_walker.pyx compiling; capture() refuses to run. */
typedef struct gmr_frame gmr_frame;
typedef int (*gmr_visit_fn)(PyObject *, void *);
static inline gmr_frame *gmr_thread_frame(PyThreadState *ts) { (void)ts; return NULL; }
static inline gmr_frame *gmr_frame_of_object(PyObject *o) { (void)o; return NULL; }
static inline PyObject *gmr_frame_executable(gmr_frame *f) { (void)f; return NULL; }
static inline gmr_frame *gmr_complete(gmr_frame *f, int *b) { (void)f; (void)b; return NULL; }
#define GMR_OLDER(frame) (NULL)
static inline gmr_frame *gmr_older(gmr_frame *f, int *b) { (void)f; (void)b; return NULL; }
static inline PyObject *gmr_frame_code(gmr_frame *f) { (void)f; Py_RETURN_NONE; }
static inline int gmr_frame_lasti(gmr_frame *f) { (void)f; return -1; }
static inline unsigned long gmr_thread_ident(PyThreadState *ts) { (void)ts; return 0; }
static inline unsigned long gmr_thread_native_id(PyThreadState *ts) { (void)ts; return 0; }
static inline void gmr_visit_heap(gmr_visit_fn v, void *a) { (void)v; (void)a; }

static int
gmr_layout_problem(char *problem, size_t size)
{
    snprintf(problem, size, "%s", GMR_REFUSED);
    return 1;
}

#endif /* GMR_WALKER */

#if GMR_WALKER != 1
/* Where the GIL is and how its holder is asked to let go are known only to
 * the walker built with the interpreter's own headers. */
#  define GMR_CAN_HURRY 0
static inline void gmr_ask_prepare(void) {}
static unsigned long gmr_ask_holder_to_let_go(unsigned long unless) { (void)unless; return 0; }

/* No generation lists read (the debug-offsets walker, no walker): greenlet
 * discovery scans the whole heap at every report. */
#  define GMR_HAS_GENERATIONS 0
static inline void gmr_visit_young(gmr_visit_fn v, void *a) { (void)v; (void)a; }
static inline int gmr_visit_young_after(PyObject *m, gmr_visit_fn v, void *a)
{ (void)m; (void)v; (void)a; return 0; }
static inline int gmr_gc_collecting(void) { return 0; }
static inline unsigned long *gmr_switch_number(void) { return NULL; }
#endif

/* Between two holds of a capture, with the GIL released: give a waiting
 * thread the time to take it. Releasing the GIL only signals its waiters;
 * retaking it at once would usually win the race against them. Naps until
 * `*switch_number` differs from `before` (another thread took the GIL: the
 * interpreter counts every change of holder) or `patience_ns` passed; 50 us
 * where the counter is unknown (NULL). No GIL. */
static inline void
gmr_hand_over(const unsigned long *switch_number, unsigned long before, long long patience_ns)
{
    struct timespec nap = {0, 10000};  /* 10 us */
    long long until = gmr_now_ns() + patience_ns;
    if (switch_number == NULL) {
        nap.tv_nsec = 50000;
        nanosleep(&nap, NULL);
        return;
    }
    do {
        nanosleep(&nap, NULL);
        if (__atomic_load_n(switch_number, __ATOMIC_RELAXED) != before) {
            return;
        }
    } while (gmr_now_ns() < until);
}

/* Naps until gmr_now_ns() reaches deadline_ns. No GIL. */
static inline void
gmr_nap_until(long long deadline_ns)
{
    long long left;
    while ((left = deadline_ns - gmr_now_ns()) > 0) {
        struct timespec nap = {0, (long)left};
        nanosleep(&nap, NULL);
    }
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

#endif /* GMR_WALKER_H */
