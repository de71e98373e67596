"""The (PID, STARTED) map as sorted arrays against a plain dict, over any pairs (out-of-range
ones included) added and looked up batch after batch."""

from __future__ import annotations

import numpy as np
from hypothesis import given
from hypothesis import strategies as st

from utils.reduce import instance_keys
from utils.reduce.instance_keys import InstanceKeys, first_of_pairs, pack, packable

# Small ranges so that pairs repeat; a few beyond what packs into one key.
PIDS = st.one_of(st.integers(1, 40), st.sampled_from([-1, 2**22, 2**31 - 1]))
STARTS = st.one_of(st.integers(0, 30), st.sampled_from([2**41, 2**62]))
PAIR = st.tuples(PIDS, STARTS)


def arrays(pairs: list[tuple[int, int]]) -> tuple[np.ndarray, np.ndarray]:
    pid = np.array([p for p, _ in pairs], np.int32)
    started = np.array([s for _, s in pairs], np.int64)
    return pid, started


def test_keys_pack_apart() -> None:
    pid = np.array([1, 2**22 - 1, 1], np.int32)
    started = np.array([5, 5, 6], np.int64)
    assert len(set(pack(pid, started).tolist())) == 3
    assert packable(pid, started).all()
    assert not packable(np.array([2**22], np.int32), np.array([0], np.int64)).any()
    assert not packable(np.array([1], np.int32), np.array([2**41], np.int64)).any()


def test_first_of_pairs_exact() -> None:
    pid, started = arrays([(5, 1), (3, 2), (5, 1), (5, 2), (3, 2)])
    first, pair = first_of_pairs(pid, started)
    assert first.tolist() == [0, 1, 3]
    assert pair.tolist() == [0, 1, 0, 2, 1]


@given(st.lists(PAIR, max_size=60))
def test_first_of_pairs_as_a_loop(pairs: list[tuple[int, int]]) -> None:
    seen: dict[tuple[int, int], int] = {}
    want_first: list[int] = []
    want_pair: list[int] = []
    for index, key in enumerate(pairs):
        if key not in seen:
            seen[key] = len(want_first)
            want_first.append(index)
        want_pair.append(seen[key])
    first, pair = first_of_pairs(*arrays(pairs))
    assert first.tolist() == want_first
    assert pair.tolist() == want_pair


@given(st.lists(st.lists(PAIR, max_size=30), max_size=12), st.integers(1, 8))
def test_map_as_a_dict(batches: list[list[tuple[int, int]]], merge_at: int) -> None:
    """Each batch: look every pair up, then add the ones not found (each once), numbered
    in order; the answers are a dict's, however often the small part is merged."""
    old, instance_keys.MERGE_AT = instance_keys.MERGE_AT, merge_at
    try:
        keys, reference = InstanceKeys(), dict[tuple[int, int], int]()
        number = 0
        for batch in batches:
            pid, started = arrays(batch)
            assert keys.get(pid, started).tolist() == [reference.get(k, -1) for k in batch]
            new = list(dict.fromkeys(k for k in batch if k not in reference))
            numbers = np.arange(number, number + len(new), dtype=np.int64)
            keys.add(*arrays(new), numbers)
            reference.update(zip(new, numbers.tolist(), strict=True))
            number += len(new)
            assert len(keys) == len(reference)
    finally:
        instance_keys.MERGE_AT = old
