# The typed boundary of the frame walker. gmr/_walker.pyx (compiled) and
# gmr/_walker_py.py (pure) both meet it; gmr/_impl.py picks one.
from types import CodeType
from typing import Any, Final

from typing_extensions import disjoint_base

IMPLEMENTATION: Final[str]  # "compiled" or "pure"

GREENLET_NOT_STARTED: Final[int]
GREENLET_SUSPENDED: Final[int]
GREENLET_RUNNING: Final[int]
GREENLET_DEAD: Final[int]

# Whether greenlets that gc.freeze() froze are found.
SEES_FROZEN: Final[bool]

# (code object, byte offset of the current instruction or -1), innermost first.
RawFrames = tuple[tuple[CodeType, int], ...]

# The compiled walker's bound on one hold of the GIL (ns): the threads in one
# hold, the greenlets in holds of at most this, each greenlet whole in one.
MAX_HOLD_NS: Final[int]

# Whether greenlets are found without a scan of the heap at each report.
DISCOVERY_WITHOUT_HEAP_SCAN: Final[bool]

# Set up greenlet discovery (the one scan of the heap, the GC hook); called
# once the walker is chosen. Again: puts the hook back if it was taken off.
def prepare() -> None: ...

# None when the walker reads this interpreter right; else one line on why not.
def layout_problem() -> str | None: ...

# How the holder of the GIL is asked to let go, for the trigger's use_ask
# (or None where this walker cannot; gmr/_switch.h).
def ask_capsule() -> object: ...

# The trigger's hurry_capsule() (or None): True when a capture takes the GIL
# back at once after each hand-over between two holds (compiled twin only).
def use_hurry(capsule: object) -> bool: ...

# The object's own instance dict, or None when it has none yet: read where
# the type keeps it, never made (obj.__dict__ makes one, for good, on a
# greenlet that had none).
def instance_dict(obj: object) -> dict[str, object] | None: ...

@disjoint_base  # neither twin takes new attributes (a cdef class; slots in the pure one)
class RawCapture:
    @property
    def threads(self) -> int: ...
    @property
    def greenlets(self) -> int: ...
    # The longest hold of the GIL by the capture (GC disabled), in ns.
    @property
    def pause_ns(self) -> int: ...
    # Objects visited to find greenlets (the young generations, or the heap).
    @property
    def heap_objects(self) -> int: ...
    # How many holds the capture took (other threads ran between them) and
    # their total, in ns.
    @property
    def holds(self) -> int: ...
    @property
    def held_ns(self) -> int: ...
    # Whether this capture scanned the whole heap for greenlets.
    @property
    def heap_scanned(self) -> bool: ...
    # Stacks whose walk stopped at a frame that failed its check.
    @property
    def broken_stacks(self) -> int: ...
    # The compiled core hands out one frames tuple per distinct stack: contexts
    # standing in the same frames share it (the pure twin need not).
    def thread(self, index: int) -> tuple[int, int, RawFrames]: ...
    def greenlet(self, index: int) -> tuple[object, object | None, int, RawFrames]: ...
    # Greenlets start to stop written into the columns (each sized for every
    # greenlet) at their own positions: id() of each and of its parent (0:
    # none), its state, its type's number (kind_numbers, filled in for a new
    # type), its stack's number (stack_numbers, by id() of the frames tuple,
    # filled in for a new one, whose frames are appended to distinct), and
    # the greenlet into objects; one call holds the GIL throughout.
    def greenlet_table(
        self, start: int, stop: int, ids: Any, parents: Any, states: Any, kinds: Any,
        stacks: Any, objects: list[object], kind_numbers: dict[type, int],
        stack_numbers: dict[int, int], distinct: list[RawFrames],
    ) -> None: ...
    # Every greenlet at once: greenlets, parents (or None), states, frames.
    def greenlet_columns(
        self,
    ) -> tuple[list[object], list[object | None], list[int], list[RawFrames]]: ...
    def release(self) -> None: ...

def capture(
    greenlet_type: type | None = None, max_hold_ns: int | None = None, turns: bool = False,
) -> RawCapture: ...
