"""Identical stacks shown once: 10,000 greenlets parked in three places are
three stacks with their counts, not 10,000 listings (Go's pprof debug=1)."""

from __future__ import annotations

from collections.abc import Hashable, Iterable
from dataclasses import dataclass

#: Members a report names for each group; its count says how many there are.
MEMBERS_SHOWN = 20


@dataclass(frozen=True, slots=True)
class StackGroup:
    """Contexts (threads, greenlets) that stand in the very same stack."""

    #: The key they share, as it was given.
    key: Hashable
    #: How many contexts share it.
    count: int
    #: The positions of the first `shown` of them, in the order given.
    first: tuple[int, ...]


def group_stacks(keys: Iterable[Hashable], shown: int = MEMBERS_SHOWN) -> list[StackGroup]:
    """Group contexts by identical stacks, given each one's key in order (equal
    for equal stacks: the model's stack index, and what else keeps two
    apart), largest group first, ties in first-seen order. Only the first
    `shown` positions of a group are kept: 10,000 greenlets in three places
    keep sixty, not 10,000."""
    counts: dict[Hashable, int] = {}
    first: dict[Hashable, list[int]] = {}
    for position, key in enumerate(keys):
        seen = counts.get(key, 0)
        counts[key] = seen + 1
        if seen < shown:
            first.setdefault(key, []).append(position)
    ordered = sorted(counts.items(), key=lambda item: -item[1])
    return [StackGroup(key, count, tuple(first[key])) for key, count in ordered]
