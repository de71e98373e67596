"""Memory totalled per program (or per user) and snapshot, folded batch by batch as the
process rows are read, like the instance records: never a table of all rows.

A row counts with its anon + swap where the dumps carry it, else with its RSS (an older
collector's rows, or a process gone before its status was read); `basis` in
program_growth.csv says which a program's totals are. Summed RSS counts a shared page once
per process that maps it, and so does summed anon + swap for pages a forked worker shares
copy-on-write: utils.reduce.pss_totals replaces a program's totals with its processes'
proportional shares where the dumps have them (docs/memory-numbers.md).
"""

from __future__ import annotations

from typing import NamedTuple, Protocol

import numpy as np
import numpy.typing as npt
import pandas as pd

from utils.reduce.programs import program_of

IntArray = npt.NDArray[np.int64]
GROUP_BY = ("program", "user")


class GroupPart(NamedTuple):
    """One batch's totals: a row per (snapshot, group) with kept rows. Ranks count from the
    batch's first snapshot; `group` indexes `names`, the batch's own group names."""

    names: npt.NDArray[np.object_]
    rank: IntArray
    group: IntArray
    total_milli: IntArray  # thousandths of a MiB
    processes: IntArray  # processes of the group in the snapshot
    foot_count: IntArray  # of those, the ones counted with anon + swap
    run_group: IntArray  # per run of the batch: the group of its first row


def row_groups(frame: pd.DataFrame, group_by: str) -> tuple[npt.NDArray[np.object_], IntArray]:
    """The batch's group names, and each row's group (by the frame's row order). The
    program is worked out once per distinct command line (a categorical's category)."""
    column = frame["CMD" if group_by == "program" else "USER"]
    categories = column.cat.categories.to_numpy(dtype=object)
    keys = [program_of(str(c)) if group_by == "program" else str(c) for c in categories]
    names, of_category = np.unique(np.array(keys, dtype=object), return_inverse=True)
    codes = column.cat.codes.to_numpy()
    return names, of_category.astype(np.int64)[codes]


class GroupedRows(Protocol):
    """What group_part needs of a batch's rows grouped by PID (batch_runs._Rows)."""

    @property
    def rows(self) -> IntArray: ...  # where each row is in the batch's frame
    @property
    def rank(self) -> IntArray: ...
    @property
    def kept(self) -> npt.NDArray[np.bool_]: ...
    @property
    def rss_milli(self) -> IntArray: ...
    @property
    def foot_milli(self) -> IntArray: ...  # anon + swap, -1 unknown
    @property
    def starts(self) -> IntArray: ...  # the first row of each run


def group_part(frame: pd.DataFrame, grouped: GroupedRows, group_by: str) -> GroupPart:
    """Sum the kept rows' memory per (snapshot, group), in thousandths of a MiB."""
    rows, rank, kept, run_starts = grouped.rows, grouped.rank, grouped.kept, grouped.starts
    rss, foot = grouped.rss_milli, grouped.foot_milli
    names, by_row = row_groups(frame, group_by)
    group = by_row[rows]
    footed = foot >= 0
    size = np.where(footed, foot, rss)[kept]
    key = rank[kept] * len(names) + group[kept]
    unique, at = np.unique(key, return_inverse=True)
    total = np.zeros(len(unique), np.int64)
    np.add.at(total, at, size)
    count = np.bincount(at, minlength=len(unique)).astype(np.int64)
    foot_count = np.bincount(at, weights=footed[kept], minlength=len(unique)).astype(np.int64)
    return GroupPart(
        names=names,
        rank=unique // max(len(names), 1),
        group=unique % max(len(names), 1),
        total_milli=total,
        processes=count,
        foot_count=foot_count,
        run_group=group[run_starts] if len(group) else np.empty(0, np.int64),
    )


class GroupTotals(NamedTuple):
    """Every (snapshot, group) total of the window: ranks as ProcessRecords counts them,
    groups as codes into `names`."""

    names: list[str]
    rank: IntArray
    group: IntArray
    total_milli: IntArray
    processes: IntArray
    foot_count: IntArray
