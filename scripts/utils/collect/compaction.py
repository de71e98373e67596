"""Compacting closed UTC days of snapshots into day bundles (utils.collect.bundles), crash-safely.

A run takes the lock of the dumps dir, sorts what is there into the loose files of each
eligible day, bundles and temporaries left by killed runs, compacts each day in turn
(utils.collect.day_compaction holds one day's plan and its write, fsync, read back, rename
and delete protocol), deletes the bundles past --keep-days, and sums up what it did.
compact_dumps.py is the command line of this.

Standard library only: the compactor runs on the system python3, beside the collector.
"""

from __future__ import annotations

import fcntl
import os
import stat
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path
from typing import NamedTuple

from utils.collect.bundles import BUNDLE_MODE, bundle_name, parse_bundle_day
from utils.collect.day_compaction import (
    DayError,
    DayPlan,
    LooseFile,
    dump_key,
    fsync_dir,
    plan_day,
    publish,
    reason_text,
    remove_loose,
)
from utils.core.atomic_files import parse_temp_name
from utils.core.defaults import COMPACT_OLDER_THAN_DAYS
from utils.core.text import decimal_size, plural, ratio_text

LOCK_NAME = ".compact_dumps.lock"
Say = Callable[[str], None]


class CompactError(Exception):
    """Nothing can be done in this dumps dir (missing, unlistable, read-only): one line, exit 1."""


class LockHeldError(Exception):
    """Another compactor is working on this dumps dir: one line, exit 0."""


@dataclass
class CompactionReport:
    """What a run did (or, with dry_run, would do)."""

    days_written: int = 0  # bundles written: new days, and days merged with late files
    members_written: int = 0  # files in those bundles
    content_bytes: int = 0  # the bytes of those files (as loose files, before compaction)
    bundle_bytes: int = 0  # the size of those bundles
    loose_removed: int = 0  # originals deleted once they were safely in a bundle
    temps_removed: int = 0  # temporaries left by a killed run
    bundles_deleted: list[date] = field(default_factory=list)  # retention (--keep-days)
    problems: list[str] = field(default_factory=list)  # each one already reported
    seconds: float = 0.0
    dry_run: bool = False

    @property
    def ok(self) -> bool:
        return not self.problems


class RunSettings(NamedTuple):
    """One run: the dumps dir and the UTC day it runs on, which days it compacts and
    which bundles it deletes, whether it changes anything, and where its lines go."""

    dumps_dir: Path
    today: date
    older_than_days: int = COMPACT_OLDER_THAN_DAYS
    keep_days: int | None = None  # None: never delete a bundle
    dry_run: bool = False
    say: Say = print  # a line per day and the summary
    warn: Say = print  # problems and warnings

    @property
    def last_day(self) -> date:
        """The last day this run compacts."""
        return last_eligible_day(self.today, self.older_than_days)


# --- Days --------------------------------------------------------------------------


def last_eligible_day(today: date, older_than_days: int) -> date:
    """The last day D with D + 1 + N <= today: closed, and older than N days."""
    return today - timedelta(days=1 + older_than_days)


# --- The dumps dir -----------------------------------------------------------------


class DirContents(NamedTuple):
    # The names of the snapshot files of each eligible day: names only, so that even a
    # year of loose files (105,000) costs a few MB; a day's files are looked at in turn.
    loose: dict[date, list[str]]
    bundles: dict[date, Path]
    temps: list[tuple[Path, int]]  # leftover temporaries and the pid in their name


def scan(dumps_dir: Path, warn: Say, last_day: date) -> DirContents:
    """Sort what is in the dumps dir into the snapshot files of days up to last_day,
    bundles and temporaries; anything else is left alone, unmentioned."""
    loose: dict[date, list[str]] = {}
    bundles: dict[date, Path] = {}
    temps: list[tuple[Path, int]] = []
    try:
        with os.scandir(dumps_dir) as entries:
            for entry in entries:
                name = entry.name
                key = dump_key(name)
                if key is not None:
                    day = key[1].date()
                    if day > last_day:
                        continue
                    if entry.is_file(follow_symlinks=False):
                        loose.setdefault(day, []).append(name)
                    else:
                        warn(f"warning: {entry.path}: not a regular file; left alone")
                    continue
                bundle_day = parse_bundle_day(name)
                if bundle_day is not None:
                    bundles[bundle_day] = Path(entry.path)
                    continue
                temp = parse_temp_name(name)
                if temp is not None and parse_bundle_day(temp[0]) is not None:
                    temps.append((Path(entry.path), temp[1]))
    except OSError as err:
        raise CompactError(f"cannot read the dumps dir {reason_text(err, dumps_dir)}") from err
    return DirContents(loose, bundles, temps)


def day_files(dumps_dir: Path, names: Iterable[str]) -> list[LooseFile]:
    """The snapshot files of one day, in member order, with their sizes (a file gone
    meanwhile is left out)."""
    files: list[LooseFile] = []
    for name in names:
        key = dump_key(name)
        assert key is not None  # scan() kept only such names
        path = dumps_dir / name
        try:
            st = os.lstat(path)
        except FileNotFoundError:
            continue
        if stat.S_ISREG(st.st_mode):
            files.append(LooseFile(path, key, st.st_size))
    files.sort(key=lambda item: item.key)
    return files


def pid_alive(pid: int) -> bool:
    """Whether a process with this pid exists (a compactor may still be writing)."""
    if pid <= 0 or pid == os.getpid():  # ours: this run has not written anything yet
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # it exists, under another user
        return True
    except (OverflowError, OSError):
        return False
    return True


def take_lock(dumps_dir: Path, dry_run: bool) -> int | None:
    """A flock on the lock file in the dumps dir, held until it is closed: exclusive for
    a run; shared for a dry run, which never creates the file (None if there is none).
    LockHeldError if a run has it, CompactError if the dir is read-only."""
    lock = dumps_dir / LOCK_NAME
    flags = os.O_CLOEXEC | os.O_NOFOLLOW | (os.O_RDONLY if dry_run else os.O_RDWR | os.O_CREAT)
    try:
        fd = os.open(lock, flags, BUNDLE_MODE)
    except FileNotFoundError:
        if dry_run:
            return None
        raise CompactError(f"cannot write in the dumps dir: {lock}: vanished") from None
    except OSError as err:
        raise CompactError(f"cannot write in the dumps dir: {reason_text(err, lock)}") from err
    try:
        fcntl.flock(fd, (fcntl.LOCK_SH if dry_run else fcntl.LOCK_EX) | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        raise LockHeldError(f"another compact_dumps run holds {lock}; nothing done") from None
    except OSError as err:
        os.close(fd)
        raise CompactError(f"cannot lock {reason_text(err, lock)}") from err
    return fd


# --- Each day, then the run --------------------------------------------------------


def _problem(run: RunSettings, report: CompactionReport, problem: str) -> None:
    """Report a problem now, and keep it for the summary and the exit status."""
    report.problems.append(problem)
    run.warn(problem)


def write_day(run: RunSettings, report: CompactionReport, plan: DayPlan) -> None:
    """Publish the day's bundle with its new files, count it and say so."""
    publish(plan)
    size = plan.target.stat().st_size
    content = plan.content_bytes
    report.days_written += 1
    report.members_written += plan.members
    report.content_bytes += content
    report.bundle_bytes += size
    sizes = f"{decimal_size(content)} -> {decimal_size(size)} ({ratio_text(content, size)})"
    name, new = plan.target.name, plan.check.new
    if plan.old is None:
        run.say(f"{name}: {plural(plan.members, 'file')}, {sizes}")
    else:
        run.say(f"{name}: added {plural(len(new), 'late file')}, now {plan.members:,}, {sizes}")


def remove_originals(run: RunSettings, report: CompactionReport, plan: DayPlan) -> None:
    """Delete the day's loose files that are safely in its bundle now."""
    check = plan.check
    report.loose_removed += remove_loose([*check.identical, *check.new], run.dumps_dir)
    if check.identical:
        already = plural(len(check.identical), "loose file")
        run.say(f"{plan.target.name}: removed {already} already in the bundle")


def dry_run_day(run: RunSettings, report: CompactionReport, plan: DayPlan) -> None:
    """Say what compacting the day would do, and count it; change nothing."""
    check, name = plan.check, plan.target.name
    if plan.old is None:
        files = plural(len(check.new), "file")
        run.say(f"would write {name}: {files}, {decimal_size(plan.new_bytes)}")
    elif check.new:
        run.say(f"would add {plural(len(check.new), 'file')} to {name}")
    if check.identical:
        run.say(f"would remove {plural(len(check.identical), 'loose file')} already in {name}")
    if check.new:
        report.days_written += 1
        report.members_written += plan.members
        report.content_bytes += plan.content_bytes
    report.loose_removed += len(check.identical) + len(check.new)


def compact_day(
    run: RunSettings,
    report: CompactionReport,
    day: date,
    loose: list[LooseFile],
    bundle: Path | None,
) -> None:
    """Bundle one day's loose files (merging them into its bundle if it has one), then
    delete them. Raises DayError, leaving the day as it was, when that cannot be done."""
    plan = plan_day(run.dumps_dir, day, loose, bundle)
    for item in plan.check.differing:
        _problem(
            run,
            report,
            f"{plan.target.name}: {item.name} differs from the copy in the bundle; both kept"
            " (compare them, then delete the wrong one)",
        )
    if run.dry_run:
        dry_run_day(run, report, plan)
        return
    if plan.check.new:
        write_day(run, report, plan)
    remove_originals(run, report, plan)


def compact_days(run: RunSettings, report: CompactionReport, contents: DirContents) -> None:
    """Compact every day that has loose files, oldest first. A day that fails is
    reported and left as it was, and the next one goes on."""
    for day in sorted(contents.loose):
        try:
            loose = day_files(run.dumps_dir, contents.loose.pop(day))
            compact_day(run, report, day, loose, contents.bundles.get(day))
        except DayError as err:
            _problem(run, report, str(err))
        except OSError as err:  # anything else the disk can do (EIO, ...)
            _problem(run, report, f"{bundle_name(day)}: {reason_text(err, run.dumps_dir)}")
        contents.bundles[day] = run.dumps_dir / bundle_name(day)


def remove_stale_temps(
    run: RunSettings, report: CompactionReport, temps: Sequence[tuple[Path, int]]
) -> None:
    """Delete the temporaries of killed runs (a live pid's temporary is left alone)."""
    for path, pid in temps:
        if pid_alive(pid):
            continue
        if run.dry_run:
            run.say(f"would remove {path.name}, left by a run that was stopped")
            report.temps_removed += 1
            continue
        try:
            path.unlink()
        except FileNotFoundError:
            continue
        except OSError as err:
            run.warn(f"warning: cannot remove {reason_text(err, path)}")
            continue
        run.say(f"removed {path.name}, left by a run that was stopped")
        report.temps_removed += 1


def _expired_bundles(
    run: RunSettings, report: CompactionReport, bundles: dict[date, Path], keep_days: int
) -> list[date]:
    """The days, oldest first, whose bundle is older than keep_days and a regular file
    (anything else of that name is left alone, with a warning)."""
    last = last_eligible_day(run.today, keep_days)
    expired: list[date] = []
    for day in sorted(d for d in bundles if d <= last):
        try:
            regular = stat.S_ISREG(os.lstat(bundles[day]).st_mode)
        except FileNotFoundError:
            continue
        except OSError as err:
            _problem(run, report, f"cannot delete {reason_text(err, bundles[day])}")
            continue
        if regular:
            expired.append(day)
        else:
            run.warn(f"warning: {bundles[day]}: not a regular file; left alone")
    return expired


def _delete_bundles(
    run: RunSettings, report: CompactionReport, bundles: dict[date, Path], days: list[date]
) -> None:
    try:
        for day in days:
            try:
                bundles[day].unlink()
            except FileNotFoundError:
                pass
            except OSError as err:
                _problem(run, report, f"cannot delete {reason_text(err, bundles[day])}")
                continue
            report.bundles_deleted.append(day)
    finally:
        if report.bundles_deleted:
            fsync_dir(run.dumps_dir)


def apply_retention(
    run: RunSettings, report: CompactionReport, bundles: dict[date, Path], keep_days: int
) -> None:
    """Delete the bundles older than keep_days, after saying which; never a loose file."""
    doomed = _expired_bundles(run, report, bundles, keep_days)
    if not doomed:
        return
    days = ", ".join(day.isoformat() for day in doomed)
    verb = "would delete" if run.dry_run else "deleting"
    run.say(f"{verb} {plural(len(doomed), 'bundle')} older than {keep_days} days: {days}")
    if run.dry_run:
        report.bundles_deleted.extend(doomed)
    else:
        _delete_bundles(run, report, bundles, doomed)


def compact(run: RunSettings) -> CompactionReport:
    """Compact every closed day older than run.older_than_days (D + 1 + N <= today) that
    has loose files, then, if run.keep_days is given, delete the bundles older than that.

    `run.say` gets one line per day and the summary; `run.warn` gets the problems. Raises
    CompactError when the dumps dir cannot be used, LockHeldError when another run holds it.
    A day that fails is reported, left as it was, and listed in report.problems.
    """
    began = time.perf_counter()
    report = CompactionReport(dry_run=run.dry_run)
    if not run.dumps_dir.is_dir():
        what = "is not a directory" if run.dumps_dir.exists() else "does not exist"
        raise CompactError(f"the dumps dir {run.dumps_dir} {what}")
    lock_fd = take_lock(run.dumps_dir, run.dry_run)
    try:
        contents = scan(run.dumps_dir, run.warn, run.last_day)
        remove_stale_temps(run, report, contents.temps)
        compact_days(run, report, contents)
        if run.keep_days is not None:
            apply_retention(run, report, contents.bundles, run.keep_days)
    finally:
        if lock_fd is not None:
            os.close(lock_fd)
    report.seconds = time.perf_counter() - began
    run.say(summary_line(report, run.last_day))
    return report


def summary_line(report: CompactionReport, last_day: date) -> str:
    failed = f"; {plural(len(report.problems), 'problem')} (see above)" if report.problems else ""
    if report.dry_run:
        return (
            f"dry run: would write {plural(report.days_written, 'bundle')}"
            f" ({plural(report.members_written, 'file')}, {decimal_size(report.content_bytes)})"
            f" and remove {plural(report.loose_removed, 'loose file')}; nothing changed{failed}"
        )
    parts: list[str] = []
    if report.days_written:
        content, size = report.content_bytes, report.bundle_bytes
        parts.append(
            f"compacted {plural(report.days_written, 'day')}:"
            f" {plural(report.members_written, 'file')},"
            f" {decimal_size(content)} -> {decimal_size(size)} ({ratio_text(content, size)})"
        )
    if report.loose_removed:
        parts.append(f"{plural(report.loose_removed, 'loose file')} removed")
    if report.bundles_deleted:
        parts.append(f"{plural(len(report.bundles_deleted), 'old bundle')} deleted")
    if parts:
        return "; ".join(parts) + f" in {report.seconds:.1f} s{failed}"
    if report.problems:
        return f"nothing compacted{failed}"
    return f"nothing to compact: no loose files of days up to {last_day}"
