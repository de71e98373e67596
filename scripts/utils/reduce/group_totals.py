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

from collections.abc import Iterator
from typing import NamedTuple, Protocol

import numpy as np
import numpy.typing as npt
import pandas as pd

from utils.reduce.programs import program_of

IntArray = npt.NDArray[np.int64]
GROUP_BY = ("program", "user")


class GroupRows(NamedTuple):
    """One batch's totals: a row per (snapshot, group) with kept rows. Ranks count from the
    batch's first snapshot; `group` indexes the batch's own group names. A day summary keeps
    them on disk until a run asks for them (utils.reduce.summary_kinds.StoredGroupRows):
    only the snapshots of the two compared periods are, unless a program is plotted."""

    rank: npt.NDArray[np.int32]
    group: npt.NDArray[np.int32]
    total_milli: IntArray  # thousandths of a MiB

    def load(self) -> GroupRows:
        return self


class RowsSource(Protocol):
    """A batch's GroupRows, or one left in a day summary until asked for."""

    def load(self) -> GroupRows: ...


class GroupPart(NamedTuple):
    """One batch's totals: per group of the batch (`names`), what the whole window's
    figures add up from, and the per-snapshot rows."""

    names: npt.NDArray[np.object_]
    most_processes: IntArray  # the most processes of the group in one snapshot
    processes: IntArray  # processes summed over the snapshots
    foot_count: IntArray  # of those, the ones counted with anon + swap
    rows: RowsSource
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
    width = max(len(names), 1)
    key = rank[kept] * width + group[kept]
    unique, at = np.unique(key, return_inverse=True)
    total = np.zeros(len(unique), np.int64)
    np.add.at(total, at, size)
    count = np.bincount(at, minlength=len(unique)).astype(np.int64)
    foot_count = np.bincount(at, weights=footed[kept], minlength=len(unique)).astype(np.int64)
    row_group = unique % width
    most = np.zeros(len(names), np.int64)
    np.maximum.at(most, row_group, count)
    return GroupPart(
        names=names,
        most_processes=most,
        processes=np.bincount(row_group, weights=count, minlength=len(names)).astype(np.int64),
        foot_count=np.bincount(row_group, weights=foot_count, minlength=len(names)).astype(
            np.int64
        ),
        rows=GroupRows((unique // width).astype(np.int32), row_group.astype(np.int32), total),
        run_group=group[run_starts] if len(group) else np.empty(0, np.int64),
    )


class GroupSlice(NamedTuple):
    """One batch's rows in the window's terms: its first snapshot's rank, how many
    snapshots it holds, and the window's code of each of its groups."""

    base: int
    snapshots: int
    codes: IntArray
    rows: RowsSource


class ReplacedRows(NamedTuple):
    """The per-snapshot rows of some groups counted another way (utils.reduce.pss_totals:
    in PSS), held in memory: they stand for those groups' rows in every batch."""

    groups: npt.NDArray[np.bool_]  # per group code: whether its rows are these
    rank: IntArray  # sorted
    group: IntArray
    total_milli: IntArray


class GroupTotals(NamedTuple):
    """The window's totals per group (codes into `names`): the figures over every snapshot,
    and each batch's per-snapshot rows, read when asked for (but those of the groups in
    `replaced`, which are its own)."""

    names: list[str]
    most_processes: IntArray  # the most processes of the group in one snapshot
    processes: IntArray  # processes summed over every snapshot
    foot_count: IntArray  # of those, the ones counted with anon + swap
    slices: list[GroupSlice]
    replaced: ReplacedRows | None = None

    def rows_between(self, first: int, last: int) -> tuple[IntArray, IntArray, IntArray]:
        """The (rank, group code, total) rows of the snapshots first to last (ranks)."""
        parts = list(self.parts_between(first, last))
        if not parts:
            empty = np.empty(0, np.int64)
            return empty, empty, empty
        rank, group, total = (np.concatenate(column) for column in zip(*parts, strict=True))
        return rank, group, total

    def parts_between(
        self, first: int, last: int, wanted: npt.NDArray[np.bool_] | None = None
    ) -> Iterator[tuple[IntArray, IntArray, IntArray]]:
        """The (rank, group code, total) rows of the snapshots first to last, one batch at
        a time, then the replaced groups' rows; only the groups `wanted` (per code) if
        given. A batch is read only when a group it may hold is wanted and not replaced."""
        own = np.ones(len(self.names), bool) if wanted is None else wanted
        if self.replaced is not None:
            own = own & ~self.replaced.groups
        for part in self.slices if own.any() else ():
            if part.base > last or part.base + part.snapshots <= first:
                continue
            if not own[part.codes].any():
                continue
            rows = part.rows.load()
            rank = rows.rank.astype(np.int64) + part.base
            group = part.codes[rows.group]
            inside = (rank >= first) & (rank <= last) & own[group]
            yield rank[inside], group[inside], rows.total_milli[inside]
        if self.replaced is not None:
            extra = self.replaced
            low, high = np.searchsorted(extra.rank, [first, last + 1])
            rank, group = extra.rank[low:high], extra.group[low:high]
            inside = np.ones(len(group), bool) if wanted is None else wanted[group]
            yield rank[inside], group[inside], extra.total_milli[low:high][inside]
