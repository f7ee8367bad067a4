"""Identical stacks shown once: 10,000 greenlets parked in three places are
three stacks with their counts, not 10,000 listings (Go's pprof debug=1)."""

from __future__ import annotations

from collections.abc import Callable, Hashable, Iterable
from dataclasses import dataclass
from typing import Generic, TypeVar

T = TypeVar("T")

#: Members a report names for each group; its count says how many there are.
MEMBERS_SHOWN = 20


@dataclass(frozen=True, slots=True)
class StackGroup(Generic[T]):
    """Contexts (threads, greenlets) that stand in the very same stack."""

    #: The stack they share, as stack_of gave it.
    stack: Hashable
    #: Every context with that stack, in the order they were given.
    members: tuple[T, ...]


def group_stacks(contexts: Iterable[T], stack_of: Callable[[T], Hashable]) -> list[StackGroup[T]]:
    """Group contexts by identical stacks (stack_of: a key equal for equal
    stacks, the model's stack index), largest group first, ties in
    first-seen order."""
    groups: dict[Hashable, list[T]] = {}
    for context in contexts:
        key = stack_of(context)
        members = groups.get(key)
        if members is None:
            members = groups[key] = []
        members.append(context)
    ordered = sorted(groups.items(), key=lambda item: -len(item[1]))
    return [StackGroup(key, tuple(members)) for key, members in ordered]
