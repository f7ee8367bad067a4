/* gmr/_walker_offsets.h: the walker for a CPython newer than the newest
 * gmr/_walker.h knows, included from it. It needs no internal header (those
 * move from one release to the next): every field it reads is found at run
 * time in the table the interpreter publishes for debuggers, _Py_DebugOffsets
 * at the start of _PyRuntime (looked up with dlsym). Only the layout of that
 * table's first part is assumed, as CPython 3.15 has it; gmr_layout_problem
 * checks that what it reads there is plausible, and the walker's own check at
 * import (layout_problem() in gmr/_walker.pyx: its walk of a known stack
 * against sys._getframe()) refuses it unless the layouts check out.
 *
 * Assumed, and checked by that walk: frame owners from 3 up are the
 * interpreter's own frames (FRAME_OWNED_BY_INTERPRETER, _CSTACK); the
 * executable is a _PyStackRef with its tag in the low 3 bits; a frame object
 * is PyObject_HEAD, f_back, then its interpreter frame. Not done here: the
 * prologue check (no debug offset gives _co_firsttraceable) and the switch
 * interval (no debug offset gives it either). The GC lists are read through
 * PyUnstable_GC_VisitObjects.
 *
 * Also built on 3.14 and 3.15 with GMR_WALKER_OFFSETS defined, for its tests.
 */
#ifndef GMR_WALKER_OFFSETS_H
#define GMR_WALKER_OFFSETS_H

#include <dlfcn.h>
#include <stdint.h>

/* _Py_DebugOffsets up to the code object's fields, as in CPython 3.15. */
typedef struct {
    char cookie[8];
    uint64_t version;
    uint64_t free_threaded;
    struct { uint64_t size, finalizing, interpreters_head; } runtime_state;
    struct {
        uint64_t size, id, next, threads_head, threads_main, gc, imports_modules, sysdict,
            builtins, ceval_gil, gil_runtime_state, gil_runtime_state_enabled,
            gil_runtime_state_locked, gil_runtime_state_holder, code_object_generation,
            tlbc_generation;
    } interpreter_state;
    struct {
        uint64_t size, prev, next, interp, current_frame, base_frame, last_profiled_frame,
            last_profiled_frame_seq, thread_id, native_thread_id, datastack_chunk, status,
            holds_gil, gil_requested, current_exception, exc_state;
    } thread_state;
    struct { uint64_t exc_value; } err_stackitem;
    struct {
        uint64_t size, previous, executable, instr_ptr, localsplus, owner, stackpointer,
            tlbc_index;
    } interpreter_frame;
    struct {
        uint64_t size, filename, name, qualname, linetable, firstlineno, argcount,
            localsplusnames, localspluskinds, co_code_adaptive, co_tlbc;
    } code_object;
} gmr_debug_offsets;

/* Where each field is, once gmr_layout_problem has read the table. */
static struct {
    size_t ts_current_frame, ts_thread_id, ts_native_thread_id;
    size_t frame_previous, frame_executable, frame_instr_ptr, frame_owner;
    size_t code_bytecode, object_frame;
} gmr_at;

typedef struct gmr_frame gmr_frame;  /* never dereferenced as a struct */
typedef int (*gmr_visit_fn)(PyObject *, void *);

#define GMR_FIELD(base, offset, type) (*(type *)((char *)(base) + (offset)))
#define GMR_OLDER(frame) GMR_FIELD(frame, gmr_at.frame_previous, gmr_frame *)
/* Owners from here up are the interpreter's own frames (3.14, 3.15). */
#define GMR_FIRST_HIDDEN_OWNER 3

static inline gmr_frame *
gmr_thread_frame(PyThreadState *ts)
{
    return GMR_FIELD(ts, gmr_at.ts_current_frame, gmr_frame *);
}

static inline gmr_frame *
gmr_frame_of_object(PyObject *frame_object)
{
    return GMR_FIELD(frame_object, gmr_at.object_frame, gmr_frame *);
}

static inline PyObject *
gmr_frame_executable(gmr_frame *frame)
{
    return (PyObject *)(GMR_FIELD(frame, gmr_at.frame_executable, uintptr_t) & ~(uintptr_t)7);
}

static inline gmr_frame *
gmr_complete(gmr_frame *frame, int *broken)
{
    while (frame != NULL) {
        PyObject *executable;
        if (GMR_FIELD(frame, gmr_at.frame_owner, char) >= GMR_FIRST_HIDDEN_OWNER) {
            frame = GMR_OLDER(frame);
            continue;
        }
        executable = gmr_frame_executable(frame);
        if (executable == NULL || !PyCode_Check(executable)) {
            *broken = 1;
            return NULL;
        }
        return frame;
    }
    return NULL;
}

/* New reference. */
static inline PyObject *
gmr_frame_code(gmr_frame *frame)
{
    PyObject *code = gmr_frame_executable(frame);
    Py_INCREF(code);
    return code;
}

static inline int
gmr_frame_lasti(gmr_frame *frame)
{
    PyObject *code = gmr_frame_executable(frame);
    char *first = (char *)code + gmr_at.code_bytecode;
    char *current = GMR_FIELD(frame, gmr_at.frame_instr_ptr, char *);
    Py_ssize_t offset = current - first;
    if (offset < 0 || offset >= Py_SIZE(code) * 2) {
        return -1;
    }
    return (int)offset;
}

static inline unsigned long
gmr_thread_ident(PyThreadState *ts)
{
    return GMR_FIELD(ts, gmr_at.ts_thread_id, unsigned long);
}

static inline unsigned long
gmr_thread_native_id(PyThreadState *ts)
{
    return GMR_FIELD(ts, gmr_at.ts_native_thread_id, unsigned long);
}

/* The public visitor: slower than walking the lists (an incref and a decref
 * of every object), but it assumes nothing about the GC's structures. */
static inline void
gmr_visit_heap(gmr_visit_fn visit, void *arg)
{
    PyUnstable_GC_VisitObjects((gcvisitobjects_t)visit, arg);
}

#define GMR_PLAUSIBLE(offset, limit) ((offset) > 0 && (offset) + sizeof(void *) <= (limit))

static int
gmr_layout_problem(char *problem, size_t size)
{
    const gmr_debug_offsets *offsets = dlsym(RTLD_DEFAULT, "_PyRuntime");
    if (offsets == NULL) {
        snprintf(problem, size, "the interpreter's _PyRuntime cannot be found");
        return 1;
    }
    if (memcmp(offsets->cookie, "xdebugpy", 8) != 0) {
        snprintf(problem, size, "the interpreter publishes no debug offsets");
        return 1;
    }
    if ((offsets->version >> 16) != (PY_VERSION_HEX >> 16)) {
        snprintf(problem, size, "built for CPython %d.%d, running another",
                 PY_MAJOR_VERSION, PY_MINOR_VERSION);
        return 1;
    }
    if (offsets->free_threaded != 0) {
        snprintf(problem, size, "a free-threaded build");
        return 1;
    }
    /* Every offset inside the structure it belongs to, as far as the public
     * headers tell its size: nothing is read outside a real object. */
    if (!(GMR_PLAUSIBLE(offsets->thread_state.current_frame, sizeof(PyThreadState))
          && GMR_PLAUSIBLE(offsets->thread_state.thread_id, sizeof(PyThreadState))
          && GMR_PLAUSIBLE(offsets->thread_state.native_thread_id, sizeof(PyThreadState))
          && offsets->interpreter_frame.size >= 4 * sizeof(void *)
          && offsets->interpreter_frame.size <= 256
          && offsets->interpreter_frame.previous + sizeof(void *) <= offsets->interpreter_frame.size
          && offsets->interpreter_frame.executable + sizeof(void *) <= offsets->interpreter_frame.size
          && GMR_PLAUSIBLE(offsets->interpreter_frame.instr_ptr, offsets->interpreter_frame.size)
          && offsets->interpreter_frame.owner < offsets->interpreter_frame.size
          && offsets->code_object.co_code_adaptive >= sizeof(PyVarObject)
          && offsets->code_object.co_code_adaptive <= sizeof(PyCodeObject))) {
        snprintf(problem, size, "its debug offsets are not laid out as CPython 3.15's");
        return 1;
    }
    gmr_at.ts_current_frame = offsets->thread_state.current_frame;
    gmr_at.ts_thread_id = offsets->thread_state.thread_id;
    gmr_at.ts_native_thread_id = offsets->thread_state.native_thread_id;
    gmr_at.frame_previous = offsets->interpreter_frame.previous;
    gmr_at.frame_executable = offsets->interpreter_frame.executable;
    gmr_at.frame_instr_ptr = offsets->interpreter_frame.instr_ptr;
    gmr_at.frame_owner = offsets->interpreter_frame.owner;
    gmr_at.code_bytecode = offsets->code_object.co_code_adaptive;
    gmr_at.object_frame = sizeof(PyObject) + sizeof(void *);  /* after f_back */
    return 0;
}

#endif /* GMR_WALKER_OFFSETS_H */
