"""The kinds of day summary: the sys_mem and cgroup_mem days' parsed batches and the process
days' reduced runs, with what names them, what else must match, and how a batch's day is told.

docs/summaries.md lists what each holds, field by field.
"""

from __future__ import annotations

from collections.abc import Collection, Iterator, Sequence
from dataclasses import replace
from datetime import date, timedelta
from functools import partial

import numpy as np
import numpy.typing as npt

from utils.core.units import DAY_S
from utils.parser import CGROUP_PREFIX, PROCESS_PREFIX, SYS_PREFIX, Source
from utils.read.csv_batches import Batch
from utils.read.threaded_reader import Progress, Reader, Warn
from utils.reduce.batch_runs import BatchRuns, Chunk, IntArray
from utils.reduce.day_summaries import (
    DayPlan,
    DayReading,
    DaySummary,
    Deferred,
    MakeDeferred,
    Prefix,
    SummaryKind,
    SummaryPlace,
    summarized,
)
from utils.reduce.group_totals import GroupPart, GroupRows
from utils.reduce.process_records import ProcessRecords
from utils.reduce.pss_totals import PssPart
from utils.reduce.summary_codec import decode

SYSTEM_RECORDS = {"Batch": Batch}
PROCESS_RECORDS = {
    "BatchRuns": BatchRuns,
    "Chunk": Chunk,
    "GroupPart": GroupPart,
    "GroupRows": GroupRows,
    "PssPart": PssPart,
}
EPOCH_DAY = date(1970, 1, 1)


def system_batches(
    files: Sequence[Source], reader: Reader, place: SummaryPlace | None
) -> Iterator[Batch]:
    """The sys_mem files' parsed batches, in time order, through the day summaries."""
    return parsed_batches(files, reader, place, SYS_PREFIX)


def cgroup_batches(
    files: Sequence[Source], reader: Reader, place: SummaryPlace | None
) -> Iterator[Batch]:
    """The cgroup_mem files' parsed batches, in time order, through the day summaries."""
    return parsed_batches(files, reader, place, CGROUP_PREFIX)


def system_columns(
    files: Sequence[Source], reader: Reader, place: SummaryPlace | None, columns: Collection[str]
) -> Iterator[Batch]:
    """The sys_mem files' parsed batches with only `columns` of their frames (those the
    files have), in time order: the day summaries hold the whole batches, as
    system_batches keeps them, and are decoded for those columns alone."""
    # Imported here: the roll-up's module reads this one's batches.
    from utils.reduce.columns_rollup import ColumnsRollup  # noqa: PLC0415

    whole = place is not None and place.window.since is None and place.window.until is None
    rollup = ColumnsRollup(columns, _batch_day) if whole else None
    stream = parsed_batches(files, reader, place, SYS_PREFIX, (columns, rollup))
    narrowed = (_narrowed(batch, columns) for batch in stream)
    return narrowed if rollup is None else rollup.batches(narrowed)


def _narrowed(batch: Batch, columns: Collection[str]) -> Batch:
    kept = [column for column in batch.frame.columns if column in columns]
    # A summary's batch comes decoded with these columns already: kept as it is.
    same = len(kept) == len(batch.frame.columns)
    return batch if same else batch._replace(frame=batch.frame[kept])


def parsed_batches(
    files: Sequence[Source],
    reader: Reader,
    place: SummaryPlace | None,
    prefix: str,
    columns: tuple[Collection[str], Prefix | None] | None = None,
) -> Iterator[Batch]:
    """One kind of snapshot's parsed batches, kept whole in its day summaries; with
    `columns` (the columns, and what holds the leading days' rows of those), a summary's
    frames are decoded for those columns only (the file is the same: every field of a Batch
    stays in its hot part)."""
    how = DayReading(
        lambda found, warn, progress: _with(reader, warn, progress).batches(found),
        _batch_day,
        reader.warn,
        reader.progress,
    )
    deferred: dict[str, tuple[tuple[str, ...], MakeDeferred]] = {}
    rollup = None
    if columns is not None:
        names, rollup = columns
        deferred["Batch"] = (Batch._fields, partial(_batch_of, frozenset(names)))
    what = SummaryKind(
        prefix,
        {"spec": repr(reader.spec)},
        SYSTEM_RECORDS,
        {"batch": reader.batch_bytes},
        deferred,
    )
    return summarized(files, how, place, what, rollup)


def _batch_of(columns: frozenset[str], where: Deferred) -> Batch:
    """A kept Batch decoded with only `columns` of its frame."""
    frame = where.layout["fields"]["frame"]
    kept = [column for column in frame["columns"] if column["name"] in columns]
    fields = {**where.layout["fields"], "frame": {**frame, "columns": kept}}
    batch: Batch = decode({**where.layout, "fields": fields}, where.hot, SYSTEM_RECORDS)
    return batch


def process_runs(
    files: Sequence[Source], records: ProcessRecords, reader: Reader, place: SummaryPlace | None
) -> Iterator[BatchRuns]:
    """The process files reduced as `records` reduces them, batch by batch in time order,
    through the day summaries (none for a --match run: its rows are not every run's). Once a
    day read raw has its summary, its rows in `records` give way to the ones left in that
    summary, so that a first run over a year does not hold a year of rows either."""
    # Per day, each batch's place in records.chunks and in records.group_slices.
    added: dict[date, list[tuple[int | None, int]]] = {}

    def kept(plan: DayPlan, summary: DaySummary[BatchRuns]) -> None:
        for (index, at), runs in zip(added.pop(plan.day, []), summary.results, strict=False):
            if index is not None and isinstance(runs.chunk, StoredChunk):
                records.chunks[index] = runs.chunk._replace(base=records.chunks[index].base)
            if isinstance(runs.groups.rows, StoredGroupRows):
                records.group_slices[at] = records.group_slices[at]._replace(rows=runs.groups.rows)

    how = DayReading(
        lambda found, warn, progress: _with(reader, warn, progress).reduced(found, records.reduce),
        _runs_day,
        reader.warn,
        reader.progress,
        kept=kept,
    )
    key = {"spec": repr(reader.spec), "group_by": records.group_by, "users": records.read_users}
    fit = {"level": records.level, "batch": reader.batch_bytes}
    deferred: dict[str, tuple[tuple[str, ...], MakeDeferred]] = {
        "Chunk": (("pids",), StoredChunk),
        "GroupRows": ((), StoredGroupRows),
    }
    what = SummaryKind(PROCESS_PREFIX, key, PROCESS_RECORDS, fit, deferred)
    used = None if records.match is not None else place
    whole = used is not None and used.window.since is None and used.window.until is None
    # Imported here: the roll-up puts back this module's stored records.
    from utils.reduce.rollup import Rollup  # noqa: PLC0415

    rollup = Rollup(records) if whole else None
    for runs in summarized(files, how, used, what, rollup):
        if rollup is not None:
            rollup.before(_runs_day(runs))
        yield runs  # the caller adds it to records before asking for the next
        where = None if runs.chunk is None else len(records.chunks) - 1
        added.setdefault(_runs_day(runs), []).append((where, len(records.group_slices) - 1))
    if rollup is not None and rollup.store is not None:
        rollup.finish()


class StoredChunk:
    """A batch's rows left in its day summary until a PID of theirs is asked for (a plot,
    an OOM victim's memory): a year of rows is hundreds of MiB, and a run that draws nothing
    needs almost none of them. Only the batch's PIDs are held, and the rows of the PIDs
    read_rows_of was given: a long-lived PID's plot reads every batch of a year, and keeping
    the batches whole would hold the year's rows again."""

    def __init__(self, where: Deferred) -> None:
        self.where = where
        self.pids: npt.NDArray[np.int32] = where.hot[where.layout["fields"]["pids"]["key"]]
        self.base = 0
        # Per PID read ahead: its rows, their ranks counted from the batch's first snapshot.
        self._kept: dict[int, tuple[IntArray, IntArray, IntArray, IntArray]] = {}

    def _replace(self, *, base: int) -> StoredChunk:
        moved = StoredChunk(self.where)
        moved.base, moved._kept = base, self._kept
        return moved

    def rows_of(self, pid: int) -> tuple[IntArray, IntArray, IntArray, IntArray]:
        """As Chunk.rows_of; the summary is read unless read_rows_of read the PID's rows
        (SummaryChangedError if another run replaced it since this one read it)."""
        if not self._holds(pid):
            empty = np.empty(0, np.int64)
            return empty, empty, empty, empty
        kept = self._kept.get(pid)
        if kept is None:
            rows: Chunk = self.where.read(PROCESS_RECORDS)
            kept = rows._replace(base=0).rows_of(pid)
        ranks, rss, foot, swap = kept
        return ranks + self.base, rss, foot, swap

    def read_rows_of(self, pids: npt.NDArray[np.int64]) -> None:
        """Read the summary once for all of pids (sorted, distinct) that the batch holds,
        and keep their rows only."""
        held = pids[np.isin(pids, self.pids, assume_unique=True)].tolist()
        wanted = [pid for pid in held if pid not in self._kept]
        if not wanted:
            return
        rows: Chunk = self.where.read(PROCESS_RECORDS)
        whole = rows._replace(base=0)
        self._kept.update((pid, whole.rows_of(pid)) for pid in wanted)

    def _holds(self, pid: int) -> bool:
        at = int(np.searchsorted(self.pids, pid))
        return at < len(self.pids) and int(self.pids[at]) == pid


class StoredGroupRows:
    """A batch's group totals left in its day summary: read each time they are asked for,
    and never kept (a run asks for the two compared periods' batches, or for every batch
    once to draw the programs that grew)."""

    def __init__(self, where: Deferred) -> None:
        self.where = where

    def load(self) -> GroupRows:
        """The rows (SummaryChangedError if another run replaced the summary since)."""
        rows: GroupRows = self.where.read(PROCESS_RECORDS)
        return rows


def _with(reader: Reader, warn: Warn, progress: Progress | None) -> Reader:
    return replace(reader, warn=warn, progress=progress)


def _batch_day(batch: Batch) -> date:
    return _day(int(batch.snapshot[0]))


def _runs_day(runs: BatchRuns) -> date:
    return _day(int(runs.read[0]))


def _day(epoch_s: int) -> date:
    return EPOCH_DAY + timedelta(days=epoch_s // DAY_S)
