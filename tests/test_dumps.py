"""The bulk reader: many files parsed in one go, and every kind of bad file."""

from __future__ import annotations

import gc
import itertools
import os
import threading
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest

from conftest import write_proc
from utils import parser
from utils.collect.snapshot_format import MEMINFO_HEADER
from utils.parser import PROCESS_PREFIX, SYS_PREFIX, DumpFile, find_dumps
from utils.process_analysis import compute_rss_spread, load_all_records
from utils.read import bounded_read, threaded_reader
from utils.read.threaded_reader import Batch, Kind, Reader, TableSpec
from utils.system_analysis import load_system_frame

SPEC = TableSpec(
    columns=(("PID", Kind.INT), ("PPID", Kind.INT), ("RSS_MB", Kind.FLOAT), ("CMD", Kind.TEXT))
)
HEADER = "PID,PPID,USER,RSS_MB,VSZ_MB,CMD\n"
GOOD_ROW = "10,1,root,1.500,2.000,/bin/good\n"


class Warnings:
    def __init__(self) -> None:
        self.lines: list[str] = []

    def __call__(self, path: Path, reason: str) -> None:
        self.lines.append(f"{path.name}: {reason}")


def load(dumps: Path, batch_bytes: int = 1 << 20) -> tuple[pd.DataFrame, list[int], Warnings]:
    warn = Warnings()
    files = find_dumps(dumps, PROCESS_PREFIX)
    index_of = {dump.epoch_s: index for index, dump in enumerate(files)}
    frames: list[pd.DataFrame] = []
    snapshots: list[int] = []  # the index of each row's file in `files`
    for batch in Reader(SPEC, warn, batch_bytes=batch_bytes).batches(files):
        frames.append(batch.frame.assign(CMD=batch.frame["CMD"].astype(str)))
        snapshots.extend(index_of[int(moment)] for moment in batch.snapshot)
    frame = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()
    return frame, snapshots, warn


def put(dumps: Path, second: int, text: str | bytes) -> Path:
    path = dumps / f"process_mem_20260301_0000{second:02d}.csv"
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text, encoding="utf-8")
    return path


def test_rows_come_back_typed_and_in_time_order(tmp_path: Path) -> None:
    put(tmp_path, 2, HEADER + "30,1,root,3.000,3.000,/bin/c\n")
    put(tmp_path, 1, HEADER + '20,1,root,2.000,2.000,"/bin/b, with comma"\n' + GOOD_ROW)
    frame, snapshots, warn = load(tmp_path)
    assert warn.lines == []
    assert frame["PID"].tolist() == [20, 10, 30]
    assert frame["RSS_MB"].tolist() == [2.0, 1.5, 3.0]
    assert frame["CMD"].tolist() == ["/bin/b, with comma", "/bin/good", "/bin/c"]
    assert snapshots == [0, 0, 1]
    assert str(frame["PID"].dtype) == "int32"


@pytest.mark.parametrize("batch_bytes", [1 << 20, 1])
def test_a_whole_number_written_as_a_float_is_read_alike_on_both_paths(
    tmp_path: Path, batch_bytes: int
) -> None:
    put(tmp_path, 1, HEADER + "7.0,1,root,1.000,2.000,x\n")
    put(tmp_path, 2, HEADER + GOOD_ROW + "\n")  # a blank line: this one takes the slow path
    frame, _, warn = load(tmp_path, batch_bytes)
    assert warn.lines == []
    assert frame["PID"].tolist() == [7, 10]


def test_command_lines_that_look_like_missing_values_stay_text(tmp_path: Path) -> None:
    put(tmp_path, 1, HEADER + "1,0,root,1.000,1.000,NA\n2,0,root,1.000,1.000,null\n")
    frame, _, _ = load(tmp_path)
    assert frame["CMD"].tolist() == ["NA", "null"]


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        ("", "empty file; skipped"),
        ("PID,PPID,USER,RSS_MB", "no complete line (cut off?); skipped"),
        (HEADER, "no data rows; skipped"),
        ("PID,USER,RSS_MB,CMD\n10,root,1.0,x\n", "no PPID column; skipped"),
        (HEADER + "ten,1,root,1.000,2.000,x\n", "PID on line 2 is 'ten', not a whole number; skipped"),
        (HEADER + GOOD_ROW + "11,-1,root,1.000,2.000,x\n", "PPID on line 3 is '-1', negative; skipped"),
        (HEADER + "10,1,root,1.5.0,2.000,x\n", "RSS_MB on line 2 is '1.5.0', not a number; skipped"),
        (HEADER + "10,1,root,,2.000,x\n", "RSS_MB on line 2 is empty, not a number; skipped"),
        (HEADER + GOOD_ROW + "11,1,root,inf,2.000,x\n", "RSS_MB on line 3 is 'inf', not a number; skipped"),
        (HEADER + "7.0,1,root,1.0,2.0,x\n11,1,root,inf,2.000,x\n", "RSS_MB on line 3 is 'inf', not a number; skipped"),
        (HEADER + "7.5,1,root,1.0,2.0,x\n", "PID on line 2 is '7.5', not a whole number; skipped"),
        (HEADER + "18446744073709551615,1,root,1.0,2.0,x\n", "PID on line 2 is '18446744073709551615', out of range; skipped"),
        (HEADER + "99999999999999999999999,1,root,1.0,2.0,x\n", "PID on line 2 is '99999999999999999999999', out of range; skipped"),
        (HEADER + GOOD_ROW + "10,1,root,1.0,2.0,x,extra\n", "line 3 has 7 fields, the header has 6; skipped"),
        (HEADER + "10,1,root,1.0,2.0,x,extra\n", "line 2 has 7 fields, the header has 6; skipped"),
        (HEADER + "10,1,root,1e308,2.0,x\n", "RSS_MB on line 2 is '1e308', out of range; skipped"),
        (HEADER + GOOD_ROW + "11,1,root,1.0,1073741824,x\n", "VSZ_MB on line 3 is '1073741824', out of range; skipped"),
    ],
)  # fmt: skip
def test_a_bad_file_is_named_and_skipped_and_the_rest_is_kept(
    tmp_path: Path, content: str, reason: str
) -> None:
    put(tmp_path, 1, HEADER + GOOD_ROW)
    bad = put(tmp_path, 2, content)
    put(tmp_path, 3, HEADER + GOOD_ROW)
    frame, snapshots, warn = load(tmp_path)
    assert warn.lines == [f"{bad.name}: {reason}"]
    assert snapshots == [0, 2]
    assert frame["PID"].tolist() == [10, 10]


@pytest.mark.parametrize("batch_bytes", [1 << 20, 1])
@pytest.mark.parametrize("position", [0, 1])
def test_a_row_with_one_field_more_than_its_header_is_a_bad_file(
    tmp_path: Path, batch_bytes: int, position: int
) -> None:
    """pandas reads a first line with one field too many as an index column and shifts every
    value one column to the right; first in a batch or not, the file is named and skipped."""
    header = ",".join(MEMINFO_HEADER) + "\n"
    good = header + ",".join(["24000.0"] * len(MEMINFO_HEADER)) + "\n"
    bad = header + "42," + ",".join(["24000.0"] * len(MEMINFO_HEADER)) + "\n"
    stamps = ["20260301_000000", "20260301_001000"]
    for number, stamp in enumerate(stamps):
        text = bad if number == position else good
        (tmp_path / f"sys_mem_{stamp}.csv").write_text(text, encoding="utf-8")
    warned: list[str] = []
    frame = load_system_frame(
        find_dumps(tmp_path, SYS_PREFIX), lambda path, why: warned.append(f"{path.name}: {why}")
    )
    fields = len(MEMINFO_HEADER)
    assert warned == [
        f"sys_mem_{stamps[position]}.csv: line 2 has {fields + 1} fields, the header has"
        f" {fields}; skipped"
    ]
    assert frame["MemTotal_MB"].tolist() == [24000.0]


def test_a_file_whose_only_row_is_cut_off_is_one_warning(tmp_path: Path) -> None:
    cut = put(tmp_path, 1, HEADER + "11,1,root,4.0")
    put(tmp_path, 2, HEADER + GOOD_ROW)
    frame, _, warn = load(tmp_path)
    assert warn.lines == [f"{cut.name}: no complete data row (cut off?); skipped"]
    assert frame["PID"].tolist() == [10]


def test_a_cut_off_last_line_loses_only_that_line(tmp_path: Path) -> None:
    cut = put(tmp_path, 1, HEADER + GOOD_ROW + "11,1,root,4.0")
    frame, _, warn = load(tmp_path)
    assert warn.lines == [f"{cut.name}: last line cut off (no final newline); dropped that line"]
    assert frame["PID"].tolist() == [10]


def test_one_bad_file_among_many_is_isolated(tmp_path: Path) -> None:
    for second in range(40):
        row = f"{second},1,root,{second}.000,1.000,/bin/p{second}\n"
        put(tmp_path, second, HEADER + (row if second != 17 else row.replace(".000", "x", 1)))
    frame, snapshots, warn = load(tmp_path)
    assert warn.lines == [
        "process_mem_20260301_000017.csv: RSS_MB on line 2 is '17x', not a number; skipped"
    ]
    assert frame["PID"].tolist() == [s for s in range(40) if s != 17]
    assert snapshots == [s for s in range(40) if s != 17]


def test_small_batches_give_the_same_rows(tmp_path: Path) -> None:
    for second in range(12):
        put(tmp_path, second, HEADER + GOOD_ROW.replace("10,", f"{second},", 1))
    whole, _, _ = load(tmp_path)
    tiny, snapshots, _ = load(tmp_path, batch_bytes=1)
    pd.testing.assert_frame_equal(whole, tiny)
    assert snapshots == list(range(12))


def test_spreadsheet_saved_files_are_read(tmp_path: Path) -> None:
    # A byte-order mark and CRLF line endings, as a spreadsheet saves them.
    put(tmp_path, 1, ("\ufeff" + HEADER + GOOD_ROW).replace("\n", "\r\n"))
    put(tmp_path, 2, HEADER + GOOD_ROW)
    frame, snapshots, warn = load(tmp_path)
    assert warn.lines == []
    assert frame["CMD"].tolist() == ["/bin/good", "/bin/good"]
    assert snapshots == [0, 1]


def test_columns_in_another_order_are_read_by_name(tmp_path: Path) -> None:
    put(tmp_path, 1, "CMD,RSS_MB,PID,PPID\n/bin/x,7.250,5,1\n")
    put(tmp_path, 2, HEADER + GOOD_ROW)
    frame, snapshots, _ = load(tmp_path)
    assert frame["PID"].tolist() == [5, 10]
    assert frame["RSS_MB"].tolist() == [7.25, 1.5]
    assert snapshots == [0, 1]


def test_blank_lines_and_quoted_newlines_still_map_rows_to_files(tmp_path: Path) -> None:
    put(tmp_path, 1, HEADER + GOOD_ROW + "\n" + GOOD_ROW)
    put(tmp_path, 2, HEADER + '12,1,root,1.000,1.000,"two\nlines"\n')
    frame, snapshots, warn = load(tmp_path)
    assert warn.lines == []
    assert frame["PID"].tolist() == [10, 10, 12]
    assert frame["CMD"].tolist()[2] == "two\nlines"
    assert snapshots == [0, 0, 1]


def test_invalid_utf8_is_replaced_not_fatal(tmp_path: Path) -> None:
    put(tmp_path, 1, HEADER.encode() + b"10,1,root,1.000,2.000,/bin/caf\xe9\n")
    frame, _, warn = load(tmp_path)
    assert warn.lines == []
    assert frame["CMD"].tolist() == ["/bin/caf\ufffd"]


def test_unreadable_file_is_named(tmp_path: Path) -> None:
    (tmp_path / "process_mem_20260301_000001.csv").mkdir()  # a directory by that name
    put(tmp_path, 2, HEADER + GOOD_ROW)
    frame, _, warn = load(tmp_path)
    assert warn.lines == [
        "process_mem_20260301_000001.csv: not a regular file (a directory); skipped"
    ]
    assert len(frame) == 1


def test_writes_written_by_the_fixture_helper_parse(tmp_path: Path) -> None:
    write_proc(tmp_path, "20260301_000000", [(1, 0, "root", 1.0, 2.0, 'say "hi", é')])
    frame, _, _ = load(tmp_path)
    assert frame["CMD"].tolist() == ['say "hi", é']


def test_dump_file_is_a_plain_record() -> None:
    dump = DumpFile(Path("x"), pd.Timestamp("2026-03-01").to_pydatetime())
    assert dump.path == Path("x")


# --- Reading ahead ---------------------------------------------------------------------


def test_the_listing_says_which_files_are_regular(tmp_path: Path) -> None:
    real = write_proc(tmp_path, "20260301_000000", [(1, 0, "root", 1.0, 2.0, "x")])
    (tmp_path / f"{PROCESS_PREFIX}20260301_001000.csv").symlink_to(real)
    listed = {dump.path.name: dump.listed_regular for dump in find_dumps(tmp_path, PROCESS_PREFIX)}
    assert listed == {real.name: True, f"{PROCESS_PREFIX}20260301_001000.csv": False}


def test_a_file_listed_as_regular_is_still_checked_once_open(tmp_path: Path) -> None:
    """listed_regular skips the stat() before open(); fstat() then checks the same things,
    should the name have changed since the listing."""
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    with pytest.raises(threaded_reader.BadFileError, match=r"^not a regular file \(a FIFO\)$"):
        bounded_read.read_bytes(fifo, listed_regular=True)  # and open() did not wait for a writer
    big = tmp_path / "big"
    big.write_bytes(b"x" * 2048)
    with pytest.raises(threaded_reader.BadFileError, match=r"^2.0 KiB, larger than any dump"):
        bounded_read.read_bytes(big, 1024, listed_regular=True)
    assert bounded_read.read_bytes(big, 4096, listed_regular=True) == b"x" * 2048


def test_a_listed_file_swapped_for_a_symlink_is_not_followed(tmp_path: Path) -> None:
    """A name listed as a regular file and replaced by a symlink before it is read (a year
    takes minutes to read) is refused, never followed to a device such as /dev/watchdog."""
    real = write_proc(tmp_path, "20260301_000000", [(1, 0, "root", 1.0, 2.0, "x")])
    [listed] = find_dumps(tmp_path, PROCESS_PREFIX)
    assert listed.listed_regular
    real.unlink()
    real.symlink_to("/dev/null")
    with pytest.raises(
        threaded_reader.BadFileError, match=r"^replaced by a symlink since it was listed$"
    ):
        bounded_read.read_bytes(listed.path, listed_regular=listed.listed_regular)
    # Not listed as regular: stat()ed first, and named for what it leads to.
    with pytest.raises(
        threaded_reader.BadFileError, match=r"^not a regular file \(a character device\)$"
    ):
        bounded_read.read_bytes(listed.path)


def test_a_listing_that_needs_a_failing_lstat_falls_back_to_stat() -> None:
    class Entry:
        def is_file(self, follow_symlinks: bool = True) -> bool:
            raise PermissionError(13, "Permission denied")

    assert parser._listed_regular(Entry()) is False  # type: ignore[arg-type]


def test_read_ahead_yields_everything_in_order() -> None:
    assert list(threaded_reader._read_ahead(iter([1, None, 3]))) == [1, None, 3]
    assert list(threaded_reader._read_ahead(iter([]))) == []


def test_read_ahead_raises_the_producer_s_error_after_its_items() -> None:
    def failing() -> Iterator[int]:
        yield 1
        raise OSError("disk gone")

    got: list[int] = []
    with pytest.raises(OSError, match="disk gone"):
        for item in threaded_reader._read_ahead(failing()):
            got.append(item)
    assert got == [1]


def test_closing_read_ahead_early_stops_the_producer() -> None:
    produced: list[int] = []

    def endless() -> Iterator[int]:
        for number in itertools.count():
            produced.append(number)
            yield number

    ahead = threaded_reader._read_ahead(endless())
    assert next(ahead) == 0
    ahead.close()  # what a consumer that stops (an error, Ctrl-C) does
    assert len(produced) <= 4  # one taken, one in the box, one being put, one more at most
    assert not any(t.name.startswith("read-ahead") and t.is_alive() for t in threading.enumerate())


def test_a_failing_reduction_stops_the_reader_at_once(tmp_path: Path) -> None:
    """No reference cycle may keep the read-ahead thread (and its bytes) alive."""
    for second in range(20):
        put(tmp_path, second, "PID,PPID,USER,RSS_MB,VSZ_MB,CMD\n1,0,root,1.000,2.000,init\n")

    def failing(batch: Batch) -> None:
        raise RuntimeError("a bug in a reduction")

    gc.disable()  # what would otherwise free the cycle
    try:
        reader = Reader(SPEC, Warnings(), batch_bytes=1)
        with pytest.raises(RuntimeError, match="a bug in a reduction"):
            list(reader.reduced(find_dumps(tmp_path, PROCESS_PREFIX), failing))
        alive = [
            t for t in threading.enumerate() if t.name.startswith("read-ahead") and t.is_alive()
        ]
    finally:
        gc.enable()
    assert alive == []


def test_a_few_tebibytes_are_kept_exactly(tmp_path: Path) -> None:
    """Servers with several TiB of RAM exist: 5 TiB of RSS (past int32 thousandths of a MiB)
    is read, ranked and plotted to the dumps' 3 decimals."""
    put(tmp_path, 1, HEADER + "10,1,root,5242880.125,2.000,/bin/big\n")
    put(tmp_path, 2, HEADER + "10,1,root,5242881.250,2.000,/bin/big\n")
    records = load_all_records(find_dumps(tmp_path, PROCESS_PREFIX), Warnings())
    spread = compute_rss_spread(records)
    assert spread[["min_RSS", "max_RSS", "spread"]].values.tolist() == [
        [5242880.125, 5242881.25, 1.125]
    ]
    _, rss_mb, _, _ = records.pid_memory(10)
    assert rss_mb.tolist() == [5242880.125, 5242881.25]


def test_a_batch_never_spans_two_utc_days_and_a_bad_file_warns_with_its_day(
    tmp_path: Path,
) -> None:
    # Two files before midnight (the second bad), two after: however large the batches may
    # be, the first batch holds the first day only, and the bad file's warning is said with
    # it, before the second day's batch is handed on.
    names = ("20260301_235800", "20260301_235900", "20260302_000000", "20260302_000100")
    for name in names:
        (tmp_path / f"process_mem_{name}.csv").write_text(HEADER + GOOD_ROW, encoding="utf-8")
    (tmp_path / f"process_mem_{names[1]}.csv").write_text("PID\n", encoding="utf-8")
    events: list[str] = []

    def warn(path: Path, reason: str) -> None:
        events.append(f"warn {path.name[12:27]}")

    for batch in Reader(SPEC, warn, batch_bytes=1 << 30).batches(
        find_dumps(tmp_path, "process_mem_")
    ):
        days = sorted({int(moment) // 86_400 for moment in batch.snapshot})
        events.append(f"batch of {len(batch.snapshot)} rows on {len(days)} day(s)")
    assert events == [
        "warn 20260301_235900",
        "batch of 1 rows on 1 day(s)",
        "batch of 2 rows on 1 day(s)",
    ]
