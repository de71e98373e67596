"""Finding dump files and parsing the UTC timestamps in their names and on the command line."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import NamedTuple

from collect_memory import CSV_SUFFIX, PROCESS_PREFIX, SYS_PREFIX

__all__ = [
    "DISPLAY_FORMAT",
    "PROCESS_PREFIX",
    "SYS_PREFIX",
    "DumpFile",
    "DumpsDirError",
    "TimeWindow",
    "find_dumps",
    "parse_name_timestamp",
    "parse_time_arg",
]

# Every timestamp here is UTC, kept as a naive datetime: the collector names its
# files in UTC and --since/--until are read as UTC, so nothing is ever converted.
_NAME_STAMP = re.compile(r"[0-9]{8}_[0-9]{6}")

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


class DumpsDirError(Exception):
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


def parse_name_timestamp(name: str, prefix: str) -> datetime | None:
    """The UTC time in `<prefix><YYYYMMDD_HHMMSS>.csv`, or None for any other name."""
    if not (name.startswith(prefix) and name.endswith(CSV_SUFFIX)):
        return None
    stamp = name[len(prefix) : -len(CSV_SUFFIX)]
    if not _NAME_STAMP.fullmatch(stamp):
        return None
    # Slicing beats strptime (TIMESTAMP_FORMAT) by 10x: it runs once per file.
    try:
        return datetime(
            int(stamp[0:4]),
            int(stamp[4:6]),
            int(stamp[6:8]),
            int(stamp[9:11]),
            int(stamp[11:13]),
            int(stamp[13:15]),
        )
    except ValueError:  # 20261341_250000 has the shape but is no date
        return None


def find_dumps(dumps_dir: Path, prefix: str, window: TimeWindow | None = None) -> list[DumpFile]:
    """Every `<prefix><timestamp>.csv` directly in dumps_dir, in time order.

    Only the names are looked at (no file is opened), so a window costs nothing
    for the files outside it.
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
        if moment is None or (window is not None and not window.contains(moment)):
            continue
        found.append(DumpFile(Path(entry.path), moment))
    found.sort(key=lambda dump: dump.timestamp)
    return found


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
