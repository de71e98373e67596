"""The members of a .tar.xz, read forward: what the analyses use to read day bundles.

tarfile would do, but slowly on a bundle of small members: its header parsing costs about
0.2 ms a member in Python, holding the GIL (the compactor's members carry a pax header each,
for their nanosecond mtimes), and its streaming mode ("r|xz") copies what is left of its
buffer on every read; together they made the bench month's bundles (8,640 members) take
1.5 s longer to read than the same loose files. Here the content is decompressed a chunk
at a time, only as far as someone reads (the system analysis stops at the first process
member), at most `limit` bytes in all (a xz bomb stops there, with an error), and the
headers are parsed only as far as reading needs: name, size and type, from ustar, GNU and
pax headers. A header that is not one (its checksum wrong) ends the reading with a
TarFormatError, where tarfile ends it silently.

Standard library only; every error is an OSError (TarFormatError is one), EOFError or
lzma.LZMAError.
"""

from __future__ import annotations

import lzma
import re
from collections.abc import Iterator
from typing import BinaryIO, NamedTuple

# Compressed bytes read at a time, and decompressed bytes made at a time: small enough that
# a reader who stops early (the system analysis) does not decompress much past its stop,
# and that each chunk stays under glibc's mmap threshold (utils.memory sets it to 1 MiB),
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
# The pax keys a dump member needs; others (mtime, xattrs, ...) are not kept.
PAX_KEYS = ("path", "size")
DIRECTORY_TYPE = ord("5")
# A length of over 20 digits is no record (and int() refuses over 4,300 with a ValueError).
_PAX_RECORD = re.compile(rb"(\d{1,20}) ([^=]+)=")


class TarFormatError(OSError):
    """The data is not (or is no longer) a tar archive."""


class TarMember(NamedTuple):
    name: str
    size: int  # bytes of data
    regular: bool  # a regular file (not a directory, link, device, ...)


def _number(field: bytes) -> int:
    """A numeric header field: octal text, or GNU's base-256 (first byte 0x80 or 0xff)."""
    if field[:1] in (b"\x80", b"\xff"):
        value = int.from_bytes(field[1:], "big")
        return value - 256 ** (len(field) - 1) if field[0] == 0xFF else value
    text = field.split(b"\0", 1)[0].strip()
    try:
        return int(text, 8) if text else 0
    except ValueError:
        raise TarFormatError(f"a header field is not a number: {text[:20]!r}") from None


def _text(field: bytes) -> str:
    return field.split(b"\0", 1)[0].decode("utf-8", "replace")


def _checksum_ok(header: bytes) -> bool:
    """As tarfile accepts it: the sum of the bytes, unsigned or signed, with the checksum
    field itself counted as 8 spaces."""
    stored = _number(header[148:156])
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


def _extend(stream: XzStream, kind: int, size: int, overrides: dict[str, str]) -> None:
    """Read an extended header's data: what a pax or GNU long-name header says of the next
    member goes into overrides."""
    if size > MAX_EXTENDED_HEADER_BYTES:
        raise TarFormatError(f"an extended header of {size:,} bytes")
    data = stream.read(size)
    if len(data) < size:
        raise TarFormatError("truncated header")
    if kind == PAX_TYPE and (b" path=" in data or b" size=" in data):
        records = parse_pax(data)  # else it holds nothing a dump needs (mtime)
        overrides.update({key: records[key] for key in PAX_KEYS if key in records})
    elif kind == GNU_LONGNAME_TYPE:
        overrides["path"] = _text(data)
    # a global pax header sets nothing a dump needs


def _member(header: bytes, size: int, overrides: dict[str, str]) -> TarMember:
    """The member a header describes, with what extended headers said of it."""
    name = _text(header[0:100])
    if header[257:263] == b"ustar\x00" and header[345]:
        name = f"{_text(header[345:500])}/{name}"
    name = overrides.pop("path", name)
    if "size" in overrides:
        try:
            size = int(overrides.pop("size"))
        except ValueError:
            raise TarFormatError("a pax size is not a number") from None
    overrides.clear()
    if size < 0:
        raise TarFormatError(f"a negative size for {name}")
    kind = header[156]
    if kind == DIRECTORY_TYPE or (kind == 0 and name.endswith("/")):
        return TarMember(name.rstrip("/"), size, False)  # as tarfile names a directory
    return TarMember(name, size, kind in REGULAR_TYPES)


def iter_members(stream: XzStream) -> Iterator[TarMember]:
    """The archive's members, in order. After each, the stream stands at the start of its
    data: read `size` bytes for it, or nothing (the next step skips what is left)."""
    overrides: dict[str, str] = {}  # from a pax or GNU long-name header, for the next member
    offset = 0
    extended = False  # an extended header waits for its member
    while (header := _header(stream, offset, extended)) is not None:
        size, kind = _number(header[124:136]), header[156]
        if size < 0:
            raise TarFormatError(f"a negative size in the header at offset {offset:,}")
        offset += BLOCK_BYTES
        if kind in EXTENDED_TYPES:
            _extend(stream, kind, size, overrides)
            extended = kind != PAX_GLOBAL_TYPE
            offset += _padded(size)
            continue
        member = _member(header, size, overrides)
        extended = False
        yield member
        offset += _padded(member.size)
