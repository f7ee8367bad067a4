"""Identical stacks shown once: 10,000 greenlets parked in three places are
three stacks with their counts, not 10,000 listings (Go's pprof debug=1)."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Generic, TypeVar

from gmr.snapshot import Frame

T = TypeVar("T")

#: Members a report names for each group; its count says how many there are.
MEMBERS_SHOWN = 20


@dataclass(frozen=True)
class StackGroup(Generic[T]):
    """Contexts (threads, greenlets) that stand in the very same frames."""

    #: The shared frames, outermost first.
    frames: tuple[Frame, ...]
    #: Every context with those frames, in the order they were given.
    members: tuple[T, ...]


def group_stacks(contexts: Iterable[T],
                 frames_of: Callable[[T], tuple[Frame, ...]] | None = None) -> list[StackGroup[T]]:
    """Group contexts by identical stacks (same code objects, same
    instructions), largest group first, ties in first-seen order."""
    get: Callable[[T], tuple[Frame, ...]] = frames_of or (lambda context: context.frames)  # type: ignore[attr-defined]
    groups: dict[tuple[tuple[int, int], ...], list[T]] = {}
    shapes: dict[tuple[tuple[int, int], ...], tuple[Frame, ...]] = {}
    # Contexts in the same frames mostly share one frames tuple (see
    # snapshot): its key is made once.
    keys: dict[int, tuple[tuple[int, int], ...]] = {}
    for context in contexts:
        frames: tuple[Frame, ...] = get(context)
        key = keys.get(id(frames))
        if key is None:
            key = keys[id(frames)] = tuple((id(frame.code), frame.lasti) for frame in frames)
        if key not in groups:
            groups[key] = []
            shapes[key] = frames
        groups[key].append(context)
    ordered = sorted(groups.items(), key=lambda item: -len(item[1]))
    return [StackGroup(shapes[key], tuple(members)) for key, members in ordered]


def trim(frames: Sequence[Frame], max_depth: int) -> tuple[list[Frame], int, list[Frame]]:
    """(outermost frames, how many are omitted, innermost frames) for a stack
    deeper than max_depth: its top and bottom are kept, and the cut is said
    ("N frames omitted"), never silent. max_depth <= 0 keeps everything."""
    if max_depth <= 0 or len(frames) <= max_depth:
        return list(frames), 0, []
    inner = max_depth // 2
    outer = max_depth - inner
    return list(frames[:outer]), len(frames) - max_depth, list(frames[len(frames) - inner:])
