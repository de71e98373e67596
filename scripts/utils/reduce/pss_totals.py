"""Program totals that count shared pages once: each process's proportional share (PSS_MB +
SWAP_PSS_MB) summed per (snapshot, program), folded batch by batch like the other totals.

The collector reads a process's share only in some snapshots (utils.collect.smaps): between
two reads its last share is carried forward, and before its first read its first share is
carried back (a process's share moves only when its siblings come and go). A program's
series is counted in PSS only when every one of its rows in the window has a share, read or
carried (a snapshot in which no share was read at all, an older collector's, gives none);
else its totals stay anon + swap (or RSS) for the whole series, and `basis` says
which: bases are never mixed inside one series. Why each number is used where it is:
docs/memory-numbers.md.

Per batch (PssPart, in the parser threads): the totals of the rows with a share read in the
batch or carried from an earlier row of their run, and per run its leading rows without one
(carried at the fold) with the run's first and last share. The fold (PssFold) keeps each
instance's first and last share, so carrying works across batches and day summaries.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import NamedTuple, Protocol

import numpy as np
import numpy.typing as npt
import pandas as pd

from utils.reduce.group_totals import GroupTotals, ReplacedRows, row_groups

IntArray = npt.NDArray[np.int64]
MILLI = 1000
BASIS_PSS = "pss"  # every row's share read in its snapshot
BASIS_CARRIED = "pss carried"  # some carried from another snapshot of the same process
PSS_COLUMNS = ("PSS_MB", "SWAP_PSS_MB")


class PssPart(NamedTuple):
    """One batch's shares. Ranks count from the batch's first snapshot; groups index
    `names`, the batch's own group names (as utils.reduce.group_totals names them)."""

    names: npt.NDArray[np.object_]
    rank: IntArray  # per (snapshot, group) with a shared row
    group: IntArray
    total_milli: IntArray  # the shares of its rows, thousandths of a MiB
    shared: IntArray  # rows with a share, read or carried within the run
    read: IntArray  # rows with a share read in that snapshot
    # Per head (a run's leading kept rows without a share, split where its command changed,
    # so that each row waits in its own group): its run, group, first rank and rows.
    head_run: IntArray
    head_group: IntArray
    head_rank: IntArray
    head_rows: IntArray
    first_milli: IntArray  # the run's first share (-1: none)
    last_milli: IntArray  # its last share (-1: none)
    live_rank: IntArray  # the snapshots with a share read: the others' rows have none


class RunRows(Protocol):
    """What pss_part needs of a batch's rows grouped by PID (batch_runs._Rows)."""

    @property
    def rows(self) -> IntArray: ...
    @property
    def rank(self) -> IntArray: ...
    @property
    def kept(self) -> npt.NDArray[np.bool_]: ...
    @property
    def starts(self) -> IntArray: ...


def pss_part(frame: pd.DataFrame, grouped: RunRows, group_by: str) -> PssPart | None:
    """The batch's shares; None when no row has one (an older collector's files cost
    nothing more)."""
    if PSS_COLUMNS[0] not in frame.columns:
        return None
    share = _share_milli(frame)[grouped.rows]
    if not (share >= 0).any():
        return None
    names, by_row = row_groups(frame, group_by)
    starts, rank = grouped.starts, grouped.rank
    # A snapshot in which no share was read (an older collector's, or one run with
    # --pss-budget-ms 0) says nothing of shares: its rows have none, carried or not.
    live_rank = np.unique(rank[share >= 0])
    kept = grouped.kept & np.isin(rank, live_rank)
    run = np.repeat(np.arange(len(starts)), np.diff(np.r_[starts, len(share)]))
    filled = _filled(share, run, kept)
    group = by_row[grouped.rows]
    with_share = kept & (filled >= 0)
    key = rank[with_share] * len(names) + group[with_share]
    unique, at = np.unique(key, return_inverse=True)
    total = np.zeros(len(unique), np.int64)
    np.add.at(total, at, filled[with_share])
    read = np.bincount(at, weights=(share >= 0)[with_share], minlength=len(unique))
    heads = _heads(kept, filled, run, group, rank)
    known = np.where(kept, share, -1)
    return PssPart(
        names=names,
        rank=unique // max(len(names), 1),
        group=unique % max(len(names), 1),
        total_milli=total,
        shared=np.bincount(at, minlength=len(unique)).astype(np.int64),
        read=read.astype(np.int64),
        head_run=heads[0],
        head_group=heads[1],
        head_rank=heads[2],
        head_rows=heads[3],
        first_milli=_first_known(known, run, len(starts)),
        last_milli=_first_known(known[::-1], run[::-1], len(starts)),
        live_rank=live_rank,
    )


def _share_milli(frame: pd.DataFrame) -> IntArray:
    """PSS + SwapPss per frame row, thousandths of a MiB; -1 where not read (SwapPss
    missing counts 0: a kernel before 4.3)."""
    pss = frame[PSS_COLUMNS[0]].to_numpy(np.float64)
    swap = frame[PSS_COLUMNS[1]].to_numpy(np.float64) if PSS_COLUMNS[1] in frame else pss * 0
    with np.errstate(invalid="ignore"):
        total = np.rint((pss + np.nan_to_num(swap)) * MILLI)
    return np.where(np.isnan(pss), -1, total).astype(np.int64)


def _filled(share: IntArray, run: IntArray, kept: npt.NDArray[np.bool_]) -> IntArray:
    """Each kept row's share, or the last one read before it in its run (-1: none yet)."""
    known = kept & (share >= 0)
    index = np.where(known, np.arange(len(share)), -1)
    last = np.maximum.accumulate(index) if len(index) else index
    # A share read in an earlier run (another PID) is not this run's.
    start = np.r_[0, np.flatnonzero(np.diff(run)) + 1] if len(run) else run
    run_start = np.repeat(start, np.diff(np.r_[start, len(run)]))
    valid = last >= run_start
    return np.where(valid & kept, share[np.maximum(last, 0)], -1)


def _heads(
    kept: npt.NDArray[np.bool_], filled: IntArray, run: IntArray, group: IntArray, rank: IntArray
) -> tuple[IntArray, IntArray, IntArray, IntArray]:
    """The heads: per stretch of a run in one group (a process may exec another program
    before its first share), its run, group, the rank of its first kept row, and how many
    kept rows precede the run's first share (all of them when it has none). Each head row
    is counted in its own row's group, so no (snapshot, group) gets more shares than rows
    (PssFold.applied relies on it)."""
    if not len(run):
        empty = np.empty(0, np.int64)
        return empty, empty, empty, empty
    first_of = np.r_[True, (run[1:] != run[:-1]) | (group[1:] != group[:-1])]
    stretch = np.cumsum(first_of) - 1
    count = int(stretch[-1]) + 1
    big = np.iinfo(np.int64).max
    first = np.full(count, big, np.int64)
    np.minimum.at(first, stretch[kept], rank[kept])
    head = np.bincount(stretch[kept & (filled < 0)], minlength=count).astype(np.int64)
    some = np.flatnonzero(head > 0)
    starts = np.flatnonzero(first_of)[some]
    return run[starts].astype(np.int64), group[starts], first[some], head[some]


def _first_known(values: IntArray, run: IntArray, runs: int) -> IntArray:
    """Per run, the first value >= 0 in the given order (-1: none)."""
    out = np.full(runs, -1, np.int64)
    known = values >= 0
    runs_seen, at = np.unique(run[known], return_index=True)
    out[runs_seen] = values[known][at]
    return out


@dataclass
class PssFold:
    """The batches' shares folded: per (snapshot, group) totals, each instance's first
    and last share, and the leading rows still waiting for a share."""

    _parts: list[tuple[IntArray, ...]] = field(default_factory=list)
    _first: dict[int, int] = field(default_factory=dict)
    _last: dict[int, int] = field(default_factory=dict)
    # (instance, ranks, group code) of rows with no share before them
    _waiting: list[tuple[int, IntArray, int]] = field(default_factory=list)

    def add(
        self, part: PssPart | None, instance: IntArray, base: int, code_of: Callable[[str], int]
    ) -> None:
        """Fold one batch's part, in batch order: instance is each run's, base the rank of
        the batch's first snapshot, code_of the records' code of a group name."""
        if part is None:
            return
        codes = np.array([code_of(str(name)) for name in part.names], np.int64)
        for head in range(len(part.head_rows)):
            number = int(instance[part.head_run[head]])
            self._head(number, part, head, base, int(codes[part.head_group[head]]))
        for run in np.flatnonzero(part.first_milli >= 0).tolist():
            self._first.setdefault(int(instance[run]), int(part.first_milli[run]))
        for run in np.flatnonzero(part.last_milli >= 0).tolist():
            self._last[int(instance[run])] = int(part.last_milli[run])
        self._parts.append(
            (part.rank + base, codes[part.group], part.total_milli, part.shared, part.read)
        )

    def _head(self, number: int, part: PssPart, head: int, base: int, code: int) -> None:
        """A head's rows without a share: its first head_rows snapshots with a read from
        its first (a run is in consecutive snapshots)."""
        at = int(np.searchsorted(part.live_rank, part.head_rank[head]))
        ranks = part.live_rank[at : at + int(part.head_rows[head])] + base
        prior = self._last.get(number)
        if prior is None:
            self._waiting.append((number, ranks, code))
            return
        ones = np.ones(len(ranks), np.int64)
        self._parts.append((ranks, np.full(len(ranks), code), prior * ones, ones, ones * 0))

    @property
    def seen(self) -> bool:
        """Whether any share was read."""
        return bool(self._first)

    def applied(self, totals: GroupTotals) -> tuple[GroupTotals, list[str | None]]:
        """The totals with every group whose rows all have a share counted in PSS, and per
        group code its PSS basis (None: left as it was). Each (snapshot, group) counts at
        most one share per row, so a group's rows all have one when its shares add up to
        its processes over the window: its per-snapshot rows in the day summaries are not
        read for it."""
        count = len(totals.names)
        bases: list[str | None] = [None] * count
        if not self._first:
            return totals, bases
        rank, group, total, shared, read = self._columns()
        processes = totals.processes[:count]
        chosen = (np.bincount(group, weights=shared, minlength=count)[:count] == processes) & (
            processes > 0
        )
        exact = np.bincount(group, weights=read, minlength=count)[:count] == processes
        for code in np.flatnonzero(chosen).tolist():
            bases[code] = BASIS_PSS if exact[code] else BASIS_CARRIED
        keep = chosen[group]
        replaced = ReplacedRows(chosen, rank[keep], group[keep], total[keep])
        return totals._replace(replaced=replaced), bases

    def _columns(self) -> tuple[IntArray, IntArray, IntArray, IntArray, IntArray]:
        """Every part and every waiting row given its instance's first share, summed per
        (snapshot, group) and sorted by rank * groups + group."""
        parts = list(self._parts)
        for number, ranks, code in self._waiting:
            first = self._first.get(number)
            if first is not None:
                ones = np.ones(len(ranks), np.int64)
                parts.append((ranks, np.full(len(ranks), code), first * ones, ones, ones * 0))
        rank, group, total, shared, read = (
            np.concatenate([np.asarray(p[k], np.int64) for p in parts]) for k in range(5)
        )
        width = int(group.max()) + 1 if len(group) else 1  # the codes of the groups
        unique, at = np.unique(rank * width + group, return_inverse=True)
        sums = [np.bincount(at, weights=v, minlength=len(unique)) for v in (total, shared, read)]
        rank, group = unique // width, unique % width
        total, shared, read = (np.rint(column).astype(np.int64) for column in sums)
        return rank, group, total, shared, read
