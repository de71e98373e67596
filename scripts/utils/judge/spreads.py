"""The original README's ranking: per PID, the spread of its RSS (max - min), largest first;
and what the plot of one ranked PID shows.

As in the original README, the key is the PID alone: when the kernel reuses a PID, the two
processes (two instances) share one row, with the earlier one's CMD.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import NamedTuple

import numpy as np
import numpy.typing as npt
import pandas as pd

from utils.reduce.process_records import MILLI, InstanceTable, ProcessRecords

SPREAD_COLUMNS: tuple[str, ...] = ("PID", "min_RSS", "max_RSS", "spread", "CMD")
# The dumps carry 3 decimals: spreads are compared at that precision (exactly, as
# integer thousandths), so that 0.3 - 0.1 and 0.2 - 0.0 are the same spread and ties
# fall to the lower PID. The CSVs keep as many.
DECIMALS = 3

Series = tuple[npt.NDArray[np.datetime64], npt.NDArray[np.float64]]


class SpreadRanking(NamedTuple):
    """The ranking's first rows, and how many PIDs it ranks."""

    top: pd.DataFrame  # SPREAD_COLUMNS
    pids: int


def rss_spread(table: InstanceTable, commands: Sequence[str]) -> pd.DataFrame:
    """Per PID: min_RSS, max_RSS, spread = max - min (MiB) and the earliest CMD (its code
    into commands), largest spread first, equal spreads by PID ascending."""
    return spread_ranking(table, commands, None).top


def spread_ranking(table: InstanceTable, commands: Sequence[str], n: int | None) -> SpreadRanking:
    """The first n rows of rss_spread (every row: n None), reset to a 0.. index, and how
    many PIDs it ranks. The ranking is made on arrays; only the rows shown become a frame
    (a year holds hundreds of thousands of PIDs, each with its command line)."""
    if len(table.pid) == 0:
        return SpreadRanking(pd.DataFrame({name: [] for name in SPREAD_COLUMNS}), 0)
    order = np.lexsort((table.first_rank, table.pid))  # each PID's earliest instance first
    pid = table.pid[order]
    starts = np.flatnonzero(np.r_[True, pid[1:] != pid[:-1]])
    low = np.minimum.reduceat(table.min_milli[order], starts)
    high = np.maximum.reduceat(table.max_milli[order], starts)
    spread = high - low
    ranking = np.lexsort((pid[starts], -spread))[:n]
    top = pd.DataFrame(
        {
            "PID": pid[starts][ranking].astype(np.int64),
            "min_RSS": low[ranking] / MILLI,
            "max_RSS": high[ranking] / MILLI,
            "spread": spread[ranking] / MILLI,
            "CMD": [commands[code] for code in table.cmd[order[starts[ranking]]]],
        }
    )
    return SpreadRanking(top, len(starts))


class PidPlot(NamedTuple):
    """What one per-PID plot shows (picklable: it may be drawn in the plot worker)."""

    pid: int
    cmd: str
    series: Series
    swap_mb: npt.NDArray[np.float64] | None = None  # at the series' times, where any was used
    kills: npt.NDArray[np.datetime64] | None = None  # when the OOM killer ended it


def pid_plot(
    records: ProcessRecords,
    pid: int,
    cmd: str,
    killed: Mapping[int, np.datetime64] | None = None,
) -> PidPlot:
    """A PID's RSS, its swap where a row shows some in use, and its OOM kill if any
    (`killed`: the moment of each killed PID)."""
    times, rss, _, swap = records.pid_memory(pid)
    used = bool((np.nan_to_num(swap) > 0).any())
    moment = (killed or {}).get(pid)
    kills = None if moment is None else np.array([moment], dtype="datetime64[s]")
    return PidPlot(pid, cmd, (times, rss), swap if used else None, kills)


def pid_plots(
    records: ProcessRecords, top: pd.DataFrame, killed: Mapping[int, np.datetime64]
) -> tuple[PidPlot, ...]:
    """One per row of the ranking's table."""
    return tuple(
        pid_plot(records, int(pid), str(cmd), killed)
        for pid, cmd in zip(top["PID"], top["CMD"], strict=True)
    )
