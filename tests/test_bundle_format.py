"""utils.collect.bundles reads what tarfile writes, in every format, as tarfile reads it; and any
bytes at all end in one of its three errors, never anything else and never a hang."""

from __future__ import annotations

import contextlib
import io
import lzma
import tarfile
import tracemalloc

import pytest
from hypothesis import given
from hypothesis import strategies as st

from utils.collect import bundles
from utils.collect.bundles import TarFormatError, TarMember, XzStream, iter_members

ERRORS = (OSError, EOFError, lzma.LZMAError)  # TarFormatError is an OSError

Entry = tuple[str, bytes, bool]  # name, data, a regular file (else a directory)


def make_tar(entries: list[Entry], tar_format: int, mtime: float = 1_767_225_600.25) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tar_format) as tar:
        for name, data, regular in entries:
            info = tarfile.TarInfo(name)
            info.mtime = mtime  # a fraction: pax writes an mtime record for it
            if regular:
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
            else:
                info.type = tarfile.DIRTYPE
                tar.addfile(info)
    return buffer.getvalue()


def read_all(compressed: bytes, limit: int = 1 << 30) -> list[tuple[TarMember, bytes]]:
    stream = XzStream(io.BytesIO(compressed), limit)
    return [(member, stream.read(member.size)) for member in iter_members(stream)]


def as_tarfile_reads(archive: bytes) -> list[tuple[TarMember, bytes]]:
    with tarfile.open(fileobj=io.BytesIO(archive), mode="r:") as tar:
        return [
            (
                TarMember(info.name, info.size, info.isreg()),
                (tar.extractfile(info) or io.BytesIO()).read() if info.isreg() else b"",
            )
            for info in tar
        ]


FORMATS = [tarfile.USTAR_FORMAT, tarfile.GNU_FORMAT, tarfile.PAX_FORMAT]


@pytest.mark.parametrize("tar_format", FORMATS)
def test_members_as_tarfile_reads_them(tar_format: int) -> None:
    entries: list[Entry] = [
        ("sys_mem_20260101_000000.csv", b"MemTotal_MB\n1.0\n", True),
        ("a-directory", b"", False),
        ("empty.csv", b"", True),
        ("process_mem_20260101_000000.csv", b"x" * 513, True),  # data over a block
        ("sub/" + "n" * 90 + "/" + "m" * 60, b"deep", True),  # ustar's prefix field
    ]
    archive = make_tar(entries, tar_format)
    got = read_all(lzma.compress(archive))
    assert got == as_tarfile_reads(archive)
    assert [(m.name, data) for m, data in got if m.regular] == [
        (name, data) for name, data, regular in entries if regular
    ]


@pytest.mark.parametrize("tar_format", [tarfile.GNU_FORMAT, tarfile.PAX_FORMAT])
def test_long_names_and_sizes_from_extended_headers(tar_format: int) -> None:
    entries: list[Entry] = [("x" * 300, b"long name", True), ("ü" * 20, b"unicode", True)]
    archive = make_tar(entries, tar_format)
    got = read_all(lzma.compress(archive))
    assert [(m.name, data) for m, data in got] == [(name, data) for name, data, _ in entries]


def test_data_spanning_many_chunks_is_whole(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(bundles, "OUTPUT_CHUNK_BYTES", 700)  # every read crosses chunks
    entries: list[Entry] = [(f"f{i}", bytes(range(256)) * (i + 3), True) for i in range(6)]
    archive = make_tar(entries, tarfile.PAX_FORMAT)
    assert read_all(lzma.compress(archive)) == as_tarfile_reads(archive)


def test_skipping_members_unread_reaches_the_next() -> None:
    entries: list[Entry] = [("big", b"b" * 100_000, True), ("small", b"s", True)]
    stream = XzStream(io.BytesIO(lzma.compress(make_tar(entries, tarfile.PAX_FORMAT))), 1 << 30)
    members = iter_members(stream)
    assert next(members).name == "big"  # not read: the next step skips it
    assert next(members).name == "small"
    assert stream.read(1) == b"s"


def test_a_bomb_stops_at_the_limit() -> None:
    archive = make_tar([("zeros", bytes(3_000_000), True)], tarfile.PAX_FORMAT)
    with pytest.raises(OSError, match="decompresses to more than 1,000,000 bytes"):
        read_all(lzma.compress(archive), limit=1_000_000)


def test_truncated_stream_is_an_eof_error() -> None:
    compressed = lzma.compress(make_tar([("a", b"a" * 5000, True)], tarfile.PAX_FORMAT))
    with pytest.raises(EOFError):
        read_all(compressed[: len(compressed) // 2])


def test_a_damaged_header_is_named_not_silent() -> None:
    archive = bytearray(make_tar([("a", b"1", True), ("b", b"2", True)], tarfile.USTAR_FORMAT))
    archive[1024 + 10] ^= 0xFF  # the second header's name: its checksum no longer adds up
    stream = XzStream(io.BytesIO(lzma.compress(bytes(archive))), 1 << 30)
    members = iter_members(stream)
    assert next(members).name == "a"
    with pytest.raises(TarFormatError, match="bad checksum in the header at offset 1,024"):
        next(members)


def test_signed_checksums_are_accepted() -> None:
    """Some old tars summed the header as signed bytes: tarfile accepts both, so do we."""
    header = bytearray(make_tar([("é", b"", True)], tarfile.USTAR_FORMAT)[:512])
    signed = sum(b - 256 if b > 127 else b for b in header[:148] + header[156:]) + 256
    header[148:156] = f"{signed & 0o7777777:06o}\0 ".encode()
    assert bundles._checksum_ok(bytes(header))


def test_pax_records_parse_and_malformed_ones_are_errors() -> None:
    assert bundles.parse_pax(b"16 path=a/b.csv\n9 size=7\n") == {"path": "a/b.csv", "size": "7"}
    for bad in (b"99 path=x\n", b"path=x\n", b"3 p=\n"):
        with pytest.raises(TarFormatError):
            bundles.parse_pax(bad)


def pax_header(records: dict[str, str]) -> bytes:
    """A raw pax 'x' header block and its data, for archives tarfile would not write."""
    body = b""
    for key, value in records.items():
        record = f" {key}={value}\n".encode()
        length = len(record) + 1
        length += len(str(length + len(str(length)))) - 1  # the length counts its own digits
        body += str(length).encode() + record
    info = tarfile.TarInfo("././@PaxHeader")
    info.type = tarfile.XHDTYPE
    info.size = len(body)
    padding = b"\0" * (-len(body) % 512)
    return info.tobuf(tarfile.USTAR_FORMAT) + body + padding


def test_only_the_pax_keys_a_member_needs_are_kept() -> None:
    """A chain of pax headers full of other keys keeps none of them (memory stays flat)."""
    chain = b"".join(pax_header({f"comment{i}": "c" * 100_000, "path": "p"}) for i in range(30))
    member = make_tar([("real.csv", b"data", True)], tarfile.USTAR_FORMAT)
    archive = chain + pax_header({"path": "renamed.csv", "mtime": "1.5"}) + member
    compressed = lzma.compress(archive, preset=0)  # before: the compressor's memory is traced
    tracemalloc.start()
    try:
        got = read_all(compressed)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert [(m.name, data) for m, data in got] == [("renamed.csv", b"data")]
    assert peak < 2 * 1024 * 1024  # a chunk and a header at a time, not 3 MB of comments


def test_a_pax_length_too_long_to_be_one_is_a_format_error() -> None:
    archive = pax_header({"path": "x"}).replace(b"12 path=x", b"1" * 5000 + b" path=x", 1)
    with pytest.raises(TarFormatError):
        bundles.parse_pax(b"1" * 5000 + b" path=x\n")
    with pytest.raises(ERRORS):
        read_all(lzma.compress(archive))


def test_a_gnu_long_link_is_read_past() -> None:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.GNU_FORMAT) as tar:
        link = tarfile.TarInfo("link")
        link.type = tarfile.SYMTYPE
        link.linkname = "t" * 200  # a long target: a 'K' header before the member
        tar.addfile(link)
        data = tarfile.TarInfo("data.csv")
        data.size = 1
        tar.addfile(data, io.BytesIO(b"1"))
    got = read_all(lzma.compress(buffer.getvalue()))
    assert [(m.name, m.regular, data) for m, data in got] == [
        ("link", False, b""),
        ("data.csv", True, b"1"),
    ]


def test_an_extended_header_then_the_end_is_truncated() -> None:
    archive = pax_header({"mtime": "1.5"}) + bytes(1024)
    with pytest.raises(TarFormatError, match="truncated header"):
        read_all(lzma.compress(archive))


@given(st.binary(max_size=4000))
def test_any_decompressed_bytes_end_in_a_known_error(content: bytes) -> None:
    with contextlib.suppress(*ERRORS):
        read_all(lzma.compress(content), limit=10_000)


@given(st.binary(max_size=2000))
def test_any_compressed_bytes_end_in_a_known_error(compressed: bytes) -> None:
    with contextlib.suppress(*ERRORS):
        read_all(compressed, limit=10_000)


@st.composite
def damaged_archives(draw: st.DrawFn) -> bytes:
    entries: list[Entry] = [
        (f"process_mem_20260101_00{i}000.csv", draw(st.binary(max_size=700)), True)
        for i in range(draw(st.integers(1, 4)))
    ]
    archive = bytearray(make_tar(entries, draw(st.sampled_from(FORMATS))))
    for _ in range(draw(st.integers(1, 3))):
        at = draw(st.integers(0, len(archive) - 1))
        archive[at] = draw(st.integers(0, 255))
    return bytes(archive[: draw(st.integers(0, len(archive)))])


@given(damaged_archives())
def test_damaged_archives_read_as_tarfile_or_end_in_a_known_error(archive: bytes) -> None:
    """Whatever we read before an error, tarfile reads too (same names, same data)."""
    got: list[tuple[TarMember, bytes]] = []
    stream = XzStream(io.BytesIO(lzma.compress(archive)), 1 << 20)
    try:
        for member in iter_members(stream):
            got.append((member, stream.read(member.size) if member.regular else b""))
    except ERRORS:
        pass
    try:
        expected = as_tarfile_reads(archive)
    except (tarfile.TarError, EOFError):
        return  # tarfile refuses it outright
    regular = [(m.name, data) for m, data in got if m.regular and len(data) == m.size]
    assert regular == [(m.name, d) for m, d in expected if m.regular][: len(regular)]
