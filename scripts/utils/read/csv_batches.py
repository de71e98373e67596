"""Parsing many small dump CSVs in one go, and saying exactly what is wrong with a bad one.

The plain way, one `pandas.read_csv` per file, pays about a millisecond of parser start-up
per file: most of the time for a month of 10-minute snapshots. Here the files that share a
header are parsed together, a few megabytes in one read_csv, and checked as a whole; when
such a parse fails, the files are split in halves until the bad ones are isolated, so one
corrupt file costs a handful of extra parses, not thousands. A file is used whole or not
at all, and explain() names the first line and field that is wrong.
"""

from __future__ import annotations

import csv
import functools
import io
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import numpy.typing as npt
import pandas as pd

from utils.collect.snapshot_format import (
    COLUMN_KINDS,
    MAX_COUNT,
    MAX_DUMP_BYTES,
    MAX_NUMBER,
    Kind,
    parse_victims,
)
from utils.parser import Warn
from utils.read.bounded_read import BadFileError

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
csv.field_size_limit(MAX_DUMP_BYTES)
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
    # Text read when a file has it (as a categorical), else empty: columns an older
    # collector did not write.
    optional_text: tuple[str, ...] = ()

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


class RawFile(NamedTuple):
    snapshot: int  # the snapshot's UTC time, seconds since 1970
    path: Path
    names: tuple[str, ...]  # the header's column names
    body: memoryview  # complete data lines only, each ending in \n (a view: no copy)
    line_count: int  # lines in body, counted once
    cut: bool  # a last line without its newline was dropped


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
    real file, so nothing is copied or searched (this runs for every file read)."""
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


_NUMBERS = (Kind.FLOAT, Kind.POSITIVE, Kind.FLOAT_OR_EMPTY, Kind.COUNT_OR_EMPTY)
_CATEGORIES = (Kind.TEXT, Kind.TIME_OR_EMPTY, Kind.VICTIMS_OR_EMPTY)
_MAY_BE_EMPTY = (Kind.FLOAT_OR_EMPTY, Kind.COUNT_OR_EMPTY)


def _dtype(kind: Kind | None) -> str:
    if kind is Kind.INT:
        return "int32"
    if kind in _NUMBERS:
        return "float64"
    # Unknown extra columns are parsed only to check each row's field count.
    return "category" if kind in _CATEGORIES else "object"


def _sentinel_row(names: Sequence[str], spec: TableSpec) -> bytes:
    """A last row that is valid for every column. pandas, when a column fails as a
    number, retries it as booleans ("TRUE" read as 1.0); one real "0" in the column
    stops that, so a column of words always fails as it should."""
    return b",".join(_SENTINELS.get(spec.kind_of(name), b"x") for name in names) + b"\n"


_SENTINELS: dict[Kind | None, bytes] = {
    Kind.INT: b"1",
    Kind.TIME_OR_EMPTY: b"",
    Kind.VICTIMS_OR_EMPTY: b"",
    **dict.fromkeys(_NUMBERS, b"1"),
}


def _with_sentinel(
    bodies: Sequence[bytes | memoryview], names: tuple[str, ...], spec: TableSpec
) -> list[bytes | memoryview]:
    """The data lines of files, with the sentinel row after them (no copy: see _Pieces)."""
    return [*bodies, _sentinel_row(names, spec)]


class _Pieces(io.RawIOBase):
    """Pieces of bytes read as one stream, copied out a parser read at a time.

    pandas reads its input 256 KiB at a time; joining a batch's files first would copy
    them into a fresh block of the batch's size instead, which glibc maps from the kernel
    and hands back for every batch (allocator.MMAP_THRESHOLD_BYTES), page faults and all,
    where a 256 KiB buffer is reused from the heap."""

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
    """Whole numbers >= 0, numbers finite, >= 0 (> 0, or empty, where the kind says) and
    under MAX_NUMBER."""
    for name in names:
        kind = spec.kind_of(name)
        if kind is Kind.INT:
            if (frame[name].to_numpy() < 0).any():
                return False
        elif kind in _NUMBERS:
            values = frame[name].to_numpy(np.float64)
            good = np.isfinite(values) & ((values > 0) if kind is Kind.POSITIVE else (values >= 0))
            if kind is Kind.COUNT_OR_EMPTY:
                good &= (values < MAX_COUNT) & (values == np.floor(values))
            else:
                good &= values < MAX_NUMBER
            if kind in _MAY_BE_EMPTY:
                good |= np.isnan(values)
            if not good.all():
                return False
        elif (kind is Kind.TIME_OR_EMPTY and not _times_ok(frame[name])) or (
            kind is Kind.VICTIMS_OR_EMPTY and not _victims_ok(frame[name])
        ):
            return False
    return True


def _victims_ok(column: pd.Series) -> bool:
    """Whether every value of a categorical column is an oom_victims text (once each)."""
    return all(parse_victims(str(text)) is not None for text in column.cat.categories)


# STARTED as the collector writes it; numpy then checks that it is a real time.
_STARTED = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2} [0-9]{2}:[0-9]{2}:[0-9]{2}\.[0-9]{2}")


def _time_ok(text: str) -> bool:
    # A start time is boot time plus ticks since boot: never before 1970.
    if text == "":
        return True
    if _STARTED.fullmatch(text) is None or text < "1970":
        return False
    try:
        np.datetime64(text, "ms")
    except ValueError:
        return False
    return True


def _times_ok(column: pd.Series) -> bool:
    """Whether every value of a categorical column is a UTC time as STARTED is written, or
    empty (checked once per distinct value)."""
    return all(_time_ok(str(text)) for text in column.cat.categories)


def _has_missing(column: pd.Series) -> bool:
    if isinstance(column.dtype, pd.CategoricalDtype):
        return bool((column.cat.codes.to_numpy() < 0).any() or "" in column.cat.categories)
    if column.dtype == object:
        return bool(column.isna().any() or (column == "").any())
    return bool(column.isna().any())


def field_counts_ok(body: bytes | memoryview, expected: int) -> bool:
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
        if bytes(body[start : int(line_ends[line])]).strip():  # a blank line is skipped
            return False
    return True


def _frame_of(files: Sequence[RawFile], spec: TableSpec) -> pd.DataFrame | None:
    """Parse files sharing one header in one go, typed; None if anything is off."""
    names = files[0].names
    # pandas takes a first line with more fields than the header as one with an index
    # column in front (an "implicit index"), and then reads every line shifted; a later
    # line with too many fields is a ParserError. So the first file's lines are counted.
    if not field_counts_ok(files[0].body, len(names)):
        return None
    data = _with_sentinel([raw.body for raw in files], names, spec)
    try:
        frame = _read_frame(data, names, spec)
    except (ValueError, OverflowError, pd.errors.ParserError, BadFileError):
        return None
    return _typed(frame, names, spec) if _rows_ok(frame, files, data, spec) else None


def _rows_ok(
    frame: pd.DataFrame,
    files: Sequence[RawFile],
    data: Sequence[bytes | memoryview],
    spec: TableSpec,
) -> bool:
    """Whether the parsed rows are the files' rows, each with good values."""
    names = files[0].names
    # Blank lines or quoted newlines: rows would no longer map to files.
    if len(files) > 1 and len(frame) != sum(raw.line_count for raw in files):
        return False
    if spec.rows_per_file is not None and len(frame) != spec.rows_per_file * len(files):
        return False
    if not _values_ok(frame, names, spec):
        return False
    return not _has_missing(frame[names[-1]]) or _commas_balance(frame, data, names)


def _commas_balance(
    frame: pd.DataFrame, data: Sequence[bytes | memoryview], names: tuple[str, ...]
) -> bool:
    """Whether no row has fewer fields than the header, which pandas pads with empty values
    (a row with more is a ParserError, but for the first: field_counts_ok checks that one).

    Then every row has exactly len(names) fields if and only if the data's commas are the
    rows' separators plus the commas inside quoted values, which the parsed text holds. A
    count per byte and one per distinct text value: no per-byte temporaries, unlike
    field_counts_ok, which would run on every file whose STARTED ends a row empty.
    """
    raw = sum(
        int(np.count_nonzero(np.frombuffer(piece, dtype=np.uint8) == _COMMA)) for piece in data
    )
    quoted = 0
    for name in names:
        column = frame[name]
        if isinstance(column.dtype, pd.CategoricalDtype):
            per_value = np.array([str(text).count(",") for text in column.cat.categories])
            codes = column.cat.codes.to_numpy()
            if per_value.any():
                quoted += int(per_value[codes[codes >= 0]].sum())
        elif column.dtype == object:
            quoted += sum(text.count(",") for text in column if isinstance(text, str))
    rows = len(frame) + 1  # and the sentinel row
    return raw - quoted == rows * (len(names) - 1)


def _typed(frame: pd.DataFrame, names: tuple[str, ...], spec: TableSpec) -> pd.DataFrame:
    """The spec's columns, with its optional ones (missing: NaN)."""
    typed: dict[str, pd.Series | npt.NDArray[np.float64]] = {}
    for name, kind in spec.columns:
        column = frame[name]
        if kind in _NUMBERS:
            column = column + 0.0  # "-0" is 0: never print -0.000
        typed[name] = column
    for name in spec.optional:
        typed[name] = frame[name] + 0.0 if name in names else np.full(len(frame), np.nan)
    for name in spec.optional_text:
        typed[name] = (
            frame[name] if name in names else pd.Series([""] * len(frame), dtype="category")
        )
    return pd.DataFrame(typed)


def _value_problem(kind: Kind, text: str) -> str | None:
    """Why a field is not what its kind says, or None (the slow, exact check)."""
    if kind is Kind.TEXT or (kind in _MAY_BE_EMPTY and text == ""):
        return None
    if kind is Kind.TIME_OR_EMPTY:
        return None if _time_ok(text) else f"not {kind.value}"
    if kind is Kind.VICTIMS_OR_EMPTY:
        return None if parse_victims(text) is not None else f"not {kind.value}"
    return _number_problem(kind, text)


def _number_problem(kind: Kind, text: str) -> str | None:
    whole = kind in (Kind.INT, Kind.COUNT_OR_EMPTY)
    what = "not a whole number" if whole else "not a number"
    if _NUMBER.fullmatch(text) is None:
        return what
    value = float(text)
    limit = {Kind.INT: INT_LIMIT, Kind.COUNT_OR_EMPTY: MAX_COUNT}.get(kind, MAX_NUMBER)
    if not np.isfinite(value) or value >= limit:
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
    texts = [name for name, kind in spec.columns if kind is Kind.TEXT] + list(spec.optional_text)
    for name in texts:
        union = pd.api.types.union_categoricals([f[name] for f in frames]).categories
        frames = [f.assign(**{name: f[name].cat.set_categories(union)}) for f in frames]
    frame = pd.concat(frames, ignore_index=True)
    snapshot = np.concatenate([batch.snapshot for batch in batches])
    if np.any(snapshot[1:] < snapshot[:-1]):  # several headers: restore time order
        order = np.argsort(snapshot, kind="stable")
        frame = frame.iloc[order].reset_index(drop=True)
        snapshot = snapshot[order]
    return Batch(frame, snapshot)


def flush(
    pending: dict[tuple[str, ...], list[RawFile]], spec: TableSpec, warn: Warn
) -> Batch | None:
    batches: list[Batch] = []
    for files in pending.values():
        batches.extend(_parse_group(files, spec, warn))
    return _merge(batches, spec)
