"""The process snapshots, reduced as they are read: compact rows and per-instance aggregates.

A month of snapshots holds millions of process rows and a year tens of millions; the
analysis often runs on the host that is short of memory. So no table of rows is ever
held. Each parsed batch is reduced at once, and its frame freed:

- rows, grouped by PID, as three narrow arrays (snapshot as a 16-bit offset, RSS as
  integer thousandths of a MiB): 6 bytes a row, kept only to draw the plotted series;
- one record per process *instance* (below): first and last snapshot, samples, lowest and
  highest RSS, the first command line (interned), updated batch by batch;
- the instance's lowest RSS per UTC bucket (the floors the leak finder fits), at the
  finest level the leak finder may need (6 hours for a long collection).

A process instance is a PID seen in consecutive snapshots. A PID absent from a snapshot
that exists (one that was read) and present again later is a new instance from then on, so
a reused PID never joins two processes. A reuse between two snapshots (the process ends and
the kernel hands its PID to a new one within the interval) cannot be seen; the kernel hands
out PIDs in increasing order up to pid_max (4,194,304 on 64-bit systems) before it wraps,
so that takes millions of process starts within one interval.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, NamedTuple

import numpy as np
import numpy.typing as npt
import pandas as pd

from utils.dumps import Batch
from utils.growth import bucket_index

# RSS is kept as integer thousandths of a MiB: the dumps carry 3 decimals, so
# round(MiB * 1000) is exact, and comparisons at the dumps' precision are exact too.
MILLI = 1000

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
    """Integer columns that grow by doubling, addressed by instance number."""

    def __init__(self, dtypes: Mapping[str, type[np.signedinteger[Any]]], capacity: int = 1024):
        self.size = 0
        self.columns = {name: np.zeros(capacity, dtype) for name, dtype in dtypes.items()}

    def extend(self, count: int) -> IntArray:
        """Room for `count` more instances; their numbers."""
        needed = self.size + count
        capacity = len(next(iter(self.columns.values())))
        if needed > capacity:
            capacity = max(needed, 2 * capacity)
            for name, column in self.columns.items():
                grown = np.zeros(capacity, column.dtype)
                grown[: self.size] = column[: self.size]
                self.columns[name] = grown
        numbers = np.arange(self.size, needed, dtype=np.int64)
        self.size = needed
        return numbers

    def __getitem__(self, name: str) -> npt.NDArray[np.signedinteger[Any]]:
        return self.columns[name][: self.size]


# 32 bits wherever it is enough (a year holds 300,000 instances): ranks count snapshots,
# PIDs are below 2**22; only RSS in thousandths of a MiB could pass 2**31 (2 TiB).
_INSTANCE_COLUMNS: Mapping[str, type[np.signedinteger[Any]]] = {
    "pid": np.int32,
    "samples": np.int32,  # rows kept (after --match); 0: the instance never matched
    "first_rank": np.int32,  # of the kept rows
    "last_rank": np.int32,
    "min_milli": np.int64,
    "max_milli": np.int64,
    "cmd": np.int32,  # index into ProcessRecords.commands of the first kept row's CMD
}


class BatchRuns(NamedTuple):
    """One batch reduced to runs: a run is a PID in consecutive snapshots of the batch
    (its rows grouped by PID, in time order). Ranks here count from the batch's first
    snapshot (0); the aggregates are over the rows --match keeps."""

    read: IntArray  # the UTC times (seconds since 1970) of the batch's snapshots, in order
    pid: npt.NDArray[np.int32]  # per run, ascending
    first: IntArray  # rank of the run's first row (all rows: identity)
    last: IntArray  # rank of its last row
    samples: IntArray  # rows kept; 0: none matched
    kept_first: IntArray  # rank of the first kept row (when samples > 0)
    kept_last: IntArray
    min_milli: IntArray
    max_milli: IntArray
    cmd: npt.NDArray[np.object_]  # CMD of the first kept row
    floors: tuple[IntArray, IntArray, IntArray, IntArray]  # run, bucket, lowest RSS, rows
    chunk: Chunk | None  # the kept rows (base 0)


class _Rows(NamedTuple):
    """A batch's rows grouped by PID, in time order within each, cut into runs."""

    rows: IntArray  # where each row is in the batch's frame
    pid: npt.NDArray[np.int32]
    rank: IntArray  # counted from the batch's first snapshot
    rss_milli: IntArray
    kept: npt.NDArray[np.bool_]  # the rows --match keeps
    starts: IntArray  # the first row of each run
    ends: IntArray  # one after its last


def reduce_batch(batch: Batch, match: str | None, level: int = 0) -> BatchRuns:
    """A parsed batch as runs (thread-safe: this runs in the parser threads)."""
    snapshot = batch.snapshot
    # Rows come in time order: each new snapshot time is the next rank.
    step = np.r_[0, (snapshot[1:] != snapshot[:-1]).astype(np.int64)]
    read = snapshot[np.r_[True, step[1:] > 0]]
    grouped = _grouped(batch.frame, np.cumsum(step), match)
    kept = grouped.kept
    run = np.repeat(np.arange(len(grouped.starts)), grouped.ends - grouped.starts)
    bucket = bucket_index(read[grouped.rank[kept]], level)
    plotted = (grouped.pid[kept], grouped.rank[kept], grouped.rss_milli[kept])
    aggregates = _kept_aggregates(grouped, batch.frame["CMD"])
    return BatchRuns(
        read=read,
        pid=grouped.pid[grouped.starts],
        first=grouped.rank[grouped.starts],
        last=grouped.rank[grouped.ends - 1],
        samples=aggregates.samples,
        kept_first=aggregates.first,
        kept_last=aggregates.last,
        min_milli=aggregates.min_milli,
        max_milli=aggregates.max_milli,
        cmd=aggregates.cmd,
        floors=_floors(run[kept], bucket, grouped.rss_milli[kept]),
        chunk=_chunk(*plotted) if kept.any() else None,
    )


def _grouped(frame: pd.DataFrame, rank: IntArray, match: str | None) -> _Rows:
    # Grouped by PID, in time order within each (a stable sort keeps the time order).
    all_pids = frame["PID"].to_numpy(np.int32)
    rows = np.argsort(all_pids, kind="stable")
    pid, rank = all_pids[rows], rank[rows]
    # A run ends where the PID changes or skips a snapshot of the batch.
    starts = np.flatnonzero(np.r_[True, (pid[1:] != pid[:-1]) | (rank[1:] - rank[:-1] > 1)])
    kept = np.ones(len(pid), bool) if match is None else _match_mask(frame["CMD"], match)[rows]
    rss = np.rint(frame["RSS_MB"].to_numpy(np.float64)[rows] * MILLI).astype(np.int64)
    return _Rows(rows, pid, rank, rss, kept, starts, np.r_[starts[1:], len(pid)])


class _Kept(NamedTuple):
    """Per run, over its kept rows."""

    samples: IntArray
    first: IntArray  # rank of the first kept row (-1: none)
    last: IntArray
    min_milli: IntArray
    max_milli: IntArray
    cmd: npt.NDArray[np.object_]  # of the first kept row


def _kept_aggregates(grouped: _Rows, cmd: pd.Series) -> _Kept:
    """Per run, over its kept rows: samples, first and last rank, least and most RSS, and
    the command line of the first."""
    kept, starts, rank, rss = grouped.kept, grouped.starts, grouped.rank, grouped.rss_milli
    big, small = np.iinfo(np.int64).max, np.iinfo(np.int64).min
    positions = np.arange(len(kept))
    first_kept = np.minimum.reduceat(np.where(kept, positions, big), starts)
    last_kept = np.maximum.reduceat(np.where(kept, positions, -1), starts)
    samples = np.add.reduceat(kept.astype(np.int64), starts)
    has = samples > 0
    codes = cmd.cat.codes.to_numpy()[grouped.rows[np.where(has, first_kept, starts)]]
    return _Kept(
        samples,
        np.where(has, rank[np.minimum(first_kept, len(kept) - 1)], -1),
        np.where(has, rank[np.maximum(last_kept, 0)], -1),
        np.minimum.reduceat(np.where(kept, rss, big), starts),
        np.maximum.reduceat(np.where(kept, rss, small), starts),
        cmd.cat.categories.to_numpy(dtype=object)[codes],
    )


def _floors(
    run: IntArray, bucket: IntArray, rss_milli: IntArray
) -> tuple[IntArray, IntArray, IntArray, IntArray]:
    """The lowest RSS of each run in each bucket (rows of a run are in time order,
    so its buckets come in runs too): run, bucket, lowest, rows."""
    if not len(run):
        return (np.empty(0, np.int64),) * 4
    cuts = np.flatnonzero(np.r_[True, (run[1:] != run[:-1]) | (bucket[1:] != bucket[:-1])])
    lowest = np.minimum.reduceat(rss_milli, cuts)
    return run[cuts], bucket[cuts], lowest, np.diff(np.r_[cuts, len(run)])


def _chunk(pid: npt.NDArray[np.int32], rank: IntArray, rss_milli: IntArray) -> Chunk:
    starts = np.flatnonzero(np.r_[True, pid[1:] != pid[:-1]])
    offset_type = np.uint16 if rank.max() <= np.iinfo(np.uint16).max else np.uint32
    wide = rss_milli.max() > np.iinfo(np.int32).max
    return Chunk(
        pids=pid[starts],
        starts=np.r_[starts, len(pid)].astype(np.int64),
        base=0,
        offset=rank.astype(offset_type),
        rss_milli=rss_milli.astype(np.int64 if wide else np.int32),
    )


@dataclass
class ProcessRecords:
    """Every process row of the snapshots (after --match), reduced as described above.

    Ranks number the snapshots that were read (bad files are not ranks), in time order;
    `times[rank]` is a rank's UTC time. `add` stitches the batches' runs together, in
    order: a batch's run continues an instance of the batch before only when it starts at
    the batch's first snapshot and its PID was in the previous batch's last one.
    """

    match: str | None = None
    level: int = 0  # the floors' level (utils.growth.bucket_index)
    chunks: list[Chunk] = field(default_factory=list)
    commands: list[str] = field(default_factory=list)
    _times: list[npt.NDArray[np.datetime64]] = field(default_factory=list)
    _ranks: int = 0
    _instances: _Growable = field(default_factory=lambda: _Growable(_INSTANCE_COLUMNS))
    _command_codes: dict[str, int] = field(default_factory=dict)
    # The PIDs of the last snapshot read and their instances, sorted by PID.
    _last_pids: npt.NDArray[np.int32] = field(default_factory=lambda: np.empty(0, np.int32))
    _last_instance: IntArray = field(default_factory=lambda: np.empty(0, np.int64))
    _floors: list[tuple[npt.NDArray[np.signedinteger[Any]], ...]] = field(default_factory=list)

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

    def reduce(self, batch: Batch) -> BatchRuns:
        """What the parser threads do with each batch (see iter_reduced)."""
        return reduce_batch(batch, self.match, self.level)

    def add(self, runs: BatchRuns) -> None:
        """Fold one batch's runs into the instances, in batch order."""
        base = self._ranks
        self._ranks += len(runs.read)
        self._times.append(runs.read.astype("datetime64[s]"))
        instance = self._instances_of(runs)
        has = runs.samples > 0
        number = instance[has]
        table = self._instances
        fresh = table["samples"][number] == 0
        new_numbers = number[fresh]
        table["first_rank"][new_numbers] = runs.kept_first[has][fresh] + base
        table["min_milli"][new_numbers] = np.iinfo(np.int64).max
        table["max_milli"][new_numbers] = np.iinfo(np.int64).min
        table["cmd"][new_numbers] = [self._intern(str(text)) for text in runs.cmd[has][fresh]]
        table["samples"][number] += runs.samples[has]
        table["last_rank"][number] = runs.kept_last[has] + base
        table["min_milli"][number] = np.minimum(table["min_milli"][number], runs.min_milli[has])
        table["max_milli"][number] = np.maximum(table["max_milli"][number], runs.max_milli[has])
        floor_run, bucket, low, count = runs.floors
        self._floors.append(
            (
                instance[floor_run].astype(np.int32),
                _narrow(bucket),  # 6-hour buckets since 1970: about 82,000 (level 0)
                _narrow(low),
                count.astype(np.int32),
            )
        )
        if runs.chunk is not None:
            self.chunks.append(runs.chunk._replace(base=base))

    def _instances_of(self, runs: BatchRuns) -> IntArray:
        """Each run's instance: carried on from the batch before, or new."""
        first_of_pid = np.r_[True, runs.pid[1:] != runs.pid[:-1]]
        at = np.minimum(
            np.searchsorted(self._last_pids, runs.pid), max(len(self._last_pids) - 1, 0)
        )
        carried = (
            first_of_pid & (runs.first == 0) & (self._last_pids[at] == runs.pid)
            if len(self._last_pids)
            else np.zeros(len(runs.pid), bool)
        )
        instance = np.empty(len(runs.pid), np.int64)
        instance[carried] = self._last_instance[at[carried]]
        created = self._instances.extend(int((~carried).sum()))
        instance[~carried] = created
        self._instances["pid"][created] = runs.pid[~carried]
        at_end = runs.last == len(runs.read) - 1  # the runs in the batch's last snapshot
        self._last_pids, self._last_instance = runs.pid[at_end], instance[at_end]
        return instance

    def _intern(self, text: str) -> int:
        code = self._command_codes.get(text)
        if code is None:
            code = self._command_codes[text] = len(self.commands)
            self.commands.append(text)
        return code

    # --- What the analyses ask --------------------------------------------------

    def instances(self) -> InstanceTable:
        """The instances with kept rows, as arrays (int64, for plain arithmetic)."""
        table = self._instances
        kept = np.flatnonzero(table["samples"] > 0)
        return InstanceTable(
            number=kept,
            pid=table["pid"][kept].astype(np.int64),
            samples=table["samples"][kept].astype(np.int64),
            first_rank=table["first_rank"][kept].astype(np.int64),
            last_rank=table["last_rank"][kept].astype(np.int64),
            min_milli=table["min_milli"][kept],
            max_milli=table["max_milli"][kept],
            cmd=table["cmd"][kept].astype(np.int64),
        )

    def floors(self) -> Floors:
        """Each instance's lowest RSS per bucket (at self.level), by instance, then bucket."""
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
        merged = (
            instance[cuts],
            bucket[cuts],
            np.minimum.reduceat(low, cuts),
            np.add.reduceat(count, cuts),
        )
        self._floors = [merged]
        return Floors(*(part.astype(np.int64) for part in merged))

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
    bucket: IntArray  # utils.growth.bucket_index(epoch seconds, level)
    low_milli: IntArray  # the lowest RSS in that bucket, thousandths of a MiB
    samples: IntArray


def _narrow(values: IntArray) -> npt.NDArray[np.signedinteger[Any]]:
    """int32 where every value fits, else int64 as it is."""
    return values.astype(np.int32) if not len(values) or values.max() < 2**31 else values


def _match_mask(cmd: pd.Series, text: str) -> npt.NDArray[np.bool_]:
    """Rows whose CMD (categorical, as the reader gives it) contains text: a plain,
    case-sensitive substring, tested once per distinct command line."""
    per_category = cmd.cat.categories.astype(str).str.contains(text, regex=False)
    return np.asarray(per_category, dtype=bool)[cmd.cat.codes.to_numpy()]
