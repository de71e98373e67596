"""Each program's example command line: of its instances first seen in its earliest
snapshot, the first in table order, against a plain loop over every instance."""

from __future__ import annotations

import numpy as np
from hypothesis import given
from hypothesis import strategies as st

from utils.judge.program_growth import _examples
from utils.reduce.process_records import InstanceTable


class _Records:
    """What _examples reads of the records: each instance's group and the command lines."""

    def __init__(self, groups: list[int], count: int) -> None:
        self.groups = np.array(groups, np.int64)
        self.commands = [f"cmd {code}" for code in range(len(groups))]
        self.count = count

    def instance_groups(self) -> np.ndarray:
        return self.groups


@given(st.lists(st.tuples(st.integers(0, 5), st.integers(0, 4)), max_size=40))
def test_the_example_is_the_earliest_instance_first_in_table_order(
    instances: list[tuple[int, int]],
) -> None:
    groups = [group for group, _ in instances]
    first_rank = np.array([rank for _, rank in instances], np.int64)
    cmd = np.arange(len(instances), dtype=np.int64)
    zeros = np.zeros(len(instances), np.int64)
    table = InstanceTable(
        np.arange(len(instances)), zeros, zeros, first_rank, zeros, zeros, zeros, cmd, zeros, zeros
    )
    records = _Records(groups, 7)
    expected = [""] * 7
    best: dict[int, tuple[int, int]] = {}
    for number, (group, rank) in enumerate(instances):
        if group not in best or rank < best[group][0]:
            best[group] = (rank, number)
    for group, (_, number) in best.items():
        expected[group] = f"cmd {number}"
    assert _examples(records, table, 7) == expected  # type: ignore[arg-type]
