"""name_times against parse_name_timestamp, name by name: the same time or None."""

from __future__ import annotations

from datetime import datetime

from hypothesis import given
from hypothesis import strategies as st

from utils.collect.snapshot_format import PROCESS_PREFIX, SYS_PREFIX, parse_name_timestamp
from utils.read.name_times import name_times

# Stamps near the usual shape: digits with a few other characters mixed in.
_STAMP_CHARS = st.sampled_from("0123456789_0123456789x/é\0 ")


def _one_at_a_time(names: list[str], prefix: str) -> list[datetime | None]:
    return [parse_name_timestamp(name, prefix) for name in names]


def test_the_usual_and_the_invalid() -> None:
    names = [
        "process_mem_20250101_000000.csv",
        "process_mem_20240229_235959.csv",  # a leap day
        "process_mem_20250229_000000.csv",  # not a leap year
        "process_mem_19000229_000000.csv",  # a century, not a leap year
        "process_mem_20000229_120000.csv",  # every 400 years, a leap year
        "process_mem_00000101_000000.csv",  # year 0 is no datetime's
        "process_mem_99991231_235959.csv",
        "process_mem_20261341_250000.csv",
        "process_mem_20250101_240000.csv",
        "process_mem_20250101_235960.csv",
        "process_mem_20250101-000000.csv",
        "process_mem_2025010\uff11_000000.csv",  # a digit that is not ASCII
        "process_mem_20250101_000000.csv.bak",
        "sys_mem_20250101_000000.csv",
        "process_mem_.csv",
    ]
    assert name_times(names, PROCESS_PREFIX) == _one_at_a_time(names, PROCESS_PREFIX)
    assert name_times(names, PROCESS_PREFIX)[:2] == [
        datetime(2025, 1, 1),
        datetime(2024, 2, 29, 23, 59, 59),
    ]
    assert name_times([], SYS_PREFIX) == []


@given(
    st.lists(
        st.one_of(
            st.datetimes(min_value=datetime(1, 1, 1)).map(
                lambda moment: f"{SYS_PREFIX}{moment:%Y%m%d_%H%M%S}.csv"
            ),
            st.text(_STAMP_CHARS, min_size=13, max_size=17).map(
                lambda stamp: f"{SYS_PREFIX}{stamp}.csv"
            ),
            st.text(max_size=40),
        ),
        max_size=30,
    )
)
def test_same_as_one_at_a_time(names: list[str]) -> None:
    assert name_times(names, SYS_PREFIX) == _one_at_a_time(names, SYS_PREFIX)
