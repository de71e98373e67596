"""A day summary on disk: a header, a JSON meta, then the arrays' bytes, hot then cold.

    PMI-DAY-SUMMARY\\n
    <length of the meta, 16 hex digits>\\n
    <meta: UTF-8 JSON; its "arrays" give each array's offset, size, dtype and shape>
    <hot arrays, then cold arrays, each at an offset that is a multiple of 8>

A run reads the header, the meta and the hot arrays in three reads, and a cold array only
when a deferred record asks for it. Each part carries a CRC-32 of its bytes, checked when it
is read: a file cut short or damaged is an error, never other numbers. No array is ever an
object array (nothing is unpickled): the dtypes are plain numbers and booleans.
"""

from __future__ import annotations

import json
import os
import stat
import zlib
from collections.abc import Iterator, Mapping
from io import BufferedReader
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np
import numpy.typing as npt

MAGIC = b"PMI-DAY-SUMMARY\n"
_LENGTH_DIGITS = 16
# The dtypes a summary may hold: booleans, integers, unsigned integers and floats.
_KINDS = frozenset("biuf")
_ALIGN = 8
# How much of a region check_region reads at a time.
_CHECK_BYTES = 1 << 20
Arrays = Mapping[str, npt.NDArray[Any]]


class SummaryFileError(ValueError):
    """Not a summary file, or one cut short or damaged."""


def write(handle: BinaryIO, meta: Mapping[str, Any], arrays: Arrays) -> None:
    """Write meta and arrays (hot ones named "a...", cold ones "c...") to an open file. The
    CRCs, which the meta holds, are taken over the arrays' own bytes first, and the arrays
    then written one at a time: no copy of them all is ever made (a roll-up's are tens of
    MiB)."""
    places: dict[str, list[Any]] = {}
    regions: dict[str, list[int]] = {}
    order: list[npt.NDArray[Any]] = []
    offset = 0
    for region in ("hot", "cold"):
        start, crc = offset, 0
        for key, value in arrays.items():
            if _region_of(key) != region:
                continue
            if value.dtype.kind not in _KINDS:
                raise TypeError(f"a summary holds no {value.dtype} array")
            data = np.ascontiguousarray(value)
            places[key] = [offset, value.nbytes, value.dtype.str, list(value.shape)]
            crc = zlib.crc32(_padding(value.nbytes), zlib.crc32(_bytes_of(data), crc))
            order.append(data)
            offset += value.nbytes + len(_padding(value.nbytes))
        regions[region] = [start, offset, crc]
    text = json.dumps(dict(meta) | {"arrays": places} | regions).encode("utf-8")
    head = MAGIC + b"%016x\n" % len(text) + text
    handle.write(head + b"\0" * (-len(head) % _ALIGN))
    for data in order:
        handle.write(_bytes_of(data))
        handle.write(_padding(data.nbytes))


def _bytes_of(data: npt.NDArray[Any]) -> memoryview:
    """A contiguous array's bytes, not copied."""
    return data.reshape(-1).view(np.uint8).data


def _padding(size: int) -> bytes:
    return b"\0" * (-size % _ALIGN)


def _region_of(key: str) -> str:
    return "cold" if key.startswith("c") else "hot"


def open_summary(path: Path) -> BufferedReader:
    """A summary opened for reading: a regular file only, never through a symlink, never
    one that blocks (a FIFO put in its place), owned by this user or by root (a summary is a
    cache others must not be able to feed this run). OSError or SummaryFileError if not."""
    fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    try:
        status = os.fstat(fd)
        if not stat.S_ISREG(status.st_mode):
            raise SummaryFileError("not a regular file")
        if status.st_uid not in (os.geteuid(), 0):
            raise SummaryFileError(f"owned by another user (uid {status.st_uid})")
    except BaseException:
        os.close(fd)
        raise
    return os.fdopen(fd, "rb")


def identity_of(handle: BufferedReader) -> tuple[int, int, int]:
    """What tells one file from another written in its place: inode, size, mtime."""
    status = os.fstat(handle.fileno())
    return status.st_ino, status.st_size, status.st_mtime_ns


def read(handle: BufferedReader) -> tuple[dict[str, Any], dict[str, npt.NDArray[Any]]]:
    """The meta and the hot arrays of an open summary; SummaryFileError if it is not a
    whole summary (the cold part's size is checked too; its bytes when they are read)."""
    head = handle.read(len(MAGIC) + _LENGTH_DIGITS + 1)
    if len(head) != len(MAGIC) + _LENGTH_DIGITS + 1 or not head.startswith(MAGIC):
        raise SummaryFileError("not a day summary")
    try:
        length = int(head[len(MAGIC) : -1], 16)
    except ValueError as err:
        raise SummaryFileError("not a day summary") from err
    size = os.fstat(handle.fileno()).st_size
    if length > size:
        raise SummaryFileError("cut short in its meta")
    text = handle.read(length)
    meta = json.loads(text.decode("utf-8"))
    if not isinstance(meta, dict):
        raise SummaryFileError("a meta that is not an object")
    meta["payload"] = handle.tell() + (-handle.tell() % _ALIGN)
    for name in ("hot", "cold"):
        start, end, _ = (int(number) for number in meta[name])
        if not 0 <= start <= end or meta["payload"] + end > size:
            raise SummaryFileError(f"its {name} part is cut short")
    return meta, _region(handle, meta, "hot")


def cold_part(meta: Mapping[str, Any]) -> dict[str, Any]:
    """What read_cold needs of a summary's meta: much less than the whole of it, which a
    deferred record would otherwise keep alive."""
    arrays = {key: place for key, place in meta["arrays"].items() if _region_of(key) == "cold"}
    return {"payload": meta["payload"], "cold": meta["cold"], "arrays": arrays}


def read_cold(handle: BufferedReader, meta: Mapping[str, Any]) -> dict[str, npt.NDArray[Any]]:
    """The cold arrays of an open summary whose meta was read before."""
    return _region(handle, meta, "cold")


def _region(
    handle: BufferedReader, meta: Mapping[str, Any], name: str
) -> dict[str, npt.NDArray[Any]]:
    """One region's arrays, checked against its CRC."""
    return dict(region_arrays(handle, meta, name))


def region_arrays(
    handle: BufferedReader, meta: Mapping[str, Any], name: str
) -> Iterator[tuple[str, npt.NDArray[Any]]]:
    """One region's arrays in the file's order, each read into a buffer of its own, so that
    an array kept (a batch's PIDs, a group's totals) does not keep the whole region alive,
    and a reader may let each go before the next is read (a roll-up's floors are tens of
    MiB). The region's CRC is checked once the last is read: SummaryFileError then, so a
    reader uses what it took only after the iteration ends."""
    start, end, crc = (int(number) for number in meta[name])
    if not 0 <= start <= end or int(meta["payload"]) + end > os.fstat(handle.fileno()).st_size:
        raise SummaryFileError(f"its {name} part is cut short")
    handle.seek(int(meta["payload"]) + start)
    # By offset, then size: an empty array shares its offset with the array written after
    # it, and must come first whatever their names (a998 sorts after a1000).
    places = sorted(
        (int(place[0]), int(place[1]), key, place)
        for key, place in dict(meta["arrays"]).items()
        if _region_of(key) == name
    )
    at, check = start, 0
    for offset, _, key, (_, size, dtype_text, shape) in places:
        dtype = np.dtype(str(dtype_text))
        if dtype.kind not in _KINDS or not at <= offset <= offset + size <= end:
            raise SummaryFileError(f"array {key} does not fit its part")
        # The bytes from here to the array's end, padding included: every byte is checked.
        data = bytearray(offset + int(size) - at)
        if handle.readinto(data) != len(data):
            raise SummaryFileError(f"its {name} part is cut short or damaged")
        check = zlib.crc32(data, check)
        view = memoryview(data)[offset - at :]
        yield key, np.frombuffer(view, dtype, int(size) // dtype.itemsize).reshape(shape)
        at = offset + int(size)
    rest = bytearray(end - at)
    if handle.readinto(rest) != len(rest) or zlib.crc32(rest, check) != crc:
        raise SummaryFileError(f"its {name} part is cut short or damaged")


def check_region(handle: BufferedReader, meta: Mapping[str, Any], name: str) -> None:
    """Check one region's bytes against its CRC without keeping them (a megabyte at a time):
    SummaryFileError if it is cut short or damaged."""
    start, end, crc = (int(number) for number in meta[name])
    if not 0 <= start <= end or int(meta["payload"]) + end > os.fstat(handle.fileno()).st_size:
        raise SummaryFileError(f"its {name} part is cut short")
    handle.seek(int(meta["payload"]) + start)
    check, left = 0, end - start
    while left:
        data = handle.read(min(left, _CHECK_BYTES))
        if not data:
            raise SummaryFileError(f"its {name} part is cut short")
        check, left = zlib.crc32(data, check), left - len(data)
    if check != crc:
        raise SummaryFileError(f"its {name} part is damaged")
