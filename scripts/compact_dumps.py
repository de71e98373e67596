#!/usr/bin/env python3
"""Compact every closed UTC day of snapshots into one xz-compressed tar per day.

The collector writes two small CSV files every 10 minutes and never deletes any, so a
month of a busy host is thousands of files and a few hundred MB. This turns each closed
UTC day older than --older-than-days into `mem_<YYYYMMDD>.tar.xz` in the same dir: a
plain tar of that day's original files, unchanged (`tar -xJf` gives them back byte for
byte), about 30x smaller. It is meant to run from cron or a systemd timer, next to the
collector, so it imports nothing beyond the standard library.

Crash-safe: a bundle is written under a hidden temporary name, fsynced, read back and
compared with the files on disk, renamed into place, and only then are the originals
deleted. Killed at any instant, a day is either still all loose files, or a verified
bundle plus some originals that the next run removes.
"""

from __future__ import annotations

import argparse
import fcntl
import functools
import grp
import lzma
import os
import pwd
import re
import signal
import stat
import sys
import tarfile
import time
from collections.abc import Callable, Generator, Iterable, Sequence
from contextlib import closing, suppress
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from itertools import zip_longest
from pathlib import Path
from types import FrameType
from typing import IO, Any, NamedTuple

from utils.console import (
    EXIT_INTERNAL,
    EXIT_INTERRUPTED,
    EXIT_NO_DATA,
    EXIT_OK,
    EXIT_TERMINATED,
    Console,
    Stopped,
    add_dumps_dir_arg,
    internal_error_line,
    save_traceback,
)
from utils.dump_format import (
    PREFIXES,
    bundle_name,
    parse_bundle_day,
    parse_name_timestamp,
)

PROG = "compact_dumps"

# --- Defaults; every one of them can be overridden by a flag -----------------
OLDER_THAN_DAYS = 2  # leave the last two closed days loose, for a quick look
KEEP_DAYS: int | None = None  # None: never delete a bundle (retention is opt-in)
REPO_ROOT = Path(__file__).resolve().parent.parent
DUMPS_DIR = REPO_ROOT / "dumps" / "time"

# --- Fixed behaviour ----------------------------------------------------------
# xz preset 1 (measured on a synthetic day of 144 snapshots x 500 processes, 6.0 MB:
# preset 0 gives 209 kB and a 13 MiB peak RSS, 1: 215 kB / 20 MiB, 2: 213 kB / 27 MiB,
# 3: 216 kB / 42 MiB, 6: 205 kB / 86 MiB, over the 60 MiB budget). What compresses a
# day is that each process file repeats the one before it, so the dictionary must hold
# a whole process file: preset 0's 256 KiB does not at 5,000 processes (5.2x instead
# of 29x). Preset 1's 1 MiB does, and a day whose largest file needs more gets a bigger
# dictionary (twice its largest file), up to preset 3's 4 MiB (about 32 MiB of memory).
XZ_PRESET = 1
XZ_DICT_MIN = 1 << 20  # preset 1's own dictionary
XZ_DICT_MAX = 4 << 20  # peak RSS 49 MiB at 40,000 processes: under the 60 MiB budget
CHUNK_BYTES = 1 << 16  # files are streamed, never held whole
# Bundles hold every user's command lines, as the dumps do: 0640, as the collector writes.
BUNDLE_MODE = 0o640
LOCK_NAME = ".compact_dumps.lock"
MAX_DAYS = 36_500  # a century: more would take dates out of range
# A bundle being written: hidden, so no analysis pattern matches it.
_TEMP_NAME = re.compile(r"\.mem_([0-9]{8})\.tar\.xz\.([0-9]+)\.tmp")
# Member order: every sys_mem file of the day, then every process_mem file, each in
# time order, so a reader of the system files can stop before the process part.
_KINDS = PREFIXES  # (SYS_PREFIX, PROCESS_PREFIX)
_UNITS = ("kB", "MB", "GB")  # decimal, as `ls -lh --si` and `df -H` print them

DumpKey = tuple[int, datetime]
Say = Callable[[str], None]


class CompactError(Exception):
    """Nothing can be done in this dumps dir (missing, unlistable, read-only): one line, exit 1."""


class LockHeldError(Exception):
    """Another compactor is working on this dumps dir: one line, exit 0."""


class DayError(Exception):
    """One day could not be compacted; its files are left as they were."""


class VerifyError(Exception):
    """A bundle just written does not hold exactly the files it was written from."""


class LooseFile(NamedTuple):
    """A snapshot file on disk, named as the collector names them."""

    path: Path
    key: DumpKey
    size_bytes: int

    @property
    def name(self) -> str:
        return self.path.name


class Source(NamedTuple):
    """A member to write: its header and an open stream of its bytes."""

    info: tarfile.TarInfo
    data: IO[bytes]


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
    older_than_days: int = OLDER_THAN_DAYS
    keep_days: int | None = KEEP_DAYS  # None: never delete a bundle
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


def temp_path(bundle: Path) -> Path:
    return bundle.with_name(f".{bundle.name}.{os.getpid()}.tmp")


def human_bytes(size: int) -> str:
    """6.1 MB, 201 kB: decimal units, three significant digits or so. The unit is chosen
    after rounding, so 999,999 bytes are 1.0 MB, not 1000 kB, and 99,960 are 100 kB."""
    if size < 1000:
        return f"{size} B"
    value, unit = size / 1000, 0
    while value >= 999.5 and unit < len(_UNITS) - 1:
        value, unit = value / 1000, unit + 1
    return f"{value:.0f} {_UNITS[unit]}" if value >= 99.95 else f"{value:.1f} {_UNITS[unit]}"


def ratio_text(before: int, after: int) -> str:
    return f"{before / after:.1f}x" if after else "-"


def _plural(count: int, word: str) -> str:
    return f"{count:,} {word}" if count == 1 else f"{count:,} {word}s"


def _reason(err: OSError, fallback: Path) -> str:
    """`/path: No space left on device`: the file and the reason, without errno noise."""
    where = err.filename if err.filename is not None else fallback
    return f"{where}: {err.strerror or err}"


# --- Reading and writing bundles ---------------------------------------------------


@functools.cache
def _user_name(uid: int) -> str:
    """The owner's name for the tar header, as `tar` records it ("" if unknown)."""
    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:
        return ""


@functools.cache
def _group_name(gid: int) -> str:
    try:
        return grp.getgrgid(gid).gr_name
    except KeyError:
        return ""


def tar_header(name: str, st: os.stat_result) -> tarfile.TarInfo:
    """A regular-file member with the file's mode, owner and mtime, under its bare name.

    The ustar header holds whole seconds; a pax `mtime` record keeps the nanoseconds, so
    `tar -xJf` restores the exact mtime (it costs about 1.5 % of the bundle's size).
    """
    info = tarfile.TarInfo(name)
    info.type = tarfile.REGTYPE
    info.size = st.st_size
    info.mode = stat.S_IMODE(st.st_mode)
    info.uid, info.gid = st.st_uid, st.st_gid
    info.uname, info.gname = _user_name(st.st_uid), _group_name(st.st_gid)
    seconds, nanos = divmod(st.st_mtime_ns, 1_000_000_000)
    info.mtime = seconds
    if nanos:
        info.pax_headers = {"mtime": f"{seconds}.{nanos:09d}"}
    return info


def _copy_header(member: tarfile.TarInfo) -> tarfile.TarInfo:
    """A fresh header for a member read from another bundle, with the same attributes."""
    info = tarfile.TarInfo(member.name)
    info.type = tarfile.REGTYPE
    info.size = member.size
    info.mode = member.mode
    info.uid, info.gid = member.uid, member.gid
    info.uname, info.gname = member.uname, member.gname
    info.mtime = int(member.mtime)
    info.pax_headers = {k: v for k, v in member.pax_headers.items() if k == "mtime"}
    return info


def _mtime_of(info: tarfile.TarInfo) -> tuple[int, str | None]:
    return int(info.mtime), info.pax_headers.get("mtime")


def read_bundle(path: Path) -> Generator[tuple[tarfile.TarInfo, IO[bytes]], None, None]:
    """Stream the members of a bundle, in order, each with a stream of its bytes (to be
    read before asking for the next). The whole xz stream is read to its end, so its
    checksums are checked too. Raises tarfile.TarError, lzma.LZMAError or EOFError on a
    damaged bundle, and tarfile.TarError on a member that is not a regular file."""
    with lzma.open(path, "rb") as xz, tarfile.open(fileobj=xz, mode="r|") as tar:
        for member in tar:
            data = tar.extractfile(member) if member.isreg() else None
            if data is None:
                raise tarfile.TarError(f"{member.name!r} is not a regular file")
            yield member, data
        while xz.read(CHUNK_BYTES):  # the end of the xz stream: index and checksums
            pass


def _read_full(stream: IO[bytes], size: int) -> bytes:
    parts: list[bytes] = []
    wanted = size
    while wanted > 0:
        part = stream.read(wanted)
        if not part:
            break
        parts.append(part)
        wanted -= len(part)
    return b"".join(parts)


def same_bytes(first: IO[bytes], second: IO[bytes]) -> bool:
    """Whether two streams hold the same bytes, compared a chunk at a time."""
    while True:
        chunk = _read_full(first, CHUNK_BYTES)
        if chunk != _read_full(second, CHUNK_BYTES):
            return False
        if not chunk:
            return True


def open_loose(loose: LooseFile) -> IO[bytes]:
    """Open a snapshot file for reading, refusing a symlink put in its place."""
    fd = os.open(loose.path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
    return open(fd, "rb")


def _loose_source(loose: LooseFile) -> Generator[Source, None, None]:
    with open_loose(loose) as data:
        yield Source(tar_header(loose.name, os.fstat(data.fileno())), data)


def day_sources(new: Sequence[LooseFile], old_bundle: Path | None) -> Generator[Source, None, None]:
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
                yield Source(_copy_header(member), data)
    for loose in new[position:]:
        yield from _loose_source(loose)


def xz_filters(largest_bytes: int) -> list[dict[str, Any]]:
    """Preset 1, with a dictionary that holds at least two of the day's largest files."""
    dict_size = min(max(XZ_DICT_MIN, 2 * largest_bytes), XZ_DICT_MAX)
    return [{"id": lzma.FILTER_LZMA2, "preset": XZ_PRESET, "dict_size": dict_size}]


def write_bundle(temp: Path, sources: Iterable[Source], largest_bytes: int) -> None:
    """Write the members to a new file (refusing to replace one) and fsync it."""
    fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, BUNDLE_MODE)
    with open(fd, "wb") as raw:
        os.fchmod(raw.fileno(), BUNDLE_MODE)  # exact, whatever the umask
        filters = xz_filters(largest_bytes)
        with (
            lzma.LZMAFile(raw, "wb", check=lzma.CHECK_CRC64, filters=filters) as xz,
            tarfile.TarFile(fileobj=xz, mode="w", format=tarfile.PAX_FORMAT) as tar,
        ):
            for source in sources:
                tar.addfile(source.info, source.data)
        raw.flush()
        os.fsync(raw.fileno())
        # Drop the written pages from the cache, so that the check reads back the disk
        # rather than what was just written into memory (best effort: a hint).
        with suppress(OSError):
            os.posix_fadvise(raw.fileno(), 0, 0, os.POSIX_FADV_DONTNEED)


def verify_bundle(temp: Path, expected: Generator[Source, None, None]) -> None:
    """Read the bundle back and compare every member, in order, with what it was written
    from (names, sizes, modes, mtimes and bytes). Raises VerifyError on any difference."""
    try:
        with closing(read_bundle(temp)) as members, closing(expected) as wanted:
            for got, want in zip_longest(members, wanted):
                if got is None:
                    assert want is not None  # zip_longest: one of them is there
                    raise VerifyError(f"{want.info.name} is missing")
                member, data = got
                if want is None:
                    raise VerifyError(f"it holds {member.name}, which it should not")
                if member.name != want.info.name:
                    raise VerifyError(f"it holds {member.name} where {want.info.name} belongs")
                attributes = (member.size, member.mode, _mtime_of(member))
                if attributes != (want.info.size, want.info.mode, _mtime_of(want.info)):
                    raise VerifyError(f"{member.name}: size, mode or mtime differs")
                if not same_bytes(data, want.data):
                    raise VerifyError(f"{member.name}: the bytes differ")
    except (tarfile.TarError, lzma.LZMAError, EOFError) as err:
        raise VerifyError(f"it cannot be read back ({err})") from err


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
    except (tarfile.TarError, lzma.LZMAError, EOFError) as err:
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
                temp = _TEMP_NAME.fullmatch(name)
                if temp is not None:
                    temps.append((Path(entry.path), int(temp.group(2))))
    except OSError as err:
        raise CompactError(f"cannot read the dumps dir {_reason(err, dumps_dir)}") from err
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
        raise CompactError(f"cannot write in the dumps dir: {_reason(err, lock)}") from err
    try:
        fcntl.flock(fd, (fcntl.LOCK_SH if dry_run else fcntl.LOCK_EX) | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        raise LockHeldError(f"another compact_dumps run holds {lock}; nothing done") from None
    except OSError as err:
        os.close(fd)
        raise CompactError(f"cannot lock {_reason(err, lock)}") from err
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
        raise DayError(f"{_reason(err, bundle)}; the day is left as it is") from err
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
            raise DayError(f"{_reason(err, old)}; the day is left as it is") from err
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
            f"cannot remove {_reason(err, dumps_dir)}; it is in the bundle, and the next"
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
        raise DayError(f"{bundle.name}: {_reason(err, temp)}; originals kept") from err
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
    sizes = f"{human_bytes(content)} -> {human_bytes(size)} ({ratio_text(content, size)})"
    name, new = plan.target.name, plan.check.new
    if plan.old is None:
        run.say(f"{name}: {_plural(plan.members, 'file')}, {sizes}")
    else:
        run.say(f"{name}: added {_plural(len(new), 'late file')}, now {plan.members:,}, {sizes}")


def remove_originals(run: RunSettings, report: CompactionReport, plan: DayPlan) -> None:
    """Delete the day's loose files that are safely in its bundle now."""
    check = plan.check
    report.loose_removed += _remove_loose([*check.identical, *check.new], run.dumps_dir)
    if check.identical:
        already = _plural(len(check.identical), "loose file")
        run.say(f"{plan.target.name}: removed {already} already in the bundle")


def dry_run_day(run: RunSettings, report: CompactionReport, plan: DayPlan) -> None:
    """Say what compacting the day would do, and count it; change nothing."""
    check, name = plan.check, plan.target.name
    if plan.old is None:
        files = _plural(len(check.new), "file")
        run.say(f"would write {name}: {files}, {human_bytes(plan.new_bytes)}")
    elif check.new:
        run.say(f"would add {_plural(len(check.new), 'file')} to {name}")
    if check.identical:
        run.say(f"would remove {_plural(len(check.identical), 'loose file')} already in {name}")
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
            _problem(run, report, f"{bundle_name(day)}: {_reason(err, run.dumps_dir)}")
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
            run.warn(f"warning: cannot remove {_reason(err, path)}")
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
            _problem(run, report, f"cannot delete {_reason(err, bundles[day])}")
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
                _problem(run, report, f"cannot delete {_reason(err, bundles[day])}")
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
    run.say(f"{verb} {_plural(len(doomed), 'bundle')} older than {keep_days} days: {days}")
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
    failed = f"; {_plural(len(report.problems), 'problem')} (see above)" if report.problems else ""
    if report.dry_run:
        return (
            f"dry run: would write {_plural(report.days_written, 'bundle')}"
            f" ({_plural(report.members_written, 'file')}, {human_bytes(report.content_bytes)})"
            f" and remove {_plural(report.loose_removed, 'loose file')}; nothing changed{failed}"
        )
    parts: list[str] = []
    if report.days_written:
        content, size = report.content_bytes, report.bundle_bytes
        parts.append(
            f"compacted {_plural(report.days_written, 'day')}:"
            f" {_plural(report.members_written, 'file')},"
            f" {human_bytes(content)} -> {human_bytes(size)} ({ratio_text(content, size)})"
        )
    if report.loose_removed:
        parts.append(f"{_plural(report.loose_removed, 'loose file')} removed")
    if report.bundles_deleted:
        parts.append(f"{_plural(len(report.bundles_deleted), 'old bundle')} deleted")
    if parts:
        return "; ".join(parts) + f" in {report.seconds:.1f} s{failed}"
    if report.problems:
        return f"nothing compacted{failed}"
    return f"nothing to compact: no loose files of days up to {last_day}"


# --- Command line --------------------------------------------------------------------


def _days(minimum: int) -> Callable[[str], int]:
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"not a whole number of days: {text!r}") from None
        if not minimum <= value <= MAX_DAYS:
            raise argparse.ArgumentTypeError(
                f"must be from {minimum} to {MAX_DAYS:,} days, got {text}"
            )
        return value

    return parse


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=PROG, description=__doc__.split("\n\n")[0])
    add_dumps_dir_arg(parser, DUMPS_DIR)
    parser.add_argument(
        "--older-than-days",
        type=_days(0),
        default=OLDER_THAN_DAYS,
        metavar="N",
        help="compact the UTC days that ended more than N days ago, in days; 0: every day"
        f" up to yesterday (default {OLDER_THAN_DAYS})",
    )
    parser.add_argument(
        "--keep-days",
        type=_days(1),
        default=KEEP_DAYS,
        metavar="M",
        help="then delete the bundles of days that ended more than M days ago, in days;"
        " must be more than N (default: keep every bundle)",
    )
    parser.add_argument(
        "--dry-run",
        action="store_true",
        help="say what would be compacted and deleted, and change nothing",
    )
    return parser


class SignalGuard:
    """SIGTERM and SIGINT stop the run by raising Stopped where it is, so the day in
    progress unwinds (its temporary is removed); a second signal meanwhile is ignored so
    that the clean-up finishes. A signal ignored at start (nohup, `&`) stays ignored."""

    SIGNALS = (signal.SIGTERM, signal.SIGINT)

    def __init__(self) -> None:
        self.stopping = False
        self.previous: dict[int, Any] = {}

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        if self.stopping:
            return
        self.stopping = True
        raise Stopped(signum)

    def install(self) -> None:
        for signum in self.SIGNALS:
            previous = signal.getsignal(signum)
            if previous is not signal.SIG_IGN:
                self.previous[signum] = previous
                signal.signal(signum, self._handle)

    def restore(self) -> None:
        for signum, previous in self.previous.items():
            signal.signal(signum, previous)


def note(message: str) -> None:
    print(f"{PROG}: {message}", file=sys.stderr, flush=True)


def parse_settings(argv: Sequence[str] | None = None) -> RunSettings:
    """The run the command line asks for (argparse exits 2 on bad flags)."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.keep_days is not None and args.keep_days <= args.older_than_days:
        parser.error(
            f"--keep-days {args.keep_days} must be more than --older-than-days"
            f" {args.older_than_days}, or the bundles would be deleted as they are written"
        )
    return RunSettings(
        args.dumps_dir,
        datetime.now(UTC).date(),
        older_than_days=args.older_than_days,
        keep_days=args.keep_days,
        dry_run=args.dry_run,
        say=Console().print,
        warn=note,
    )


def main(argv: Sequence[str] | None = None) -> int:
    run = parse_settings(argv)
    guard = SignalGuard()
    guard.install()
    try:
        report = compact(run)
    except LockHeldError as err:
        note(str(err))
        return EXIT_OK
    except CompactError as err:
        note(str(err))
        return EXIT_NO_DATA
    except OSError as err:  # the disk failing outside a day (EIO on the dir, say)
        note(f"cannot use the dumps dir: {_reason(err, run.dumps_dir)}")
        return EXIT_NO_DATA
    except (Stopped, KeyboardInterrupt) as stop:
        by_sigint = isinstance(stop, KeyboardInterrupt) or stop.args[0] == signal.SIGINT
        left = "; the day in progress is left as it was, and the next run carries on"
        note(("interrupted" if by_sigint else "stopped by SIGTERM") + left)
        return EXIT_INTERRUPTED if by_sigint else EXIT_TERMINATED
    except Exception as err:  # a bug: one line, the traceback in a file
        note(internal_error_line(err, save_traceback(PROG, err, [])))
        return EXIT_INTERNAL
    finally:
        guard.restore()
    return EXIT_OK if report.ok else EXIT_NO_DATA


if __name__ == "__main__":
    sys.exit(main())
