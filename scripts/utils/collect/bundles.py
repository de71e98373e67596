"""The day bundle: a closed UTC day of snapshots as one xz-compressed tar, mem_<YYYYMMDD>.tar.xz.

The format is here: its names, how it is read, and which members a reader takes as
snapshots; utils.collect.bundle_writer writes a bundle and verifies it against its sources.

A bundle is a plain tar (pax format) of the day's snapshot files, unchanged, under their
bare names, with their mode, owner and mtime: `tar -xJf` gives back the very files. The
sys_mem files come first, then the cgroup_mem files, then the process_mem files, each in
time order (BUNDLE_ORDER: the small kinds first), so that their readers stop before the large
process part.

Reading uses one reader of its own rather than tarfile. tarfile parses each header in
Python (a day's 288 members each carry a pax header, for their nanosecond mtimes), and
in streaming mode copies what is left of its buffer on every read; here the content is
decompressed a chunk at a time, only as far as someone reads, at most `limit` bytes in
all (a xz bomb stops there, with an error), and a header is parsed only as far as its
reader asks: name, size and type always, mode, owner and mtime on request. A header
that is not one (its checksum wrong) ends the reading with a TarFormatError, where
tarfile ends it silently. The writer uses tarfile, which writes every format correctly.

Standard library only: the compactor runs on the system python3. Every reading error
is an OSError (TarFormatError is one), EOFError or lzma.LZMAError.
"""

from __future__ import annotations

import io
import lzma
import re
from collections.abc import Callable, Generator, Iterator
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import IO, Any, BinaryIO, NamedTuple

from utils.collect.snapshot_format import (
    BUNDLE_ORDER,
    CGROUP_PREFIX,
    MAX_DUMP_BYTES,
    PROCESS_PREFIX,
    SYS_PREFIX,
    parse_name_timestamp,
)
from utils.core.text import binary_size

# --- Names -------------------------------------------------------------------------

BUNDLE_PREFIX = "mem_"
BUNDLE_SUFFIX = ".tar.xz"
BUNDLE_DAY_FORMAT = "%Y%m%d"
# Bundles hold every user's command lines, as the dumps do: 0640, as the collector writes.
BUNDLE_MODE = 0o640
_BUNDLE_DAY = re.compile(r"[0-9]{8}")


def bundle_name(day: date) -> str:
    """`mem_<YYYYMMDD>.tar.xz`: the bundle of one UTC day."""
    return f"{BUNDLE_PREFIX}{day:{BUNDLE_DAY_FORMAT}}{BUNDLE_SUFFIX}"


def parse_bundle_day(name: str) -> date | None:
    """The UTC day of `mem_<YYYYMMDD>.tar.xz`, or None for any other name."""
    if not (name.startswith(BUNDLE_PREFIX) and name.endswith(BUNDLE_SUFFIX)):
        return None
    stamp = name[len(BUNDLE_PREFIX) : -len(BUNDLE_SUFFIX)]
    if not _BUNDLE_DAY.fullmatch(stamp):
        return None
    try:
        return date(int(stamp[0:4]), int(stamp[4:6]), int(stamp[6:8]))
    except ValueError:
        return None


# --- The decompressed stream -------------------------------------------------------

# Compressed bytes read at a time, and decompressed bytes made at a time: small enough that
# a reader who stops early (the system analysis) does not decompress much past its stop,
# and that each chunk stays under glibc's mmap threshold (utils.core.allocator sets it to 1 MiB),
# so that chunks reuse the heap instead of each being a fresh mmap, page faults and all.
INPUT_CHUNK_BYTES = 64 * 1024
OUTPUT_CHUNK_BYTES = 512 * 1024


class XzStream:
    """The decompressed content of a xz file, read forward: read(size) and skip_to(offset).

    It holds one decompressed chunk at a time; a read slices it (the common case: a header
    or a member inside the chunk) or joins the pieces of the chunks it spans."""

    def __init__(self, handle: BinaryIO, limit: int) -> None:
        self._handle = handle
        self._limit = limit  # decompressed bytes at most
        self._decompressor = lzma.LZMADecompressor(format=lzma.FORMAT_XZ)
        self._chunk = b""
        self._at = 0  # the position's index in _chunk
        self._made = 0  # bytes decompressed so far
        self.position = 0

    def read(self, size: int) -> bytes:
        """Up to size bytes from the position (fewer only at the end of the content)."""
        end = self._at + size
        if end <= len(self._chunk):  # the fast path: it lies in this chunk
            data = self._chunk[self._at : end]
            self._at = end
            self.position += size
            return data
        parts = [self._chunk[self._at :]]
        wanted = size - len(parts[0])
        while wanted > 0 and self._next_chunk():
            parts.append(self._chunk[:wanted])
            self._at = len(parts[-1])
            wanted -= self._at
        data = b"".join(parts)
        self.position += len(data)
        return data

    def skip_to(self, offset: int) -> None:
        """Move the position forward to offset (decompressing what lies between, a chunk
        at a time: a skipped member far larger than any dump never sits in memory)."""
        if offset < self.position:
            raise OSError(f"cannot go back from {self.position:,} to {offset:,}")
        wanted = offset - self.position
        while self._at + wanted > len(self._chunk):
            wanted -= len(self._chunk) - self._at
            self.position += len(self._chunk) - self._at
            if not self._next_chunk():
                return  # the content ends before offset: reads there return nothing
        self._at += wanted
        self.position = offset

    def read_to_end(self) -> None:
        """Decompress what is left, so that the xz index and every block's checksum are
        checked (an error is raised for a damaged or cut-off stream)."""
        while self._next_chunk():
            self.position += len(self._chunk)

    def _next_chunk(self) -> bool:
        """Decompress the next chunk into _chunk (_at 0); False at the end of the stream
        (anything after it, padding, is ignored)."""
        self._chunk, self._at = b"", 0
        while not self._chunk:
            if self._decompressor.eof:
                return False
            data = b""
            if self._decompressor.needs_input:
                data = self._handle.read(INPUT_CHUNK_BYTES)
                if not data:
                    raise EOFError("the compressed data ends before the end of its stream")
            self._chunk = self._decompressor.decompress(data, OUTPUT_CHUNK_BYTES)
        self._made += len(self._chunk)
        if self._made > self._limit:
            raise OSError(f"decompresses to more than {self._limit:,} bytes")
        return True


# --- Tar headers -------------------------------------------------------------------

BLOCK_BYTES = 512
_ZERO_BLOCK = bytes(BLOCK_BYTES)
# A pax or GNU long-name header larger than this is not one that names a dump.
MAX_EXTENDED_HEADER_BYTES = 1024 * 1024
# Type flags: regular files (old "\0", "0", contiguous "7"); per-file pax, global pax,
# GNU long name. Any other is a member that is not a regular file.
REGULAR_TYPES = frozenset(b"\x0007")
PAX_TYPE, PAX_GLOBAL_TYPE, GNU_LONGNAME_TYPE = ord("x"), ord("g"), ord("L")
GNU_LONGLINK_TYPE = ord("K")  # a long link target: read past, like a global pax header
EXTENDED_TYPES = frozenset((PAX_TYPE, PAX_GLOBAL_TYPE, GNU_LONGNAME_TYPE, GNU_LONGLINK_TYPE))
DIRECTORY_TYPE = ord("5")
# A length of over 20 digits is no record (and int() refuses over 4,300 with a ValueError).
_PAX_RECORD = re.compile(rb"(\d{1,20}) ([^=]+)=")


class TarFormatError(OSError):
    """The data is not (or is no longer) a tar archive."""


@dataclass(frozen=True, slots=True)
class TarMember:
    """A member as the reader met it. The attributes beyond name, size and type are parsed
    only when asked for (mode(), pax_mtime(), ...), from the header blocks kept here."""

    name: str
    size: int  # bytes of data
    regular: bool  # a regular file (not a directory, link, device, ...)
    header: bytes = field(default=b"", compare=False, repr=False)
    pax: bytes = field(default=b"", compare=False, repr=False)  # its pax header's data

    def mode(self) -> int:
        return _header_number(self.header[100:108]) & 0o7777

    def uid(self) -> int:
        return _header_number(self.header[108:116])

    def gid(self) -> int:
        return _header_number(self.header[116:124])

    def uname(self) -> str:
        return _text(self.header[265:297])

    def gname(self) -> str:
        return _text(self.header[297:329])

    def mtime_s(self) -> int:
        """The whole seconds of the mtime (the ustar field)."""
        return _header_number(self.header[136:148])

    def pax_mtime(self) -> str | None:
        """The exact mtime, `seconds.nanoseconds`, where a pax record holds it."""
        return parse_pax(self.pax).get("mtime") if b" mtime=" in self.pax else None


def _header_number(field_bytes: bytes) -> int:
    """A numeric header field: octal text, or GNU's base-256 (first byte 0x80 or 0xff)."""
    if field_bytes[:1] in (b"\x80", b"\xff"):
        value = int.from_bytes(field_bytes[1:], "big")
        return value - 256 ** (len(field_bytes) - 1) if field_bytes[0] == 0xFF else value
    text = field_bytes.split(b"\0", 1)[0].strip()
    try:
        return int(text, 8) if text else 0
    except ValueError:
        raise TarFormatError(f"a header field is not a number: {text[:20]!r}") from None


def _text(field_bytes: bytes) -> str:
    return field_bytes.split(b"\0", 1)[0].decode("utf-8", "replace")


def _checksum_ok(header: bytes) -> bool:
    """As tarfile accepts it: the sum of the bytes, unsigned or signed, with the checksum
    field itself counted as 8 spaces."""
    stored = _header_number(header[148:156])
    unsigned = sum(header) - sum(header[148:156]) + 8 * 32
    if stored == unsigned:
        return True
    outside = header[:148] + header[156:]
    return stored == unsigned - 256 * sum(1 for byte in outside if byte > 127)


def parse_pax(data: bytes) -> dict[str, str]:
    """The records of a pax extended header ("<length> <key>=<value>\\n" each)."""
    records: dict[str, str] = {}
    position = 0
    while position < len(data) and data[position] != 0:
        match = _PAX_RECORD.match(data, position)
        length = int(match.group(1)) if match else 0
        if match is None or length <= match.end() - position or position + length > len(data):
            raise TarFormatError("a pax header is malformed")
        key = match.group(2).decode("utf-8", "replace")
        records[key] = data[match.end() : position + length - 1].decode("utf-8", "replace")
        position += length
    return records


def _padded(size: int) -> int:
    return -(-size // BLOCK_BYTES) * BLOCK_BYTES


def _header(stream: XzStream, offset: int, pending: bool) -> bytes | None:
    """The header block at offset, checked; None at the end of the archive (pending: an
    extended header waits for the member it describes, so the end comes too early)."""
    stream.skip_to(offset)
    header = stream.read(BLOCK_BYTES)
    if len(header) < BLOCK_BYTES or header == _ZERO_BLOCK:
        if header.strip(b"\0") or pending:
            raise TarFormatError("truncated header")
        return None  # the end-of-archive blocks, or the data simply ends (tar -i reads on)
    if not _checksum_ok(header):
        raise TarFormatError(f"bad checksum in the header at offset {offset:,}")
    return header


# The pax keys that change what a member is; others (mtime, xattrs) are read on request.
PAX_KEYS = ("path", "size")


class _Pending:
    """What extended headers said of the member that follows them."""

    def __init__(self) -> None:
        self.overrides: dict[str, str] = {}
        self.pax = b""

    def take(self) -> tuple[dict[str, str], bytes]:
        taken = self.overrides, self.pax
        self.overrides, self.pax = {}, b""
        return taken


def _extend(stream: XzStream, kind: int, size: int, pending: _Pending) -> None:
    """Read an extended header's data: what a pax or GNU long-name header says of the next
    member is kept for it."""
    if size > MAX_EXTENDED_HEADER_BYTES:
        raise TarFormatError(f"an extended header of {size:,} bytes")
    data = stream.read(size)
    if len(data) < size:
        raise TarFormatError("truncated header")
    if kind == PAX_TYPE:
        pending.pax = data
        if b" path=" in data or b" size=" in data:  # else only an mtime: parsed on request
            records = parse_pax(data)
            pending.overrides.update({key: records[key] for key in PAX_KEYS if key in records})
    elif kind == GNU_LONGNAME_TYPE:
        pending.overrides["path"] = _text(data)
    # a global pax header sets nothing a dump needs


def _member(header: bytes, size: int, pending: _Pending) -> TarMember:
    """The member a header describes, with what extended headers said of it."""
    name = _text(header[0:100])
    if header[257:263] == b"ustar\x00" and header[345]:
        name = f"{_text(header[345:500])}/{name}"
    overrides, pax = pending.take()
    name = overrides.get("path", name)
    if "size" in overrides:
        try:
            size = int(overrides["size"])
        except ValueError:
            raise TarFormatError("a pax size is not a number") from None
    if size < 0:
        raise TarFormatError(f"a negative size for {name}")
    kind = header[156]
    if kind == DIRECTORY_TYPE or (kind == 0 and name.endswith("/")):
        return TarMember(name.rstrip("/"), size, False, header, pax)  # as tarfile names it
    return TarMember(name, size, kind in REGULAR_TYPES, header, pax)


def iter_members(stream: XzStream) -> Iterator[TarMember]:
    """The archive's members, in order. After each, the stream stands at the start of its
    data: read `size` bytes for it, or nothing (the next step skips what is left)."""
    pending = _Pending()  # from a pax or GNU long-name header, for the next member
    offset = 0
    extended = False  # an extended header waits for its member
    while (header := _header(stream, offset, extended)) is not None:
        size, kind = _header_number(header[124:136]), header[156]
        if size < 0:
            raise TarFormatError(f"a negative size in the header at offset {offset:,}")
        offset += BLOCK_BYTES
        if kind in EXTENDED_TYPES:
            _extend(stream, kind, size, pending)
            extended = kind != PAX_GLOBAL_TYPE
            offset += _padded(size)
            continue
        member = _member(header, size, pending)
        extended = False
        yield member
        offset += _padded(member.size)


class MemberData(io.RawIOBase):
    """A member's bytes as a file object, read from the stream up to its size (for tarfile
    to copy, or to compare a chunk at a time, never whole)."""

    def __init__(self, stream: XzStream, size: int) -> None:
        super().__init__()
        self._stream = stream
        self._left = size

    def readable(self) -> bool:
        return True

    def read(self, size: int = -1) -> bytes:
        wanted = self._left if size < 0 else min(size, self._left)
        data = self._stream.read(wanted) if wanted else b""
        self._left -= len(data)
        return data

    def readinto(self, buffer: Any) -> int:
        data = self.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)


# --- Reading a whole bundle, checked to its end ----------------------------------------

# The compactor reads bundles it wrote or is about to merge into: no limit of its own
# beyond what a day of snapshots can be.
MAX_UNPACKED_BYTES = 16 * 1024**3
CHUNK_BYTES = 1 << 16  # members are streamed and compared a chunk at a time, never whole


def read_bundle(path: Path) -> Generator[tuple[TarMember, IO[bytes]], None, None]:
    """Every member of a bundle, in order, each with a stream of its bytes (to be read
    before asking for the next). The whole xz stream is read to its end, so its checksums
    are checked too. Raises TarFormatError, lzma.LZMAError or EOFError on a damaged
    bundle, and TarFormatError on a member that is not a regular file."""
    with open(path, "rb") as handle:
        stream = XzStream(handle, MAX_UNPACKED_BYTES)
        for member in iter_members(stream):
            if not member.regular:
                raise TarFormatError(f"{member.name!r} is not a regular file")
            yield member, io.BufferedReader(MemberData(stream, member.size), CHUNK_BYTES)
        stream.read_to_end()


# --- Snapshots in a bundle, as the analyses take them ---------------------------------

# What a bundle may decompress to for the analyses, and how many members it may hold (a
# day of snapshots every second is 172,800): a xz bomb stops there (a minute of
# decompression at most), with a warning, keeping the members read before it.
MAX_MEMBERS = 200_000


# The kinds of member, in the order a bundle holds them: the small ones first, so that their
# readers stop before the large process part.
_KIND_ORDER = BUNDLE_ORDER


class Snapshot(NamedTuple):
    """A member that is a snapshot of the bundle's day, of the kind asked for, and its bytes."""

    name: str
    moment: datetime
    data: bytes


class Skipped(NamedTuple):
    """A member left out, and why; `moment` is None when its name holds no time of the day."""

    name: str
    moment: datetime | None
    reason: str


def snapshot_members(
    handle: BinaryIO, prefix: str, day: date, wanted: Callable[[datetime], bool]
) -> Iterator[Snapshot | Skipped]:
    """The members of an open bundle that are snapshots of `prefix`'s kind of `day`, with
    the members it must leave out (another day's, not a regular file, too large). A member
    at a time `wanted` refuses, or of another kind, is passed over in silence. The sys_mem
    and cgroup_mem members come first (_KIND_ORDER), so a reader of sys_mem stops at the first
    process_mem member, and so does a reader of cgroup_mem that has met one of its kind; one
    that has not reads on (a bundle may hold none, or hold them last).

    Raises TarFormatError (past MAX_MEMBERS members too), EOFError or lzma.LZMAError where
    the bundle is damaged, after yielding what came before the damage."""
    others = tuple(kind for kind in _KIND_ORDER if kind != prefix)
    met = prefix == SYS_PREFIX  # sys_mem members always come first
    content = XzStream(handle, MAX_UNPACKED_BYTES)
    for count, info in enumerate(iter_members(content), 1):
        if count > MAX_MEMBERS:
            raise TarFormatError(f"more than {MAX_MEMBERS:,} members: not a day")
        if info.name.startswith(others):
            if met and info.name.startswith(PROCESS_PREFIX):
                return  # the members of this kind are all read
            continue
        met = met or info.name.startswith(prefix)
        if prefix == CGROUP_PREFIX and not info.name.startswith(prefix):
            continue  # an odd member: the readers of the other kinds name it
        moment = parse_name_timestamp(info.name, prefix)
        if moment is None or moment.date() != day:
            yield Skipped(info.name, None, f"not a {prefix}*.csv snapshot of {day}")
        elif not wanted(moment):
            continue
        elif not info.regular:
            yield Skipped(info.name, moment, "not a regular file in the bundle")
        elif info.size > MAX_DUMP_BYTES:
            yield Skipped(info.name, moment, f"{binary_size(info.size)}, larger than any dump")
        else:
            data = content.read(info.size)
            if len(data) < info.size:
                raise EOFError(f"{info.name} is cut short")
            yield Snapshot(info.name, moment, data)
