"""The instance of each (PID, STARTED) seen so far, as sorted numpy arrays: a year holds
hundreds of thousands of process instances, which a dict of tuples keeps at about 200 bytes
each and looks up one Python call at a time.

A key packs both into one int64: STARTED (centiseconds since 1970, under 2**41 until the
year 2667) above the PID (under 2**22: the kernel's PID_MAX_LIMIT on 64-bit systems,
include/linux/threads.h). A pair outside those bounds (only a damaged or crafted dump has
one) is kept in a dict instead, so that no two pairs ever share a key.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

IntArray = npt.NDArray[np.int64]
PID_BITS = 22
# New keys wait in a small sorted array, merged into the large one once they are this many
# (or a fraction of it): each batch then copies the small one, not the whole store.
MERGE_AT = 65_536


STARTED_LIMIT = 1 << (63 - PID_BITS)


def packable(pid: npt.NDArray[np.signedinteger], started: IntArray) -> npt.NDArray[np.bool_]:
    """Which pairs pack into one key."""
    return (pid >= 0) & (pid < (1 << PID_BITS)) & (started >= 0) & (started < STARTED_LIMIT)


def pack(pid: npt.NDArray[np.signedinteger], started: IntArray) -> IntArray:
    """(PID, STARTED) as one key, where packable."""
    return (started.astype(np.int64) << PID_BITS) | pid.astype(np.int64)


class InstanceKeys:
    """A map of (PID, STARTED) pairs to instance numbers, looked up and extended an array
    at a time."""

    def __init__(self) -> None:
        empty = np.empty(0, np.int64)
        self._parts: list[tuple[IntArray, IntArray]] = [(empty, empty), (empty, empty)]
        self._odd: dict[tuple[int, int], int] = {}

    def __len__(self) -> int:
        return sum(len(keys) for keys, _ in self._parts) + len(self._odd)

    def get(self, pid: npt.NDArray[np.signedinteger], started: IntArray) -> IntArray:
        """The instance of each pair; -1 where it has none."""
        found = np.full(len(pid), -1, np.int64)
        packed = packable(pid, started)
        keys = pack(pid[packed], started[packed])
        at_packed = np.flatnonzero(packed)
        for known, numbers in self._parts:
            if not len(known):
                continue
            at = np.minimum(np.searchsorted(known, keys), len(known) - 1)
            hit = known[at] == keys
            found[at_packed[hit]] = numbers[at[hit]]
        for run in np.flatnonzero(~packed).tolist():
            found[run] = self._odd.get((int(pid[run]), int(started[run])), -1)
        return found

    def add(self, pid: npt.NDArray[np.signedinteger], started: IntArray, numbers: IntArray) -> None:
        """Pairs none of which is in the map yet (distinct), with their instances."""
        packed = packable(pid, started)
        for run in np.flatnonzero(~packed).tolist():
            self._odd[(int(pid[run]), int(started[run]))] = int(numbers[run])
        large, small = self._parts
        small = _merged(small, (pack(pid[packed], started[packed]), numbers[packed]))
        if len(small[0]) >= max(MERGE_AT, len(large[0]) // 8):
            large, small = _merged(large, small), (small[0][:0], small[1][:0])
        self._parts = [large, small]


def first_of_pairs(
    pid: npt.NDArray[np.signedinteger], started: IntArray
) -> tuple[IntArray, IntArray]:
    """The distinct pairs in order of first appearance: the index of each one's first
    element, and each element's pair (an index into the first array)."""
    if not len(pid):
        empty = np.empty(0, np.int64)
        return empty, empty
    order = np.lexsort((np.arange(len(pid)), started, pid))
    pid_sorted, started_sorted = pid[order], started[order]
    new = np.r_[
        True, (pid_sorted[1:] != pid_sorted[:-1]) | (started_sorted[1:] != started_sorted[:-1])
    ]
    group_sorted = np.cumsum(new) - 1
    first = order[new]  # by sorted pair; reorder by first appearance
    rank = np.empty(len(first), np.int64)
    by_appearance = np.argsort(first, kind="stable")
    rank[by_appearance] = np.arange(len(first))
    pair = np.empty(len(pid), np.int64)
    pair[order] = rank[group_sorted]
    return first[by_appearance], pair


def _merged(
    one: tuple[IntArray, IntArray], two: tuple[IntArray, IntArray]
) -> tuple[IntArray, IntArray]:
    """Two maps as one, sorted by key: one is sorted, and no key is in both. The few keys
    of a batch are sorted and inserted into the many, a copy rather than a sort of them."""
    order = np.argsort(two[0], kind="stable")
    keys, numbers = two[0][order], two[1][order]
    at = np.searchsorted(one[0], keys)
    return np.insert(one[0], at, keys), np.insert(one[1], at, numbers)
