"""The bytes of a file that may be a dump: a regular file of bounded size, never anything else.

Only regular files are ever opened: a FIFO would block open() forever, a device such as
/dev/zero never ends, and opening some devices does something (/dev/watchdog arms a
watchdog). A name is looked at with stat() first, never opened to find out; a name the
directory listing showed as a regular file is opened at once without following a symlink,
and checked with fstat() (a stat() of each of a year's small files first costs a quarter
of reading them).
"""

from __future__ import annotations

import errno
import os
import stat
from pathlib import Path

from utils.collect.snapshot_format import MAX_DUMP_BYTES
from utils.core.text import binary_size


class BadFileError(Exception):
    """One file cannot be used; the message says why."""


_FILE_TYPES = (
    (stat.S_ISDIR, "a directory"),
    (stat.S_ISFIFO, "a FIFO"),
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
    (stat.S_ISSOCK, "a socket"),
)


def _not_regular(mode: int) -> str:
    kind = next((name for test, name in _FILE_TYPES if test(mode)), "not a regular file")
    return f"not a regular file ({kind})" if kind != "not a regular file" else kind


def file_size(path: Path, limit: int = MAX_DUMP_BYTES) -> int:
    """The size of a regular file of at most `limit` bytes, else BadFileError.

    Only regular files are ever opened: a FIFO would block open() forever, a device such
    as /dev/zero never ends, and opening some devices does something (/dev/watchdog arms
    a watchdog). So the name is looked at with stat() first, never opened to find out
    (or, listed as a regular file, opened with O_NOFOLLOW: see read_regular).
    """
    try:
        info = os.stat(path)
    except OSError as err:
        raise BadFileError(f"cannot read: {err.strerror or err}") from err
    return _checked_size(info, limit)


def _checked_size(info: os.stat_result, limit: int) -> int:
    if not stat.S_ISREG(info.st_mode):
        raise BadFileError(_not_regular(info.st_mode))
    if info.st_size > limit:
        raise BadFileError(
            f"{binary_size(info.st_size)}, larger than any dump (limit {binary_size(limit)})"
        )
    return info.st_size


def read_regular(path: Path, size: int | None, limit: int = MAX_DUMP_BYTES) -> bytes:
    """The bytes of a file file_size() has accepted as `size` bytes (None: one the directory
    listing showed as a regular file, checked here), never past the limit even if it grew
    since; BadFileError if it is no longer a regular file."""
    # O_NONBLOCK: should the name have become a FIFO since, open returns at once instead
    # of waiting for a writer. O_NOFOLLOW for a name listed as a regular file (not stat()ed
    # first): replaced by a symlink since the listing, minutes ago on a year, it is refused
    # (ELOOP) rather than followed to a device.
    flags = os.O_RDONLY | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC
    try:
        try:
            fd = os.open(path, flags if size is not None else flags | os.O_NOFOLLOW)
        except OSError as err:
            if err.errno == errno.ELOOP and size is None:
                raise BadFileError("replaced by a symlink since it was listed") from err
            raise
        try:
            info = os.fstat(fd)
            if size is None:
                size = _checked_size(info, limit)
            elif not stat.S_ISREG(info.st_mode):
                raise BadFileError(_not_regular(info.st_mode))
            # One read of the size seen, plus a byte to notice growth: os.read allocates
            # what it is asked for, so never ask for the limit itself.
            data = os.read(fd, size + 1)
            while len(data) > size and len(data) <= limit:  # it grew: read the rest
                more = os.read(fd, min(len(data), limit + 1 - len(data)))
                if not more:
                    break
                data += more
        finally:
            os.close(fd)
    except OSError as err:
        raise BadFileError(f"cannot read: {err.strerror or err}") from err
    if len(data) > limit:
        raise BadFileError(f"grew past {binary_size(limit)} while being read, larger than any dump")
    return data


def read_bytes(path: Path, limit: int = MAX_DUMP_BYTES, *, listed_regular: bool = False) -> bytes:
    """The bytes of a regular file of at most `limit` bytes, else BadFileError.

    listed_regular: the directory listing said it is a regular file (not a symlink), so it
    is opened at once and checked with fstat(): a stat() of each of a year's 52,560 small
    sys_mem files first cost a quarter of reading them."""
    return read_regular(path, None if listed_regular else file_size(path, limit), limit)
