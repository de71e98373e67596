"""The kernel's counters since boot in the sys_mem files: per-interval rates (memory
pressure, swap traffic, major faults) and the intervals in which the OOM killer killed.

A counter counts from boot (proc(5), /proc/vmstat; Documentation/accounting/psi.rst), so
what happened between two snapshots is the difference of two readings of one boot. A new
`boot_id`, or a counter that went down, is a reboot: the count restarts there and is never
negative. Over the interval that holds a reboot a rate is unknown (when the machine was
down is not recorded), but a count is not: what the counter says was counted since boot.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import numpy.typing as npt
import pandas as pd

from utils.collect.snapshot_format import USERSPACE_KINDS, OomVictim, parse_victims

FloatArray = npt.NDArray[np.float64]
# The rates added to system_metrics.csv, and the counter each is the rate of.
RATE_COLUMNS: tuple[tuple[str, str, float], ...] = (
    # column, counter, what a count per second is multiplied by
    ("PSI_Some_Pct", "psi_some_total_us", 100 / 1e6),  # microseconds per second, as a %
    ("PSI_Full_Pct", "psi_full_total_us", 100 / 1e6),
    ("SwapIn_Pages_s", "pswpin", 1.0),
    ("SwapOut_Pages_s", "pswpout", 1.0),
    ("MajorFaults_s", "pgmajfault", 1.0),
)
PCT_COLUMNS = frozenset({"PSI_Some_Pct", "PSI_Full_Pct"})


def reboots(boot_ids: npt.NDArray[np.object_]) -> npt.NDArray[np.bool_]:
    """Per snapshot: is it the first of another boot than the snapshot before (both known)?"""
    ids = np.asarray(boot_ids, dtype=object)
    new = np.zeros(len(ids), bool)
    if len(ids) > 1:
        known = (ids[1:] != "") & (ids[:-1] != "")
        new[1:] = known & (ids[1:] != ids[:-1])
    return new


def interval_counts(counter: FloatArray, rebooted: npt.NDArray[np.bool_]) -> FloatArray:
    """Per snapshot: what the counter counted since the snapshot before; at a reboot (or
    where it went down) what it counted since boot; NaN for the first snapshot and where
    either reading is missing."""
    counts = np.full(len(counter), np.nan)
    if len(counter) > 1:
        step = counter[1:] - counter[:-1]
        restarted = rebooted[1:] | (step < 0)
        counts[1:] = np.where(restarted, counter[1:], step)
    return counts


def interval_rates(
    counter: FloatArray, rebooted: npt.NDArray[np.bool_], times_s: FloatArray
) -> FloatArray:
    """Per snapshot: the counter's rate per second since the snapshot before; NaN for the
    first, at a reboot, and where a reading is missing."""
    rates = np.full(len(counter), np.nan)
    if len(counter) > 1:
        step = counter[1:] - counter[:-1]
        seconds = times_s[1:] - times_s[:-1]
        good = ~rebooted[1:] & (step >= 0) & (seconds > 0)
        with np.errstate(invalid="ignore", divide="ignore"):
            rates[1:] = np.where(good, step / seconds, np.nan)
    return rates


def rate_frame(raw: pd.DataFrame) -> pd.DataFrame:
    """The RATE_COLUMNS of raw sys_mem rows (indexed by UTC time, with the counters and
    boot_id); a share of time is at most 100% (the counter and the file name's second are
    read a moment apart)."""
    times_s = raw.index.to_numpy().astype("datetime64[s]").astype(np.float64)
    rebooted = reboots(_boot_ids(raw))
    columns = {}
    for column, counter, scale in RATE_COLUMNS:
        values = _counter(raw, counter)
        rate = interval_rates(values, rebooted, times_s) * scale
        columns[column] = np.minimum(rate, 100.0) if column in PCT_COLUMNS else rate
    return pd.DataFrame(columns, index=raw.index)


class OomInterval(NamedTuple):
    """An interval between two snapshots in which the OOM killer killed."""

    after: np.datetime64  # the snapshot the kills came after (UTC)...
    before: np.datetime64  # ...and the first one after them
    kills: int
    logged: list[OomVictim]  # the kills a log named (the kernel's, or a userspace killer's)
    reboot: bool  # the machine rebooted in between: the victims were never snapshotted
    counted: int = 0  # what the oom_kill counter counted (the kernel's kills only)
    filed: list[OomVictim] = []  # noqa: RUF012 (never mutated) the kills saved logs add
    # The cgroups whose own limit was hit in the interval (their OOM_EVENTS rose), where the
    # dumps tell: the kills no log names are memcg kills there, and no host process is
    # guessed as their victim.
    limit_hits: tuple[str, ...] = ()

    @property
    def middle(self) -> np.datetime64:
        return self.after + (self.before - self.after) / 2


# The sys_mem fields oom_intervals reads (a reader may read these alone for it).
OOM_FIELDS = ("oom_kill", "boot_id", "oom_victims")


def oom_intervals(raw: pd.DataFrame) -> list[OomInterval] | None:
    """The intervals with OOM kills, in time order; None when no snapshot has an oom_kill
    counter (dumps of an older collector, or Linux before 4.13)."""
    kills_counter = _counter(raw, "oom_kill")
    if not np.isfinite(kills_counter).any():
        return None
    rebooted = reboots(_boot_ids(raw))
    counted = interval_counts(kills_counter, rebooted)
    victims = raw["oom_victims"] if "oom_victims" in raw else pd.Series([""] * len(raw))
    times = raw.index.to_numpy().astype("datetime64[s]")
    texts = victims.astype(str).to_numpy(dtype=object)
    found: list[OomInterval] = []
    # Only the snapshots with a count or a victim can have kills: a year has 52,560 others.
    for at in np.flatnonzero((np.nan_to_num(counted) != 0) | (texts != "")).tolist():
        text = str(texts[at])
        logged = parse_victims(text) or []
        count = int(np.nan_to_num(counted[at]))
        kills = interval_kills(count, logged)
        if kills and at > 0:
            restarted = bool(rebooted[at] or kills_counter[at] < kills_counter[at - 1])
            found.append(OomInterval(times[at - 1], times[at], kills, logged, restarted, count))
    return found


def interval_kills(counted: int, logged: list[OomVictim]) -> int:
    """The kills of an interval: what oom_kill counted (the kernel's kills only), or the kernel
    kills the log named if more, plus the userspace killers' (/proc/vmstat never counts
    those)."""
    userspace = sum(victim.kind in USERSPACE_KINDS for victim in logged)
    return max(counted, len(logged) - userspace) + userspace


def _counter(raw: pd.DataFrame, name: str) -> FloatArray:
    if name not in raw:
        return np.full(len(raw), np.nan)
    return raw[name].to_numpy(np.float64)


def _boot_ids(raw: pd.DataFrame) -> npt.NDArray[np.object_]:
    if "boot_id" not in raw:
        return np.full(len(raw), "", dtype=object)
    return raw["boot_id"].astype(str).to_numpy(dtype=object)
