"""Reading thousands of small dump CSVs fast, and surviving the bad ones.

The plain way, one `pandas.read_csv` per file, pays about a millisecond of parser
start-up per file: most of the time for a month of 10-minute snapshots. Here each
file is read as bytes, files with the same header are joined, and pandas parses a
few megabytes at a time in one go. Files are checked as they are read; when a joined
parse fails, the batch is split in halves until the bad files are isolated, so one
corrupt file costs a handful of extra parses, not thousands.
"""

from __future__ import annotations

import contextlib
import csv
import errno
import functools
import io
import lzma
import os
import re
import stat
from collections import deque
from collections.abc import Callable, Generator, Iterator, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple, TypeVar, cast

import numpy as np
import numpy.typing as npt
import pandas as pd

from utils import memory
from utils.dump_format import COLUMN_KINDS, PROCESS_PREFIX, SYS_PREFIX, Kind, parse_name_timestamp
from utils.parser import Bundle, DumpFile, Source, Warn, child_maker, to_epoch_s
from utils.tar_xz import TarFormatError, TarMember, XzStream, iter_members

__all__ = [
    "BATCH_BYTES",
    "MAX_FILE_BYTES",
    "BadFileError",
    "Batch",
    "Kind",
    "Progress",
    "Reader",
    "TableSpec",
    "Warn",
]

# How many bytes of CSV are parsed in one read_csv call: big enough that the per-batch
# work is noise (a month is 30 calls; at 4 MiB a year took ~10% longer), small enough
# that the batches alive at once (one per parser thread, one read ahead: bytes, parser
# buffers, frames) stay a few tens of MiB: the month's process analysis peaks at 180-187
# MiB PSS (at 8 MiB it was 202; with a second batch read ahead, 195-204).
BATCH_BYTES = 6 * 1024 * 1024
# Parser threads; the machine this was tuned on has two cores.
PARSE_THREADS = 2
# No dump comes near this (30,000 processes with 2 kB command lines are 60 MB). A
# larger "file" is not a dump, or is /dev/zero behind a symlink: refused unread.
MAX_FILE_BYTES = 64 * 1024 * 1024
# A bad value is quoted in its warning up to this many characters.
SHOWN_CHARS = 40
# Whole numbers (PIDs) are held as int32; pid_max is at most 2**22.
INT_LIMIT = 2**31
_BOM = b"\xef\xbb\xbf"
# What pandas' C parser takes as a number, without the words it also takes ("inf",
# "TRUE"): optional blanks and sign, digits with an optional point, an exponent.
_NUMBER = re.compile(r"[ \t]*[+-]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?[ \t]*")
_QUOTE, _COMMA, _LF, _CR = (ord(char) for char in '",\n\r')
# The csv module refuses fields over 128 KiB by default; a dump may hold one (a command line
# can be up to ARG_MAX, 2 MiB), and explain() must read any file the limit lets in.
csv.field_size_limit(MAX_FILE_BYTES)
# Text no dump holds, appended as a last line by explain() (replacement characters
# cannot come out of decoding with errors="replace" next to a NUL like this).
_END_MARK = "\x00\ufffe-end-of-file-\ufffe\x00"


@dataclass(frozen=True)
class TableSpec:
    """The columns an analysis needs from each file, and what they must hold.

    Every other column of the dump format (`known`) is checked too when a file has it,
    so a file is used whole or not at all; unknown extra columns are only counted.
    """

    # TEXT columns are read as categoricals: a command line repeated in every
    # snapshot then costs one string, and --match tests it once.
    columns: tuple[tuple[str, Kind], ...]
    known: Mapping[str, Kind] = field(default_factory=lambda: COLUMN_KINDS)
    # A sys_mem file holds one row; None: any number.
    rows_per_file: int | None = None
    # Numbers read when a file has them, else missing (NaN): fields a kernel may lack.
    optional: tuple[str, ...] = ()

    @functools.cached_property  # asked for every file read
    def names(self) -> tuple[str, ...]:
        return tuple(name for name, _ in self.columns)

    def kind_of(self, name: str) -> Kind | None:
        for needed, kind in self.columns:
            if needed == name:
                return kind
        return self.known.get(name)


class Batch(NamedTuple):
    """Rows of several files: the spec's columns, typed, and for each row the UTC time
    (seconds since 1970) of the snapshot it came from, in time order."""

    frame: pd.DataFrame
    snapshot: npt.NDArray[np.int64]


class BadFileError(Exception):
    """One file cannot be used; the message says why."""


class RawFile(NamedTuple):
    snapshot: int  # the snapshot's UTC time, seconds since 1970
    path: Path
    names: tuple[str, ...]  # the header's column names
    body: memoryview  # complete data lines only, each ending in \n (a view: no copy)
    line_count: int  # lines in body, counted once
    cut: bool  # a last line without its newline was dropped


Progress = Callable[[int, int], None]
T = TypeVar("T")
U = TypeVar("U")


# --- Reading bytes -------------------------------------------------------------

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


def format_size(size: int) -> str:
    """`2.1 GB`, `64 MiB` style: bytes as a person reads them."""
    for unit, scale in (("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if size >= scale:
            return f"{size / scale:,.1f} {unit}"
    return f"{size} bytes"


def file_size(path: Path, limit: int = MAX_FILE_BYTES) -> int:
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
            f"{format_size(info.st_size)}, larger than any dump (limit {format_size(limit)})"
        )
    return info.st_size


def read_regular(path: Path, size: int | None, limit: int = MAX_FILE_BYTES) -> bytes:
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
        raise BadFileError(f"grew past {format_size(limit)} while being read, larger than any dump")
    return data


def read_bytes(path: Path, limit: int = MAX_FILE_BYTES, *, listed_regular: bool = False) -> bytes:
    """The bytes of a regular file of at most `limit` bytes, else BadFileError.

    listed_regular: the directory listing said it is a regular file (not a symlink), so it
    is opened at once and checked with fstat(): a stat() of each of a year's 52,560 small
    sys_mem files first cost a quarter of reading them."""
    return read_regular(path, None if listed_regular else file_size(path, limit), limit)


@functools.lru_cache(maxsize=64)  # thousands of files share a handful of headers
def parse_header(line: bytes) -> tuple[str, ...]:
    """The column names of a header line; BadFileError if it is no plain list of names.

    A quote or a carriage return in a header would make the CSV parser see other
    columns or lines than these names (and a UTF-16 file is full of NUL bytes).
    """
    text = line.decode("utf-8", "replace").rstrip("\r\n")
    for char, what in (('"', "a quote"), ("\r", "a carriage return"), ("\0", "a NUL byte")):
        if char in text:
            raise BadFileError(f"the header line holds {what}; not a dump header")
    names = tuple(text.split(","))
    seen: set[str] = set()
    for name in names:
        if name in seen:
            raise BadFileError(f"column {name!r} appears twice in the header")
        seen.add(name)
    return names


@functools.lru_cache(maxsize=64)
def _missing(needed: tuple[str, ...], names: tuple[str, ...]) -> tuple[str, ...]:
    """The needed columns a header lacks (cached: thousands of files share a header)."""
    return tuple(name for name in needed if name not in names)


def _blank(data: bytes, start: int, end: int) -> bool:
    """Whether data[start:end] is empty or only whitespace. The first byte decides for a
    real file, so nothing is copied (a regex search costs 7 µs on a fresh bytes object:
    a third of the time a year's 52,560 sys_mem files took to split)."""
    if start >= end:
        return True
    if not data[start : start + 1].isspace():
        return False
    return data[start:end].isspace()


def split_raw(snapshot: int, path: Path, data: bytes, spec: TableSpec) -> RawFile:
    """Split a file's bytes into its header's names and whole data lines.

    A last line without its newline is a file cut off mid-write or mid-copy: that line
    alone is dropped (the caller warns once the rest of the file is known to be good).
    """
    # Offsets into data rather than slices: a slice copies, and this runs for every file.
    start = len(_BOM) if data.startswith(_BOM) else 0  # saved by a spreadsheet
    if _blank(data, start, len(data)):
        raise BadFileError("empty file")
    end_of_header = data.find(b"\n", start)
    if end_of_header < 0:
        raise BadFileError("no complete line (cut off?)")
    names = parse_header(data[start:end_of_header])
    missing = _missing(spec.names, names)
    if missing:
        raise BadFileError(f"no {', '.join(missing)} column")
    body_start = end_of_header + 1
    cut = len(data) > body_start and not data.endswith(b"\n")
    body_end = data.rfind(b"\n") + 1 if cut else len(data)
    if _blank(data, body_start, body_end):
        raise BadFileError("no complete data row (cut off?)" if cut else "no data rows")
    body = memoryview(data)[body_start:body_end]
    return RawFile(snapshot, path, names, body, data.count(b"\n", body_start, body_end), cut)


# --- Parsing -------------------------------------------------------------------


_NUMBERS = (Kind.FLOAT, Kind.POSITIVE, Kind.FLOAT_OR_EMPTY)


def _dtype(kind: Kind | None) -> str:
    if kind is Kind.INT:
        return "int32"
    if kind in _NUMBERS:
        return "float64"
    # Unknown extra columns are parsed only to check each row's field count.
    return "category" if kind is Kind.TEXT else "object"


def _sentinel_row(names: Sequence[str], spec: TableSpec) -> bytes:
    """A last row that is valid for every column. pandas, when a column fails as a
    number, retries it as booleans ("TRUE" read as 1.0); one real "0" in the column
    stops that, so a column of words always fails as it should."""
    return (
        b",".join(b"1" if spec.kind_of(name) in (Kind.INT, *_NUMBERS) else b"x" for name in names)
        + b"\n"
    )


def _with_sentinel(
    bodies: Sequence[bytes | memoryview], names: tuple[str, ...], spec: TableSpec
) -> list[bytes | memoryview]:
    """The data lines of files, with the sentinel row after them (no copy: see _Pieces)."""
    return [*bodies, _sentinel_row(names, spec)]


class _Pieces(io.RawIOBase):
    """Pieces of bytes read as one stream, copied out a parser read at a time.

    pandas reads its input 256 KiB at a time; joining a batch's files first would copy
    6 MiB into a fresh block instead, which glibc maps from the kernel and hands back for
    every batch (memory.MMAP_THRESHOLD_BYTES): its page faults cost a year's analysis
    seconds, and a 256 KiB buffer is reused from the heap."""

    def __init__(self, pieces: Sequence[bytes | memoryview]) -> None:
        super().__init__()
        self._pieces = pieces
        self._index = 0  # the piece being read
        self._offset = 0  # bytes of it already read

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        out = memoryview(buffer).cast("B")
        filled = 0
        while filled < len(out) and self._index < len(self._pieces):
            piece = self._pieces[self._index]
            take = min(len(out) - filled, len(piece) - self._offset)
            out[filled : filled + take] = piece[self._offset : self._offset + take]
            filled += take
            self._offset += take
            if self._offset == len(piece):
                self._index, self._offset = self._index + 1, 0
        return filled


# What pandas' C parser asks for at a time (its tokenizer chunk).
_PARSER_READ_BYTES = 256 * 1024


def _read_frame(
    data: Sequence[bytes | memoryview], names: tuple[str, ...], spec: TableSpec
) -> pd.DataFrame:
    """One read_csv over data lines ending in the sentinel row (dropped); every column
    typed (or BadFileError, ValueError...).

    Every column is parsed, not only the spec's (usecols), because usecols makes pandas
    ignore a row with too many fields.
    """
    kinds = {name: spec.kind_of(name) for name in names}
    # Only an empty number is missing: a command line "NA" or "null" is text.
    na_values = {name: [""] for name, kind in kinds.items() if kind in _NUMBERS}
    # errstate: numpy's "invalid value encountered in cast" (for "inf" in a whole
    # number column) is thread-local here, and the file is named anyway.
    with np.errstate(all="ignore"):
        frame = pd.read_csv(
            io.BufferedReader(_Pieces(data), _PARSER_READ_BYTES),
            header=None,
            names=list(names),
            dtype={name: _dtype(kind) for name, kind in kinds.items()},
            keep_default_na=False,
            na_values=na_values,
            encoding="utf-8",
            encoding_errors="replace",
            engine="c",
        )
    if not isinstance(frame.index, pd.RangeIndex):
        # Every row had more fields than the header: pandas took the first
        # column(s) as an index, which would shift every column.
        raise BadFileError("rows have more fields than the header")
    return frame.iloc[:-1]


def _values_ok(frame: pd.DataFrame, names: Sequence[str], spec: TableSpec) -> bool:
    """Whole numbers >= 0, numbers finite and >= 0 (> 0, or empty, where the kind says)."""
    for name in names:
        kind = spec.kind_of(name)
        if kind is Kind.INT:
            if (frame[name].to_numpy() < 0).any():
                return False
        elif kind in _NUMBERS:
            values = frame[name].to_numpy(np.float64)
            good = np.isfinite(values) & ((values > 0) if kind is Kind.POSITIVE else (values >= 0))
            if kind is Kind.FLOAT_OR_EMPTY:
                good |= np.isnan(values)
            if not good.all():
                return False
    return True


def _has_missing(column: pd.Series) -> bool:
    if isinstance(column.dtype, pd.CategoricalDtype):
        return bool((column.cat.codes.to_numpy() < 0).any() or "" in column.cat.categories)
    if column.dtype == object:
        return bool(column.isna().any() or (column == "").any())
    return bool(column.isna().any())


def field_counts_ok(body: bytes, expected: int) -> bool:
    """Whether every non-blank line of CSV data has `expected` fields, counted as a CSV
    reader counts them (commas and line ends inside quotes do not count).

    pandas pads a row with too few fields with empty values, so a short row looks like
    one whose last field is empty; this tells them apart, in numpy over the whole batch.
    """
    data = np.frombuffer(body, dtype=np.uint8)
    inside = np.logical_xor.accumulate(data == _QUOTE)  # after an odd number of quotes
    outside = ~inside
    ends = (data == _LF) & outside
    bare_cr = (data == _CR) & outside  # a CR ends a line too, unless it is CR LF's
    bare_cr[:-1] &= data[1:] != _LF
    line_ends = np.flatnonzero(ends | bare_cr)
    commas = np.flatnonzero((data == _COMMA) & outside)
    fields = np.diff(np.searchsorted(commas, line_ends), prepend=0) + 1
    for line in np.flatnonzero(fields != expected):
        start = int(line_ends[line - 1]) + 1 if line else 0
        if body[start : int(line_ends[line])].strip():  # a blank line is skipped
            return False
    return True


def _frame_of(files: Sequence[RawFile], spec: TableSpec) -> pd.DataFrame | None:
    """Parse files sharing one header in one go; None if anything is off."""
    names = files[0].names
    data = _with_sentinel([raw.body for raw in files], names, spec)
    try:
        frame = _read_frame(data, names, spec)
    except (ValueError, OverflowError, pd.errors.ParserError, BadFileError):
        return None
    if len(files) > 1 and len(frame) != sum(raw.line_count for raw in files):
        return None  # blank lines or quoted newlines: rows no longer map to files
    if spec.rows_per_file is not None and len(frame) != spec.rows_per_file * len(files):
        return None
    if not _values_ok(frame, names, spec):
        return None
    if _has_missing(frame[names[-1]]) and not field_counts_ok(b"".join(data), len(names)):
        return None
    typed: dict[str, pd.Series | npt.NDArray[np.float64]] = {}
    for name, kind in spec.columns:
        column = frame[name]
        if kind in _NUMBERS:
            column = column + 0.0  # "-0" is 0: never print -0.000
        typed[name] = column
    for name in spec.optional:
        typed[name] = frame[name] + 0.0 if name in names else np.full(len(frame), np.nan)
    return pd.DataFrame(typed)


def _value_problem(kind: Kind, text: str) -> str | None:
    """Why a field is not what its kind says, or None (the slow, exact check)."""
    if kind is Kind.TEXT or (kind is Kind.FLOAT_OR_EMPTY and text == ""):
        return None
    whole = kind is Kind.INT
    what = "not a whole number" if whole else "not a number"
    if _NUMBER.fullmatch(text) is None:
        return what
    value = float(text)
    if not np.isfinite(value) or (whole and value >= INT_LIMIT):
        return "out of range"
    if whole and value != int(value):
        return what
    if kind is Kind.POSITIVE and value <= 0:
        return "not above 0"
    return "negative" if value < 0 else None


def explain(raw: RawFile, spec: TableSpec) -> str:
    """Say exactly what is wrong with a file that failed to parse: the first row with
    the wrong number of fields or the first bad value, with its line number."""
    checks = [
        (index, name, kind)
        for index, name in enumerate(raw.names)
        if (kind := spec.kind_of(name)) is not None
    ]
    # A last line of our own: a quote opened in the file and never closed swallows it.
    text = bytes(raw.body).decode("utf-8", "replace") + _END_MARK + "\n"
    try:
        return _first_problem(text, raw.names, checks, spec.rows_per_file) or _pandas_says(
            raw, spec
        )
    except csv.Error as err:  # the csv module's own limits (a field of megabytes)
        return f"cannot be parsed: {err}"


def _first_problem(
    text: str,
    names: tuple[str, ...],
    checks: Sequence[tuple[int, str, Kind]],
    rows_per_file: int | None,
) -> str | None:
    reader = csv.reader(io.StringIO(text, newline=""))
    before = 0  # lines of the body read so far
    rows = 0
    for record in reader:
        line = before + 2  # 1-based, after the header
        before = reader.line_num
        if record == [_END_MARK]:
            break
        if record and _END_MARK in record[-1]:
            return f"a quote opened on line {line} is never closed"
        if len(record) <= 1 and not "".join(record).strip():
            continue  # a blank line, skipped by every reader
        if len(record) != len(names):
            return f"line {line} has {len(record)} fields, the header has {len(names)}"
        for index, name, kind in checks:
            problem = _value_problem(kind, record[index])
            if problem is not None:
                return f"{name} on line {line} is {_shown(record[index])}, {problem}"
        rows += 1
    if rows_per_file is not None and rows != rows_per_file:
        return f"{rows} data rows where {rows_per_file} is expected"
    return None


def _shown(value: str) -> str:
    """A field as a warning quotes it: in quotes, and never a line of megabytes."""
    if not value:
        return "empty"
    return repr(value) if len(value) <= SHOWN_CHARS else repr(value[:SHOWN_CHARS]) + "…"


def _pandas_says(raw: RawFile, spec: TableSpec) -> str:
    """What pandas finds wrong with a file the checks above passed (should not happen)."""
    try:
        _read_frame(_with_sentinel([raw.body], raw.names, spec), raw.names, spec)
    except pd.errors.ParserError as err:
        return str(err).split("C error: ")[-1].strip().rstrip(".")
    except (ValueError, OverflowError, BadFileError) as err:
        return f"cannot be parsed: {err}"
    return "cannot be parsed"


def _parse_group(files: Sequence[RawFile], spec: TableSpec, warn: Warn) -> list[Batch]:
    """Parse files that share a header; bisect to isolate the bad ones."""
    frame = _frame_of(files, spec)
    if frame is not None:
        for raw in files:
            if raw.cut:
                warn(raw.path, "last line cut off (no final newline); dropped that line")
        counts = [raw.line_count for raw in files]
        moments = np.array([raw.snapshot for raw in files], dtype=np.int64)
        snapshot = (
            np.repeat(moments, counts)
            if len(files) > 1
            else np.full(len(frame), moments[0], dtype=np.int64)
        )
        return [Batch(frame, snapshot)]
    if len(files) == 1:
        warn(files[0].path, f"{explain(files[0], spec)}; skipped")
        return []
    middle = len(files) // 2
    return _parse_group(files[:middle], spec, warn) + _parse_group(files[middle:], spec, warn)


def _merge(batches: list[Batch], spec: TableSpec) -> Batch | None:
    if not batches:
        return None
    if len(batches) == 1:
        return batches[0]
    frames = [batch.frame for batch in batches]
    # Concatenating categoricals with different categories would fall back to
    # plain objects; union them instead.
    for name, kind in spec.columns:
        if kind is Kind.TEXT:
            union = pd.api.types.union_categoricals([f[name] for f in frames]).categories
            frames = [f.assign(**{name: f[name].cat.set_categories(union)}) for f in frames]
    frame = pd.concat(frames, ignore_index=True)
    snapshot = np.concatenate([batch.snapshot for batch in batches])
    if np.any(snapshot[1:] < snapshot[:-1]):  # several headers: restore time order
        order = np.argsort(snapshot, kind="stable")
        frame = frame.iloc[order].reset_index(drop=True)
        snapshot = snapshot[order]
    return Batch(frame, snapshot)


def _flush(
    pending: dict[tuple[str, ...], list[RawFile]], spec: TableSpec, warn: Warn
) -> Batch | None:
    batches: list[Batch] = []
    for files in pending.values():
        batches.extend(_parse_group(files, spec, warn))
    return _merge(batches, spec)


class _Notes:
    """Warnings held back so they reach the user in time order, from one thread."""

    def __init__(self, order: Mapping[Path, int] | None = None) -> None:
        self.order = order or {}
        self.items: list[tuple[int, Path, str]] = []

    def __call__(self, path: Path, reason: str) -> None:
        self.items.append((self.order.get(path, -1), path, reason))

    def add(self, moment_s: int, path: Path, reason: str) -> None:
        self.items.append((moment_s, path, reason))

    def take_until(self, moment_s: int) -> _Notes:
        """The notes up to moment_s, moved out into notes of their own (the rest stay)."""
        taken = _Notes()
        taken.items = [item for item in self.items if item[0] <= moment_s]
        self.items = [item for item in self.items if item[0] > moment_s]
        return taken


class Loaded(NamedTuple):
    """A snapshot's bytes: a loose file's, or a bundle member's (its path then names both)."""

    snapshot: int
    path: Path
    data: bytes


def _parse_job(
    loaded: list[Loaded], spec: TableSpec, reduce: Callable[[Batch], T]
) -> tuple[T | None, _Notes]:
    """In a parser thread: split the files, parse them by header, bisect the bad ones out,
    and reduce what is left (the analysis' own per-batch work runs here too, in parallel)."""
    notes = _Notes({item.path: item.snapshot for item in loaded})
    pending: dict[tuple[str, ...], list[RawFile]] = {}
    for item in loaded:
        try:
            raw = split_raw(item.snapshot, item.path, item.data, spec)
        except BadFileError as err:
            notes(item.path, f"{err}; skipped")
            continue
        pending.setdefault(raw.names, []).append(raw)
    batch = _flush(pending, spec, notes)
    return (None if batch is None else reduce(batch)), notes


def _read_groups(
    sources: Sequence[Source], batch_bytes: int
) -> Iterator[tuple[int, list[Loaded], _Notes]]:
    """Loose files and bundle members read as bytes, about batch_bytes at a time, with the
    number of sources done so far and the warnings of reading them (each with the batch
    that holds its time, so that they reach the user in time order).

    This thread does the file I/O and decompression (lzma lets go of the GIL) and little
    else (the parser threads split and parse): it reads ahead while they work, so a page
    cache that has let the dumps go (a month read from disk) costs the disk's time, not the
    disk's time plus the parsers', and a bundle's decompression overlaps their parsing."""
    loaded: list[Loaded] = []
    notes = _Notes()
    size = 0
    for index, source in enumerate(sources):
        items = _read_source(source, notes)
        for count, item in enumerate(items, 1):
            loaded.append(item)
            size += len(item.data)
            if size >= batch_bytes:  # a bundle is cut too: a day can be larger than a batch
                done = index + 1 if count == len(items) else index
                yield done, loaded, notes.take_until(item.snapshot)
                loaded, size = [], 0
    if loaded or notes.items:
        yield len(sources), loaded, notes


def _read_source(source: Source, notes: _Notes) -> list[Loaded]:
    """A loose file's bytes, or a bundle's members (with loose files of its day it lacks);
    what cannot be read goes to notes."""
    if isinstance(source, Bundle):
        return read_bundle(source, notes)
    loaded = _load_loose(source, notes)
    return [] if loaded is None else [loaded]


def _load_loose(dump: DumpFile, notes: _Notes) -> Loaded | None:
    """A loose file's bytes; None, noted, if it is not a file that can be a dump."""
    try:
        data = read_bytes(dump.path, listed_regular=dump.listed_regular)
        return Loaded(dump.epoch_s, dump.path, data)
    except BadFileError as err:
        notes.add(dump.epoch_s, dump.path, f"{err}; skipped")
        return None


# --- Bundles -------------------------------------------------------------------

# A day of a host with 30,000 processes is under 2 GB of CSV: a larger "bundle" is refused
# by its size, unread (a xz bomb is bounded by MAX_FILE_BYTES per member, too).
MAX_BUNDLE_BYTES = 2 * 1024**3
# What a bundle may decompress to in all, and how many members it may hold (a day of
# snapshots every second is 172,800): a xz bomb stops there (a minute of decompression at
# most), with a warning, keeping the members read before it.
MAX_UNPACKED_BYTES = 16 * 1024**3
MAX_MEMBERS = 200_000
# Warnings about a bundle's members, at most; the rest are counted in one more line.
MAX_MEMBER_NOTES = 20


def read_bundle(bundle: Bundle, notes: _Notes) -> list[Loaded]:
    """The bundle's members of its kind within its window, with the loose files of its day
    that it does not hold, in time order. Decompressed as it is read (utils.tar_xz); the
    sys_mem members come first, so the system analysis stops at the first process_mem."""
    day_s = to_epoch_s(bundle.timestamp)
    members: dict[str, Loaded] = {}
    try:
        file_size(bundle.path, MAX_BUNDLE_BYTES)  # refused unread if it is not one
        _read_members(bundle, members, notes)
    except (BadFileError, OSError, EOFError, lzma.LZMAError) as err:
        reason = str(err) or type(err).__name__
        kept = f"read {len(members):,} snapshots, the rest skipped" if members else "skipped"
        notes.add(day_s, bundle.path, f"cannot read the bundle: {reason}; {kept}")
    for dump in bundle.loose:
        if dump.path.name in members:
            continue  # bundled: the loose copy is a leftover or an extracted file
        loaded = _load_loose(dump, notes)
        if loaded is not None:
            members[dump.path.name] = loaded
    return sorted(members.values(), key=lambda item: item.snapshot)


def _read_members(bundle: Bundle, into: dict[str, Loaded], notes: _Notes) -> None:
    """Read the bundle's members into `into`, by name (see read_bundle). Its first
    MAX_MEMBER_NOTES warnings about members go to notes, then one line counts the rest."""
    other = PROCESS_PREFIX if bundle.prefix == SYS_PREFIX else SYS_PREFIX
    member_notes = _Notes()
    fd = os.open(bundle.path, os.O_RDONLY | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC)
    try:
        with os.fdopen(fd, "rb") as handle:
            content = XzStream(handle, MAX_UNPACKED_BYTES)
            for count, info in enumerate(iter_members(content), 1):
                if count > MAX_MEMBERS:
                    raise TarFormatError(f"more than {MAX_MEMBERS:,} members: not a day")
                if info.name.startswith(other):
                    if other == PROCESS_PREFIX:
                        break  # the sys_mem members are all read
                    continue
                member = _member(bundle, info, member_notes)
                if member is not None:
                    data = content.read(info.size)
                    if len(data) < info.size:
                        raise EOFError(f"{info.name} is cut short")
                    into[info.name] = Loaded(*member, data)
    finally:
        notes.items += member_notes.items[:MAX_MEMBER_NOTES]
        if len(member_notes.items) > MAX_MEMBER_NOTES:
            more = len(member_notes.items) - MAX_MEMBER_NOTES
            last = member_notes.items[-1][0]
            notes.add(last, bundle.path, f"{more:,} more members skipped, not listed")


def _member(bundle: Bundle, info: TarMember, notes: _Notes) -> tuple[int, Path] | None:
    """A member to read, as (its snapshot, its label), or None: outside the window, or bad
    (noted)."""
    moment = parse_name_timestamp(info.name, bundle.prefix)
    if moment is None or moment.date() != bundle.day:
        day_s = to_epoch_s(bundle.timestamp)
        label = Path(f"{bundle.path}:{info.name}")  # any name, "/" and all
        notes.add(day_s, label, f"not a {bundle.prefix}*.csv snapshot of {bundle.day}; skipped")
        return None
    if not bundle.window.contains(moment):
        return None
    # A snapshot's name holds no "/": the shortcut for a plain child name applies (a year's
    # 52,560 labels: 0.8 us each instead of 4).
    label = child_maker(bundle.path.parent)(f"{bundle.path.name}:{info.name}")
    moment_s = to_epoch_s(moment)
    reason = None
    if not info.regular:
        reason = "not a regular file in the bundle"
    elif info.size > MAX_FILE_BYTES:
        reason = f"{format_size(info.size)}, larger than any dump"
    if reason is not None:
        notes.add(moment_s, label, f"{reason}; skipped")
        return None
    return moment_s, label


def _same(batch: Batch) -> Batch:
    return batch


@dataclass(frozen=True)
class Reader:
    """How dump files are read: what they must hold, where warnings and progress go, and
    how many bytes are parsed at once in how many threads."""

    spec: TableSpec
    warn: Warn
    progress: Progress | None = None
    batch_bytes: int = BATCH_BYTES
    threads: int = PARSE_THREADS

    def batches(self, files: Sequence[Source]) -> Iterator[Batch]:
        """Read and parse files in time order, a few MB at a time (see reduced)."""
        return self.reduced(files, _same)

    def reduced(self, files: Sequence[Source], reduce: Callable[[Batch], T]) -> Iterator[T]:
        """Read and parse files in time order, a few MB at a time, and yield reduce(batch)
        for each batch, in order.

        Batches come in time order, and rows within a batch are in time order, so the
        first row seen for anything is its earliest. Bad files are reported through
        warn (in time order) and left out; nothing else is lost.

        Files are listed here while parser threads read, split, parse and reduce the
        batches: pandas' C parser and numpy release the GIL for their loops, so two threads
        work nearly twice as fast, in one process, without copying data between processes.
        `reduce` runs in those threads: it must not touch shared state.
        """
        in_flight: deque[tuple[int, _Notes, Future[tuple[T | None, _Notes]]]] = deque()
        groups = _read_ahead(_read_groups(files, self.batch_bytes))
        # closing: an exception here must stop the reader now, not when a cycle is collected
        with (
            contextlib.closing(groups),
            ThreadPoolExecutor(self.threads, thread_name_prefix="parse") as pool,
        ):
            for done, group, read_notes in groups:
                job = pool.submit(_parse_job, group, self.spec, reduce)
                in_flight.append((done, read_notes, job))
                # Bounded: a batch per parser thread, and one read ahead, are alive at once
                # (the next batch is waiting, read, when a thread is free).
                while len(in_flight) >= self.threads:
                    result = self._finish(in_flight.popleft(), len(files))
                    if result is not None:
                        yield result
            # The last group need not end at the last source (a bundle with nothing of
            # this kind gives no group): what is still in flight is finished here.
            while in_flight:
                result = self._finish(in_flight.popleft(), len(files))
                if result is not None:
                    yield result
        memory.trim()  # the batches' buffers are free now: give them back

    def _finish(
        self, job: tuple[int, _Notes, Future[tuple[T | None, _Notes]]], total: int
    ) -> T | None:
        """The result of the oldest job, after its warnings (in time order) and progress."""
        done, read_notes, future = job
        result, parse_notes = future.result()
        for _, path, reason in sorted(read_notes.items + parse_notes.items, key=_by_time):
            self.warn(path, reason)
        if self.progress is not None:
            self.progress(done, total)
        return result


def _read_ahead(items: Iterator[U]) -> Generator[U, None, None]:
    """items, produced in a thread of their own one ahead of the consumer: the file reading
    and decompression go on while this thread waits for the parsers. The next item is read
    while the consumer holds the one before, so one item at most waits. An exception in the
    producer is raised here, after the items before it; closing this iterator waits for the
    item being read, then stops the thread."""
    end = object()
    with ThreadPoolExecutor(1, thread_name_prefix="read-ahead") as producer:
        pending = producer.submit(next, items, end)
        while (item := pending.result()) is not end:
            pending = producer.submit(next, items, end)
            yield cast(U, item)


def _by_time(note: tuple[int, Path, str]) -> int:
    return note[0]
