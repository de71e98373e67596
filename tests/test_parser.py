"""File discovery, name timestamps and --since/--until parsing."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import pytest

from utils.core.atomic_files import temp_name
from utils.parser import (
    PROCESS_PREFIX,
    SYS_PREFIX,
    DumpsDirError,
    TimeWindow,
    find_dumps,
    parse_name_timestamp,
    parse_time_arg,
)


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("sys_mem_20260301_120000.csv", datetime(2026, 3, 1, 12, 0, 0)),
        ("sys_mem_20261231_235959.csv", datetime(2026, 12, 31, 23, 59, 59)),
        ("sys_mem_20261341_250000.csv", None),  # the right shape, but no date
        ("sys_mem_20260301_1200.csv", None),
        ("sys_mem_20260301_120000.csv.tmp", None),
        (temp_name("sys_mem_20260301_120000.csv", pid=4242), None),  # a temporary name
        ("process_mem_20260301_120000.csv", None),  # the other prefix
        ("sys_mem_\uff12\uff10\uff12\uff160301_120000.csv", None),  # full-width digits
    ],
)
def test_parse_name_timestamp(name: str, expected: datetime | None) -> None:
    assert parse_name_timestamp(name, SYS_PREFIX) == expected


def test_find_dumps_orders_by_time_and_ignores_others(tmp_path: Path) -> None:
    for name in [
        "sys_mem_20260302_000000.csv",
        "sys_mem_20260301_000000.csv",
        "process_mem_20260301_000000.csv",
        temp_name("sys_mem_20260303_000000.csv"),
        "notes.txt",
    ]:
        (tmp_path / name).write_text("x\n")
    (tmp_path / "nested").mkdir()
    (tmp_path / "nested" / "sys_mem_20260101_000000.csv").write_text("x\n")
    found = find_dumps(tmp_path, SYS_PREFIX)
    assert [f.path.name for f in found] == [
        "sys_mem_20260301_000000.csv",
        "sys_mem_20260302_000000.csv",
    ]
    assert [f.path.name for f in find_dumps(tmp_path, PROCESS_PREFIX)] == [
        "process_mem_20260301_000000.csv"
    ]


def test_find_dumps_applies_the_window(tmp_path: Path) -> None:
    for stamp in ["20260228_235959", "20260301_000000", "20260301_235959", "20260302_000000"]:
        (tmp_path / f"sys_mem_{stamp}.csv").write_text("x\n")
    day = TimeWindow(
        parse_time_arg("2026-03-01", end=False), parse_time_arg("2026-03-01", end=True)
    )
    assert [f.timestamp.day for f in find_dumps(tmp_path, SYS_PREFIX, day)] == [1, 1]


def test_missing_dumps_dir_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(DumpsDirError, match=f"no dumps dir {tmp_path / 'nope'}"):
        find_dumps(tmp_path / "nope", SYS_PREFIX)


@pytest.mark.parametrize(
    ("text", "end", "expected"),
    [
        ("2026-03-01", False, datetime(2026, 3, 1, 0, 0, 0)),
        ("2026-03-01", True, datetime(2026, 3, 1, 23, 59, 59)),
        ("2026-03-01 10:15", False, datetime(2026, 3, 1, 10, 15, 0)),
        ("2026-03-01 10:15", True, datetime(2026, 3, 1, 10, 15, 59)),
        ("2026-03-01 10:15:30", True, datetime(2026, 3, 1, 10, 15, 30)),
        ("2026-03-01T10:15:30", False, datetime(2026, 3, 1, 10, 15, 30)),
    ],
)
def test_parse_time_arg(text: str, end: bool, expected: datetime) -> None:
    assert parse_time_arg(text, end=end) == expected


def test_the_end_of_time_is_not_an_error() -> None:
    assert parse_time_arg("9999-12-31", end=True) == datetime(9999, 12, 31, 23, 59, 59)


@pytest.mark.parametrize("text", ["yesterday", "2026-13-01", "01/03/2026", "2026-03-01 25:00"])
def test_parse_time_arg_rejects_other_forms(text: str) -> None:
    with pytest.raises(ValueError, match="not a UTC time as YYYY-MM-DD"):
        parse_time_arg(text, end=False)
