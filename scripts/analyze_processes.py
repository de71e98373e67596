#!/usr/bin/env python3
"""Analyse the per-process snapshots: which PIDs' RSS moved the most.

Reads every process_mem_<YYYYMMDD_HHMMSS>.csv in the dumps dir (UTC), computes
each PID's RSS spread (max - min), writes the top N to top<N>_rss_spread.csv,
prints them as a table and draws rss_pid_<PID>.png for each.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from collect_memory import positive_count
from utils.console import (
    AnalysisError,
    Console,
    PhaseTimer,
    Reporter,
    add_common_args,
    discover,
    run_analysis,
    window_from_args,
)
from utils.parser import DISPLAY_FORMAT, PROCESS_PREFIX, TimeWindow
from utils.plotting import PlotWorker
from utils.process_analysis import (
    compute_rss_spread,
    format_top_table,
    load_all_records,
    plot_top,
    remove_stale_outputs,
    time_range,
    top_spreads,
    write_spread_csv,
)

# --- Defaults; flags override them ------------------------------------------------
REPO_ROOT = Path(__file__).resolve().parent.parent
DUMPS_DIR = REPO_ROOT / "dumps" / "time"
OUT_DIR = REPO_ROOT / "plots" / "processes"
TOP_N = 10
# From this many plots on, a second process draws half of them.
PARALLEL_PLOTS_FROM = 4
PROG = "analyze_processes"


def analyze_processes(
    dumps_dir: Path,
    out_dir: Path,
    top_n: int,
    match: str | None,
    window: TimeWindow,
    reporter: Reporter,
    console: Console,
    timer: PhaseTimer,
) -> None:
    """Discover, load, compute, write and plot; raises AnalysisError when there is no data."""
    # Fork the plot worker first, while this process holds no rows (not even the
    # list of files) and runs no threads.
    with PlotWorker(enabled=top_n >= PARALLEL_PLOTS_FROM) as worker:
        with timer.phase("discovery"):
            files = discover(dumps_dir, PROCESS_PREFIX, window, reporter.warn)
        with timer.phase("reading"):
            records = load_all_records(
                files,
                reporter.warn,
                lambda done, total: reporter.progress("reading", done, total),
                match,
            )
            reporter.end_progress()
        if records.snapshots_read == 0:
            raise AnalysisError(
                f"none of the {len(files)} {PROCESS_PREFIX}*.csv files could be used"
            )
        if not records.chunks:
            raise AnalysisError(f"no command line contains {match!r}")
        with timer.phase("computing"):
            spreads = compute_rss_spread(records)
            top = top_spreads(spreads, top_n)
            out_dir.mkdir(parents=True, exist_ok=True)
            csv_path = write_spread_csv(top, out_dir / f"top{top_n}_rss_spread.csv")
        with timer.phase("plotting"):
            plots = plot_top(records, top, out_dir, worker)
            removed = remove_stale_outputs(out_dir, list(top["PID"]), csv_path.name)

    span = time_range(records)
    assert span is not None  # records.chunks is not empty
    matching = f" whose command line contains {match!r}" if match is not None else ""
    console.print(
        f"Top {len(top)} of {len(spreads):,} PIDs{matching} by RSS spread (MiB),"
        f" {records.snapshots_read:,} snapshots from {span[0]:{DISPLAY_FORMAT}}"
        f" to {span[1]:{DISPLAY_FORMAT}} UTC"
    )
    console.print()
    for line in format_top_table(top):
        console.print(line)
    console.print()
    console.print(f"Wrote {csv_path}")
    console.print(f"Wrote {len(plots)} plots: {out_dir}/rss_pid_<PID>.png")
    if removed:
        console.print(f"Removed {len(removed)} file(s) of an earlier run not in this table")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog=PROG, description=__doc__.split("\n\n")[0])
    add_common_args(parser, DUMPS_DIR, OUT_DIR)
    parser.add_argument(
        "--top",
        type=positive_count,
        default=TOP_N,
        metavar="N",
        help=f"how many PIDs go into the table and get a plot (default {TOP_N})",
    )
    parser.add_argument(
        "--match",
        metavar="TEXT",
        help="only rows whose CMD contains TEXT (plain substring, case-sensitive),"
        " before anything is computed",
    )
    args = parser.parse_args(argv)
    window = window_from_args(parser, args)

    return run_analysis(
        PROG,
        lambda reporter, console, timer: analyze_processes(
            args.dumps_dir, args.out_dir, args.top, args.match, window, reporter, console, timer
        ),
        args.out_dir,
        args.timings,
    )


if __name__ == "__main__":
    sys.exit(main())
