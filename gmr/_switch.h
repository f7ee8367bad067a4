/* Taking the GIL back at once, after each let-go of it by the watcher.
 *
 * The watcher lets the GIL go on purpose a few times in a report (the wait
 * for triggers, a hand-over between two holds of a capture, a batch of reads
 * or writes). A thread that wants the GIL back waits a whole switch interval
 * (5 ms by default) before it asks its holder to let go, and beside busy
 * threads it waits that long at each let-go. Lowering the interval instead
 * lowers it for every thread: a busy thread that started to wait while it
 * was low asks the watcher to let go again half a millisecond after it took
 * the GIL, and the watcher had 1/(N+1) of the GIL beside N busy threads.
 *
 * So while the watcher waits to take the GIL back, whoever holds it is
 * asked to let go, as take_gil asks after a whole interval, every
 * GMR_ASK_EVERY_NS: by the watchdog's thread, which never takes the GIL
 * (gmr/_watchdog.h), through gmr_ask_holder_to_let_go (gmr/_walker.h, the
 * only code of gmr that knows where the GIL is). The interval is left
 * alone: once it holds the GIL, the watcher runs as long as any thread of
 * the service may. Each unit that lets the GIL go has its own copy of the
 * trigger's two calls (NULL: none given). Where nobody can ask (a pure
 * unit, a walker that cannot, no watchdog thread: _impl.hurried() is
 * false), the watcher lowers the interval for the whole report instead
 * (gmr/watcher.py, _Hurry). */

#ifndef GMR_SWITCH_H
#define GMR_SWITCH_H

#include <Python.h>

typedef struct {
    void (*begin)(void);  /* no GIL: about to take it back */
    void (*end)(void);    /* the GIL held again */
} gmr_hurry_calls;

static const gmr_hurry_calls *gmr_hurry_to = NULL;

/* use_hurry(capsule) of the units that let the GIL go: the trigger's
 * hurry_capsule(), or None. 1: hurried, 0: not, -1: TypeError set. GIL held. */
static int
gmr_use_hurry_capsule(PyObject *capsule)
{
    if (capsule == Py_None) {
        gmr_hurry_to = NULL;
        return 0;
    }
    if (!PyCapsule_IsValid(capsule, "gmr.hurry")) {
        PyErr_SetString(PyExc_TypeError, "not a gmr.hurry capsule");
        return -1;
    }
    gmr_hurry_to = (const gmr_hurry_calls *)PyCapsule_GetPointer(capsule, "gmr.hurry");
    return 1;
}

/* Without the GIL, the last thing before taking it back. */
static inline void
gmr_hurry(void)
{
    if (gmr_hurry_to != NULL) {
        gmr_hurry_to->begin();
    }
}

/* With the GIL again. */
static inline void
gmr_hurried(void)
{
    if (gmr_hurry_to != NULL) {
        gmr_hurry_to->end();
    }
}

#endif /* GMR_SWITCH_H */
