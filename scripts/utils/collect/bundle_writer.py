"""Writing a day bundle (utils.collect.bundles has the format) and verifying it against
what it was written from, for the compactor.

A bundle is written by tarfile (pax format) through one xz stream, fsynced, and read back
with the format's own reader: every member's name, size, mode, mtime and bytes must be the
ones it was written from. Standard library only: the compactor runs on the system python3.
"""

from __future__ import annotations

import contextlib
import functools
import grp
import lzma
import os
import pwd
import stat
import tarfile
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import IO, Any, NamedTuple

from utils.collect.bundles import (
    BUNDLE_MODE,
    CHUNK_BYTES,
    TarFormatError,
    TarMember,
    read_bundle,
)

# --- Writing -------------------------------------------------------------------------

# xz preset 1, with a dictionary of at least two of the day's largest files. What
# compresses a day is that each process file repeats the one before it, so the dictionary
# must hold a whole process file (preset 1's is 1 MiB); a day whose files are larger gets
# more, up to preset 3's 4 MiB. docs/performance.md has the measurements behind both.
XZ_PRESET = 1
XZ_DICT_MIN = 1 << 20
XZ_DICT_MAX = 4 << 20


class MemberSource(NamedTuple):
    """A member to write: its header and an open stream of its bytes."""

    info: tarfile.TarInfo
    data: IO[bytes]


@functools.cache
def _owner_names(uid: int, gid: int) -> tuple[str, str]:
    """The owner's user and group names for the tar header, as `tar` records them ("" for
    an id the system does not know)."""
    try:
        user = pwd.getpwuid(uid).pw_name
    except KeyError:
        user = ""
    try:
        group = grp.getgrgid(gid).gr_name
    except KeyError:
        group = ""
    return user, group


def tar_header(name: str, st: os.stat_result) -> tarfile.TarInfo:
    """A regular-file member with the file's mode, owner and mtime, under its bare name.

    The ustar header holds whole seconds; a pax `mtime` record keeps the nanoseconds, so
    `tar -xJf` restores the exact mtime.
    """
    info = tarfile.TarInfo(name)
    info.type = tarfile.REGTYPE
    info.size = st.st_size
    info.mode = stat.S_IMODE(st.st_mode)
    info.uid, info.gid = st.st_uid, st.st_gid
    info.uname, info.gname = _owner_names(st.st_uid, st.st_gid)
    seconds, nanos = divmod(st.st_mtime_ns, 1_000_000_000)
    info.mtime = seconds
    if nanos:
        info.pax_headers = {"mtime": f"{seconds}.{nanos:09d}"}
    return info


def copy_header(member: TarMember) -> tarfile.TarInfo:
    """A fresh header for a member read from another bundle, with the same attributes."""
    info = tarfile.TarInfo(member.name)
    info.type = tarfile.REGTYPE
    info.size = member.size
    info.mode = member.mode()
    info.uid, info.gid = member.uid(), member.gid()
    info.uname, info.gname = member.uname(), member.gname()
    info.mtime = member.mtime_s()
    mtime = member.pax_mtime()
    if mtime is not None:
        info.pax_headers = {"mtime": mtime}
    return info


def xz_filters(largest_bytes: int) -> list[dict[str, Any]]:
    """Preset 1, with a dictionary that holds at least two of the day's largest files."""
    dict_size = min(max(XZ_DICT_MIN, 2 * largest_bytes), XZ_DICT_MAX)
    return [{"id": lzma.FILTER_LZMA2, "preset": XZ_PRESET, "dict_size": dict_size}]


def write_bundle(temp: Path, sources: Iterable[MemberSource], largest_bytes: int) -> None:
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
        with contextlib.suppress(OSError):
            os.posix_fadvise(raw.fileno(), 0, 0, os.POSIX_FADV_DONTNEED)


# --- Verifying -----------------------------------------------------------------------


class VerifyError(Exception):
    """A bundle just written does not hold exactly the files it was written from."""


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


def _attributes(info: tarfile.TarInfo) -> tuple[int, int, int, str | None]:
    return info.size, info.mode, int(info.mtime), info.pax_headers.get("mtime")


def verify_bundle(bundle: Path, expected: Iterator[MemberSource]) -> None:
    """Read the bundle back and compare every member, in order, with what it was written
    from (names, sizes, modes, mtimes and bytes). Raises VerifyError on any difference."""
    try:
        members = read_bundle(bundle)
        for member, data in members:
            want = next(expected, None)
            if want is None:
                raise VerifyError(f"it holds {member.name}, which it should not")
            if member.name != want.info.name:
                raise VerifyError(f"it holds {member.name} where {want.info.name} belongs")
            got = (member.size, member.mode(), member.mtime_s(), member.pax_mtime())
            if got != _attributes(want.info):
                raise VerifyError(f"{member.name}: size, mode or mtime differs")
            if not same_bytes(data, want.data):
                raise VerifyError(f"{member.name}: the bytes differ")
        missing = next(expected, None)
        if missing is not None:
            raise VerifyError(f"{missing.info.name} is missing")
    except (TarFormatError, lzma.LZMAError, EOFError) as err:
        raise VerifyError(f"it cannot be read back ({err})") from err
