"""Compacting closed UTC days of snapshots into day bundles (utils.collect.bundles), crash-safely.

A bundle is written under a hidden temporary name, fsynced, read back and compared with
the files on disk, renamed into place, and only then are the originals deleted. Killed at
any instant, a day is either still all loose files, or a verified bundle plus some
originals that the next run removes. compact_dumps.py is the command line of this.

Standard library only: the compactor runs on the system python3, beside the collector.
"""

from __future__ import annotations

import fcntl
import lzma
import os
import stat
import time
from collections.abc import Callable, Generator, Iterable, Sequence
from contextlib import closing
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import IO, NamedTuple

from utils.collect.bundles import (
    BUNDLE_MODE,
    MemberSource,
    TarFormatError,
    VerifyError,
    bundle_name,
    copy_header,
    parse_bundle_day,
    read_bundle,
    same_bytes,
    tar_header,
    verify_bundle,
    write_bundle,
)
from utils.collect.snapshot_format import PREFIXES, parse_name_timestamp
from utils.core.atomic_files import parse_temp_name, temp_path
from utils.core.defaults import COMPACT_OLDER_THAN_DAYS
from utils.core.text import decimal_size, plural, ratio_text

LOCK_NAME = ".compact_dumps.lock"
# Member order: every sys_mem file of the day, then every process_mem file, each in
# time order, so a reader of the system files can stop before the process part.
_KINDS = PREFIXES  # (SYS_PREFIX, PROCESS_PREFIX)

DumpKey = tuple[int, datetime]
Say = Callable[[str], None]


class CompactError(Exception):
    """Nothing can be done in this dumps dir (missing, unlistable, read-only): one line, exit 1."""


class LockHeldError(Exception):
    """Another compactor is working on this dumps dir: one line, exit 0."""


class DayError(Exception):
    """One day could not be compacted; its files are left as they were."""


class LooseFile(NamedTuple):
    """A snapshot file on disk, named as the collector names them."""

    path: Path
    key: DumpKey
    size_bytes: int

    @property
    def name(self) -> str:
        return self.path.name


class BundleCheck(NamedTuple):
    """An existing bundle, compared with the loose files of its day."""

    members: int
    content_bytes: int
    largest_bytes: int
    identical: list[LooseFile]  # loose files already in the bundle, byte for byte
    differing: list[LooseFile]  # same name as a member, other bytes: never deleted
    new: list[LooseFile]  # not in the bundle yet


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


# --- Names, days and keys ---------------------------------------------------------


def dump_key(name: str) -> DumpKey | None:
    """(0 for sys_mem, 1 for process_mem; UTC time) of a snapshot file name, else None."""
    for kind, prefix in enumerate(_KINDS):
        stamp = parse_name_timestamp(name, prefix)
        if stamp is not None:
            return kind, stamp
    return None


def last_eligible_day(today: date, older_than_days: int) -> date:
    """The last day D with D + 1 + N <= today: closed, and older than N days."""
    return today - timedelta(days=1 + older_than_days)


def reason_text(err: OSError, fallback: Path) -> str:
    """`/path: No space left on device`: the file and the reason, without errno noise."""
    where = err.filename if err.filename is not None else fallback
    return f"{where}: {err.strerror or err}"


# --- The members of a day's bundle -------------------------------------------------


def open_loose(loose: LooseFile) -> IO[bytes]:
    """Open a snapshot file for reading, refusing a symlink put in its place."""
    fd = os.open(loose.path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
    return open(fd, "rb")


def _loose_source(loose: LooseFile) -> Generator[MemberSource, None, None]:
    with open_loose(loose) as data:
        yield MemberSource(tar_header(loose.name, os.fstat(data.fileno())), data)


def day_sources(
    new: Sequence[LooseFile], old_bundle: Path | None
) -> Generator[MemberSource, None, None]:
    """The members of a day's bundle, in member order: the old bundle's members (already
    in that order) merged with the new loose files (sorted by key), each streamed."""
    position = 0
    if old_bundle is not None:
        with closing(read_bundle(old_bundle)) as members:
            for member, data in members:
                key = dump_key(member.name)
                while position < len(new) and key is not None and new[position].key < key:
                    yield from _loose_source(new[position])
                    position += 1
                yield MemberSource(copy_header(member), data)
    for loose in new[position:]:
        yield from _loose_source(loose)


def check_bundle(bundle: Path, day: date, loose: Sequence[LooseFile]) -> BundleCheck:
    """Read an existing bundle and sort the day's loose files into identical to a
    member, differing from the member of the same name, and new. Raises DayError if the
    bundle is damaged or holds anything but that day's snapshot files, in order."""
    by_name = {item.name: item for item in loose}
    identical: list[LooseFile] = []
    differing: list[LooseFile] = []
    members = content = largest = 0
    previous: DumpKey | None = None
    try:
        with closing(read_bundle(bundle)) as stream:
            for member, data in stream:
                key = dump_key(member.name)
                if key is None or key[1].date() != day:
                    raise DayError(
                        f"{bundle.name} holds {member.name!r}, not a snapshot file of {day};"
                        " the day is left as it is"
                    )
                if previous is not None and key <= previous:
                    raise DayError(
                        f"{bundle.name}: {member.name} is out of order;" " the day is left as it is"
                    )
                previous = key
                members += 1
                content += member.size
                largest = max(largest, member.size)
                item = by_name.pop(member.name, None)
                if item is None:
                    continue
                with open_loose(item) as on_disk:
                    same = member.size == item.size_bytes and same_bytes(data, on_disk)
                (identical if same else differing).append(item)
    except (TarFormatError, lzma.LZMAError, EOFError) as err:
        raise DayError(f"{bundle.name} cannot be read ({err}); the day is left as it is") from err
    new = sorted(by_name.values(), key=lambda item: item.key)
    return BundleCheck(members, content, largest, identical, differing, new)


def fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


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


# --- Compacting ---------------------------------------------------------------------


class DayPlan(NamedTuple):
    """One day's work: the bundle to write, the old bundle to merge into it (if the day
    has one), and the day's loose files sorted by what that old bundle holds."""

    target: Path
    old: Path | None
    check: BundleCheck

    @property
    def new_bytes(self) -> int:
        return sum(item.size_bytes for item in self.check.new)

    @property
    def members(self) -> int:
        """Files in the bundle once the new ones are in."""
        return self.check.members + len(self.check.new)

    @property
    def content_bytes(self) -> int:
        return self.check.content_bytes + self.new_bytes

    @property
    def largest_bytes(self) -> int:
        return max([self.check.largest_bytes, *(item.size_bytes for item in self.check.new)])


def _problem(run: RunSettings, report: CompactionReport, problem: str) -> None:
    """Report a problem now, and keep it for the summary and the exit status."""
    report.problems.append(problem)
    run.warn(problem)


def _old_bundle(bundle: Path | None) -> Path | None:
    """The day's bundle to merge into, if it has one. DayError if something is there that
    cannot be looked at or is not a regular file."""
    if bundle is None:
        return None
    try:
        is_regular = stat.S_ISREG(os.lstat(bundle).st_mode)
    except OSError as err:
        raise DayError(f"{reason_text(err, bundle)}; the day is left as it is") from err
    if not is_regular:
        raise DayError(f"{bundle}: not a regular file; the day is left as it is")
    return bundle


def plan_day(dumps_dir: Path, day: date, loose: list[LooseFile], bundle: Path | None) -> DayPlan:
    """Compare one day's loose files with the bundle it has already (all of them are new
    if it has none). DayError if that bundle cannot be used."""
    old = _old_bundle(bundle)
    if old is None:
        check = BundleCheck(0, 0, 0, [], [], loose)
    else:
        try:
            check = check_bundle(old, day, loose)
        except OSError as err:  # the bundle or a loose file: _reason names which
            raise DayError(f"{reason_text(err, old)}; the day is left as it is") from err
    return DayPlan(dumps_dir / bundle_name(day), old, check)


def _remove_loose(files: Iterable[LooseFile], dumps_dir: Path) -> int:
    """Delete originals that are safely in a bundle; DayError if one cannot be."""
    removed = 0
    try:
        try:
            for item in files:
                try:
                    os.unlink(item.path)
                except FileNotFoundError:
                    continue
                removed += 1
        finally:
            if removed:
                fsync_dir(dumps_dir)
    except OSError as err:
        raise DayError(
            f"cannot remove {reason_text(err, dumps_dir)}; it is in the bundle, and the next"
            " run removes it"
        ) from err
    return removed


def _publish(plan: DayPlan) -> None:
    """Write, fsync, verify and rename a day's bundle; on any failure, no temporary is left."""
    temp, bundle = temp_path(plan.target), plan.target
    new, old = plan.check.new, plan.old
    try:
        write_bundle(temp, day_sources(new, old), plan.largest_bytes)
        verify_bundle(temp, day_sources(new, old))
        os.replace(temp, bundle)  # atomic, also over the old bundle of a merge
        fsync_dir(bundle.parent)
    except VerifyError as err:
        raise DayError(f"{bundle.name}: verification failed: {err}; originals kept") from err
    except OSError as err:
        raise DayError(f"{bundle.name}: {reason_text(err, temp)}; originals kept") from err
    finally:
        temp.unlink(missing_ok=True)  # after the rename, the name is gone already


def write_day(run: RunSettings, report: CompactionReport, plan: DayPlan) -> None:
    """Publish the day's bundle with its new files, count it and say so."""
    _publish(plan)
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
    report.loose_removed += _remove_loose([*check.identical, *check.new], run.dumps_dir)
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
