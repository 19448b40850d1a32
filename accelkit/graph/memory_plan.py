"""Static memory plan: give every intermediate value of a captured call a slot, reusing slots whose values are dead.

Liveness is by position in the dispatch list: a value lives from its first use to its last (outputs
to the end). Walking the steps in order, a value starting at a step takes the smallest free slot that
holds it (best fit), else grows the largest free slot, else opens a new one; slots of values whose
last use is a step are freed after that step, so no step reads and writes the same slot through two
values. Slot sizes are only fixed at the end (the largest value each one held).

>>> plan = plan_memory({0: 1024, 1: 1024, 2: 512}, {0: (0, 1), 1: (1, 2), 2: (2, 3)})
>>> plan.slot_of, plan.sizes
({0: 0, 1: 1, 2: 0}, [1024, 1024])
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class MemoryPlan:
    """``slot_of[vid]`` -> slot index; ``sizes[slot]`` in bytes; ``total`` bytes of all slots."""

    slot_of: dict[int, int]
    sizes: list[int]

    @property
    def total(self) -> int:
        return sum(self.sizes)


def plan_memory(sizes: dict[int, int], lifetimes: dict[int, tuple[int, int]]) -> MemoryPlan:
    """Slots for values ``vid`` of ``sizes[vid]`` bytes living over steps ``lifetimes[vid] = (first, last)``."""
    starts: dict[int, list[int]] = {}
    ends: dict[int, list[int]] = {}
    for vid, (first, last) in lifetimes.items():
        starts.setdefault(first, []).append(vid)
        ends.setdefault(last, []).append(vid)
    slot_of: dict[int, int] = {}
    slot_sizes: list[int] = []
    free: set[int] = set()
    for pos in sorted(set(starts) | set(ends)):
        for vid in sorted(starts.get(pos, ()), key=lambda v: -sizes[v]):  # big values pick first
            need = sizes[vid]
            fits = [s for s in free if slot_sizes[s] >= need]
            if fits:
                slot = min(fits, key=lambda s: (slot_sizes[s], s))
            elif free:
                slot = max(free, key=lambda s: (slot_sizes[s], -s))
                slot_sizes[slot] = need
            else:
                slot = len(slot_sizes)
                slot_sizes.append(need)
            free.discard(slot)
            slot_of[vid] = slot
        for vid in ends.get(pos, ()):
            free.add(slot_of[vid])
    return MemoryPlan(slot_of, slot_sizes)


__all__ = ["MemoryPlan", "plan_memory"]
