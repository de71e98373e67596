"""Finding dump files and parsing the UTC timestamps in their names and on the command line."""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import NamedTuple

from utils.collect.bundles import BUNDLE_PREFIX, parse_bundle_day
from utils.collect.snapshot_format import (
    CGROUP_PREFIX,
    PROCESS_PREFIX,
    SYS_PREFIX,
    TIMESTAMP_SHAPE,
    looks_like_dump,
    parse_name_timestamp,
)
from utils.core.text import plural
from utils.core.units import DAY_S

__all__ = [
    "CGROUP_PREFIX",
    "DISPLAY_FORMAT",
    "PROCESS_PREFIX",
    "SYS_PREFIX",
    "Bundle",
    "DumpFile",
    "DumpsDirError",
    "Listing",
    "NoDataError",
    "Source",
    "TimeWindow",
    "Warn",
    "Where",
    "child_maker",
    "describe_sources",
    "discover",
    "find_dumps",
    "find_sources",
    "parse_name_timestamp",
    "parse_time_arg",
]

# Every timestamp here is UTC, kept as a naive datetime: the collector names its
# files in UTC and --since/--until are read as UTC, so nothing is ever converted.
# How times are shown and written by the analyses (always UTC).
DISPLAY_FORMAT = "%Y-%m-%d %H:%M:%S"
# Accepted --since/--until forms and how long each one spans.
_TIME_FORMATS: tuple[tuple[str, timedelta], ...] = (
    (DISPLAY_FORMAT, timedelta(seconds=1)),
    ("%Y-%m-%d %H:%M", timedelta(minutes=1)),
    ("%Y-%m-%d", timedelta(days=1)),
)
# Snapshot times have one-second resolution, so the last second of a span is its end.
_RESOLUTION = timedelta(seconds=1)


# Reports a bad input file: where it is and why it is left out.
Warn = Callable[[Path, str], None]


class Where(NamedTuple):
    """Which snapshots an analysis reads and where its outputs go."""

    dumps_dir: Path
    window: TimeWindow
    out_dir: Path
    # The dumps dir's entries once listed (list_dir), so that one listing serves the
    # discovery of every kind of snapshot; None: listed when discovered.
    entries: Listing | None = None
    # Where the day summaries are kept (utils.reduce.day_summaries); None: none kept.
    summary_dir: Path | None = None


class Listing(NamedTuple):
    """A dumps dir's entries as listed once: their names only (a year is 105,120 of them, and
    a directory entry object holds its full path too), and those the listing did not show
    as regular files (directories, symlinks, entries whose type it could not tell)."""

    names: list[str]
    irregular: frozenset[str]


class NoDataError(Exception):
    """Nothing to analyse (no dir, no files, nothing readable): one line, exit status 1."""


class DumpsDirError(NoDataError):
    """The dumps dir does not exist or cannot be listed."""


class DumpFile(NamedTuple):
    """One snapshot file and the UTC time in its name."""

    path: Path
    timestamp: datetime
    # The directory listing said: a regular file, not a symlink (from d_type: no system
    # call on most file systems). Opened without a stat() first (see bounded_read.read_bytes).
    listed_regular: bool = False

    @property
    def epoch_s(self) -> int:
        return to_epoch_s(self.timestamp)


class Bundle(NamedTuple):
    """A day of snapshots compacted into one `mem_<YYYYMMDD>.tar.xz` (compact_dumps.py), read
    with the loose files of the same day that it does not hold (a late file, or the
    originals of a compaction that was stopped before it removed them)."""

    path: Path
    day: date
    prefix: str  # the kind of member read from it
    window: TimeWindow  # the members read from it
    loose: tuple[DumpFile, ...]

    @property
    def timestamp(self) -> datetime:
        return datetime(self.day.year, self.day.month, self.day.day)


# What the analyses read: loose snapshot files and day bundles, in time order.
Source = DumpFile | Bundle
_EPOCH = datetime(1970, 1, 1)


def to_epoch_s(moment: datetime) -> int:
    """Seconds since 1970 of a naive UTC time (rounded down: a timedelta's days and seconds
    are its floor, the microseconds left over are in [0, 1 s))."""
    since = moment - _EPOCH
    return since.days * DAY_S + since.seconds


@dataclass(frozen=True)
class TimeWindow:
    """An inclusive UTC window; None means open on that side."""

    since: datetime | None = None
    until: datetime | None = None

    def contains(self, moment: datetime) -> bool:
        if self.since is not None and moment < self.since:
            return False
        return self.until is None or moment <= self.until

    def describe(self) -> str:
        def show(moment: datetime | None, open_word: str) -> str:
            return open_word if moment is None else f"{moment:{DISPLAY_FORMAT}}"

        return f"between {show(self.since, 'the start')} and {show(self.until, 'the end')} UTC"


def find_dumps(
    dumps_dir: Path,
    prefix: str,
    window: TimeWindow | None = None,
    warn: Warn | None = None,
    entries: Listing | None = None,
) -> list[DumpFile]:
    """Every `<prefix><timestamp>.csv` directly in dumps_dir, in time order.

    Only the names are looked at (no file is opened), so a window costs nothing
    for the files outside it. A `<prefix>...csv` name without a valid time in it is
    reported through warn: it was meant as a dump, but cannot be placed in time.
    """
    if entries is None:
        entries = list_dir(dumps_dir)
    # Imported here: the collector and the compactor (standard library only) import this
    # module and never discover; the analyses read a year's names with numpy.
    from utils.read.name_times import name_times  # noqa: PLC0415

    child = child_maker(dumps_dir)
    found: list[DumpFile] = []
    # The other kinds' names are most of a dumps dir: passed over at C speed.
    names = [name for name in entries.names if name.startswith(prefix)]
    irregular = entries.irregular
    for name, moment in zip(names, name_times(names, prefix), strict=True):
        if moment is None:
            if warn is not None and looks_like_dump(name, prefix):
                reason = f"no valid UTC time {TIMESTAMP_SHAPE} in the name; skipped"
                warn(child(name), reason)
            continue
        if window is not None and not window.contains(moment):
            continue
        found.append(DumpFile(child(name), moment, name not in irregular))
    found.sort(key=_timestamp_of)
    return found


def _timestamp_of(dump: DumpFile) -> datetime:
    return dump.timestamp


def _listed_regular(entry: os.DirEntry[str]) -> bool:
    """Whether the listing shows a regular file, not a symlink; False when that takes an
    lstat() that fails (a file system without d_type, a dir that cannot be searched): the
    file is then stat()ed before it is opened, and a failure named there."""
    try:
        return entry.is_file(follow_symlinks=False)
    except OSError:
        return False


def list_dir(dumps_dir: Path) -> Listing:
    """The entries of the dumps dir; DumpsDirError (one line) if it cannot be listed."""
    names: list[str] = []
    irregular: set[str] = set()
    try:
        with os.scandir(dumps_dir) as listing:
            for entry in listing:
                names.append(entry.name)
                if not _listed_regular(entry):
                    irregular.add(entry.name)
    except FileNotFoundError as err:
        raise DumpsDirError(f"no dumps dir {dumps_dir}") from err
    except NotADirectoryError as err:
        raise DumpsDirError(f"{dumps_dir} is not a directory") from err
    except OSError as err:
        raise DumpsDirError(f"cannot list {dumps_dir}: {err.strerror or err}") from err
    return Listing(names, frozenset(irregular))


def child_maker(folder: Path) -> Callable[[str], Path]:
    """A fast `folder / name` for a plain file name: a Path built from a string parses it,
    and a year is 105,120 files. pathlib's own shortcut for directory walking skips that
    (private, so with the public way as a fallback)."""
    shortcut: Callable[[str], Path] | None = getattr(folder, "_make_child_relpath", None)
    return shortcut if shortcut is not None else folder.joinpath


def parse_time_arg(text: str, *, end: bool) -> datetime:
    """Read `YYYY-MM-DD[ HH:MM[:SS]]` (UTC) as the start, or with end=True the last second,
    of the day, minute or second it names: `--until 2026-03-01` is 2026-03-01 23:59:59.

    A `T` may stand for the space, as in ISO 8601. Raises ValueError with a readable message.
    """
    cleaned = text.strip().replace("T", " ", 1)
    for fmt, span in _TIME_FORMATS:
        try:
            start = datetime.strptime(cleaned, fmt)
        except ValueError:
            continue
        if not end:
            return start
        try:
            return start + span - _RESOLUTION
        except OverflowError:  # --until 9999-12-31: the end of time will do
            return datetime.max.replace(microsecond=0)
    raise ValueError(f"not a UTC time as YYYY-MM-DD[ HH:MM[:SS]]: {text!r}")


def find_bundles(
    dumps_dir: Path, entries: Listing, window: TimeWindow | None = None
) -> list[tuple[Path, date]]:
    """Every `mem_<YYYYMMDD>.tar.xz` among a dumps dir's entries whose day meets the window,
    by day; the name alone decides, so a bundle outside the window is never opened."""
    found = []
    for name in [name for name in entries.names if name.startswith(BUNDLE_PREFIX)]:
        day = parse_bundle_day(name)
        if day is None:
            continue
        start = datetime(day.year, day.month, day.day)
        end = start + timedelta(days=1) - _RESOLUTION
        if window is not None and (
            (window.until is not None and start > window.until)
            or (window.since is not None and end < window.since)
        ):
            continue
        found.append((dumps_dir / name, day))  # a few hundred at most: the plain way
    return sorted(found, key=lambda bundle: bundle[1])


def find_sources(
    dumps_dir: Path,
    prefix: str,
    window: TimeWindow,
    warn: Warn | None = None,
    entries: Listing | None = None,
) -> list[Source]:
    """The loose `<prefix><timestamp>.csv` files and the day bundles to read, in time order;
    a loose file of a day that has a bundle is read with the bundle (see Bundle). `entries`:
    the dumps dir's, when the caller listed it (one listing serves every prefix)."""
    if entries is None:
        entries = list_dir(dumps_dir)  # once, for both
    loose = find_dumps(dumps_dir, prefix, window, warn, entries)
    bundles = find_bundles(dumps_dir, entries, window)
    days = {day for _, day in bundles}
    by_day: dict[date, list[DumpFile]] = {}
    sources: list[Source] = []
    for dump in loose:
        if dump.timestamp.date() in days:
            by_day.setdefault(dump.timestamp.date(), []).append(dump)
        else:
            sources.append(dump)
    for path, day in bundles:
        sources.append(Bundle(path, day, prefix, window, tuple(by_day.get(day, []))))
    return sorted(sources, key=lambda source: source.timestamp)


def describe_sources(sources: Sequence[Source], prefix: str) -> str:
    """`4,320 sys_mem_*.csv files`, `30 bundles and 2 sys_mem_*.csv files` (as in "none of
    the ... could be used")."""
    bundles = sum(isinstance(source, Bundle) for source in sources)
    files = len(sources) - bundles
    parts = [plural(bundles, "bundle")] if bundles else []
    if files or not bundles:
        parts.append(f"{files:,} {prefix}*.csv files")
    return " and ".join(parts)


def discover(
    dumps_dir: Path,
    prefix: str,
    window: TimeWindow,
    warn: Warn,
    entries: Listing | None = None,
) -> list[Source]:
    """The snapshot files and bundles to analyse (among `entries`, the dumps dir's when the
    caller listed it); NoDataError when there are none."""
    misnamed: list[Path] = []

    def note(path: Path, reason: str) -> None:
        misnamed.append(path)
        warn(path, reason)

    try:
        sources = find_sources(dumps_dir, prefix, window, note, entries)
    except DumpsDirError as err:
        raise NoDataError(str(err)) from err
    if not sources and misnamed:
        raise NoDataError(f"none of the {len(misnamed)} {prefix}*.csv files could be used")
    if not sources:
        where = "" if window.since is None and window.until is None else " " + window.describe()
        raise NoDataError(f"no {prefix}*.csv files in {dumps_dir}{where}")
    return sources
