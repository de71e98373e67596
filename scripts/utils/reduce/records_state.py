"""The process records' fold, taken as plain named arrays and put back: what the roll-up
(utils.reduce.rollup) keeps of the records after the closed days it covers, so that a run
goes on folding from there exactly as if it had folded those days itself.

Everything a later batch's fold or a judge reads is kept: the instances' columns, the
interned texts, each (PID, STARTED)'s instance, the PIDs of the last snapshot, the floors,
the group figures and slices, the proportional shares, and where each batch's rows and
group totals are left in its day summary (a reference to the file as it was read:
name, identity, the meta and layout its deferred record needs). The floors and shares are
kept as one part each, in fold order: every reader of them concatenates the parts.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Mapping
from io import BufferedReader
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import numpy.typing as npt

from utils.reduce import summary_file
from utils.reduce.day_summaries import Deferred, SummaryChangedError
from utils.reduce.group_totals import GroupSlice
from utils.reduce.instance_keys import InstanceKeys
from utils.reduce.process_records import (
    _INSTANCE_COLUMNS,
    DeferredFloors,
    FloorPart,
    ProcessRecords,
    _Growable,
)
from utils.reduce.pss_totals import PssFold
from utils.reduce.summary_kinds import StoredChunk, StoredGroupRows

IntArray = npt.NDArray[np.int64]
Texts = npt.NDArray[np.object_]


class NotStoredError(ValueError):
    """The records hold rows that are in memory, not in a day summary: no roll-up of them."""


class StoredRef(NamedTuple):
    """Where a deferred record of a day summary is: the file's name in the summary folder,
    its identity when read (inode, size, mtime), the meta and layout its reader needs
    (JSON), and the hot arrays it holds (by their names in that file)."""

    file: str
    identity: IntArray
    meta: str
    layout: str
    hot_names: Texts
    hot: list[npt.NDArray[Any]]


class RecordsState(NamedTuple):
    """A ProcessRecords' fold between two batches, as named arrays."""

    ranks: int
    times_s: IntArray
    instances: list[npt.NDArray[Any]]  # _INSTANCE_COLUMNS, in order, at their size
    commands: Texts
    users: Texts
    group_names: Texts
    group_figures: list[IntArray]
    slice_bases: IntArray
    slice_snapshots: IntArray
    slice_codes: list[IntArray]
    slice_rows: list[StoredRef]
    chunk_bases: IntArray
    chunks: list[StoredRef]
    last: list[npt.NDArray[Any]]  # the last snapshot's PIDs, instances and STARTED
    keys: list[IntArray]  # InstanceKeys: large keys and numbers, small keys and numbers
    odd_keys: list[IntArray]  # the pairs that do not pack: PID, STARTED, instance
    floors: list[npt.NDArray[Any]]
    foot_floors: list[npt.NDArray[Any]]
    pss_parts: list[IntArray]
    pss_first: list[IntArray]  # instance, share
    pss_last: list[IntArray]
    pss_waiting: list[IntArray]  # instance, group code, row count, then every rank


STATE_RECORDS = {"RecordsState": RecordsState, "StoredRef": StoredRef}
# The fields kept in the roll-up's cold part, read only for the instances a run judges.
COLD_FIELDS = ("floors", "foot_floors")
HOT_FIELDS = {"RecordsState": [name for name in RecordsState._fields if name not in COLD_FIELDS]}


class StoredFloors(DeferredFloors):
    """One kind of the roll-up's floors, left in its cold part: read through the handle the
    roll-up was read with (the same file, even if a later run replaced it since), an array
    at a time, keeping the wanted instances' rows only."""

    def __init__(
        self, handle: BufferedReader, meta: Mapping[str, Any], keys: list[str], path: Path
    ) -> None:
        self.handle, self.meta, self.keys, self.path = handle, meta, keys, path

    def take(self, wanted: npt.NDArray[np.bool_] | None) -> FloorPart:
        """The part's rows of the wanted instances (all: None). SummaryChangedError (one
        line) if the roll-up turns out damaged: it is deleted, so the next run folds the
        days from their summaries."""
        columns: dict[str, npt.NDArray[Any]] = {}
        keep: npt.NDArray[np.bool_] | None = None
        try:
            for key, array in summary_file.region_arrays(self.handle, self.meta, "cold"):
                if key not in self.keys:
                    continue  # the other kind's: let go at once
                if wanted is not None and keep is None and key != self.keys[0]:
                    raise ValueError("floors whose instances come after their values")
                if key == self.keys[0] and wanted is not None:
                    keep = wanted[array]
                columns[key] = array if keep is None else array[keep]
            part = tuple(columns[key] for key in self.keys)
        except Exception as err:  # a cache file, whatever is wrong with it
            with contextlib.suppress(OSError):
                self.path.unlink()
            raise SummaryChangedError(
                f"{self.path}: {err}; the roll-up is deleted, run again"
            ) from err
        return part


def _texts(values: list[str]) -> Texts:
    out = np.empty(len(values), dtype=object)
    out[:] = values
    return out


def _ref(where: Deferred) -> StoredRef:
    names = sorted(where.hot)
    return StoredRef(
        where.path.name,
        np.array(where.identity, np.int64),
        json.dumps(where.meta),
        json.dumps(where.layout),
        _texts(names),
        [where.hot[name] for name in names],
    )


def _where(ref: StoredRef, folder: Path, parsed: dict[str, Any]) -> Deferred:
    """The deferred record a reference names. `parsed`: the JSON texts and paths made so
    far, shared (never changed by a reader): a day's records share one meta, and most days'
    records have the same layouts, so a year's thousands of them hold a few hundred."""
    identity = tuple(int(value) for value in ref.identity.tolist())
    if len(identity) != 3 or "/" in ref.file or ref.file in ("", ".", ".."):
        raise ValueError("a reference to no day summary")
    hot = dict(zip(ref.hot_names.tolist(), ref.hot, strict=True))
    for text in (ref.meta, ref.layout):
        if text not in parsed:
            parsed[text] = json.loads(text)
    path = parsed.setdefault("/" + ref.file, folder / ref.file)  # "/": never a JSON text
    return Deferred(
        path,
        parsed[ref.meta],
        (identity[0], identity[1], identity[2]),
        parsed[ref.layout],
        hot,
    )


def referenced(state: RecordsState) -> dict[str, tuple[int, int, int]]:
    """The day summaries the state's deferred records are in, with their identities."""
    files: dict[str, tuple[int, int, int]] = {}
    for ref in [*state.slice_rows, *state.chunks]:
        first, second, third = (int(value) for value in ref.identity.tolist())
        files[ref.file] = (first, second, third)
    return files


def _one_part(parts: list[FloorPart] | list[tuple[IntArray, ...]], width: int) -> list[Any]:
    """Parts of equal width as one, column by column (no column: no part)."""
    if not parts:
        return []
    return [np.concatenate([part[k] for part in parts]) for k in range(width)]


def _held(parts: list[FloorPart | DeferredFloors]) -> list[FloorPart]:
    """The parts in memory, those left on disk read whole."""
    return [part.take(None) if isinstance(part, DeferredFloors) else part for part in parts]


def _pairs(mapping: dict[int, int]) -> list[IntArray]:
    return [np.array(list(mapping), np.int64), np.array(list(mapping.values()), np.int64)]


def state_of(records: ProcessRecords) -> RecordsState:
    """The records' fold as it is now; NotStoredError if a batch's rows or group totals are
    still in memory (a day read but not kept in a summary)."""
    slices = records.group_slices
    rows = [part.rows for part in slices if isinstance(part.rows, StoredGroupRows)]
    if len(rows) != len(slices):
        raise NotStoredError("group totals held in memory")
    chunks = [
        chunk for chunk in records.chunks if isinstance(chunk, StoredChunk) and not chunk._kept
    ]
    if len(chunks) != len(records.chunks):
        raise NotStoredError("rows held in memory")
    table = records._instances
    keys = records._by_start
    odd = list(keys._odd.items())
    pss_parts, pss_waiting = _pss_columns(records.pss)
    return RecordsState(
        ranks=records._ranks,
        times_s=records.times.astype(np.int64),
        instances=[table[name] for name in _INSTANCE_COLUMNS],  # written before any change
        commands=_texts(records.commands),
        users=_texts(records.users),
        group_names=_texts(records.group_names),
        group_figures=list(records._group_figures),
        slice_bases=np.array([part.base for part in slices], np.int64),
        slice_snapshots=np.array([part.snapshots for part in slices], np.int64),
        slice_codes=[part.codes for part in slices],
        slice_rows=[_ref(part.where) for part in rows],
        chunk_bases=np.array([chunk.base for chunk in chunks], np.int64),
        chunks=[_ref(chunk.where) for chunk in chunks],
        last=[records._last_pids, records._last_instance, records._last_started],
        keys=[column for part in keys._parts for column in part],
        odd_keys=[np.array(column, np.int64).reshape(-1) for column in _odd_columns(odd)],
        floors=_one_part(_held(records._floors), 4),
        foot_floors=_one_part(_held(records._foot_floors), 4),
        pss_parts=pss_parts,
        pss_first=_pairs(records.pss._first),
        pss_last=_pairs(records.pss._last),
        pss_waiting=pss_waiting,
    )


def _odd_columns(odd: list[tuple[tuple[int, int], int]]) -> list[list[int]]:
    """The pairs that do not pack, as PID, STARTED and instance columns."""
    return [[pair[0] for pair, _ in odd], [pair[1] for pair, _ in odd], [n for _, n in odd]]


def _pss_columns(pss: PssFold) -> tuple[list[IntArray], list[IntArray]]:
    """The shares' parts as one, and the rows waiting for a share (instance, group code, row
    count, then every rank)."""
    waiting = pss._waiting
    parts = [
        np.concatenate([np.asarray(part[k], np.int64) for part in pss._parts])
        for k in range(5 if pss._parts else 0)
    ]
    return parts, [
        np.array([item[0] for item in waiting], np.int64),
        np.array([item[2] for item in waiting], np.int64),
        np.array([len(item[1]) for item in waiting], np.int64),
        np.concatenate([item[1] for item in waiting]) if waiting else np.empty(0, np.int64),
    ]


def restore(records: ProcessRecords, state: RecordsState, folder: Path) -> None:
    """Put a state back into fresh records (made with the same --group-by, USER reading and
    floors' level), the day summaries it refers to being in `folder`. ValueError (or
    KeyError, TypeError, IndexError) if the state does not hold together."""
    if records._ranks or records.chunks or records.group_slices:
        raise RuntimeError("a roll-up restored into records that folded batches already")
    records._ranks = int(state.ranks)
    records._times = [state.times_s.astype("datetime64[s]")]
    if len(records._times[0]) != records._ranks:
        raise ValueError("snapshot times that are not one per snapshot")
    records._instances = _table_of(state.instances)
    records.commands = [str(text) for text in state.commands.tolist()]
    records.users = [str(text) for text in state.users.tolist()]
    records.group_names = [str(text) for text in state.group_names.tolist()]
    records._command_codes = {text: code for code, text in enumerate(records.commands)}
    records._user_codes = {text: code for code, text in enumerate(records.users)}
    records._group_codes = {text: code for code, text in enumerate(records.group_names)}
    if len(state.group_figures) != 3:
        raise ValueError("group figures that are not three columns")
    records._group_figures = [np.asarray(column, np.int64) for column in state.group_figures]
    parsed: dict[str, Any] = {}
    records.group_slices = [
        GroupSlice(int(base), int(snapshots), codes, StoredGroupRows(_where(ref, folder, parsed)))
        for base, snapshots, codes, ref in zip(
            state.slice_bases.tolist(),
            state.slice_snapshots.tolist(),
            state.slice_codes,
            state.slice_rows,
            strict=True,
        )
    ]
    records.chunks = [
        StoredChunk(_where(ref, folder, parsed))._replace(base=int(base))
        for base, ref in zip(state.chunk_bases.tolist(), state.chunks, strict=True)
    ]
    records._last_pids, records._last_instance, records._last_started = state.last
    records._by_start = _keys_of(state)
    records._floors = [tuple(state.floors)] if state.floors else []
    records._foot_floors = [tuple(state.foot_floors)] if state.foot_floors else []
    records.pss = _pss_of(state)


def _keys_of(state: RecordsState) -> InstanceKeys:
    keys = InstanceKeys()
    large_keys, large_numbers, small_keys, small_numbers = state.keys
    keys._parts = [(large_keys, large_numbers), (small_keys, small_numbers)]
    pid, started, number = (column.tolist() for column in state.odd_keys)
    keys._odd = {(a, b): c for a, b, c in zip(pid, started, number, strict=True)}
    return keys


def _pss_of(state: RecordsState) -> PssFold:
    fold = PssFold()
    if state.pss_parts:
        if len(state.pss_parts) != 5:
            raise ValueError("shares that are not five columns")
        fold._parts = [tuple(state.pss_parts)]
    fold._first = dict(zip(*(column.tolist() for column in state.pss_first), strict=True))
    fold._last = dict(zip(*(column.tolist() for column in state.pss_last), strict=True))
    number, code, count, ranks = state.pss_waiting
    ends = np.cumsum(count)
    if len(ends) and int(ends[-1]) != len(ranks):
        raise ValueError("waiting shares that do not add up")
    starts = ends - count
    fold._waiting = [
        (int(n), ranks[int(start) : int(end)], int(c))
        for n, c, start, end in zip(number, code, starts, ends, strict=True)
    ]
    return fold


def _table_of(columns: list[npt.NDArray[Any]]) -> _Growable:
    """The instances' columns as they were read (not copied: a year's are tens of MiB), at
    their widths; the first instance added grows them."""
    table = _Growable(_INSTANCE_COLUMNS, 0)
    size = len(columns[0]) if columns else 0
    for (name, dtype), column in zip(_INSTANCE_COLUMNS.items(), columns, strict=True):
        if column.dtype != dtype or column.shape != (size,):
            raise ValueError(f"an instance column {name} that is not {size} of {dtype.__name__}")
        table.columns[name] = column
    table.size = size
    return table
