"""Finding dump files and parsing the UTC timestamps in their names and on the command line."""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import NamedTuple

from utils.dump_format import (
    PROCESS_PREFIX,
    SYS_PREFIX,
    TIMESTAMP_SHAPE,
    looks_like_dump,
    parse_name_timestamp,
)

__all__ = [
    "DISPLAY_FORMAT",
    "PROCESS_PREFIX",
    "SYS_PREFIX",
    "DumpFile",
    "DumpsDirError",
    "NoDataError",
    "TimeWindow",
    "Warn",
    "discover",
    "find_dumps",
    "format_duration",
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


class NoDataError(Exception):
    """Nothing to analyse (no dir, no files, nothing readable): one line, exit status 1."""


class DumpsDirError(NoDataError):
    """The dumps dir does not exist or cannot be listed."""


class DumpFile(NamedTuple):
    """One snapshot file and the UTC time in its name."""

    path: Path
    timestamp: datetime


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
) -> list[DumpFile]:
    """Every `<prefix><timestamp>.csv` directly in dumps_dir, in time order.

    Only the names are looked at (no file is opened), so a window costs nothing
    for the files outside it. A `<prefix>...csv` name without a valid time in it is
    reported through warn: it was meant as a dump, but cannot be placed in time.
    """
    try:
        entries = list(os.scandir(dumps_dir))
    except FileNotFoundError as err:
        raise DumpsDirError(f"no dumps dir {dumps_dir}") from err
    except NotADirectoryError as err:
        raise DumpsDirError(f"{dumps_dir} is not a directory") from err
    except OSError as err:
        raise DumpsDirError(f"cannot list {dumps_dir}: {err.strerror or err}") from err
    found: list[DumpFile] = []
    for entry in entries:
        moment = parse_name_timestamp(entry.name, prefix)
        if moment is None:
            if warn is not None and looks_like_dump(entry.name, prefix):
                reason = f"no valid UTC time {TIMESTAMP_SHAPE} in the name; skipped"
                warn(Path(entry.path), reason)
            continue
        if window is not None and not window.contains(moment):
            continue
        found.append(DumpFile(Path(entry.path), moment))
    found.sort(key=lambda dump: dump.timestamp)
    return found


def format_duration(seconds: float) -> str:
    """`29 d 23 h 50 min`, `2 h 5 min`, `45 s`: as a person says a span."""
    whole = round(seconds)
    days, rest = divmod(whole, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    parts = [f"{days} d"] if days else []
    if hours or (days and minutes):
        parts.append(f"{hours} h")
    if minutes:
        parts.append(f"{minutes} min")
    if secs and not days:
        parts.append(f"{secs} s")
    return " ".join(parts) or "0 s"


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


def discover(dumps_dir: Path, prefix: str, window: TimeWindow, warn: Warn) -> list[DumpFile]:
    """The snapshot files to analyse; NoDataError when there are none."""
    misnamed: list[Path] = []

    def note(path: Path, reason: str) -> None:
        misnamed.append(path)
        warn(path, reason)

    try:
        files = find_dumps(dumps_dir, prefix, window, note)
    except DumpsDirError as err:
        raise NoDataError(str(err)) from err
    if not files and misnamed:
        raise NoDataError(f"none of the {len(misnamed)} {prefix}*.csv files could be used")
    if not files:
        where = "" if window.since is None and window.until is None else " " + window.describe()
        raise NoDataError(f"no {prefix}*.csv files in {dumps_dir}{where}")
    return files
