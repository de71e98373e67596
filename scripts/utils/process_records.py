"""The process snapshots, reduced as they are read: compact rows and per-instance aggregates.

A month of snapshots holds millions of process rows and a year tens of millions; the
analysis often runs on the host that is short of memory. So no table of rows is ever
held. Each parsed batch is reduced at once, and its frame freed:

- rows, grouped by PID, as three narrow arrays (snapshot as a 16-bit offset, RSS as
  integer thousandths of a MiB): 6 bytes a row, kept only to draw the plotted series;
- one record per process *instance* (below): first and last snapshot, samples, lowest and
  highest RSS, the first command line (interned), updated batch by batch;
- the instance's lowest RSS per 6-hour UTC bucket (the floors the leak finder fits).

A process instance is a PID seen in consecutive snapshots. A PID absent from a snapshot
that exists (one that was read) and present again later is a new instance from then on, so
a reused PID never joins two processes. A reuse between two snapshots (the process ends and
the kernel hands its PID to a new one within the interval) cannot be seen; the kernel hands
out PIDs in increasing order up to pid_max (4,194,304 on 64-bit systems) before it wraps,
so that takes millions of process starts within one interval.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import NamedTuple

import numpy as np
import numpy.typing as npt
import pandas as pd

from utils.dumps import Batch

# RSS is kept as integer thousandths of a MiB: the dumps carry 3 decimals, so
# round(MiB * 1000) is exact, and comparisons at the dumps' precision are exact too.
MILLI = 1000
# The floors the leak finder fits: the lowest RSS per 6 hours, aligned to UTC.
BUCKET_S = 6 * 3600
_NEW = -2  # the "last seen" rank of a PID never seen: always 2 or more before any rank

IntArray = npt.NDArray[np.int64]
Series = tuple[npt.NDArray[np.datetime64], npt.NDArray[np.float64]]


class Chunk(NamedTuple):
    """The rows of one batch, grouped by PID (ascending) and in time order within a PID."""

    pids: npt.NDArray[np.int32]  # the distinct PIDs
    starts: npt.NDArray[np.int64]  # rows of pids[i] are starts[i]:starts[i + 1]
    base: int  # rank of the batch's first snapshot
    offset: npt.NDArray[np.unsignedinteger]  # rank - base, 16 bits when it fits
    rss_milli: npt.NDArray[np.signedinteger]  # int32 unless an RSS passes 2 TiB

    def rows_of(self, pid: int) -> tuple[IntArray, IntArray]:
        """Ranks and RSS (thousandths of a MiB) of one PID in this chunk."""
        at = int(np.searchsorted(self.pids, pid))
        if at == len(self.pids) or self.pids[at] != pid:
            return np.empty(0, np.int64), np.empty(0, np.int64)
        rows = slice(int(self.starts[at]), int(self.starts[at + 1]))
        return self.offset[rows].astype(np.int64) + self.base, self.rss_milli[rows].astype(np.int64)


class _Growable:
    """Columns of int64 that grow by doubling, addressed by instance number."""

    def __init__(self, names: Sequence[str], capacity: int = 1024) -> None:
        self.size = 0
        self.columns = {name: np.zeros(capacity, np.int64) for name in names}

    def extend(self, count: int) -> IntArray:
        """Room for `count` more instances; their numbers."""
        needed = self.size + count
        capacity = len(next(iter(self.columns.values())))
        if needed > capacity:
            capacity = max(needed, 2 * capacity)
            for name, column in self.columns.items():
                grown = np.zeros(capacity, np.int64)
                grown[: self.size] = column[: self.size]
                self.columns[name] = grown
        numbers = np.arange(self.size, needed, dtype=np.int64)
        self.size = needed
        return numbers

    def __getitem__(self, name: str) -> IntArray:
        return self.columns[name][: self.size]


_INSTANCE_COLUMNS = (
    "pid",
    "samples",  # rows kept (after --match); 0: the instance never matched
    "first_rank",  # of the kept rows
    "last_rank",
    "min_milli",
    "max_milli",
    "cmd",  # index into ProcessRecords.commands of the first kept row's CMD
)


@dataclass
class ProcessRecords:
    """Every process row of the snapshots (after --match), reduced as described above.

    Ranks number the snapshots that were read (bad files are not ranks), in time order;
    `times[rank]` is a rank's UTC time.
    """

    snapshot_times: npt.NDArray[np.datetime64]  # of every file given, by index
    match: str | None = None
    chunks: list[Chunk] = field(default_factory=list)
    commands: list[str] = field(default_factory=list)
    _times: list[npt.NDArray[np.datetime64]] = field(default_factory=list)
    _ranks: int = 0
    _instances: _Growable = field(default_factory=lambda: _Growable(_INSTANCE_COLUMNS))
    _command_codes: dict[str, int] = field(default_factory=dict)
    _seen_pids: npt.NDArray[np.int32] = field(default_factory=lambda: np.empty(0, np.int32))
    _seen_rank: IntArray = field(default_factory=lambda: np.empty(0, np.int64))
    _seen_instance: IntArray = field(default_factory=lambda: np.empty(0, np.int64))
    _floors: list[tuple[IntArray, IntArray, IntArray, IntArray]] = field(default_factory=list)

    # --- Reading ----------------------------------------------------------------

    @property
    def snapshots_read(self) -> int:
        """Snapshots that gave rows (before --match)."""
        return self._ranks

    @property
    def times(self) -> npt.NDArray[np.datetime64]:
        if len(self._times) != 1:
            joined = np.concatenate(self._times) if self._times else np.empty(0, "datetime64[s]")
            self._times = [joined]
        return self._times[0]

    def add(self, batch: Batch) -> None:
        """Reduce one parsed batch (rows in time order) and let its frame go."""
        frame, snapshot = batch.frame, batch.snapshot
        read, rank_of_row = np.unique(snapshot, return_inverse=True)
        base = self._ranks
        self._ranks += len(read)
        self._times.append(self.snapshot_times[read])
        rank = rank_of_row.astype(np.int64) + base
        pid = frame["PID"].to_numpy(np.int32)
        # Grouped by PID, in time order within each: the order everything below works in.
        rows = np.lexsort((rank, pid))
        pid, rank = pid[rows], rank[rows]
        # Identity comes from every row; --match then picks the rows that count.
        instance = self._assign_instances(pid, rank)
        if self.match is not None:
            kept = _match_mask(frame["CMD"], self.match)[rows]
            pid, rank, instance, rows = pid[kept], rank[kept], instance[kept], rows[kept]
        if len(pid) == 0:
            return
        rss_milli = np.rint(frame["RSS_MB"].to_numpy(np.float64)[rows] * MILLI).astype(np.int64)
        first_cmd = _first_texts(frame["CMD"], rows, instance)
        bucket = self.snapshot_times[read].astype(np.int64)[rank - base] // BUCKET_S
        self._aggregate(pid, rank, instance, rss_milli, bucket, first_cmd)
        self._keep_rows(pid, rank, rss_milli, base)

    def _assign_instances(self, pid: npt.NDArray[np.int32], rank: IntArray) -> IntArray:
        """The instance of each row (rows grouped by PID, in time order within a PID).

        A row starts a new instance when its PID was not seen in the snapshot just before
        (the previous rank); otherwise it continues the PID's instance.
        """
        first = np.ones(len(pid), bool)
        first[1:] = pid[1:] != pid[:-1]
        previous = np.empty_like(rank)
        previous[1:] = rank[:-1]
        # The first row of each PID continues from what earlier batches saw of it.
        heads = pid[first]
        at = np.searchsorted(self._seen_pids, heads)
        found = np.zeros(len(heads), bool)
        inside = at < len(self._seen_pids)
        found[inside] = self._seen_pids[at[inside]] == heads[inside]
        head_previous = np.full(len(heads), _NEW, np.int64)
        head_previous[found] = self._seen_rank[at[found]]
        previous[first] = head_previous
        new = rank - previous > 1  # also the first row of a PID never seen
        numbers = np.full(len(pid), -1, np.int64)
        created = self._instances.extend(int(new.sum()))
        numbers[new] = created
        self._instances["pid"][created] = pid[new]
        continuing = found & ~new[first]
        numbers[np.flatnonzero(first)[continuing]] = self._seen_instance[at[continuing]]
        # Fill each row with the instance of the nearest defined row above it (the first row
        # of every PID is defined, so this never crosses from one PID to the next).
        defined = numbers >= 0
        fill_from = np.maximum.accumulate(np.where(defined, np.arange(len(pid)), 0))
        numbers = numbers[fill_from]
        self._remember(pid, rank, numbers, first)
        return numbers

    def _remember(
        self,
        pid: npt.NDArray[np.int32],
        rank: IntArray,
        numbers: IntArray,
        first: npt.NDArray[np.bool_],
    ) -> None:
        """Each PID's last rank and instance, for the next batch."""
        last = np.ones(len(pid), bool)
        last[:-1] = first[1:]
        pids = np.concatenate([self._seen_pids, pid[last]])
        ranks = np.concatenate([self._seen_rank, rank[last]])
        instances = np.concatenate([self._seen_instance, numbers[last]])
        # Newer entries come later: keep the last of each PID.
        order = np.lexsort((np.arange(len(pids)), pids))
        pids, ranks, instances = pids[order], ranks[order], instances[order]
        newest = np.ones(len(pids), bool)
        newest[:-1] = pids[1:] != pids[:-1]
        self._seen_pids = pids[newest]
        self._seen_rank = ranks[newest]
        self._seen_instance = instances[newest]

    def _aggregate(
        self,
        pid: npt.NDArray[np.int32],
        rank: IntArray,
        instance: IntArray,
        rss_milli: IntArray,
        bucket: IntArray,
        first_cmd: list[str],
    ) -> None:
        """Fold the kept rows into their instances' records and floors; first_cmd holds the
        CMD of each instance's first row here."""
        starts = np.flatnonzero(np.r_[True, instance[1:] != instance[:-1]])
        ends = np.r_[starts[1:], len(instance)]
        number = instance[starts]
        table = self._instances
        fresh = table["samples"][number] == 0
        new_numbers = number[fresh]
        table["first_rank"][new_numbers] = rank[starts[fresh]]
        table["min_milli"][new_numbers] = np.iinfo(np.int64).max
        table["max_milli"][new_numbers] = np.iinfo(np.int64).min
        table["cmd"][new_numbers] = [
            self._intern(text) for text, is_fresh in zip(first_cmd, fresh, strict=True) if is_fresh
        ]
        table["samples"][number] += ends - starts
        table["last_rank"][number] = rank[ends - 1]
        table["min_milli"][number] = np.minimum(
            table["min_milli"][number], np.minimum.reduceat(rss_milli, starts)
        )
        table["max_milli"][number] = np.maximum(
            table["max_milli"][number], np.maximum.reduceat(rss_milli, starts)
        )
        # Floors: rows of an instance are in time order, so its buckets come in runs.
        cuts = np.flatnonzero(
            np.r_[True, (instance[1:] != instance[:-1]) | (bucket[1:] != bucket[:-1])]
        )
        self._floors.append(
            (
                instance[cuts],
                bucket[cuts],
                np.minimum.reduceat(rss_milli, cuts),
                np.diff(np.r_[cuts, len(instance)]),
            )
        )

    def _intern(self, text: str) -> int:
        code = self._command_codes.get(text)
        if code is None:
            code = self._command_codes[text] = len(self.commands)
            self.commands.append(text)
        return code

    def _keep_rows(
        self, pid: npt.NDArray[np.int32], rank: IntArray, rss_milli: IntArray, base: int
    ) -> None:
        starts = np.flatnonzero(np.r_[True, pid[1:] != pid[:-1]])
        offset = rank - base
        offset_type = np.uint16 if offset.max() <= np.iinfo(np.uint16).max else np.uint32
        wide = rss_milli.max() > np.iinfo(np.int32).max
        self.chunks.append(
            Chunk(
                pids=pid[starts],
                starts=np.r_[starts, len(pid)].astype(np.int64),
                base=base,
                offset=offset.astype(offset_type),
                rss_milli=rss_milli.astype(np.int64 if wide else np.int32),
            )
        )

    # --- What the analyses ask --------------------------------------------------

    def instances(self) -> InstanceTable:
        """The instances with kept rows, as arrays."""
        table = self._instances
        kept = np.flatnonzero(table["samples"] > 0)
        return InstanceTable(
            number=kept,
            pid=table["pid"][kept],
            samples=table["samples"][kept],
            first_rank=table["first_rank"][kept],
            last_rank=table["last_rank"][kept],
            min_milli=table["min_milli"][kept],
            max_milli=table["max_milli"][kept],
            cmd=table["cmd"][kept],
        )

    def floors(self) -> Floors:
        """Each instance's lowest RSS per 6-hour bucket, sorted by instance, then bucket."""
        if not self._floors:
            empty = np.empty(0, np.int64)
            return Floors(empty, empty, empty, empty)
        instance, bucket, low, count = (
            np.concatenate(parts) for parts in zip(*self._floors, strict=True)
        )
        # A batch boundary can cut a bucket in two: merge the halves.
        order = np.lexsort((bucket, instance))
        instance, bucket, low, count = instance[order], bucket[order], low[order], count[order]
        cuts = np.flatnonzero(
            np.r_[True, (instance[1:] != instance[:-1]) | (bucket[1:] != bucket[:-1])]
        )
        self._floors = [
            (
                instance[cuts],
                bucket[cuts],
                np.minimum.reduceat(low, cuts),
                np.add.reduceat(count, cuts),
            )
        ]
        return Floors(*self._floors[0])

    def pid_series(self, pid: int, first_rank: int = 0, last_rank: int | None = None) -> Series:
        """UTC times and RSS (MiB) of a PID's kept rows between two ranks, in time order."""
        parts = [chunk.rows_of(pid) for chunk in self.chunks]
        ranks = np.concatenate([ranks for ranks, _ in parts])
        rss = np.concatenate([rss for _, rss in parts])
        last = self._ranks if last_rank is None else last_rank
        inside = (ranks >= first_rank) & (ranks <= last)
        return self.times[ranks[inside]], rss[inside] / MILLI

    def rows(self) -> tuple[npt.NDArray[np.datetime64], IntArray, IntArray]:
        """Every kept row as (UTC time, PID, RSS in thousandths of a MiB), grouped by batch,
        then PID (for tests and checks; the analyses never need all rows at once)."""
        ranks, pids, rss = [], [], []
        for chunk in self.chunks:
            counts = np.diff(chunk.starts)
            ranks.append(chunk.offset.astype(np.int64) + chunk.base)
            pids.append(np.repeat(chunk.pids.astype(np.int64), counts))
            rss.append(chunk.rss_milli.astype(np.int64))
        if not self.chunks:
            empty = np.empty(0, np.int64)
            return self.times[empty], empty, empty
        return self.times[np.concatenate(ranks)], np.concatenate(pids), np.concatenate(rss)

    def time_range(self) -> tuple[datetime, datetime] | None:
        table = self.instances()
        if len(table.number) == 0:
            return None
        return (
            self.times[int(table.first_rank.min())].astype(datetime),
            self.times[int(table.last_rank.max())].astype(datetime),
        )


class InstanceTable(NamedTuple):
    number: IntArray
    pid: IntArray
    samples: IntArray
    first_rank: IntArray
    last_rank: IntArray
    min_milli: IntArray
    max_milli: IntArray
    cmd: IntArray


class Floors(NamedTuple):
    instance: IntArray  # instance number
    bucket: IntArray  # epoch seconds // BUCKET_S
    low_milli: IntArray  # the lowest RSS in that bucket, thousandths of a MiB
    samples: IntArray


def _first_texts(cmd: pd.Series, rows: IntArray, instance: IntArray) -> list[str]:
    """The CMD of the first of each run of rows of one instance."""
    starts = np.flatnonzero(np.r_[True, instance[1:] != instance[:-1]])
    codes = cmd.cat.codes.to_numpy()[rows[starts]]
    categories = cmd.cat.categories
    return [str(categories[code]) for code in codes]


def _match_mask(cmd: pd.Series, text: str) -> npt.NDArray[np.bool_]:
    """Rows whose CMD (categorical, as the reader gives it) contains text: a plain,
    case-sensitive substring, tested once per distinct command line."""
    per_category = cmd.cat.categories.astype(str).str.contains(text, regex=False)
    return np.asarray(per_category, dtype=bool)[cmd.cat.codes.to_numpy()]
