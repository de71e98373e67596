"""The UTC times in many snapshot file names at once: what parse_name_timestamp gives for
each name, with the digits of the names of the usual shape read as arrays.

A year of snapshots is 52,560 names of each kind. Read one at a time, each name costs a
regular expression, six int() calls and a datetime; here the names of the usual shape
(`<prefix>YYYYMMDD_HHMMSS.csv`, ASCII) are read as one array of digits, checked as the
datetime constructor checks them, and made into datetimes by numpy in one call. A name of
any other shape goes through parse_name_timestamp itself, so the answers are the same.
"""

from __future__ import annotations

from datetime import MINYEAR, datetime

import numpy as np
import numpy.typing as npt

from utils.collect.snapshot_format import CSV_SUFFIX, TIMESTAMP_SHAPE, parse_name_timestamp

_STAMP = len(TIMESTAMP_SHAPE)
_DIGITS = [at for at, char in enumerate(TIMESTAMP_SHAPE) if char != "_"]
_SEPARATOR = TIMESTAMP_SHAPE.index("_")
# 1970-01-01 00:00:00, as fields.
_START = (1970, 1, 1, 0, 0, 0)
# Days in each month of a common year; February gains one in a leap year (Gregorian rule,
# as datetime applies it).
_MONTH_DAYS = np.array([31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31], np.int64)


def name_times(names: list[str], prefix: str) -> list[datetime | None]:
    """For each name: the UTC time in `<prefix><YYYYMMDD_HHMMSS>.csv`, or None for any other
    name, exactly as parse_name_timestamp(name, prefix)."""
    size = len(prefix) + _STAMP + len(CSV_SUFFIX)
    shaped = [
        at
        for at, name in enumerate(names)
        if len(name) == size
        and name.isascii()
        and name.startswith(prefix)
        and name.endswith(CSV_SUFFIX)
    ]
    found: list[datetime | None] = [None] * len(names)
    taken = set(shaped)
    for at, name in enumerate(names):
        if at not in taken:
            found[at] = parse_name_timestamp(name, prefix)
    if shaped:
        stamps = "".join(names[at][len(prefix) : len(prefix) + _STAMP] for at in shaped)
        for at, moment in zip(shaped, _stamp_times(stamps.encode("ascii")), strict=True):
            found[at] = moment
    return found


def _stamp_times(blob: bytes) -> list[datetime | None]:
    """The times of `YYYYMMDD_HHMMSS` stamps laid end to end (None where a stamp has not that
    shape or names no time)."""
    chars = np.frombuffer(blob, np.uint8).reshape(-1, _STAMP).astype(np.int64)
    digits = chars[:, _DIGITS] - ord("0")
    shaped = ((digits >= 0) & (digits <= 9)).all(axis=1) & (chars[:, _SEPARATOR] == ord("_"))
    fields = _fields(np.where(shaped[:, None], digits, 0))
    valid = shaped & _valid(fields)
    # The invalid ones are given 1970-01-01 00:00:00, so that numpy computes something.
    year, month, day, hour, minute, second = (
        np.where(valid, field, start) for field, start in zip(fields, _START, strict=True)
    )
    seconds = hour * 3600 + minute * 60 + second
    months = (year - 1970).astype("datetime64[Y]").astype("datetime64[M]") + (month - 1)
    moments = months.astype("datetime64[D]") + (day - 1)
    times: list[datetime] = (moments.astype("datetime64[s]") + seconds).tolist()
    return [moment if ok else None for moment, ok in zip(times, valid.tolist(), strict=True)]


def _fields(digits: npt.NDArray[np.int64]) -> tuple[npt.NDArray[np.int64], ...]:
    """Year, month, day, hour, minute and second of each row of 14 digits."""
    weights = [1000, 100, 10, 1]
    year = digits[:, 0:4] @ np.array(weights, np.int64)
    pairs = [digits[:, at] * 10 + digits[:, at + 1] for at in range(4, 14, 2)]
    return (year, *pairs)


def _valid(fields: tuple[npt.NDArray[np.int64], ...]) -> npt.NDArray[np.bool_]:
    """What datetime(year, month, day, hour, minute, second) accepts of these fields."""
    year, month, day, hour, minute, second = fields
    in_year = (month >= 1) & (month <= 12)
    leap = ((year % 4 == 0) & (year % 100 != 0)) | (year % 400 == 0)
    month_days = _MONTH_DAYS[np.clip(month - 1, 0, 11)] + (leap & (month == 2))
    valid: npt.NDArray[np.bool_] = (
        (year >= MINYEAR)
        & in_year
        & (day >= 1)
        & (day <= month_days)
        & (hour <= 23)
        & (minute <= 59)
        & (second <= 59)
    )
    return valid
