"""One day's compaction: its loose files against the bundle it may have already, and the
protocol that puts them in a bundle crash-safely.

The bundle is written under a hidden temporary name, fsynced, read back and compared with
the files on disk, renamed into place (atomic, also over the old bundle of a merge), and
only then are the originals deleted. Killed at any instant, a day is either still all
loose files, or a verified bundle plus some originals that the next run removes.
utils.collect.compaction runs this for each day of a dumps dir.

Standard library only: the compactor runs on the system python3, beside the collector.
"""

from __future__ import annotations

import lzma
import os
import stat
from collections.abc import Generator, Iterable, Sequence
from contextlib import closing
from datetime import date, datetime
from pathlib import Path
from typing import IO, NamedTuple

from utils.collect.bundle_writer import (
    MemberSource,
    VerifyError,
    copy_header,
    same_bytes,
    tar_header,
    verify_bundle,
    write_bundle,
)
from utils.collect.bundles import TarFormatError, bundle_name, read_bundle
from utils.collect.snapshot_format import BUNDLE_ORDER, parse_name_timestamp
from utils.core.atomic_files import temp_path

# Member order: every sys_mem file of the day, then every cgroup_mem file, then every
# process_mem file, each in time order, so the small kinds' readers stop before the process part.
_KINDS = BUNDLE_ORDER

DumpKey = tuple[int, datetime]


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


# --- Names and keys ----------------------------------------------------------------


def dump_key(name: str) -> DumpKey | None:
    """(0 for sys_mem, 1 for cgroup_mem, 2 for process_mem; UTC time) of a snapshot file
    name, else None."""
    for kind, prefix in enumerate(_KINDS):
        stamp = parse_name_timestamp(name, prefix)
        if stamp is not None:
            return kind, stamp
    return None


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


# --- The protocol ------------------------------------------------------------------


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
        except OSError as err:  # the bundle or a loose file: reason_text names which
            raise DayError(f"{reason_text(err, old)}; the day is left as it is") from err
    return DayPlan(dumps_dir / bundle_name(day), old, check)


def remove_loose(files: Iterable[LooseFile], dumps_dir: Path) -> int:
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


def publish(plan: DayPlan) -> None:
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
