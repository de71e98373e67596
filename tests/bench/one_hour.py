"""What an hourly run finds after one more hour of collection, made without touching the
cached data set: a folder of hard links to its files plus one new hour of snapshots, and a
fresh copy of the kept day summaries for each run."""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from utils.collect.snapshot_format import SYS_PREFIX, TIMESTAMP_FORMAT, snapshot_names

HOUR_S = 3600
# The new hour is the data set's last hour, a day later: a day of its own, so that no day
# the summaries hold changes (a late file in a summarised day makes its summary stale).
NEW_HOUR_SHIFT = timedelta(days=1)


def link_or_copy(source: Path, target: Path) -> None:
    """target as a hard link to source (the same inode: same size and modification time,
    so the day summaries' fingerprints match), or a copy keeping the times where the
    file system links nothing."""
    try:
        os.link(source, target)
    except OSError:
        shutil.copy2(source, target)


def link_folder(source: Path, target: Path) -> list[str]:
    """target made, holding every regular file of source (hidden ones aside) linked in by
    link_or_copy; their names, sorted."""
    target.mkdir(parents=True)
    names = sorted(
        entry.name
        for entry in os.scandir(source)
        if not entry.name.startswith(".") and entry.is_file(follow_symlinks=False)
    )
    for name in names:
        link_or_copy(source / name, target / name)
    return names


def snapshot_time(stamp: str) -> datetime:
    return datetime.strptime(stamp, TIMESTAMP_FORMAT).replace(tzinfo=UTC)


def last_hour(names: list[str]) -> list[str]:
    """The timestamps of the loose snapshots in the hour that ends with the last one."""
    stamps = sorted(
        name[len(SYS_PREFIX) : -len(".csv")]
        for name in names
        if name.startswith(SYS_PREFIX) and name.endswith(".csv")
    )
    if not stamps:
        raise ValueError("no loose sys_mem snapshot to take the last hour from")
    last = snapshot_time(stamps[-1])
    return [stamp for stamp in stamps if last - snapshot_time(stamp) < timedelta(seconds=HOUR_S)]


def add_one_hour(dumps_dir: Path, target: Path, shift: timedelta = NEW_HOUR_SHIFT) -> list[str]:
    """target: dumps_dir's files hard-linked (dumps_dir is never written), and copies of
    its last hour's snapshot pairs stamped `shift` later. The names of the new files."""
    names = link_folder(dumps_dir, target)
    added: list[str] = []
    for stamp in last_hour(names):
        later = (snapshot_time(stamp) + shift).strftime(TIMESTAMP_FORMAT)
        for old, new in zip(snapshot_names(stamp), snapshot_names(later), strict=True):
            if not (dumps_dir / old).is_file():
                continue  # a sys_mem file without its process_mem file
            shutil.copyfile(dumps_dir / old, target / new)
            added.append(new)
    return added


@dataclass(frozen=True)
class KeptSummaries:
    """Day summaries made once (`kept`), and the folder a run is given (`used`): made a
    fresh copy of `kept` before each run, so that the summary one run writes (the new
    hour's day) is not there for the next, and `kept` is never written."""

    kept: Path
    used: Path

    def reset(self) -> None:
        shutil.rmtree(self.used, ignore_errors=True)
        link_folder(self.kept, self.used)
