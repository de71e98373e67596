"""Day summaries: each closed UTC day's reduced batches kept beside the data, so that a run
reads only the days that have none (today's, a late file's day, a changed bundle's).

A summary is a cache, never a source of truth. It holds exactly what the reader handed on
for that day (its batches, each reduced as the analysis reduces it: utils.read.threaded_reader
never lets a batch span two days) and the warnings said while reading it. Folding the kept
batches gives what folding the freshly read ones gives, so deleting every summary changes no
answer. A summary is used only when all of these hold, else the day is read raw (and its
summary written again):

- the day is closed (before today, UTC) and the run's window holds all of it;
- its files are the same: names, sizes and modification times (the fingerprint), so a late
  file, a compaction into a bundle or a removed file makes it stale;
- it was made by the same code (a digest of the read, reduce and collect stages' sources)
  and for the same reading (the key: --match, --group-by, the floors' level, ...);
- it reads back whole: a cut-short or damaged file is recomputed, with one warning line for
  the run.

docs/summaries.md says what each kind holds, field by field.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import sys
from collections import ChainMap
from collections.abc import Callable, Collection, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, timedelta
from functools import partial
from pathlib import Path
from typing import Any, Generic, Protocol, TypeVar

import numpy as np
import pandas as pd

from utils.core.atomic_files import PRIVATE_FILE_MODE, temp_path
from utils.parser import Bundle, NoDataError, Source, TimeWindow, Warn, Where
from utils.reduce import summary_file
from utils.reduce.fingerprints import Folder, fingerprints
from utils.reduce.summary_codec import (
    CodecError,
    Layout,
    Records,
    Sink,
    array_keys,
    decode,
    encode,
)

T = TypeVar("T")
Progress = Callable[[int, int], None]
Note = Callable[[str], None]
# The sources whose code decides what a summary holds: any change there makes every
# summary another version's.
_UTILS = Path(__file__).resolve().parent.parent
CODE_SOURCES = ("core", "collect", "read", "reduce")
FORMAT = "pid-memory-inspector day summary"
FORMAT_VERSION = 2
# A day's summary for one way of reading it (the key's digest names it, so that runs with
# other flags keep summaries of their own rather than overwrite each other's).
SUMMARY_NAME = "{kind}day_{day:%Y%m%d}_{key}.summary"

# A summary holds command lines, as the dumps do: as private as they are.
FOLDER_MODE = 0o750
# Warnings of a read that may not fail next time (a permission, an I/O error): a day that has
# one is not kept, so that the next run reads what this one could not.
PASSING = "cannot read"
# How the reader names a bundle's member in a warning: `<bundle path>:<member name>`.
BUNDLE_MEMBER_MARK = ".tar.xz:"


def code_digest() -> str:
    """A digest of the sources of the stages up to reduce, the discovery module, and the
    versions of Python, numpy and pandas: a new parser may read the same bytes otherwise."""
    digest = hashlib.sha256(f"{sys.version}\0{np.__version__}\0{pd.__version__}".encode())
    paths = sorted(path for stage in CODE_SOURCES for path in (_UTILS / stage).glob("*.py"))
    for path in [*paths, _UTILS / "parser.py"]:
        digest.update(path.name.encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()[:16]


# --- Which days, and are they the same ----------------------------------------------


@dataclass(frozen=True)
class DayPlan:
    """One UTC day's sources, and the fingerprint of its files (None: never summarised)."""

    day: date
    sources: tuple[Source, ...]
    fingerprint: str | None


def plan_days(
    sources: Sequence[Source], window: TimeWindow, today: date, folder: Path | None = None
) -> list[DayPlan]:
    """The sources by UTC day, in order, each closed day the window holds whole with the
    fingerprint of its files. `folder`: the one folder every source is directly in (the
    dumps dir discovery lists), whose files are then looked at by name relative to it."""
    by_day: dict[date, list[Source]] = {}
    for source in sources:
        day = source.day if isinstance(source, Bundle) else source.timestamp.date()
        by_day.setdefault(day, []).append(source)
    days = sorted(by_day.items())
    closed = [day for day, _ in days if _whole(day, window, today)]
    with Folder(folder) as where:
        digests = dict(
            zip(closed, fingerprints([by_day[day] for day in closed], where), strict=True)
        )
    return [DayPlan(day, tuple(found), digests.get(day)) for day, found in days]


def _whole(day: date, window: TimeWindow, today: date) -> bool:
    start = datetime(day.year, day.month, day.day)
    end = start + timedelta(days=1) - timedelta(seconds=1)
    return (
        day < today
        and (window.since is None or window.since <= start)
        and (window.until is None or window.until >= end)
    )


def canonical(mapping: Mapping[str, Any]) -> str:
    return json.dumps(dict(mapping), sort_keys=True)


@dataclass(frozen=True)
class Deferred:
    """Where a deferred record's arrays are: its summary file as it was when read (the
    meta, and which file it was), and the hot arrays its layout names."""

    path: Path
    meta: Mapping[str, Any]
    identity: tuple[int, int, int]
    layout: Layout
    hot: Mapping[str, Any]

    def read(self, records: Records) -> Any:
        """The record, read whole from its summary now (the file checked to be the one read
        before, through the same open handle). SummaryChangedError, one line, if another run
        replaced it since, or it is gone or damaged; a damaged one is deleted, so that the
        next run reads its day from the snapshots."""
        try:
            with summary_file.open_summary(self.path) as handle:
                if summary_file.identity_of(handle) != self.identity:
                    raise SummaryChangedError(f"{self.path} was replaced while it was read")
                cold = summary_file.read_cold(handle, self.meta)
                return decode(self.layout, ChainMap(cold, dict(self.hot)), records)
        except SummaryChangedError:
            raise
        except Exception as err:  # a cache file, whatever is wrong with it: see load()
            with contextlib.suppress(OSError):
                self.path.unlink()
            raise SummaryChangedError(
                f"{self.path}: {err}; the day summary is deleted, run again"
            ) from err


class SummaryChangedError(NoDataError):
    """A day summary replaced by another run while this one still needed it: one line, and
    the next run reads it again."""


# Makes the stand-in of a deferred record from where its arrays are.
MakeDeferred = Callable[[Deferred], Any]


def _stand_in(make: MakeDeferred, where: Deferred, layout: Layout, hot: Mapping[str, Any]) -> Any:
    """A deferred record's stand-in, with the hot arrays its layout names (the rest of the
    summary's hot arrays are not kept alive by it)."""
    named = {key: hot[key] for key in array_keys(layout) if key in hot}
    return make(replace(where, layout=layout, hot=named))


# --- The store ----------------------------------------------------------------------


@dataclass
class DaySummary(Generic[T]):
    """One day's reduced batches, and the warnings said while reading it (path, reason)."""

    results: list[T] = field(default_factory=list)
    warnings: list[tuple[Path, str]] = field(default_factory=list)


@dataclass
class SummaryStore:
    """The summaries of one kind of snapshot, for one way of reading them (the key)."""

    folder: Path
    kind: str  # the snapshot prefix: sys_mem_ or process_mem_
    key: Mapping[str, Any]  # what the reading depends on: names the summary file
    records: Records
    dumps_dir: Path
    note: Note
    # Records left on disk until asked for: each class's hot fields (read with the summary)
    # and the maker of its stand-in.
    deferred: Mapping[str, tuple[Collection[str], MakeDeferred]] = field(default_factory=dict)
    # What else must match, or the day is recomputed and its summary replaced.
    fit: Mapping[str, Any] = field(default_factory=dict)
    code: str = field(default_factory=code_digest)
    unreadable: list[str] = field(default_factory=list)
    unwritable: str | None = None
    # The days read from their summaries, and those whose summaries this run wrote, with
    # each one's warnings (utils.reduce.rollup keeps them).
    loaded: set[date] = field(default_factory=set)
    saved: set[date] = field(default_factory=set)
    warnings_of: dict[date, list[tuple[Path, str]]] = field(default_factory=dict)

    def path(self, day: date) -> Path:
        key = hashlib.sha256(canonical(self.key).encode()).hexdigest()[:8]
        return self.folder / SUMMARY_NAME.format(kind=self.kind, day=day, key=key)

    def load(self, plan: DayPlan) -> DaySummary[Any] | None:
        """The day's summary if it is fresh; None if it is missing, stale or unreadable."""
        path = self.path(plan.day)
        try:
            with summary_file.open_summary(path) as handle:
                identity = summary_file.identity_of(handle)
                meta, hot = summary_file.read(handle)
            if not self._fits(meta, plan):
                return None
            cold = summary_file.cold_part(meta)  # all a deferred record keeps of the meta
            deferred = {
                name: partial(_stand_in, make, Deferred(path, cold, identity, {}, hot))
                for name, (_, make) in self.deferred.items()
            }
            results = decode(meta["layout"], hot, self.records, deferred)
            warnings = [(self._full_path(item[0]), str(item[1])) for item in meta["warnings"]]
        except (FileNotFoundError, NotADirectoryError, PermissionError):
            return None  # none kept there (a folder that cannot be written is said on save)
        # A summary is a cache: whatever is wrong with the file (cut short, damaged, crafted
        # to overflow, recurse or name a dtype this pandas lacks), the day is read from its
        # snapshots, and the run says so on one line. The reason is kept, so nothing hides.
        except Exception as err:
            reason = str(err) if isinstance(err, CodecError) else f"{type(err).__name__}: {err}"
            self.unreadable.append(f"{path.name} ({reason})")
            return None
        if plan.day not in self.saved:  # not the read-back of one written now
            self.loaded.add(plan.day)
            self.warnings_of[plan.day] = warnings
        return DaySummary(list(results), warnings)

    def _fits(self, meta: Mapping[str, Any], plan: DayPlan) -> bool:
        return (
            meta.get("format") == FORMAT
            and meta.get("version") == FORMAT_VERSION
            and meta.get("code") == self.code
            and meta.get("kind") == self.kind
            and meta.get("day") == plan.day.isoformat()
            and meta.get("key") == json.loads(canonical(self.key))
            and meta.get("fit") == json.loads(canonical(self.fit))
            and meta.get("fingerprint") == plan.fingerprint
        )

    def save(self, plan: DayPlan, summary: DaySummary[Any]) -> bool:
        """Write the day's summary whole (a temporary file, then a rename), or not at all; the
        first failure to write is said once, and no more summaries are written. Whether it
        was written."""
        if self.unwritable is not None or plan.fingerprint is None:
            return False
        if any(reason.startswith(PASSING) for _, reason in summary.warnings):
            return False  # a read that failed may not fail next time: never keep its holes
        arrays = Sink({name: hot for name, (hot, _) in self.deferred.items()})
        layout = encode(list(summary.results), arrays)
        meta = {
            "format": FORMAT,
            "version": FORMAT_VERSION,
            "code": self.code,
            "kind": self.kind,
            "day": plan.day.isoformat(),
            "key": dict(self.key),
            "fit": dict(self.fit),
            "fingerprint": plan.fingerprint,
            "warnings": [[self._short_path(path), reason] for path, reason in summary.warnings],
            "layout": layout,
        }
        path = self.path(plan.day)
        temporary = temp_path(path)
        try:
            self.folder.mkdir(mode=FOLDER_MODE, parents=True, exist_ok=True)
            fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, PRIVATE_FILE_MODE)
            with os.fdopen(fd, "wb") as handle:
                summary_file.write(handle, meta, arrays.arrays)
            os.replace(temporary, path)
        except OSError as err:
            with contextlib.suppress(OSError):
                temporary.unlink()
            self.unwritable = f"{err.strerror or err}"
            self.note(f"day summaries are not kept: cannot write {self.folder}: {self.unwritable}")
            return False
        self.saved.add(plan.day)
        self.warnings_of[plan.day] = list(summary.warnings)
        return True

    def _short_path(self, path: Path) -> str:
        """A warned path relative to the dumps dir where it is in it, so that a moved dumps dir
        keeps its summaries."""
        text, root = str(path), str(self.dumps_dir) + os.sep
        return text[len(root) :] if text.startswith(root) else text

    def _full_path(self, text: str) -> Path:
        return Path(text) if os.path.isabs(text) else self.dumps_dir / text

    def finish(self) -> None:
        """Say once what could not be read back (it was recomputed)."""
        if self.unreadable:
            first, more = self.unreadable[0], len(self.unreadable) - 1
            also = f" and {more:,} more" if more else ""
            self.note(
                f"warning: {self.folder}: summary {first}{also} could not be read;"
                " recomputed from the snapshots"
            )


# --- Reading with the summaries -----------------------------------------------------


@dataclass
class _Pending(Generic[T]):
    plan: DayPlan
    summary: DaySummary[T]


@dataclass(frozen=True)
class DayReading(Generic[T]):
    """How days are read raw and what becomes of it: `read` reads sources (in time order)
    into reduced batches; `day_of` names a batch's UTC day."""

    read: Callable[[Sequence[Source], Warn, Progress | None], Iterator[T]]
    day_of: Callable[[T], date]
    warn: Warn
    progress: Progress | None = None
    store: SummaryStore | None = None
    # Told of each day read raw once its summary is written, with that summary as read back
    # (its deferred records on disk): a caller may let go of what it holds in memory.
    kept: Callable[[DayPlan, DaySummary[T]], None] | None = None


def read_by_day(plans: Sequence[DayPlan], how: DayReading[T], skip: int = 0) -> Iterator[T]:
    """Every day's reduced batches in time order: from its summary where there is a fresh
    one, else read with `how.read` (runs of such days in one read, so that reading ahead
    goes on across them), and the summaries of the closed days read that way written. The
    first `skip` plans are taken as done (a roll-up holds them)."""
    total = sum(len(plan.sources) for plan in plans)
    done = sum(len(plan.sources) for plan in plans[:skip])
    if skip and how.progress is not None:
        how.progress(done, total)
    raw: list[DayPlan] = []
    store = how.store
    for plan in plans[skip:]:
        summary = None if store is None or plan.fingerprint is None else store.load(plan)
        if summary is None:
            raw.append(plan)
            continue
        if raw:
            yield from _read_raw(raw, how, _offset(how.progress, done, total))
            done += sum(len(item.sources) for item in raw)
            raw = []
        for path, reason in summary.warnings:
            how.warn(path, reason)
        yield from summary.results
        done += len(plan.sources)
        if how.progress is not None:
            how.progress(done, total)
    if raw:
        yield from _read_raw(raw, how, _offset(how.progress, done, total))
    if store is not None:
        store.finish()


def _offset(progress: Progress | None, done: int, total: int) -> Progress | None:
    if progress is None:
        return None
    return lambda count, _: progress(done + count, total)


def _read_raw(
    plans: Sequence[DayPlan], how: DayReading[T], progress: Progress | None
) -> Iterator[T]:
    """Read days raw; keep each closed day's batches and warnings until a later day's batch
    arrives (the reader has said all of a day's warnings by then), then save them."""
    kept = {plan.day: _Pending(plan, DaySummary[T]()) for plan in plans}
    days = sorted(kept)
    saved = 0  # days[:saved] are written (or were never to be)
    day_of_path = _path_days(plans)
    unplaced: list[Path] = []  # warnings no day can be sure of: then no summary is kept

    def captured(path: Path, reason: str) -> None:
        how.warn(path, reason)
        day = day_of_path.get(_file_of(path))
        if day is None:
            unplaced.append(path)
        elif day in kept:
            kept[day].summary.warnings.append((path, reason))

    sources = [source for plan in plans for source in plan.sources]
    for result in how.read(sources, captured, progress):
        day = how.day_of(result)
        while saved < len(days) and days[saved] < day:
            # Let go of the day once it is saved: its batches' rows, floors and totals
            # would otherwise stay alive here until the last day is read.
            _save(None if unplaced else how, kept.pop(days[saved]))
            saved += 1
        if day in kept:
            kept[day].summary.results.append(result)
        yield result
    for day in days[saved:]:
        _save(None if unplaced else how, kept.pop(day))


def _save(how: DayReading[T] | None, pending: _Pending[T]) -> None:
    """Write a day's summary; then hand it, read back, to how.kept."""
    if how is None or how.store is None or pending.plan.fingerprint is None:
        return
    if how.store.save(pending.plan, pending.summary) and how.kept is not None:
        written = how.store.load(pending.plan)
        if written is not None:
            how.kept(pending.plan, written)


def _path_days(plans: Sequence[DayPlan]) -> dict[Path, date]:
    """The day of every file the plans read, by path (a bundle's members are named
    `<bundle>:<member>`, and warn about the bundle's day)."""
    days: dict[Path, date] = {}
    for plan in plans:
        for source in plan.sources:
            days[source.path] = plan.day
            if isinstance(source, Bundle):
                days.update((dump.path, plan.day) for dump in source.loose)
    return days


def _file_of(path: Path) -> Path:
    """The file a warned path names: a bundle member's is `<bundle>:<member>`, and the
    member's name may hold anything, "/" included."""
    text = str(path)
    at = text.find(BUNDLE_MEMBER_MARK)
    return Path(text[: at + len(BUNDLE_MEMBER_MARK) - 1]) if at >= 0 else path


# --- What an analysis asks ----------------------------------------------------------


@dataclass(frozen=True)
class SummaryPlace:
    """Where a run keeps its day summaries, and what it may use them for."""

    folder: Path
    dumps_dir: Path
    window: TimeWindow
    today: date  # UTC: the days before it are closed
    note: Note  # one line on stderr


@dataclass(frozen=True)
class SummaryKind:
    """One kind of snapshot read one way: what names its summaries, what else must match,
    and the record classes they hold."""

    kind: str
    key: Mapping[str, Any]
    records: Records
    fit: Mapping[str, Any] = field(default_factory=dict)
    deferred: Mapping[str, tuple[Collection[str], MakeDeferred]] = field(default_factory=dict)


class Prefix(Protocol):
    """What holds the fold of a run's leading days (utils.reduce.rollup): begin() takes
    it up, says those days' warnings and tells how many leading plans it covers."""

    def begin(self, plans: Sequence[DayPlan], store: SummaryStore, warn: Warn) -> int: ...


def summarized(
    files: Sequence[Source],
    how: DayReading[T],
    place: SummaryPlace | None,
    what: SummaryKind,
    prefix: Prefix | None = None,
) -> Iterator[T]:
    """The files' reduced batches, from the day summaries at `place` where they are fresh
    (and kept there for the closed days read now); read plainly when place is None. The
    leading days `prefix` covers are not read at all."""
    if place is None:
        return how.read(files, how.warn, how.progress)
    store = SummaryStore(
        place.folder,
        what.kind,
        what.key,
        what.records,
        place.dumps_dir,
        place.note,
        deferred=what.deferred,
        fit=what.fit,
    )
    plans = plan_days(files, place.window, place.today, place.dumps_dir)
    skip = 0 if prefix is None else prefix.begin(plans, store, how.warn)
    return read_by_day(plans, replace(how, store=store), skip)


def place_of(where: Where, note: Note, today: date | None = None) -> SummaryPlace | None:
    """Where a run keeps its day summaries (None: it keeps none); today by the clock, UTC."""
    if where.summary_dir is None:
        return None
    day = datetime.now(UTC).date() if today is None else today
    return SummaryPlace(where.summary_dir, where.dumps_dir, where.window, day, note)
