"""Reading thousands of small dump files and day bundles fast, and surviving the bad ones.

A thread reads ahead: each loose file's bytes, and each bundle decompressed as it is read,
in time order, a few megabytes at a time. Parser threads split, parse and check each batch
(utils.read.csv_batches) and reduce it at once to what the analysis keeps, so no table of all
rows is ever held. Warnings reach the user in time order, from one thread.
"""

from __future__ import annotations

import contextlib
import lzma
import os
from collections import deque
from collections.abc import Callable, Generator, Iterator, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, NamedTuple, TypeVar, cast

from utils.collect.bundles import Skipped, snapshot_members
from utils.collect.snapshot_format import CGROUP_PREFIX, Kind
from utils.console import Session
from utils.core import allocator
from utils.core.text import plural
from utils.core.units import DAY_S
from utils.parser import (
    Bundle,
    DumpFile,
    NoDataError,
    Source,
    Warn,
    Where,
    child_maker,
    describe_sources,
    discover,
    to_epoch_s,
)
from utils.read.bounded_read import BadFileError, file_size, read_bytes
from utils.read.csv_batches import Batch, RawFile, TableSpec, flush, split_raw

if TYPE_CHECKING:  # day_workers reads with this module's Reader
    from utils.read.day_workers import DayWorkers

__all__ = [
    "BATCH_BYTES",
    "BadFileError",
    "Batch",
    "Kind",
    "Progress",
    "Reader",
    "TableSpec",
    "Warn",
]

# How many bytes of CSV are parsed in one read_csv call: big enough that the per-batch
# work is noise, small enough that the batches alive at once (one per parser thread, one
# read ahead: bytes, parser buffers, frames) stay a few tens of MiB. docs/performance.md
# has the measurements that chose it.
BATCH_BYTES = 6 * 1024 * 1024
# Parser threads: pandas' C tokenizer and numpy let go of the GIL, so two threads parse
# nearly twice as fast on two cores.
PARSE_THREADS = 2

Progress = Callable[[int, int], None]
T = TypeVar("T")
U = TypeVar("U")


class _Notes:
    """Warnings held back so they reach the user in time order, from one thread."""

    def __init__(self, order: Mapping[Path, int] | None = None) -> None:
        self.order = order or {}
        self.items: list[tuple[int, Path, str]] = []

    def __call__(self, path: Path, reason: str) -> None:
        self.items.append((self.order.get(path, -1), path, reason))

    def add(self, moment_s: int, path: Path, reason: str) -> None:
        self.items.append((moment_s, path, reason))

    def take_until(self, moment_s: int) -> _Notes:
        """The notes up to moment_s, moved out into notes of their own (the rest stay)."""
        taken = _Notes()
        taken.items = [item for item in self.items if item[0] <= moment_s]
        self.items = [item for item in self.items if item[0] > moment_s]
        return taken


class Loaded(NamedTuple):
    """A snapshot's bytes: a loose file's, or a bundle member's (its path then names both)."""

    snapshot: int
    path: Path
    data: bytes


def _parse_job(
    loaded: list[Loaded], spec: TableSpec, reduce: Callable[[Batch], T]
) -> tuple[T | None, _Notes]:
    """In a parser thread: split the files, parse them by header, bisect the bad ones out,
    and reduce what is left (the analysis' own per-batch work runs here too, in parallel)."""
    notes = _Notes({item.path: item.snapshot for item in loaded})
    pending: dict[tuple[str, ...], list[RawFile]] = {}
    for item in loaded:
        try:
            raw = split_raw(item.snapshot, item.path, item.data, spec)
        except BadFileError as err:
            notes(item.path, f"{err}; skipped")
            continue
        pending.setdefault(raw.names, []).append(raw)
    batch = flush(pending, spec, notes)
    return (None if batch is None else reduce(batch)), notes


def _read_groups(
    sources: Sequence[Source], batch_bytes: int
) -> Iterator[tuple[int, list[Loaded], _Notes]]:
    """Loose files and bundle members read as bytes, about batch_bytes at a time, with the
    number of sources done so far and the warnings of reading them (each with the batch
    that holds its time, so that they reach the user in time order).

    This thread does the file I/O and decompression (lzma lets go of the GIL) and little
    else (the parser threads split and parse): it reads ahead while they work, so a page
    cache that has let the dumps go (a month read from disk) costs the disk's time, not the
    disk's time plus the parsers', and a bundle's decompression overlaps their parsing."""
    loaded: list[Loaded] = []
    notes = _Notes()
    size = 0
    for index, source in enumerate(sources):
        items = _read_source(source, notes)
        for count, item in enumerate(items, 1):
            if loaded and item.snapshot // DAY_S != loaded[-1].snapshot // DAY_S:
                # A batch never spans two UTC days, so that a day's batches, and their
                # warnings, can be kept as that day's summary (utils.reduce.day_summaries)
                # and are the same whether the day is read alone or with others.
                day_end = (loaded[-1].snapshot // DAY_S + 1) * DAY_S - 1
                yield index, loaded, notes.take_until(day_end)
                loaded, size = [], 0
            loaded.append(item)
            size += len(item.data)
            if size >= batch_bytes:  # a bundle is cut too: a day can be larger than a batch
                done = index + 1 if count == len(items) else index
                yield done, loaded, notes.take_until(item.snapshot)
                loaded, size = [], 0
    if loaded or notes.items:
        yield len(sources), loaded, notes


def _read_source(source: Source, notes: _Notes) -> list[Loaded]:
    """A loose file's bytes, or a bundle's members (with loose files of its day it lacks);
    what cannot be read goes to notes."""
    if isinstance(source, Bundle):
        return read_day_bundle(source, notes)
    loaded = _load_loose(source, notes)
    return [] if loaded is None else [loaded]


def _load_loose(dump: DumpFile, notes: _Notes) -> Loaded | None:
    """A loose file's bytes; None, noted, if it is not a file that can be a dump."""
    try:
        data = read_bytes(dump.path, listed_regular=dump.listed_regular)
        return Loaded(dump.epoch_s, dump.path, data)
    except BadFileError as err:
        notes.add(dump.epoch_s, dump.path, f"{err}; skipped")
        return None


# --- Bundles -------------------------------------------------------------------

# A day of a host with 30,000 processes is under 2 GB of CSV: a larger "bundle" is refused
# by its size, unread (a xz bomb is bounded per member and in all by utils.collect.bundles).
MAX_BUNDLE_BYTES = 2 * 1024**3
# Warnings about a bundle's members, at most; the rest are counted in one more line.
MAX_MEMBER_NOTES = 20


def read_day_bundle(bundle: Bundle, notes: _Notes) -> list[Loaded]:
    """The bundle's members of its kind within its window, with the loose files of its day
    that it does not hold, in time order (see utils.collect.bundles.snapshot_members)."""
    day_s = to_epoch_s(bundle.timestamp)
    members: dict[str, Loaded] = {}
    try:
        file_size(bundle.path, MAX_BUNDLE_BYTES)  # refused unread if it is not one
        _read_members(bundle, members, notes)
    except (BadFileError, OSError, EOFError, lzma.LZMAError) as err:
        reason = str(err) or type(err).__name__
        read = plural(len(members), "snapshot")
        kept = f"read {read}, the rest skipped" if members else "skipped"
        # A bundle without cgroup_mem members (an older collector's) is read through by their
        # reader; what is wrong with it past them is the process reader's to say.
        if members or bundle.prefix != CGROUP_PREFIX:
            notes.add(day_s, bundle.path, f"cannot read the bundle: {reason}; {kept}")
    for dump in bundle.loose:
        if dump.path.name in members:
            continue  # bundled: the loose copy is a leftover or an extracted file
        loaded = _load_loose(dump, notes)
        if loaded is not None:
            members[dump.path.name] = loaded
    return sorted(members.values(), key=lambda item: item.snapshot)


def _read_members(bundle: Bundle, into: dict[str, Loaded], notes: _Notes) -> None:
    """Read the bundle's snapshots into `into`, by name. Its first MAX_MEMBER_NOTES
    warnings about members go to notes, then one line counts the rest."""
    member_notes = _Notes()
    day_s = to_epoch_s(bundle.timestamp)
    # A snapshot's name holds no "/": the shortcut for a plain child name applies.
    child = child_maker(bundle.path.parent)
    fd = os.open(bundle.path, os.O_RDONLY | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC)
    try:
        with os.fdopen(fd, "rb") as handle:
            for item in snapshot_members(handle, bundle.prefix, bundle.day, bundle.window.contains):
                if isinstance(item, Skipped):
                    # A member named anything ("/" and all) is labelled as it is named.
                    label = Path(f"{bundle.path}:{item.name}")
                    moment_s = day_s if item.moment is None else to_epoch_s(item.moment)
                    member_notes.add(moment_s, label, f"{item.reason}; skipped")
                    continue
                label = child(f"{bundle.path.name}:{item.name}")
                into[item.name] = Loaded(to_epoch_s(item.moment), label, item.data)
    finally:
        notes.items += member_notes.items[:MAX_MEMBER_NOTES]
        if len(member_notes.items) > MAX_MEMBER_NOTES:
            more = len(member_notes.items) - MAX_MEMBER_NOTES
            last = member_notes.items[-1][0]
            notes.add(last, bundle.path, f"{more:,} more members skipped, not listed")


def _same(batch: Batch) -> Batch:
    return batch


@dataclass(frozen=True)
class Reader:
    """How dump files are read: what they must hold, where warnings and progress go, and
    how many bytes are parsed at once in how many threads."""

    spec: TableSpec
    warn: Warn
    progress: Progress | None = None
    batch_bytes: int = BATCH_BYTES
    threads: int = PARSE_THREADS  # 0: read, parse and reduce in the caller's thread
    # Worker processes that read whole days (utils.read.day_workers); None: read here.
    workers: DayWorkers | None = None
    # Give the freed heap back once read (a worker reading day after day keeps it for the
    # next day instead).
    trim: bool = True

    def batches(self, files: Sequence[Source]) -> Iterator[Batch]:
        """Read and parse files in time order, a few MB at a time (see reduced)."""
        return self.reduced(files, _same)

    def reduced(self, files: Sequence[Source], reduce: Callable[[Batch], T]) -> Iterator[T]:
        """Read and parse files in time order, a few MB at a time, and yield reduce(batch)
        for each batch, in order.

        Batches come in time order, and rows within a batch are in time order, so the
        first row seen for anything is its earliest. Bad files are reported through
        warn (in time order) and left out; nothing else is lost.

        Files are listed here while parser threads read, split, parse and reduce the
        batches: pandas' C parser and numpy release the GIL for their loops, so two threads
        work nearly twice as fast, in one process, without copying data between processes.
        `reduce` runs in those threads: it must not touch shared state. With workers, it
        runs in their processes: it must be picklable too.
        """
        if self.workers is not None:
            yield from self.workers.reduced(self, files, reduce)
            return
        if self.threads == 0:
            yield from self._in_turn(files, reduce)
            return
        in_flight: deque[tuple[int, _Notes, Future[tuple[T | None, _Notes]]]] = deque()
        groups = _read_ahead(_read_groups(files, self.batch_bytes))
        # closing: an exception here must stop the reader now, not when a cycle is collected
        with (
            contextlib.closing(groups),
            ThreadPoolExecutor(self.threads, thread_name_prefix="parse") as pool,
        ):
            for done, group, read_notes in groups:
                job = pool.submit(_parse_job, group, self.spec, reduce)
                in_flight.append((done, read_notes, job))
                # Bounded: a batch per parser thread, and one read ahead, are alive at once
                # (the next batch is waiting, read, when a thread is free).
                while len(in_flight) >= self.threads:
                    result = self._finish(in_flight.popleft(), len(files))
                    if result is not None:
                        yield result
            # The last group need not end at the last source (a bundle with nothing of
            # this kind gives no group): what is still in flight is finished here.
            while in_flight:
                result = self._finish(in_flight.popleft(), len(files))
                if result is not None:
                    yield result
        if self.trim:
            allocator.trim()  # the batches' buffers are free now: give them back

    def _in_turn(self, files: Sequence[Source], reduce: Callable[[Batch], T]) -> Iterator[T]:
        """As reduced, each batch read, parsed and reduced in this thread, one at a time
        (a reading worker's way: utils.read.day_workers; the other cores are the other
        workers', and one batch alive at a time keeps each worker small)."""
        for done, group, read_notes in _read_groups(files, self.batch_bytes):
            parsed: Future[tuple[T | None, _Notes]] = Future()
            parsed.set_result(_parse_job(group, self.spec, reduce))
            result = self._finish((done, read_notes, parsed), len(files))
            if result is not None:
                yield result
        if self.trim:
            allocator.trim()

    def _finish(
        self, job: tuple[int, _Notes, Future[tuple[T | None, _Notes]]], total: int
    ) -> T | None:
        """The result of the oldest job, after its warnings (in time order) and progress."""
        done, read_notes, future = job
        result, parse_notes = future.result()
        for _, path, reason in sorted(read_notes.items + parse_notes.items, key=_by_time):
            self.warn(path, reason)
        if self.progress is not None:
            self.progress(done, total)
        return result


def _read_ahead(items: Iterator[U]) -> Generator[U, None, None]:
    """items, produced in a thread of their own one ahead of the consumer: the file reading
    and decompression go on while this thread waits for the parsers. The next item is read
    while the consumer holds the one before, so one item at most waits. An exception in the
    producer is raised here, after the items before it; closing this iterator waits for the
    item being read, then stops the thread."""
    end = object()
    with ThreadPoolExecutor(1, thread_name_prefix="read-ahead") as producer:
        pending = producer.submit(next, items, end)
        while (item := pending.result()) is not end:
            pending = producer.submit(next, items, end)
            yield cast(U, item)


def _by_time(note: tuple[int, Path, str]) -> int:
    return note[0]


def discover_and_read(
    where: Where,
    prefix: str,
    session: Session,
    read: Callable[[Sequence[Source], Warn, Progress], T],
    is_empty: Callable[[T], bool],
) -> T:
    """Discover the snapshots of one kind in the window and read them with `read`, timed as
    the discovery and reading phases, with progress on stderr. NoDataError when there are
    none, or none could be used."""
    diagnostics, timer = session.diagnostics, session.timer
    with timer.phase("discovery"):
        files = discover(where.dumps_dir, prefix, where.window, diagnostics.warn, where.entries)
        allocator.freeze()  # the list of files lives until the end
    with timer.phase("reading"):
        loaded = read(files, diagnostics.warn, diagnostics.reading)
        diagnostics.end_progress()
    if is_empty(loaded):
        raise NoDataError(f"none of the {describe_sources(files, prefix)} could be used")
    return loaded
