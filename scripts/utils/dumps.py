"""Reading thousands of small dump CSVs fast, and surviving the bad ones.

The plain way, one `pandas.read_csv` per file, pays about a millisecond of parser
start-up per file: most of the time for a month of 10-minute snapshots. Here each
file is read as bytes, files with the same header are joined, and pandas parses a
few megabytes at a time in one go. Files are checked as they are read; when a joined
parse fails, the batch is split in halves until the bad files are isolated, so one
corrupt file costs a handful of extra parses, not thousands.
"""

from __future__ import annotations

import csv
import io
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from enum import Enum
from pathlib import Path
from typing import NamedTuple

import numpy as np
import numpy.typing as npt
import pandas as pd

from utils.parser import DumpFile

# How many bytes of CSV are parsed in one read_csv call: big enough that parser
# start-up is noise, small enough that a batch's Python objects stay a few MB.
BATCH_BYTES = 8 * 1024 * 1024
# Parser threads; the machine this was tuned on has two cores.
PARSE_THREADS = 2
_BOM = b"\xef\xbb\xbf"
# Whole numbers must fit in int64 (PIDs have at most 7 digits).
_INT64_LIMIT = 2.0**63


class Kind(Enum):
    INT = "int"  # a whole number >= 0, such as a PID
    FLOAT = "float"  # a number, such as MiB
    TEXT = "text"  # any text, such as a command line


@dataclass(frozen=True)
class TableSpec:
    """The columns an analysis needs from each file, and what they must hold."""

    # TEXT columns are read as categoricals: a command line repeated in every
    # snapshot then costs one string, and --match tests it once.
    columns: tuple[tuple[str, Kind], ...]

    @property
    def names(self) -> list[str]:
        return [name for name, _ in self.columns]


class Batch(NamedTuple):
    """Rows of several files: the spec's columns, typed, and for each row the index
    (into the list of files given) of the snapshot it came from, in time order."""

    frame: pd.DataFrame
    snapshot: npt.NDArray[np.int32]


class BadFileError(Exception):
    """One file cannot be used; the message says why."""


class RawFile(NamedTuple):
    snapshot: int  # index into the list of files being read
    path: Path
    header: bytes  # the first line, with its line ending
    body: bytes  # complete data lines only, each ending in \n
    line_count: int  # lines in body, counted once


Warn = Callable[[Path, str], None]
Progress = Callable[[int, int], None]


# --- Reading bytes -------------------------------------------------------------


def split_raw(snapshot: int, path: Path, data: bytes, warn: Warn) -> RawFile:
    """Split a file's bytes into header and whole data lines.

    A last line without its newline is a file cut off mid-write or mid-copy: that
    line alone is dropped, with a warning.
    """
    if data.startswith(_BOM):  # saved by a spreadsheet
        data = data[len(_BOM) :]
    if not data.strip():
        raise BadFileError("empty file")
    end_of_header = data.find(b"\n")
    if end_of_header < 0:
        raise BadFileError("no complete line (cut off?)")
    header, body = data[: end_of_header + 1], data[end_of_header + 1 :]
    cut = bool(body) and not body.endswith(b"\n")
    if cut:
        body = body[: body.rfind(b"\n") + 1]
    if not body.strip():
        raise BadFileError("no complete data row (cut off?)" if cut else "no data rows")
    if cut:
        warn(path, "last line cut off (no final newline); dropped that line")
    return RawFile(snapshot, path, header, body, body.count(b"\n"))


def read_raw(index: int, dump: DumpFile, warn: Warn) -> RawFile | None:
    try:
        with open(dump.path, "rb") as handle:
            data = handle.read()
        return split_raw(index, dump.path, data, warn)
    except OSError as err:
        warn(dump.path, f"cannot read: {err.strerror or err}; skipped")
    except BadFileError as err:
        warn(dump.path, f"{err}; skipped")
    return None


def header_names(header: bytes) -> list[str]:
    text = header.decode("utf-8", "replace")
    return next(csv.reader([text.rstrip("\r\n")]), [])


# --- Parsing -------------------------------------------------------------------


def _read_csv(data: bytes, spec: TableSpec, as_text: bool) -> pd.DataFrame:
    """One read_csv over header + rows, the spec's columns typed (or all as text).

    Every column is parsed, not only the spec's (usecols), because usecols makes
    pandas ignore a row with too many fields; this costs about 10% more.
    """
    dtypes: dict[str, str] = {}
    for name in header_names(data[: data.find(b"\n") + 1]):
        dtypes[name] = "object"  # columns not needed: parsed only to check field counts
    for name, kind in spec.columns:
        if as_text or kind is Kind.TEXT:
            dtypes[name] = "object" if as_text else "category"
        else:
            dtypes[name] = "int64" if kind is Kind.INT else "float64"
    # Only an empty number is missing: a command line "NA" or "null" is text.
    na_values = {name: [""] for name, kind in spec.columns if kind is Kind.FLOAT and not as_text}
    frame = pd.read_csv(
        io.BytesIO(data),
        dtype=dtypes,
        keep_default_na=False,
        na_values=na_values,
        encoding="utf-8",
        encoding_errors="replace",
        engine="c",
    )
    if not isinstance(frame.index, pd.RangeIndex):
        # Every row had one field more than the header: pandas took the first
        # column as an index, which would shift every column by one.
        raise BadFileError("rows have more fields than the header")
    return frame[spec.names]


def _parse_fast(files: Sequence[RawFile], spec: TableSpec) -> pd.DataFrame | None:
    """Parse files sharing one header in one go; None if anything is off."""
    data = b"".join([files[0].header, *(raw.body for raw in files)])
    try:
        frame = _read_csv(data, spec, as_text=False)
    except (ValueError, OverflowError, pd.errors.ParserError, BadFileError):
        return None
    if len(frame) != sum(raw.line_count for raw in files):
        return None  # blank lines or quoted newlines: rows no longer map to files
    for name, kind in spec.columns:
        column = frame[name]
        # Anything parse_one would refuse goes there, to be named: an empty or
        # infinite number ("inf" parses), a negative or out-of-range whole number.
        if kind is Kind.FLOAT and not np.isfinite(column.to_numpy()).all():
            return None
        if kind is Kind.INT and (column.dtype != np.int64 or (column < 0).any()):
            return None
    return frame


def _first_bad(column: pd.Series, ok: pd.Series) -> tuple[int, str] | None:
    bad = (~ok).to_numpy().nonzero()[0]
    if len(bad) == 0:
        return None
    row = int(bad[0])
    return row + 2, str(column.iloc[row])  # +2: 1-based, after the header


def parse_one(raw: RawFile, spec: TableSpec) -> pd.DataFrame:
    """Parse a single file as text and check each value, to say exactly what is wrong."""
    try:
        text = _read_csv(raw.header + raw.body, spec, as_text=True)
    except pd.errors.ParserError as err:
        raise BadFileError(str(err).split("C error: ")[-1].strip().rstrip(".")) from err
    except ValueError as err:
        raise BadFileError(str(err)) from err
    if text.empty:
        raise BadFileError("no data rows")
    typed: dict[str, pd.Series] = {}
    for name, kind in spec.columns:
        column = text[name].astype(str)
        if kind is Kind.TEXT:
            typed[name] = column.astype("category")
            continue
        numbers = pd.to_numeric(column, errors="coerce")
        as_float = numbers.to_numpy(dtype=np.float64, na_value=np.nan)
        ok = np.isfinite(as_float)  # "inf" is no number here either
        what = "a number"
        if kind is Kind.INT:
            # What read_csv takes as int64 in the fast path ("7", "7.0", "+7"), so
            # both paths agree on what a whole number is.
            ok &= (as_float >= 0) & (np.floor(as_float) == as_float)
            what = "a whole number"
        first_bad = _first_bad(column, pd.Series(ok))
        if first_bad is not None:
            line, value = first_bad
            shown = repr(value) if value else "empty"
            raise BadFileError(f"{name} on line {line} is {shown}, not {what}")
        if kind is Kind.INT:
            huge = _first_bad(column, pd.Series(as_float < _INT64_LIMIT))
            if huge is not None:
                raise BadFileError(f"{name} on line {huge[0]} is {huge[1]!r}, out of range")
        typed[name] = numbers.astype("int64" if kind is Kind.INT else "float64")
    return pd.DataFrame(typed)


def _parse_group(files: Sequence[RawFile], spec: TableSpec, warn: Warn) -> list[Batch]:
    """Parse files that share a header; bisect to isolate the bad ones."""
    frame = _parse_fast(files, spec)
    if frame is not None:
        counts = [raw.line_count for raw in files]
        indexes = np.array([raw.snapshot for raw in files], dtype=np.int32)
        return [Batch(frame, np.repeat(indexes, counts))]
    if len(files) == 1:
        raw = files[0]
        try:
            one = parse_one(raw, spec)
        except BadFileError as err:
            warn(raw.path, f"{err}; skipped")
            return []
        return [Batch(one, np.full(len(one), raw.snapshot, dtype=np.int32))]
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


def _flush(pending: dict[bytes, list[RawFile]], spec: TableSpec, warn: Warn) -> Batch | None:
    batches: list[Batch] = []
    for header, files in pending.items():
        missing = [name for name in spec.names if name not in header_names(header)]
        if missing:
            for raw in files:
                warn(raw.path, f"no {', '.join(missing)} column; skipped")
            continue
        batches.extend(_parse_group(files, spec, warn))
    return _merge(batches, spec)


class _Notes:
    """Warnings held back so they reach the user in file order, from one thread."""

    def __init__(self) -> None:
        self.items: list[tuple[Path, str]] = []

    def __call__(self, path: Path, reason: str) -> None:
        self.items.append((path, reason))


def _parse_job(pending: dict[bytes, list[RawFile]], spec: TableSpec) -> tuple[Batch | None, _Notes]:
    notes = _Notes()
    return _flush(pending, spec, notes), notes


def _read_groups(
    files: Sequence[DumpFile], batch_bytes: int
) -> Iterator[tuple[int, dict[bytes, list[RawFile]], _Notes]]:
    """Files read as bytes, grouped by header, about batch_bytes at a time, with
    the number of files read so far and the warnings of reading them."""
    pending: dict[bytes, list[RawFile]] = {}
    notes = _Notes()
    size = 0
    for index, dump in enumerate(files):
        raw = read_raw(index, dump, notes)
        if raw is not None:
            pending.setdefault(raw.header, []).append(raw)
            size += len(raw.body)
        if size >= batch_bytes or index == len(files) - 1:
            yield index + 1, pending, notes
            pending, notes, size = {}, _Notes(), 0


def iter_batches(
    files: Sequence[DumpFile],
    spec: TableSpec,
    warn: Warn,
    progress: Progress | None = None,
    batch_bytes: int = BATCH_BYTES,
    threads: int = PARSE_THREADS,
) -> Iterator[Batch]:
    """Read and parse files in time order, a few MB at a time.

    Batches come in time order, and rows within a batch are in time order, so the
    first row seen for anything is its earliest. Bad files are reported through
    warn (in file order) and left out; nothing else is lost.

    Files are read in this thread while parser threads work on earlier batches:
    pandas' C parser releases the GIL while it tokenizes, so two threads parse
    nearly twice as fast, in one process and without copying data between processes.
    """
    in_flight: deque[tuple[int, _Notes, Future[tuple[Batch | None, _Notes]]]] = deque()

    def finish_oldest() -> Batch | None:
        done, read_notes, job = in_flight.popleft()
        batch, parse_notes = job.result()
        for path, reason in read_notes.items + parse_notes.items:
            warn(path, reason)
        if progress is not None:
            progress(done, len(files))
        return batch

    with ThreadPoolExecutor(max_workers=threads, thread_name_prefix="parse") as pool:
        for done, pending, read_notes in _read_groups(files, batch_bytes):
            in_flight.append((done, read_notes, pool.submit(_parse_job, pending, spec)))
            # Bounded: at most a few batches of bytes and frames are alive at once.
            if len(in_flight) > threads:
                batch = finish_oldest()
                if batch is not None:
                    yield batch
        while in_flight:
            batch = finish_oldest()
            if batch is not None:
                yield batch
