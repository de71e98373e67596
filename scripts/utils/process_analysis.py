"""Process analysis: per-PID RSS spread over the process_mem snapshots, and per-PID plots.

A month of snapshots holds millions of process rows. They are never held as a table
of Python objects: each batch of files is parsed, filtered and reduced to three
compact arrays (snapshot, PID, RSS), and only each PID's earliest command line is
kept as text.
"""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import NamedTuple

import numpy as np
import numpy.typing as npt
import pandas as pd

from utils import plotting
from utils.console import replace_atomically
from utils.dumps import BATCH_BYTES, Batch, Kind, Progress, TableSpec, Warn, iter_batches
from utils.parser import DumpFile

PROCESS_SPEC = TableSpec(
    columns=(("PID", Kind.INT), ("PPID", Kind.INT), ("RSS_MB", Kind.FLOAT), ("CMD", Kind.TEXT))
)
SPREAD_COLUMNS: tuple[str, ...] = ("PID", "min_RSS", "max_RSS", "spread", "CMD")
PLOT_NAME = "rss_pid_{pid}.png"
_PLOT_NAME_RE = re.compile(r"rss_pid_([0-9]+)\.png")
_TABLE_NAME_RE = re.compile(r"top[0-9]+_rss_spread\.csv")
# The dumps carry 3 decimals: spreads are compared at that precision, so that
# 0.3 - 0.1 and 0.2 - 0.0 are the same spread and ties fall to the lower PID.
DECIMALS = 3
CONSOLE_CMD_WIDTH = 60
TITLE_CMD_WIDTH = 70


Series = tuple[npt.NDArray[np.datetime64], npt.NDArray[np.float64]]


class RecordChunk(NamedTuple):
    """Process rows of one batch of files, as compact arrays."""

    snapshot: npt.NDArray[np.int32]  # index into ProcessRecords.timestamps
    pid: npt.NDArray[np.int64]
    rss_mb: npt.NDArray[np.float64]


@dataclass
class ProcessRecords:
    """Every process row of the snapshots (after --match), in time order."""

    timestamps: npt.NDArray[np.datetime64]  # one per snapshot file given
    chunks: list[RecordChunk] = field(default_factory=list)
    first_cmd: dict[int, str] = field(default_factory=dict)  # earliest row's CMD per PID
    snapshots_read: int = 0  # files that gave rows (before --match)

    def series(self, pids: Sequence[int]) -> dict[int, Series]:
        """Time and RSS (MiB) of each PID's rows, in time order."""
        wanted = np.array(list(pids), dtype=np.int64)
        kept = [np.isin(chunk.pid, wanted) for chunk in self.chunks]
        snapshot = np.concatenate([c.snapshot[k] for c, k in zip(self.chunks, kept, strict=True)])
        pid = np.concatenate([c.pid[k] for c, k in zip(self.chunks, kept, strict=True)])
        rss = np.concatenate([c.rss_mb[k] for c, k in zip(self.chunks, kept, strict=True)])
        return {one: (self.timestamps[snapshot[pid == one]], rss[pid == one]) for one in pids}


def match_mask(cmd: pd.Series, text: str) -> npt.NDArray[np.bool_]:
    """Rows whose CMD (categorical, as the reader gives it) contains text: a plain,
    case-sensitive substring, tested once per distinct command line."""
    per_category = cmd.cat.categories.astype(str).str.contains(text, regex=False)
    return np.asarray(per_category, dtype=bool)[cmd.cat.codes.to_numpy()]


def add_batch(records: ProcessRecords, batch: Batch, match: str | None) -> None:
    """Reduce one parsed batch to compact arrays and first command lines."""
    frame = batch.frame
    snapshot = batch.snapshot
    records.snapshots_read += len(np.unique(snapshot))
    if match is not None:
        keep = match_mask(frame["CMD"], match)
        frame = frame[keep]
        snapshot = snapshot[keep]
    if frame.empty:
        return
    pid = frame["PID"].to_numpy(np.int64)
    records.chunks.append(RecordChunk(snapshot, pid, frame["RSS_MB"].to_numpy(np.float64)))
    # Rows are in time order, so a PID's first row in its first batch is its earliest.
    _, first_rows = np.unique(pid, return_index=True)
    known = records.first_cmd
    new_rows = [row for row in first_rows if int(pid[row]) not in known]
    if new_rows:
        texts = frame["CMD"].to_numpy()[new_rows]  # one lookup, not one per row
        for row, text in zip(new_rows, texts, strict=True):
            known[int(pid[row])] = str(text)


def load_all_records(
    files: Sequence[DumpFile],
    warn: Warn,
    progress: Progress | None = None,
    match: str | None = None,
    batch_bytes: int = BATCH_BYTES,
) -> ProcessRecords:
    """Read every process snapshot (bad files are reported through warn and left out)."""
    timestamps = np.array([dump.timestamp for dump in files], dtype="datetime64[s]")
    records = ProcessRecords(timestamps)
    for batch in iter_batches(files, PROCESS_SPEC, warn, progress, batch_bytes):
        add_batch(records, batch, match)
    return records


def compute_rss_spread(records: ProcessRecords) -> pd.DataFrame:
    """Per PID: min_RSS, max_RSS, spread = max - min (MiB) and the earliest CMD,
    largest spread first, equal spreads by PID ascending.

    As in the seed, the key is the PID alone: when the kernel reuses a PID, the two
    processes share one row.
    """
    partial: list[pd.DataFrame] = []
    for chunk in records.chunks:
        rss = pd.Series(chunk.rss_mb)
        partial.append(rss.groupby(chunk.pid, sort=False).agg(["min", "max"]))
    if not partial:
        return pd.DataFrame({name: [] for name in SPREAD_COLUMNS})
    extremes = pd.concat(partial).groupby(level=0).agg({"min": "min", "max": "max"})
    table = pd.DataFrame(
        {
            "PID": extremes.index.to_numpy(np.int64),
            "min_RSS": extremes["min"].to_numpy(),
            "max_RSS": extremes["max"].to_numpy(),
            "spread": (extremes["max"] - extremes["min"]).round(DECIMALS).to_numpy(),
        }
    )
    table["CMD"] = [records.first_cmd[pid] for pid in table["PID"]]
    table = table.sort_values(["spread", "PID"], ascending=[False, True], kind="stable")
    return table.reset_index(drop=True)


def top_spreads(spreads: pd.DataFrame, n: int) -> pd.DataFrame:
    return spreads.head(n).reset_index(drop=True)


# --- Output --------------------------------------------------------------------


def shorten(text: str, width: int) -> str:
    """Cut a long command line for display, marking the cut with an ellipsis."""
    return text if len(text) <= width else text[: width - 1] + "…"


def format_top_table(top: pd.DataFrame) -> list[str]:
    """An aligned console table; command lines shortened here only, never in the CSV."""
    numbers = [
        (str(row.PID), f"{row.min_RSS:,.3f}", f"{row.max_RSS:,.3f}", f"{row.spread:,.3f}")
        for row in top.itertuples()
    ]
    header = ("PID", "min_RSS", "max_RSS", "spread")
    widths = [max(len(h), *(len(r[i]) for r in numbers)) for i, h in enumerate(header)]
    lines = ["  ".join(h.rjust(w) for h, w in zip(header, widths, strict=True)) + "  CMD"]
    for cells, cmd in zip(numbers, top["CMD"], strict=True):
        row = "  ".join(c.rjust(w) for c, w in zip(cells, widths, strict=True))
        lines.append(f"{row}  {shorten(str(cmd), CONSOLE_CMD_WIDTH)}")
    return lines


def write_spread_csv(top: pd.DataFrame, path: Path) -> Path:
    """Exactly the columns PID,min_RSS,max_RSS,spread,CMD; MiB with 3 decimals."""
    return replace_atomically(
        path,
        lambda temp: top[list(SPREAD_COLUMNS)].to_csv(
            temp, index=False, float_format=f"%.{DECIMALS}f", lineterminator="\n"
        ),
    )


def plot_pid(
    pid: int,
    cmd: str,
    series: Series,
    snapshot_times: npt.NDArray[np.datetime64],
    threshold_s: float | None,
    out_dir: Path,
) -> Path:
    """RSS over time of one PID; the line breaks where the PID was not seen, and
    stretches with no snapshots at all (collector down) are shaded."""
    times, rss_mb = series
    low, high = float(rss_mb.min()), float(rss_mb.max())
    figure, axes = plotting.new_figure()
    plotting.plot_series(axes, times, rss_mb, threshold_s, f"RSS of PID {pid}", plotting.RAM_COLOR)
    in_view = (snapshot_times >= times[0]) & (snapshot_times <= times[-1])
    plotting.shade_gaps(axes, snapshot_times[in_view], threshold_s)
    plotting.style_time_axis(axes, times)
    plotting.style_value_axis(axes, "RSS (MiB)")
    axes.set_ylim(0, max(high * 1.08, 1.0))
    subtitle = (
        f"min {low:,.1f} · max {high:,.1f} · spread {high - low:,.1f} MiB"
        f" · {len(times):,} samples"
    )
    plotting.set_titles(axes, f"PID {pid}: {shorten(cmd, TITLE_CMD_WIDTH)}", subtitle)
    return plotting.save_figure(figure, out_dir / PLOT_NAME.format(pid=int(pid)))


def plot_top(
    records: ProcessRecords, top: pd.DataFrame, out_dir: Path, worker: plotting.PlotWorker
) -> list[Path]:
    """One PNG per PID of the table; the gap threshold comes from all snapshots."""
    snapshot_times = records.timestamps  # in time order, one per file: names are unique
    threshold = plotting.gap_threshold_s(snapshot_times)
    pids = [int(pid) for pid in top["PID"]]
    series = records.series(pids)
    jobs = [
        (pid, str(cmd), series[pid], snapshot_times, threshold, out_dir)
        for pid, cmd in zip(pids, top["CMD"], strict=True)
    ]
    return worker.draw(plot_pid, jobs)


def remove_stale_outputs(out_dir: Path, keep_pids: Sequence[int], keep_csv: str) -> list[Path]:
    """Delete what an earlier run left that this table does not have: rss_pid_<PID>.png
    of other PIDs and top<N>_rss_spread.csv of another N, so the folder matches the table."""
    keep = {int(pid) for pid in keep_pids}
    removed: list[Path] = []
    for entry in os.scandir(out_dir):
        plot = _PLOT_NAME_RE.fullmatch(entry.name)
        stale_plot = plot is not None and int(plot.group(1)) not in keep
        stale_table = _TABLE_NAME_RE.fullmatch(entry.name) is not None and entry.name != keep_csv
        if stale_plot or stale_table:
            Path(entry.path).unlink(missing_ok=True)
            removed.append(Path(entry.path))
    return sorted(removed)


def time_range(records: ProcessRecords) -> tuple[datetime, datetime] | None:
    if not records.chunks:
        return None
    first = int(min(chunk.snapshot.min() for chunk in records.chunks))
    last = int(max(chunk.snapshot.max() for chunk in records.chunks))
    return (
        records.timestamps[first].astype(datetime),
        records.timestamps[last].astype(datetime),
    )
