#!/usr/bin/env python3
"""Analyse the system memory snapshots: RAM and swap used over time, and when memory runs out.

Reads every sys_mem_<YYYYMMDD_HHMMSS>.csv in the dumps dir (UTC), writes
system_metrics.csv, forecast.json and five PNG plots to the out dir, and prints the
time span, a summary of the metrics (three definitions of "used" RAM side by side)
and a forecast of when MemAvailable would reach zero.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from utils import memory
from utils.console import (
    EXIT_ALERT,
    Session,
    add_common_args,
    positive_number,
    run_analysis,
    window_from_args,
)
from utils.parser import SYS_PREFIX, NoDataError, Where, describe_sources, discover
from utils.system_analysis import (
    FORECAST_JSON,
    METRICS_CSV,
    SystemOptions,
    SystemResult,
    format_summary,
    load_and_compute_metrics,
    plot_system,
    system_result,
    write_forecast_json,
    write_metrics_csv,
)

# --- Defaults; flags override them ------------------------------------------------
REPO_ROOT = Path(__file__).resolve().parent.parent
DUMPS_DIR = REPO_ROOT / "dumps" / "time"
OUT_DIR = REPO_ROOT / "plots" / "system"
# The forecast looks at this many days before the last snapshot: a week holds every day
# of the week once, and is recent enough to be today's trend.
TREND_DAYS = 7.0
PROG = "analyze_system"


def compute(where: Where, options: SystemOptions, session: Session) -> SystemResult:
    """Discover, read and compute; NoDataError when there is nothing to analyse."""
    reporter, timer = session.reporter, session.timer
    with timer.phase("discovery"):
        files = discover(where.dumps_dir, SYS_PREFIX, where.window, reporter.warn)
        memory.freeze()  # the list of files lives until the end
    with timer.phase("reading"):
        metrics = load_and_compute_metrics(files, reporter.warn, reporter.reading)
        reporter.end_progress()
    if metrics.empty:
        raise NoDataError(f"none of the {describe_sources(files, SYS_PREFIX)} could be used")
    with timer.phase("computing"):
        return system_result(metrics, options)


def analyze_system(where: Where, options: SystemOptions, session: Session) -> int | None:
    """Compute, then write the CSV, the JSON and the plots, then print the summary;
    EXIT_ALERT when an alert asked for holds."""
    result = compute(where, options, session)
    for note in result.notes:
        session.reporter.note(f"warning: {note}")
    with session.timer.phase("computing"):
        where.out_dir.mkdir(parents=True, exist_ok=True)
        written = [
            write_metrics_csv(result.metrics, where.out_dir / METRICS_CSV),
            write_forecast_json(result.summary.forecast, where.out_dir / FORECAST_JSON),
        ]
    with session.timer.phase("plotting"):
        plots = plot_system(result.metrics, where.out_dir)
    for line in format_summary(result.summary):
        session.console.print(line)
    session.console.print()
    for path in written:
        session.console.print(f"Wrote {path}")
    session.console.print(f"Wrote {len(plots)} plots: " + ", ".join(str(p) for p in plots))
    for line in result.alerts:
        session.reporter.note(f"alert: {line}")
    return EXIT_ALERT if result.alerts else None


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=PROG, description=__doc__.split("\n\n")[0])
    add_common_args(parser, DUMPS_DIR, OUT_DIR)
    parser.add_argument(
        "--trend-days",
        type=positive_number,
        default=TREND_DAYS,
        metavar="DAYS",
        help="forecast from the last DAYS days of snapshots (default %(default)g)",
    )
    parser.add_argument(
        "--alert-pct",
        type=positive_number,
        metavar="PCT",
        help=f"exit with status {EXIT_ALERT} when the latest RAM used (htop) is at least PCT"
        " percent of MemTotal, after everything is written",
    )
    parser.add_argument(
        "--alert-days",
        type=positive_number,
        metavar="DAYS",
        help=f"exit with status {EXIT_ALERT} when the forecast has MemAvailable reach 0"
        " within DAYS days, after everything is written",
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    where = Where(args.dumps_dir, window_from_args(parser, args), args.out_dir)
    options = SystemOptions(args.trend_days, args.alert_pct, args.alert_days)
    return run_analysis(
        PROG,
        lambda session: analyze_system(where, options, session),
        args.out_dir,
        args.timings,
    )


if __name__ == "__main__":
    sys.exit(main())
