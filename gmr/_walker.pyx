# cython: language_level=3, boundscheck=False, wraparound=False, initializedcheck=False
"""The frame walker: the only code of gmr that reads CPython internals
(through the version shims of gmr/_walker.h).

It holds the GIL (with the cyclic GC disabled) only while it copies (code
object, instruction offset) pairs of every thread and greenlet into mapped
memory; RawCapture hands them out afterwards, a thread at a time or every
greenlet in one call. Nothing here formats or resolves names.

Before it is used, layout_problem() checks what it reads against the running
interpreter: its debug offsets (3.13+), and a walk of the calling thread's
own stack against what Python shows of it. gmr/_walker.pyi is the typed
boundary; gmr/_walker_py.py is the pure twin.
"""

import sys
from types import CodeType

from cpython.object cimport PyObject, PyTypeObject
from cpython.bytes cimport PyBytes_FromStringAndSize
from cpython.pycapsule cimport PyCapsule_New
from cpython.weakref cimport PyWeakref_NewRef
from libc.string cimport memset

IMPLEMENTATION = "compiled"

GREENLET_NOT_STARTED = 0
GREENLET_SUSPENDED = 1
GREENLET_RUNNING = 2
GREENLET_DEAD = 3

#: Whether greenlets that gc.freeze() froze are found (the walk of the GC's
#: own lists sees them; the public visitor of the walker for newer CPythons
#: does not).
SEES_FROZEN = bool(GMR_SEES_FROZEN)

#: (code object, byte offset of the current instruction or -1), innermost first.
RawFrames = tuple[tuple[CodeType, int], ...]

#: The longest a capture holds the GIL at a time, unless one OS thread's or
#: one greenlet's stack takes longer: the threads are copied in one hold,
#: the greenlets in as many as they need, each greenlet whole in one.
MAX_HOLD_NS = 2_000_000

#: Whether greenlets are found without a scan of the heap at each report
#: (the young generations and a record of the greenlets that left them).
DISCOVERY_WITHOUT_HEAP_SCAN = bool(GMR_HAS_GENERATIONS)

cdef enum:
    # A bound on one stack, so a corrupted chain can never loop for ever.
    MAX_DEPTH = 1000000


cdef extern from "Python.h":
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
    PyObject *Py_True
    PyObject *Py_None
    PyTypeObject *Py_TYPE(PyObject *)
    int PyObject_GC_IsTracked(object)
    void PyObject_GC_Track(void *)
    void PyObject_GC_UnTrack(void *)

cdef extern from "_walker.h":
    ctypedef struct gmr_frame
    ctypedef int (*gmr_visit_fn)(PyObject *, void *) noexcept
    const int GMR_SEES_FROZEN
    long long gmr_now_ns() nogil
    int gmr_layout_problem(char *problem, size_t size)
    const int GMR_CAN_HURRY
    void gmr_ask_prepare()
    unsigned long gmr_ask_holder_to_let_go(unsigned long unless) noexcept nogil
    # frame shims: GIL held, borrowed pointers unless said
    gmr_frame *gmr_thread_frame(PyThreadState *)
    gmr_frame *gmr_frame_of_object(PyObject *)
    PyObject *gmr_frame_executable(gmr_frame *)  # unchecked
    gmr_frame *GMR_OLDER(gmr_frame *)  # unchecked
    gmr_frame *gmr_complete(gmr_frame *, int *broken)
    gmr_frame *gmr_older(gmr_frame *, int *broken)
    PyObject *gmr_frame_code(gmr_frame *)  # a new reference
    int gmr_frame_lasti(gmr_frame *)
    unsigned long gmr_thread_ident(PyThreadState *)
    unsigned long gmr_thread_native_id(PyThreadState *)
    void gmr_visit_heap(gmr_visit_fn visit, void *arg)
    const int GMR_HAS_GENERATIONS
    void gmr_visit_young(gmr_visit_fn visit, void *arg)
    int gmr_visit_young_after(PyObject *mark, gmr_visit_fn visit, void *arg)
    int gmr_gc_collecting()
    unsigned long *gmr_switch_number()
    void gmr_nap_until(long long deadline_ns) nogil
    void gmr_hand_over(const unsigned long *switch_number, unsigned long before,
                       long long patience_ns) nogil
    PyObject *gmr_getset_get(PyObject *descriptor, PyObject *obj)
    int gmr_type_bool(PyObject *type, PyObject *obj)

cdef extern from "_switch.h":
    int gmr_use_hurry_capsule(object capsule) except -1
    void gmr_hurry() nogil
    void gmr_hurried() nogil


# ---------------------------------------------------------------------------
# Is this walker right for this interpreter?
# ---------------------------------------------------------------------------

cdef list _own_stack():
    """The calling Python code's stack as the walker reads it: (code, lasti)
    from the innermost frame out. GIL held."""
    cdef int broken = 0
    cdef gmr_frame *frame = gmr_complete(gmr_thread_frame(PyThreadState_Get()), &broken)
    cdef PyObject *code
    out = []
    while frame != NULL and len(out) < 10000:
        code = gmr_frame_code(frame)
        out.append((<object>code, gmr_frame_lasti(frame)))
        Py_XDECREF(code)
        frame = gmr_older(frame, &broken)
    if broken:
        out.append(None)
    return out


# A known stack to check the walker on: probe() calls inner(), which calls
# the check, so the check's caller has a frame object, and that frame's
# caller is a Python frame called from Python (no interpreter frame between).
_PROBE = {}
exec(compile("def probe(check):\n    return inner(check)\n"
             "def inner(check):\n    return check()\n", "<gmr walker probe>", "exec"), _PROBE)


def _check_known_stack():
    """Called by the probe: each field the walker reads, checked against
    what Python shows, in an order that dereferences only pointers already
    confirmed by a second route. None, or what differs."""
    cdef int broken = 0
    cdef gmr_frame *innermost
    frame = sys._getframe()  # inner()'s frame object
    innermost = gmr_frame_of_object(<PyObject *>frame)
    if innermost != gmr_thread_frame(PyThreadState_Get()):
        return "the thread's current frame is not the frame behind its frame object"
    if gmr_frame_executable(innermost) != <PyObject *>frame.f_code:
        return "a frame's code object is not where the walker reads it"
    if GMR_OLDER(innermost) != gmr_frame_of_object(<PyObject *>frame.f_back):
        return "a frame's caller is not where the walker reads it"
    walked = _own_stack()
    shown = []
    while frame is not None and len(shown) < 10000:
        shown.append((frame.f_code, frame.f_lasti))
        frame = frame.f_back
    if walked != shown:
        return (f"its walk of a known stack differs from Python's: {len(walked)} frames "
                f"read, {len(shown)} shown")
    return None


# False until checked; then None (the walker reads this interpreter right)
# or the line that says why not.
cdef object _verdict = False


def layout_problem():
    """None when this walker reads the running interpreter right; else one
    line saying why not (the walker is then not to be used). Checked once:
    the offsets it was built with against the interpreter's own debug
    offsets (3.13+), then its walk of a known stack against the frames
    Python shows."""
    global _verdict
    cdef char problem[512]
    if _verdict is False:
        if gmr_layout_problem(problem, sizeof(problem)):
            _verdict = problem.decode(errors="replace")
        else:
            _verdict = _PROBE["probe"](_check_known_stack)
    return _verdict


def ask_capsule():
    """How the holder of the GIL is asked to let go of it, as take_gil asks
    (for the trigger's use_ask, gmr/_switch.h), or None where this walker
    cannot."""
    if not GMR_CAN_HURRY:
        return None
    gmr_ask_prepare()
    return PyCapsule_New(<void *>gmr_ask_holder_to_let_go, b"gmr.ask", NULL)


def use_hurry(capsule):
    """The trigger's hurry_capsule(), or None (then nothing is hurried).
    True when this unit takes the GIL back at once after each hand-over
    between two holds of a capture (gmr/_switch.h)."""
    return gmr_use_hurry_capsule(capsule) == 1


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
    PyTypeObject *type        # greenlet.greenlet; NULL: look only for the sentinel
    PyTypeObject *last_other  # one-entry cache: the last type seen that is not a greenlet
    Py_ssize_t visited        # objects visited
    int failed                # out of memory
    PyObject *sentinel        # young scans: the object whose presence they report
    int saw_sentinel


# Sizes of the last capture, so the next one rarely reallocates in its pause.
cdef Py_ssize_t _hint_contexts = 64
cdef Py_ssize_t _hint_frames = 1024
cdef Py_ssize_t _hint_greenlets = 64
cdef Py_ssize_t _hint_depth = 32  # frames per stack, about, in the last capture


# The capture's arrays (megabytes at 10,000 greenlets) are mapped for
# themselves, and unmapped after (gmr/_mapped.h says why).
cdef extern from "_mapped.h" nogil:
    int _grow "gmr_grow"(void **array, Py_ssize_t *capacity, Py_ssize_t needed, size_t item)
    void _unmap "gmr_unmap"(void **array, Py_ssize_t *capacity, size_t item)


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


cdef inline int _visit_young(PyObject *obj, void *arg) noexcept:
    """_visit, and whether the sentinel is among the objects visited."""
    cdef Found *found = <Found *>arg
    if obj == found.sentinel:
        found.saw_sentinel = 1
    if found.type == NULL:
        return 1
    return _visit(obj, arg)


cdef void _find_young(Found *found) noexcept:
    """The greenlets of the young generations into found.items, and
    found.saw_sentinel. GIL held, no collection under way or in one's callback."""
    gmr_visit_young(_visit_young, found)


cdef void _mark_young() noexcept:
    """Put the young mark at the end of generation 0, now: tracked again
    rather than made anew, so that no capture leaves a new object behind
    (one made among a report's many short-lived ones would keep a whole
    allocator arena alive). GIL held, the GC disabled, none running."""
    global _young_mark, _mark_collections, _mark_valid
    if _young_mark is None:
        _young_mark = []
    if PyObject_GC_IsTracked(_young_mark):
        PyObject_GC_UnTrack(<void *><PyObject *>_young_mark)
    PyObject_GC_Track(<void *><PyObject *>_young_mark)
    _mark_collections = _collections
    _mark_valid = True


cdef bint _find_young_after(Found *found, PyObject *mark) noexcept:
    """The greenlets tracked since mark was into found.items; False (found
    left to be cleared) when mark is no longer young."""
    return gmr_visit_young_after(mark, _visit, found)


cdef void _found_init(Found *found, PyTypeObject *tp, PyObject *sentinel) noexcept:
    found.items = NULL
    found.count = found.capacity = found.visited = 0
    found.failed = 0
    found.last_other = NULL
    found.type = tp
    found.sentinel = sentinel
    found.saw_sentinel = 0


cdef void _found_clear(Found *found) noexcept:
    cdef Py_ssize_t i
    for i in range(found.count):
        Py_XDECREF(found.items[i])
    _unmap(<void **>&found.items, &found.capacity, sizeof(PyObject *))
    found.count = 0


# ---------------------------------------------------------------------------
# Greenlet discovery without a scan of the heap (see DESIGN.md, "Finding
# greenlets"). Every live greenlet is either in the young generations (0
# and 1: where the GC puts what it starts to track) or in _known, as long as
# the sentinel, a list made when _known was last brought up to date, is
# still young: objects leave the young generations only all together (a
# collection of generation 1 or 2 moves every survivor of 0 and 1 into 2;
# gc.freeze() moves everything into the permanent generation). A collection
# that moves them first calls gc.callbacks: _on_collection, the last of
# them, adds the young greenlets to _known at its start and makes a new
# sentinel at its end. Whatever moved them otherwise (gc.freeze(), a
# callback list that dropped or outran the hook) took the sentinel along:
# the next look scans the whole heap once and starts again.
# ---------------------------------------------------------------------------

cdef object _tracked = None     # greenlet.greenlet, once the greenlet module is imported
cdef dict _known = {}           # id -> weakref.ref of greenlets that left the young generations
cdef object _sentinel = None    # young since _known was last brought up to date
cdef bint _complete = False     # _known and the young generations hold every greenlet
cdef bint _armed = False        # the start of this collection scanned: its end renews the sentinel
cdef object _callbacks = None   # gc.callbacks
cdef object _hook = None        # _on_collection, as registered
cdef bint _usable = bool(GMR_HAS_GENERATIONS)
cdef Py_ssize_t _heap_scans = 0  # scans of the whole heap made for discovery
# A capture looks only at what the GC started to track since the last one:
# _young_mark, a list tracked again right after that capture's look at the young
# generations (every greenlet seen then is in _known), sits after
# everything looked at then, and whatever is tracked later comes after it
# (gmr_visit_young_after), until a collection of generation 1 or 2 (counted
# by _on_collection) or gc.freeze() moves it out of the young generations.
# A cold walk of 10,000 young objects held the GIL about 1 ms.
cdef object _young_mark = None
cdef unsigned long long _collections = 0  # collections of generation 1 or 2 begun
cdef unsigned long long _mark_collections = 0  # _collections when _young_mark was placed
cdef bint _mark_valid = False  # False: the next capture looks at the young generations whole


cdef object _greenlet_base():
    """greenlet.greenlet when the greenlet module is imported, else None."""
    for name in ("greenlet._greenlet", "greenlet"):
        module = sys.modules.get(name)
        tp = getattr(module, "greenlet", None) if module is not None else None
        if isinstance(tp, type):
            return tp
    return None


cdef int _remember(Found *found) except -1:
    """Add the greenlets of found to _known."""
    cdef Py_ssize_t i
    cdef object ref
    for i in range(found.count):
        key = <Py_ssize_t>found.items[i]
        ref = _known.get(key)
        if ref is not None and ref() is <object>found.items[i]:
            continue
        _known[key] = PyWeakref_NewRef(<object>found.items[i], None)
    return 0


cdef int _adopt(Found *found) except -1:
    """found (every greenlet on the heap, just scanned) becomes the record,
    with a new sentinel."""
    global _known, _sentinel, _complete, _heap_scans
    _known = {}
    _remember(found)
    _sentinel = []
    _complete = True
    _heap_scans += 1
    return 0


cdef int _rebuild() except -1:
    """Scan the whole heap: _known becomes every greenlet, with a new
    sentinel. GIL held, and the GC disabled or collecting (nothing moves)."""
    global _known, _sentinel, _complete, _heap_scans
    cdef Found found
    _found_init(&found, <PyTypeObject *>_tracked, NULL)
    try:
        _find_greenlets(&found)
        if found.failed:
            raise MemoryError()
        _adopt(&found)
    finally:
        _found_clear(&found)
    return 0


cdef bint _hook_last():
    """Whether the hook is the last of gc.callbacks (none runs after it)."""
    cdef Py_ssize_t size
    if _callbacks is None or type(_callbacks) is not list:
        return False
    size = len(<list>_callbacks)
    return size > 0 and (<list>_callbacks)[size - 1] is _hook


cdef void _hook_to_end() noexcept:
    """Put the hook last in gc.callbacks, by identity (no __eq__ runs),
    never while a collection iterates the list. GIL held. Put back after
    it was taken off, it has not counted the collections meanwhile: the
    young mark is dropped."""
    global _mark_valid
    cdef Py_ssize_t i
    cdef bint there = False
    if _callbacks is None or type(_callbacks) is not list or gmr_gc_collecting():
        return
    if _hook_last():
        return
    try:
        for i in range(len(<list>_callbacks) - 1, -1, -1):
            if (<list>_callbacks)[i] is _hook:
                del (<list>_callbacks)[i]
                there = True
        (<list>_callbacks).append(_hook)
    except BaseException:
        PyErr_Clear()
    if not there:
        _mark_valid = False


def instance_dict(obj):
    """The object's own instance dict, or None when it has none yet: read
    where its type keeps it (tp_dictoffset), never made: obj.__dict__ makes
    one, for good, on a greenlet that had none (10,000 greenlets: 0.6 MB).
    Where the interpreter keeps it (a Python class), through __dict__."""
    cdef PyTypeObject *tp = Py_TYPE(<PyObject *>obj)
    cdef PyObject *found
    if tp.tp_dictoffset == 0:
        return None
    if tp.tp_dictoffset < 0:
        # Kept by the interpreter (a Python class): a greenlet type never is.
        found_dict = getattr(obj, "__dict__", None)
        return found_dict if isinstance(found_dict, dict) else None
    found = (<PyObject **>((<char *><PyObject *>obj) + tp.tp_dictoffset))[0]
    if found == NULL or not isinstance(<object>found, dict):
        return None
    return <object>found


def _on_collection(phase, info):
    """gc.callbacks hook: at the start of a collection that moves the young
    generations' survivors into an old one (generation 1 or 2), the young
    greenlets join _known; at its end, a new sentinel. Returns at once at
    the start and end of generation-0 collections."""
    global _armed, _sentinel, _tracked, _complete, _collections
    cdef Found found
    if phase == "stop":
        if _armed:
            _armed = False
            _sentinel = []
        return
    try:
        if (<dict>info)["generation"] == 0:
            return
    except BaseException:
        pass
    _collections += 1
    _armed = False
    if not _usable or not _hook_last():
        return  # the sentinel moves with the others: the next look rescans
    try:
        if _tracked is None:
            _tracked = _greenlet_base()
        if _tracked is None:
            # No greenlet module, no greenlet: nothing to keep.
            _complete = True
            _armed = True
            return
        _found_init(&found, <PyTypeObject *>_tracked, <PyObject *>_sentinel)
        try:
            _find_young(&found)
            if found.failed:
                _complete = False
            elif _complete and found.saw_sentinel:
                _remember(&found)
            else:
                _rebuild()
        finally:
            _found_clear(&found)
        _armed = _complete
    except BaseException:
        _complete = False
        _armed = False


def prepare():
    """Set up greenlet discovery: the hook on gc.callbacks and, when the
    greenlet module is imported, the one scan of the heap; called once the
    walker is chosen (gmr._impl). Later reports find greenlets without a
    scan of the heap. Again: puts the hook back if it was taken off."""
    global _callbacks, _hook, _tracked, _complete, _sentinel
    if not _usable:
        return
    import gc
    if _hook is None:
        _hook = _on_collection
    _callbacks = gc.callbacks
    if not any(cb is _hook for cb in _callbacks):
        _complete = False  # off the list: what moved meanwhile was not seen
    _hook_to_end()
    if _tracked is None:
        _tracked = _greenlet_base()
    if _complete:
        return
    enabled = PyGC_Disable()
    try:
        if _tracked is None:
            _sentinel = []
            _complete = True
        else:
            _rebuild()
    finally:
        if enabled:
            PyGC_Enable()


def _discovery_state():
    """(known greenlets, scans of the whole heap made for discovery,
    whether the record is complete): for tests and benchmarks."""
    return len(_known), _heap_scans, bool(_complete)


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
    # How many holds of the GIL the capture took (other threads ran between
    # them), and how long they lasted in all; pause_ns is the longest.
    cdef readonly Py_ssize_t holds
    cdef readonly long long held_ns
    # Whether this capture scanned the whole heap for greenlets.
    cdef readonly bint heap_scanned
    # Stacks whose walk stopped at a frame that failed its check.
    cdef readonly Py_ssize_t broken_stacks
    cdef int failed
    # The greenlets and parents above, once more, where gc.get_referrers()
    # can see them. greenlet's ThreadState destructor (a dead thread's clean-up)
    # takes a main greenlet that has one reference left and no referrer the GC
    # can find for a reference stranded on a dead C stack, and drops it: a
    # reference held only in mapped memory would be dropped twice.
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
        _unmap(<void **>&self.frames, &self.capacity_frames, sizeof(FrameRecord))
        _unmap(<void **>&self.contexts, &self.capacity_contexts, sizeof(Context))
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

    def greenlet_table(self, Py_ssize_t start, Py_ssize_t stop,
                       unsigned long long[::1] ids, unsigned long long[::1] parents,
                       unsigned char[::1] states, unsigned int[::1] kinds,
                       unsigned int[::1] stacks, list objects, dict kind_numbers,
                       dict stack_numbers, list distinct):
        """Greenlets start to stop written into the columns at their own
        positions (sized for every greenlet): id() of each and of its parent
        (0: none), its state, its type's number and its stack's number; the
        greenlet itself into objects. kind_numbers: each type's number,
        filled in for a new type; stack_numbers: each distinct frames tuple's
        number by its id(), filled in for a new one, whose frames (innermost
        first) are appended to distinct. One call holds the GIL throughout
        and makes no object per greenlet: ask for a thousand at a time."""
        cdef Py_ssize_t i
        cdef Context *context
        if stop < 0 or stop > self.greenlets:
            stop = self.greenlets
        for i in range(max(0, start), stop):
            context = &self.contexts[self.threads + i]
            green = <object>context.greenlet
            objects[i] = green
            ids[i] = <unsigned long long><size_t>context.greenlet
            parents[i] = <unsigned long long><size_t>context.parent
            states[i] = <unsigned char>context.state
            kind = type(green)
            number = kind_numbers.get(kind)
            if number is None:
                number = kind_numbers[kind] = len(kind_numbers)
            kinds[i] = number
            raw_frames = self._frames_of(context)
            number = stack_numbers.get(id(raw_frames))
            if number is None:
                number = stack_numbers[id(raw_frames)] = len(distinct)
                distinct.append(raw_frames)
            stacks[i] = number

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
        cdef int broken = 0
        frame = gmr_complete(frame, &broken)
        while frame != NULL and context.depth < MAX_DEPTH:
            if _grow(<void **>&self.frames, &self.capacity_frames, self.nframes + 1,
                     sizeof(FrameRecord)) < 0:
                self.failed = 1
                return
            self.frames[self.nframes].code = gmr_frame_code(frame)  # a new reference
            self.frames[self.nframes].lasti = gmr_frame_lasti(frame)
            self.nframes += 1
            context.depth += 1
            frame = gmr_older(frame, &broken)
        if broken:
            self.broken_stacks += 1

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


cdef class _Holds:
    """The capture's holds of the GIL: when the current one began, the
    longest, their count and total."""
    cdef long long began
    cdef long long since      # the last time the GIL was let go (or the hold began)
    cdef long long longest
    cdef long long total
    cdef Py_ssize_t count
    cdef int gc_was_enabled
    cdef unsigned long *switch_number
    # Between two holds, the service has the GIL at least as long as the
    # hold before (see capture's turns).
    cdef bint turns

    cdef void take(self) noexcept:
        self.began = self.since = gmr_now_ns()
        self.gc_was_enabled = PyGC_Disable()

    cdef void close(self) noexcept:
        """End the current hold (the GIL still held)."""
        cdef long long held = gmr_now_ns() - self.began
        if self.gc_was_enabled:
            PyGC_Enable()
        self.count += 1
        self.total += held
        if held > self.longest:
            self.longest = held

    cdef void let_go(self, RawCapture raw, Py_ssize_t room) noexcept:
        """Between two holds: the GC as the service had it, the GIL released
        until another thread took it (or none wanted it), then held again;
        meanwhile, room for `room` more frames. When no other thread held the
        GIL between its release and its return (the interpreter's count of
        holder changes did not move), nobody was let in: the hold goes on,
        counted whole, the nap in it."""
        cdef long long released = gmr_now_ns()
        cdef long long held = released - self.began
        cdef unsigned long before = self.switch_number[0] if self.switch_number != NULL else 0
        cdef FrameRecord **frames = &raw.frames
        cdef Py_ssize_t *capacity = &raw.capacity_frames
        cdef Py_ssize_t needed = raw.nframes + room
        if self.gc_was_enabled:
            PyGC_Enable()
        with nogil:
            _prefault(frames, capacity, needed)
            gmr_hand_over(self.switch_number, before, 200000)
            if self.turns and (self.switch_number == NULL or self.switch_number[0] != before):
                gmr_nap_until(released + held)
            gmr_hurry()
        gmr_hurried()
        if self.switch_number != NULL and self.switch_number[0] == before:
            self.gc_was_enabled = PyGC_Disable()
            self.since = gmr_now_ns()
            return
        self.count += 1
        self.total += held
        if held > self.longest:
            self.longest = held
        self.take()


#: The most memory a capture touches before its first hold with the GIL
#: held (bytes): more is touched with the GIL let go (page faults, about a
#: microsecond a page, against a wait of 0.1-5 ms to have the GIL back).
cdef size_t TOUCH_HOLDING = 256 * 1024


cdef void _touch(void *contexts, size_t contexts_size, FrameRecord **frames,
                 Py_ssize_t *capacity, Py_ssize_t expected_frames) noexcept nogil:
    """The capture's arrays cleared and room made for the frames expected,
    every page touched (see capture)."""
    memset(contexts, 0, contexts_size)
    memset(frames[0], 0, <size_t>capacity[0] * sizeof(FrameRecord))
    _prefault(frames, capacity, expected_frames)


cdef void _prefault(FrameRecord **frames, Py_ssize_t *capacity, Py_ssize_t needed) noexcept nogil:
    """Room for `needed` frame records, the new pages touched: no page
    fault and no copy of the records inside a hold. No GIL (mapped memory)."""
    cdef Py_ssize_t before = capacity[0]
    if _grow(<void **>frames, capacity, needed, sizeof(FrameRecord)) < 0:
        return
    if capacity[0] > before:
        memset(&frames[0][before], 0, <size_t>(capacity[0] - before) * sizeof(FrameRecord))


def capture(greenlet_type=None, max_hold_ns=None, turns=False):
    """Copy every thread's stack and, given greenlet.greenlet, every greenlet's.

    Holds the GIL, with the cyclic GC disabled, only while it copies: the OS
    threads in one hold, the greenlets in holds of at most max_hold_ns
    (MAX_HOLD_NS) each, every greenlet whole within one, with the GIL let go
    between them. The longest hold is RawCapture.pause_ns; holds and
    held_ns say how many and how long in all. With turns, the service has
    the GIL between two holds for as long as the hold before took (the
    capture then lasts twice its holds): asked back at once, the GIL would
    go to one thread of the service for a few microseconds, and the others,
    whose own requests a change of holder resets, would wait for the whole
    capture. Greenlets are found in the
    young generations and the record kept since prepare() (see
    DESIGN.md), or by a scan of the whole heap where that record cannot be
    trusted (heap_scanned). The calling thread is left out. Raises
    RuntimeError where the walker is refused (layout_problem() says why).
    """
    if layout_problem() is not None:
        raise RuntimeError(f"the compiled walker is refused: {layout_problem()}")
    global _hint_contexts, _hint_frames, _hint_greenlets, _hint_depth, _known, _tracked
    global _mark_valid
    cdef RawCapture raw = RawCapture.__new__(RawCapture)
    cdef Found found
    cdef Py_ssize_t i, j, kept, mark_frames, mark_greenlets
    cdef long long budget = MAX_HOLD_NS if max_hold_ns is None else max_hold_ns
    cdef PyObject *get_dead = NULL
    cdef PyObject *get_frame = NULL
    cdef PyObject *get_parent = NULL
    cdef PyObject *obj
    cdef PyTypeObject *wanted = NULL
    cdef bint use_known = False
    cdef _Holds holds = _Holds.__new__(_Holds)
    cdef list dead
    cdef list held = None
    cdef Context *context
    cdef PyTypeObject *scan_type

    if greenlet_type is not None:
        getters = _greenlet_getters(greenlet_type)
        get_dead = <PyObject *>getters[0]
        get_frame = <PyObject *>getters[1]
        get_parent = <PyObject *>getters[2]
        wanted = <PyTypeObject *>greenlet_type
        if _usable and _hook is not None:
            if _tracked is None:
                _tracked = _greenlet_base()
            use_known = (_tracked is not None
                         and PyType_IsSubtype(wanted, <PyTypeObject *>_tracked))

    # Room for what the last capture needed, allocated before the pause.
    if (_grow(<void **>&raw.contexts, &raw.capacity_contexts, _hint_contexts, sizeof(Context)) < 0
            or _grow(<void **>&raw.frames, &raw.capacity_frames, _hint_frames,
                     sizeof(FrameRecord)) < 0):
        raise MemoryError()
    _found_init(&found, <PyTypeObject *>_tracked if use_known else wanted,
                <PyObject *>_sentinel if use_known else NULL)
    if found.type != NULL and _grow(<void **>&found.items, &found.capacity, _hint_greenlets,
                                    sizeof(PyObject *)) < 0:
        raise MemoryError()
    holds.switch_number = gmr_switch_number()
    holds.turns = turns
    dead = []
    # The frames of the greenlets known so far, about (as deep as the last
    # capture's were), room made and every page touched before the first
    # hold: the arrays are freshly mapped, and a page's first touch (a
    # fault) is not to happen inside a hold. With the GIL released, unless
    # there are only a few pages (TOUCH_HOLDING).
    cdef FrameRecord **frames = &raw.frames
    cdef Py_ssize_t *capacity = &raw.capacity_frames
    cdef Py_ssize_t expected_frames = max(_hint_frames, (len(_known) + 16) * _hint_depth
                                          if use_known else 0)
    cdef void *contexts = raw.contexts
    cdef size_t contexts_size = <size_t>raw.capacity_contexts * sizeof(Context)
    cdef size_t to_touch = contexts_size + <size_t>max(capacity[0], expected_frames) * sizeof(FrameRecord)
    if to_touch <= TOUCH_HOLDING:
        # A few pages: faulted in faster than the GIL comes back beside a
        # busy thread, even hurried.
        _touch(contexts, contexts_size, frames, capacity, expected_frames)
    else:
        with nogil:
            _touch(contexts, contexts_size, frames, capacity, expected_frames)
            gmr_hurry()
        gmr_hurried()

    # ---- the first hold: GIL held, the GC off, no switch to another thread;
    # every OS thread, and every greenlet found (not yet copied)
    holds.take()
    raw._copy_threads()
    if found.type != NULL:
        if use_known:
            _hook_to_end()
            use_known = _complete and _hook_last() and not gmr_gc_collecting()
        if use_known:
            if not (_mark_valid and _mark_collections == _collections
                    and _find_young_after(&found, <PyObject *>_young_mark)):
                _found_clear(&found)  # what a walk from a moved mark found
                found.visited = found.failed = 0
                _find_young(&found)
                use_known = not found.failed and found.saw_sentinel
        if use_known:
            # Right after the look, before anything else is tracked.
            _mark_young()
            try:
                _remember(&found)
            except BaseException:
                PyErr_Clear()
                _mark_valid = False
                use_known = False
        if use_known:
            raw.heap_objects = found.visited
            # The young greenlets _known holds already are added from it.
            kept = 0
            for i in range(found.count):
                obj = found.items[i]
                ref = _known.get(<Py_ssize_t>obj)
                if ref is not None and ref() is <object>obj:
                    Py_XDECREF(obj)
                else:
                    found.items[kept] = obj
                    kept += 1
            found.count = kept
            for key, ref in _known.items():
                green = ref()
                if green is None:
                    dead.append(key)
                elif _grow(<void **>&found.items, &found.capacity, found.count + 1,
                           sizeof(PyObject *)) < 0:
                    found.failed = 1
                    break
                else:
                    Py_INCREF(<PyObject *>green)
                    found.items[found.count] = <PyObject *>green
                    found.count += 1
                green = None
            for key in dead:
                ref = _known.get(key)
                if ref is not None and ref() is None:
                    del _known[key]
            del dead[:]
        else:
            # The record cannot be trusted (or is not kept): the whole heap,
            # once, and the record starts again from it.
            _mark_valid = False
            _found_clear(&found)
            scan_type = wanted
            if _tracked is not None and PyType_IsSubtype(wanted, <PyTypeObject *>_tracked):
                scan_type = <PyTypeObject *>_tracked
            _found_init(&found, scan_type, NULL)
            _find_greenlets(&found)
            raw.heap_objects = found.visited
            raw.heap_scanned = True
            # Kept as the record unless a collection is under way in another
            # thread: then objects it works on are on none of its lists.
            if (not found.failed and _usable and _hook is not None and _tracked is not None
                    and scan_type == <PyTypeObject *>_tracked and not gmr_gc_collecting()):
                try:
                    _adopt(&found)
                    _mark_young()
                except BaseException:
                    PyErr_Clear()
        # Only the greenlets asked for (a subclass of the tracked type).
        if found.type != wanted:
            kept = 0
            for i in range(found.count):
                obj = found.items[i]
                if Py_TYPE(obj) == wanted or PyType_IsSubtype(Py_TYPE(obj), wanted):
                    found.items[kept] = obj
                    kept += 1
                else:
                    Py_XDECREF(obj)
            found.count = kept
    # Still in the hold, the GC still off: every greenlet found, where the
    # GC can see it (see RawCapture.held), before anything can run Python
    # code and let a pending call, a collection or another thread run
    # greenlet's clean-up of a dead thread; and kept alive until copied.
    if found.count and not found.failed:
        held = []
        for i in range(found.count):
            held.append(<object>found.items[i])
        raw.held = held

    if found.count and not found.failed and not raw.failed:
        # ---- the greenlets, in holds of at most `budget`
        if _grow(<void **>&raw.contexts, &raw.capacity_contexts, raw.ncontexts + found.count,
                 sizeof(Context)) < 0:
            raw.failed = 1
        mark_frames = raw.nframes
        mark_greenlets = 0
        i = 0
        while i < found.count and not raw.failed:
            if gmr_now_ns() - holds.since >= budget:
                holds.let_go(raw, max(2 * (raw.nframes - mark_frames), 4096))
                mark_frames = raw.nframes
            j = 0
            # Check the clock every few hundred frames.
            while i < found.count and j < 256 and not raw.failed:
                raw._copy_greenlet(found.items[i], <PyObject *>greenlet_type,
                                   get_dead, get_frame, get_parent)
                i += 1
                if raw.ncontexts == 0 or raw.failed:
                    break
                context = &raw.contexts[raw.ncontexts - 1]
                j += 1 + context.depth
                if context.parent != NULL:
                    # Where the GC sees it, before the GIL is let go.
                    held.append(<object>context.parent)
    holds.close()
    # ---- end of the last hold

    raw.pause_ns = holds.longest
    raw.holds = holds.count
    raw.held_ns = holds.total
    _found_clear(&found)
    if raw.failed or found.failed:
        raw._release()
        raise MemoryError("out of memory while capturing stacks")
    _hint_contexts = max(raw.ncontexts + 16, 64)
    _hint_frames = max(raw.nframes + 256, 1024)
    if raw.ncontexts > raw.threads:
        _hint_depth = min(max(raw.nframes // raw.ncontexts + 2, 4), 64)
    _hint_greenlets = max(raw.greenlets + 16, 64)
    return raw
