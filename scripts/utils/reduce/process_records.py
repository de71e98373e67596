"""The process snapshots, reduced as they are read: compact rows and per-instance aggregates.

A month of snapshots holds millions of process rows and a year tens of millions; the
analysis often runs on the host that is short of memory. So no table of rows is ever
held. Each parsed batch is reduced at once to runs (utils.reduce.batch_runs), and its
frame freed; the runs are folded in here, batch after batch, into:

- rows, grouped by PID, as narrow arrays (the batches' Chunks), kept only to draw the
  plotted series;
- one record per process *instance* (below): first and last snapshot, samples, lowest and
  highest RSS, the first command line (interned), updated batch by batch;
- the instance's lowest RSS per UTC bucket, and its lowest footprint (anon + swap) where
  the dumps carry one: the floors the leak finder fits, at the finest level it may need
  (6 hours for a long collection).

A process instance is a PID and its start time (STARTED): the same process in every
snapshot that lists it, outages and absences from a snapshot or two included, and never
two processes, however soon the kernel reuses a PID. Dumps written without STARTED (by an
older collector) fall back on adjacency: a PID absent from a snapshot that was read and
present again later is a new instance from then on. A reuse between two such snapshots
cannot be seen; the kernel hands out PIDs in increasing order up to pid_max (4,194,304 on
64-bit systems) before it wraps, so that takes millions of process starts.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from functools import partial
from typing import Any, NamedTuple

import numpy as np
import numpy.typing as npt

from utils.core import allocator
from utils.read.threaded_reader import Batch
from utils.reduce.batch_runs import MILLI, BatchRuns, Rows, narrow, reduce_batch
from utils.reduce.group_totals import GroupPart, GroupSlice, GroupTotals
from utils.reduce.instance_keys import InstanceKeys, first_of_pairs
from utils.reduce.pss_totals import PssFold

# MILLI stays importable from here: the analyses read it beside the records.
__all__ = ["MILLI", "Floors", "InstanceTable", "ProcessRecords"]

IntArray = npt.NDArray[np.int64]


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
    "foot_samples": np.int32,  # kept rows with anon + swap
    "swap_max_milli": np.int64,  # the most swap of a kept row
    "group": np.int32,  # index into ProcessRecords.group_names: its program (or user)
    "user": np.int32,  # index into ProcessRecords.users of the first kept row's USER
}


@dataclass
class ProcessRecords:
    """Every process row of the snapshots (after --match), reduced as described above.

    Ranks number the snapshots that were read (bad files are not ranks), in time order;
    `times[rank]` is a rank's UTC time. `add` stitches the batches' runs together, in
    order: a batch's run continues an instance of the batch before only when it starts at
    the batch's first snapshot and its PID was in the previous batch's last one.
    """

    match: str | None = None
    level: int = 0  # the floors' level (utils.reduce.buckets.bucket_index)
    group_by: str = "program"  # what memory is totalled by: "program" or "user"
    group_names: list[str] = field(default_factory=list)
    _group_codes: dict[str, int] = field(default_factory=dict)
    # Per batch, its group totals' rows (a day summary's stay on disk until asked for).
    group_slices: list[GroupSlice] = field(default_factory=list)
    # Per group code: the most processes in one snapshot, processes and footed ones summed.
    _group_figures: list[IntArray] = field(
        default_factory=lambda: [np.zeros(0, np.int64) for _ in range(3)]
    )
    chunks: list[Rows] = field(default_factory=list)
    commands: list[str] = field(default_factory=list)
    read_users: bool = False  # read USER as well, for each instance's user (users[code])
    users: list[str] = field(default_factory=list)
    _user_codes: dict[str, int] = field(default_factory=dict)
    _times: list[npt.NDArray[np.datetime64]] = field(default_factory=list)
    _ranks: int = 0
    _instances: _Growable = field(default_factory=lambda: _Growable(_INSTANCE_COLUMNS))
    _command_codes: dict[str, int] = field(default_factory=dict)
    # The PIDs of the last snapshot read and their instances, sorted by PID.
    _last_pids: npt.NDArray[np.int32] = field(default_factory=lambda: np.empty(0, np.int32))
    _last_instance: IntArray = field(default_factory=lambda: np.empty(0, np.int64))
    _last_started: IntArray = field(default_factory=lambda: np.empty(0, np.int64))
    # The instance of each (PID, STARTED) seen: a process is one instance however often it
    # is missing from a snapshot.
    _by_start: InstanceKeys = field(default_factory=InstanceKeys)
    _floors: list[FloorPart | DeferredFloors] = field(default_factory=list)
    _foot_floors: list[FloorPart | DeferredFloors] = field(default_factory=list)
    pss: PssFold = field(default_factory=PssFold)  # the proportional shares, folded
    _ended: bool = False  # end_reading was called: no batch may be added
    # Per kind of floors ("RSS floors", "anon + swap floors") taken for some instances
    # only, or let go: the instances whose floors are still held (by instance number).
    _floors_held: dict[str, npt.NDArray[np.bool_]] = field(default_factory=dict)

    # --- Reading ----------------------------------------------------------------

    @property
    def snapshots_read(self) -> int:
        """Snapshots that gave rows (before --match)."""
        return self._ranks

    @property
    def instance_count(self) -> int:
        """Instances numbered so far, kept rows or not (numbers are 0 to this)."""
        return self._instances.size

    @property
    def times(self) -> npt.NDArray[np.datetime64]:
        if len(self._times) != 1:
            joined = np.concatenate(self._times) if self._times else np.empty(0, "datetime64[s]")
            self._times = [joined]
        return self._times[0]

    @property
    def reduce(self) -> Callable[[Batch], BatchRuns]:
        """What the parser threads do with each batch (see iter_reduced): picklable, so that
        worker processes can do it too (utils.read.day_workers), and holding no records."""
        return partial(reduce_batch, match=self.match, level=self.level, group_by=self.group_by)

    def end_reading(self) -> None:
        """Let go of what only folding more batches needs: the instance of each (PID,
        STARTED) and the codes of the command lines, users and groups by text (an entry per
        instance and per distinct text). Adding a batch after this is an error."""
        self._by_start = InstanceKeys()
        self._command_codes, self._user_codes, self._group_codes = {}, {}, {}
        self._ended = True

    def add(self, runs: BatchRuns) -> None:
        """Fold one batch's runs into the instances, in batch order."""
        if self._ended:
            raise RuntimeError("a batch added after end_reading")
        base = self._ranks
        self._ranks += len(runs.read)
        self._times.append(runs.read.astype("datetime64[s]"))
        instance = self._instances_of(runs)
        has = runs.samples > 0
        number = instance[has]
        table = self._instances
        # An instance may have several runs in a batch (it missed a snapshot): then each
        # update is a ufunc's .at, which applies every one of repeated indices.
        fold = _fold_at if _repeats(runs.pid[has]) else _fold_unique
        fresh = table["samples"][number] == 0
        new_numbers = number[fresh]
        table["first_rank"][new_numbers] = np.iinfo(np.int32).max
        fold(np.minimum, table["first_rank"], new_numbers, runs.kept_first[has][fresh] + base)
        table["min_milli"][new_numbers] = np.iinfo(np.int64).max
        table["max_milli"][new_numbers] = np.iinfo(np.int64).min
        table["swap_max_milli"][new_numbers] = -1
        # Runs are in time order within a PID: assigned backwards, the first one's CMD stays.
        codes = _interned(self.commands, self._command_codes, runs.cmd[has][fresh])
        table["cmd"][new_numbers[::-1]] = codes[::-1]
        if runs.user is not None:
            users = _interned(self.users, self._user_codes, runs.user[has][fresh])
            table["user"][new_numbers[::-1]] = users[::-1]
        groups = self._add_groups(runs.groups, base, len(runs.read))
        self.pss.add(runs.pss, instance, base, self._group_code)
        table["group"][new_numbers[::-1]] = groups[runs.groups.run_group[has][fresh]][::-1]
        fold(np.add, table["samples"], number, runs.samples[has])
        fold(np.maximum, table["last_rank"], number, runs.kept_last[has] + base)
        fold(np.minimum, table["min_milli"], number, runs.min_milli[has])
        fold(np.maximum, table["max_milli"], number, runs.max_milli[has])
        fold(np.add, table["foot_samples"], number, runs.foot_samples[has])
        fold(np.maximum, table["swap_max_milli"], number, runs.swap_max_milli[has])
        self._floors.append(_floor_part(instance, runs.floors))
        if len(runs.foot_floors[0]):
            self._foot_floors.append(_floor_part(instance, runs.foot_floors))
        if runs.chunk is not None:
            self.chunks.append(runs.chunk._replace(base=base))

    def _instances_of(self, runs: BatchRuns) -> IntArray:
        """Each run's instance: the one of its (PID, STARTED) seen before; else carried on
        from the batch before (the same PID in its last snapshot and this one's first, and
        no two different STARTED: the rule for dumps without STARTED, and a process whose
        dumps gained it); else new."""
        first_of_pid = np.r_[True, runs.pid[1:] != runs.pid[:-1]]
        at = np.minimum(
            np.searchsorted(self._last_pids, runs.pid), max(len(self._last_pids) - 1, 0)
        )
        if len(self._last_pids):
            before = self._last_started[at]
            adjacent = (
                first_of_pid
                & (runs.first == 0)
                & (self._last_pids[at] == runs.pid)
                & ((before < 0) | (runs.started < 0) | (before == runs.started))
            )
        else:
            adjacent = np.zeros(len(runs.pid), bool)
        carried = (
            self._last_instance[at] if len(self._last_instance) else np.zeros(len(at), np.int64)
        )
        instance = self._keyed(runs, np.where(adjacent, carried, -1))
        at_end = runs.last == len(runs.read) - 1  # the runs in the batch's last snapshot
        self._last_pids, self._last_instance = runs.pid[at_end], instance[at_end]
        self._last_started = runs.started[at_end]
        return instance

    def _keyed(self, runs: BatchRuns, instance: IntArray) -> IntArray:
        """The instances of runs with a STARTED by their (PID, STARTED); new ones made for
        the rest (instance -1: neither keyed nor carried on)."""
        known = np.flatnonzero(runs.started >= 0)
        pid, started = runs.pid[known], runs.started[known]
        # In run order: a key's first run (seen before, carried on or new) names the
        # instance of its later runs in this batch (the process missed a snapshot or two).
        first, pair = first_of_pairs(pid, started)
        number = self._by_start.get(pid[first], started[first])
        unseen = number < 0
        number[unseen] = instance[known[first[unseen]]]
        new_pair = number < 0
        unkeyed = (instance == -1) & (runs.started < 0)
        placeholders = int(new_pair.sum())
        created = self._instances.extend(placeholders + int(unkeyed.sum()))
        number[new_pair] = created[:placeholders]
        instance[known] = number[pair]
        instance[unkeyed] = created[placeholders:]
        self._instances["pid"][instance] = runs.pid  # a new instance's; the same for the rest
        self._by_start.add(pid[first[unseen]], started[first[unseen]], number[unseen])
        return instance

    def _add_groups(self, part: GroupPart, base: int, snapshots: int) -> IntArray:
        """Keep a batch's totals with global ranks and group codes; its names' codes."""
        codes = np.array([self._group_code(str(name)) for name in part.names], np.int64)
        figures = self._group_figures
        if len(figures[0]) < len(self.group_names):
            grown = [np.zeros(2 * len(self.group_names), np.int64) for _ in figures]
            for column, old in zip(grown, figures, strict=True):
                column[: len(old)] = old
            figures = self._group_figures = grown
        fold = _fold_unique if len(set(codes.tolist())) == len(codes) else _fold_at
        fold(np.maximum, figures[0], codes, part.most_processes)
        fold(np.add, figures[1], codes, part.processes)
        fold(np.add, figures[2], codes, part.foot_count)
        self.group_slices.append(GroupSlice(base, snapshots, codes, part.rows))
        return codes

    def _group_code(self, name: str) -> int:
        code = self._group_codes.get(name)
        if code is None:
            code = self._group_codes[name] = len(self.group_names)
            self.group_names.append(name)
        return code

    def group_totals(self) -> GroupTotals:
        """Every (snapshot, group) total read: the figures over all of them, and each
        batch's rows (read when asked for)."""
        count = len(self.group_names)
        most, processes, footed = (column[:count].copy() for column in self._group_figures)
        return GroupTotals(list(self.group_names), most, processes, footed, list(self.group_slices))

    def instance_groups(self) -> IntArray:
        """The group code of every instance with kept rows, in instances() order."""
        table = self._instances
        return table["group"][np.flatnonzero(table["samples"] > 0)].astype(np.int64)

    def user_of(self, instance: int) -> str | None:
        """The USER of an instance's first kept row; None when USER was not read."""
        if not self.users:
            return None
        return self.users[int(self._instances["user"][instance])]

    # --- What the analyses ask --------------------------------------------------

    def instances(self) -> InstanceTable:
        """The instances with kept rows, as arrays of the widths the records keep them at
        (_INSTANCE_COLUMNS: 32 bits for counts, ranks, PIDs and codes, which the judges
        index and compare with; RSS in 64)."""
        table = self._instances
        kept = np.flatnonzero(table["samples"] > 0)
        # Without --match every instance has rows: its columns are handed out as they are
        # (read-only views), not copied (a year's table is held through the leak finder).
        every = len(kept) == table.size

        def column(name: str) -> IntArray:
            if not every:
                return table[name][kept]
            view = table[name].view()
            view.flags.writeable = False
            return view

        return InstanceTable(
            number=kept,
            pid=column("pid"),
            samples=column("samples"),
            first_rank=column("first_rank"),
            last_rank=column("last_rank"),
            min_milli=column("min_milli"),
            max_milli=column("max_milli"),
            cmd=column("cmd"),
            foot_samples=column("foot_samples"),
            swap_max_milli=column("swap_max_milli"),
        )

    def floors(self, wanted: npt.NDArray[np.bool_] | None = None) -> Floors:
        """Each instance's lowest RSS per bucket (at self.level), by instance, then bucket;
        only the instances `wanted` names (by instance number), if given. The floors of the
        instances not wanted are then let go: a run asks for the floors of the instances it
        judges, once, and a year's short-lived processes hold most of them. Asking again
        after that is an error, never a silently smaller answer."""
        merged = _merged(_taken(self._floors, self._take("RSS floors", wanted)))
        self._floors = [*merged]
        return _as_floors(merged)

    def foot_floors(self, wanted: npt.NDArray[np.bool_] | None = None) -> Floors:
        """Each instance's lowest anon + swap per bucket, of the rows that have it (of the
        `wanted` instances, as floors, the others' let go: once, as floors)."""
        taken = self._take("anon + swap floors", wanted)
        merged = _merged(_taken(self._foot_floors, taken))
        self._foot_floors = [*merged]
        return _as_floors(merged)

    def release_floors(self) -> None:
        """Let go of both kinds of floors: once the leak finder holds the ones it judges,
        the records' copies are never read again in a run."""
        self._floors, self._foot_floors = [], []
        for kind in ("RSS floors", "anon + swap floors"):
            self._floors_held[kind] = np.zeros(self.instance_count, bool)

    def _take(
        self, kind: str, wanted: npt.NDArray[np.bool_] | None
    ) -> npt.NDArray[np.bool_] | None:
        """wanted, once the floors of `kind` are known to be held for every instance it
        names; from then on only those are held."""
        held = self._floors_held.get(kind)
        if held is not None and (wanted is None or bool((wanted & ~held).any())):
            raise RuntimeError(f"the {kind} were taken for some instances or let go already")
        if wanted is not None:
            self._floors_held[kind] = wanted.copy()
        return wanted

    def read_rows_of(self, pids: npt.ArrayLike) -> None:
        """Read ahead the rows of these PIDs, each batch left in a summary read once for all
        of them, so that pid_memory of them reads nothing more."""
        wanted = np.unique(np.asarray(pids, dtype=np.int64))
        if len(wanted):
            for chunk in self.chunks:
                chunk.read_rows_of(wanted)

    def pid_memory(self, pid: int, first_rank: int = 0, last_rank: int | None = None) -> tuple[
        npt.NDArray[np.datetime64],
        npt.NDArray[np.float64],
        npt.NDArray[np.float64],
        npt.NDArray[np.float64],
    ]:
        """UTC times, RSS, anon + swap and swap (MiB; NaN where a dump lacks them) of a PID's
        kept rows between two ranks, in time order."""
        parts = [chunk.rows_of(pid) for chunk in self.chunks]
        ranks, rss, foot, swap = (
            np.concatenate([part[k] for part in parts]) if parts else np.empty(0, np.int64)
            for k in range(4)
        )
        last = self._ranks if last_rank is None else last_rank
        inside = (ranks >= first_rank) & (ranks <= last)
        return (
            self.times[ranks[inside]],
            rss[inside] / MILLI,
            _mib(foot[inside]),
            _mib(swap[inside]),
        )

    def time_range(self) -> tuple[datetime, datetime] | None:
        table = self.instances()
        if len(table.number) == 0:
            return None
        return (
            self.times[int(table.first_rank.min())].astype(datetime),
            self.times[int(table.last_rank.max())].astype(datetime),
        )


def _intern(texts: list[str], codes: dict[str, int], text: str) -> int:
    """The code of text in texts (appended when new)."""
    code = codes.get(text)
    if code is None:
        code = codes[text] = len(texts)
        texts.append(text)
    return code


def _interned(texts: list[str], codes: dict[str, int], values: npt.NDArray[Any]) -> IntArray:
    """The code of each value's text in texts, new ones appended in order: the texts known
    already (most of a batch's) are looked up in one pass, the rest then in order."""
    items = values.tolist()
    get = codes.get
    found = np.array([get(item, -1) for item in items], np.int64)
    for at in np.flatnonzero(found < 0).tolist():
        found[at] = _intern(texts, codes, str(items[at]))
    return found


def _repeats(pids: npt.NDArray[np.int32]) -> bool:
    """Whether runs (in PID order) may share an instance: an instance is one PID's, so
    where no PID has two runs, none does."""
    return bool(np.any(pids[1:] == pids[:-1]))


def _fold_at(ufunc: np.ufunc, column: npt.NDArray[Any], index: IntArray, values: IntArray) -> None:
    """column[index] = ufunc(column[index], values), each of repeated indices in turn."""
    ufunc.at(column, index, values)


def _fold_unique(
    ufunc: np.ufunc, column: npt.NDArray[Any], index: IntArray, values: IntArray
) -> None:
    """As _fold_at, for indices none of which repeats: a gather, the ufunc and a scatter."""
    column[index] = ufunc(column[index], values)


class InstanceTable(NamedTuple):
    """Per instance with kept rows; integer columns at the records' widths (32 bits but
    for number and the RSS columns): widen before arithmetic that could pass 2**31."""

    number: IntArray
    pid: IntArray
    samples: IntArray
    first_rank: IntArray
    last_rank: IntArray
    min_milli: IntArray
    max_milli: IntArray
    cmd: IntArray
    foot_samples: IntArray  # rows with anon + swap: all of them, the footprint is judged
    swap_max_milli: IntArray  # -1: no row had it


class Floors(NamedTuple):
    instance: IntArray  # instance number
    bucket: IntArray  # utils.reduce.buckets.bucket_index(epoch seconds, level)
    low_milli: IntArray  # the lowest value in that bucket, thousandths of a MiB
    samples: IntArray


FloorPart = tuple[npt.NDArray[np.signedinteger[Any]], ...]


class DeferredFloors:
    """A part of the floors left on disk until taken (a roll-up's, utils.reduce.rollup):
    only the rows of the instances a run judges are ever held."""

    def take(self, wanted: npt.NDArray[np.bool_] | None) -> FloorPart:
        """The part's rows of the wanted instances (every row: None), as a FloorPart."""
        raise NotImplementedError


def _floor_part(instance: IntArray, floors: tuple[IntArray, ...]) -> FloorPart:
    """A batch's floors by instance, narrow: 6-hour buckets since 1970 are about 82,000."""
    floor_run, bucket, low, count = floors
    return (
        instance[floor_run].astype(np.int32),
        narrow(bucket),
        narrow(low),
        _narrow_count(count),
    )


def _narrow_count(count: IntArray) -> npt.NDArray[np.signedinteger[Any]]:
    """A batch's rows per bucket in the narrowest type that holds them: a year's floors are
    millions of rows, and a 6-hour bucket of 10-minute snapshots holds 36. _merged sums
    them in 64 bits, so two halves of a bucket never overflow."""
    most = int(count.max()) if len(count) else 0
    for kind in (np.int8, np.int16):
        if most <= np.iinfo(kind).max:
            return count.astype(kind)
    return count.astype(np.int32)


def _taken(
    parts: list[FloorPart | DeferredFloors], wanted: npt.NDArray[np.bool_] | None
) -> list[FloorPart]:
    """The parts' floors of the wanted instances (every part: wanted None), emptying `parts`
    as it goes, so that each part is let go once its wanted floors are taken."""
    kept: list[FloorPart] = []
    while parts:
        part = parts.pop()
        if isinstance(part, DeferredFloors):
            kept.append(part.take(wanted))
        elif wanted is None:
            kept.append(part)
        else:
            keep = wanted[part[0]]
            kept.append(tuple(column[keep] for column in part))
    kept.reverse()
    return kept


def _merged(parts: list[FloorPart]) -> list[FloorPart]:
    """The batches' floors as one part, sorted by instance and bucket; a batch boundary can
    cut a bucket in two, so the halves are merged. `parts` is emptied: each column of the
    batches is let go once joined, and each unsorted column once sorted."""
    columns = [list(column) for column in zip(*parts, strict=True)]
    parts.clear()
    if not columns or not sum(len(part) for part in columns[0]):
        return []
    instance, bucket, low, count = (_joined(column) for column in columns)
    allocator.trim()  # the batches' parts, small blocks of the heap, were let go
    order = np.lexsort((bucket, instance))
    instance = instance[order]
    bucket = bucket[order]
    low = low[order]
    count = count[order]
    del order
    cuts = np.flatnonzero(
        np.r_[True, (instance[1:] != instance[:-1]) | (bucket[1:] != bucket[:-1])]
    )
    if len(cuts) == len(instance):  # no bucket was cut: nothing to merge
        return [(instance, bucket, low, count)]
    return [
        (
            instance[cuts],
            bucket[cuts],
            np.minimum.reduceat(low, cuts),
            np.add.reduceat(count, cuts, dtype=np.int64),
        )
    ]


def _joined(column: list[npt.NDArray[np.signedinteger[Any]]]) -> npt.NDArray[np.signedinteger[Any]]:
    """The batches' parts of one column as one array; the list is emptied."""
    joined = np.concatenate(column)
    column.clear()
    return joined


def _as_floors(parts: list[FloorPart]) -> Floors:
    if not parts:
        empty = np.empty(0, np.int64)
        return Floors(empty, empty, empty, empty)
    return Floors(*(column.astype(np.int64) for column in parts[0]))


def _mib(milli: IntArray) -> npt.NDArray[np.float64]:
    """Thousandths of a MiB as MiB, NaN for -1 (not in the dump)."""
    return np.where(milli >= 0, milli / MILLI, np.nan)
