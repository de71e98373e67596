#!/usr/bin/env python3
"""Analyse the system memory snapshots: RAM and swap used over time.

Reads every sys_mem_<YYYYMMDD_HHMMSS>.csv in the dumps dir (UTC), writes
system_metrics.csv and four PNG plots to the out dir, and prints the time span
and a summary of the metrics.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

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
from utils.parser import SYS_PREFIX, TimeWindow
from utils.system_analysis import (
    METRICS_CSV,
    format_summary,
    load_and_compute_metrics,
    plot_system,
    summarize,
    write_metrics_csv,
)

# --- Defaults; flags override them ------------------------------------------------
REPO_ROOT = Path(__file__).resolve().parent.parent
DUMPS_DIR = REPO_ROOT / "dumps" / "time"
OUT_DIR = REPO_ROOT / "plots" / "system"
PROG = "analyze_system"


def analyze_system(
    dumps_dir: Path,
    out_dir: Path,
    window: TimeWindow,
    reporter: Reporter,
    console: Console,
    timer: PhaseTimer,
) -> None:
    """Discover, load, compute, write and plot; raises AnalysisError when there is no data."""
    with timer.phase("discovery"):
        files = discover(dumps_dir, SYS_PREFIX, window, reporter.warn)
    with timer.phase("reading"):
        metrics = load_and_compute_metrics(
            files, reporter.warn, lambda done, total: reporter.progress("reading", done, total)
        )
        reporter.end_progress()
    if metrics.empty:
        raise AnalysisError(f"none of the {len(files)} {SYS_PREFIX}*.csv files could be used")
    with timer.phase("computing"):
        summary = summarize(metrics)
        out_dir.mkdir(parents=True, exist_ok=True)
        csv_path = write_metrics_csv(metrics, out_dir / METRICS_CSV)
    with timer.phase("plotting"):
        plots = plot_system(metrics, out_dir)
    for line in format_summary(summary):
        console.print(line)
    console.print()
    console.print(f"Wrote {csv_path}")
    console.print(f"Wrote {len(plots)} plots: " + ", ".join(str(p) for p in plots))


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog=PROG, description=__doc__.split("\n\n")[0])
    add_common_args(parser, DUMPS_DIR, OUT_DIR)
    args = parser.parse_args(argv)
    window = window_from_args(parser, args)
    return run_analysis(
        PROG,
        lambda reporter, console, timer: analyze_system(
            args.dumps_dir, args.out_dir, window, reporter, console, timer
        ),
        args.out_dir,
        args.timings,
    )


if __name__ == "__main__":
    sys.exit(main())
