#!/usr/bin/env python3
"""Analyse the system memory snapshots: RAM and swap used over time, and when memory runs out.

Reads every sys_mem_<YYYYMMDD_HHMMSS>.csv in the dumps dir (UTC), writes
system_metrics.csv, memory_breakdown.csv, forecast.json and seven PNG plots (none with
--no-plots) to the out dir, and prints the time span, the OOM kills, a summary of the
metrics (three definitions of "used" RAM side by side) and a forecast of when MemAvailable
would reach zero.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from utils.console import (
    EXIT_ALERT,
    Session,
    add_common_args,
    add_kernel_log_args,
    add_plots_arg,
    add_summary_args,
    kernel_logs_from_args,
    positive_number,
    run_analysis,
    where_from_args,
)
from utils.core import defaults
from utils.judge.breakdown import add_compare_arg, format_comparison
from utils.outputs.prometheus import (
    Textfile,
    add_prometheus_args,
    snapshot_metric,
    system_metrics,
    textfile_from_args,
)
from utils.parser import Where
from utils.system_analysis import (
    SystemOptions,
    compute_system,
    format_summary,
    write_system_files,
)

# --- Defaults; flags override them ------------------------------------------------
DUMPS_DIR = defaults.DUMPS_DIR
OUT_DIR = defaults.SYSTEM_OUT_DIR
TREND_DAYS = defaults.TREND_DAYS  # the forecast's window, days before the last snapshot
PLOTS = True  # draw the PNGs; --no-plots writes the answers only (an hourly cron run)
# Where the day summaries are kept; None: a .summaries folder in the dumps dir.
SUMMARY_DIR: Path | None = None
SUMMARIES = True  # keep and use day summaries; --no-summaries reads every snapshot
PROG = "analyze_system"
PROG_LABEL = "system"  # the `analysis` label of its Prometheus metrics


def analyze_system(
    where: Where,
    options: SystemOptions,
    session: Session,
    textfile: Textfile | None = None,
    plots: bool = PLOTS,
) -> int | None:
    """Compute, then write the CSVs, the JSON and (if `plots`) the plots, then print the
    summary; EXIT_ALERT when an alert asked for holds. The metrics go to the textfile, if
    any. Without plots no PNG is drawn, and none already in the out dir is touched."""
    result = compute_system(where, options, session)
    for note in result.notes:
        session.diagnostics.note(f"warning: {note}")
    with session.timer.phase("computing"):
        written = write_system_files(result, where.out_dir)
    drawn: list[Path] = []
    if plots:
        with session.timer.phase("plotting"):
            # Here, not at the top: a --no-plots run never loads matplotlib.
            from utils.outputs.system_plots import plot_system  # noqa: PLC0415

            drawn = plot_system(result, where.out_dir)
    for line in format_summary(result.summary):
        session.console.print(line)
    if result.comparison is not None:
        session.console.print()
        for line in format_comparison(result.comparison):
            session.console.print(line)
    session.console.print()
    for path in written:
        session.console.print(f"Wrote {path}")
    if plots:
        session.console.print(f"Wrote {len(drawn)} plots: " + ", ".join(str(p) for p in drawn))
    for line in result.alerts:
        session.diagnostics.note(f"alert: {line}")
    if textfile is not None:
        textfile.add([snapshot_metric(result.summary.last), *system_metrics(result)])
    return EXIT_ALERT if result.alerts else None


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=PROG, description=__doc__.split("\n\n")[0])
    add_common_args(parser, DUMPS_DIR, OUT_DIR)
    add_kernel_log_args(parser)
    parser.add_argument(
        "--trend-days",
        type=positive_number,
        default=TREND_DAYS,
        metavar="DAYS",
        help="the forecast's longest window: the days since the last level shift, at most DAYS"
        " (default %(default)g)",
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
        help=f"exit with status {EXIT_ALERT} when MemAvailable's fall is significant and reaches 0"
        " within DAYS days, after everything is written",
    )
    add_compare_arg(parser, "what changed")
    parser.add_argument(
        "--fail-on-oom",
        action="store_true",
        help=f"exit with status {EXIT_ALERT} when the OOM killer killed in the window, after"
        " everything is written",
    )
    add_plots_arg(parser, PLOTS, "console, CSVs, JSON, the textfile, the exit status")
    add_summary_args(parser, SUMMARY_DIR, SUMMARIES)
    add_prometheus_args(parser)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    where = where_from_args(parser, args)
    compare = None if args.compare is None else (args.compare[0], args.compare[1])
    options = SystemOptions(
        args.trend_days,
        args.alert_pct,
        args.alert_days,
        args.fail_on_oom,
        compare,
        kernel_logs_from_args(args),
    )
    textfile = textfile_from_args(args, PROG_LABEL)
    return run_analysis(
        PROG,
        lambda session: analyze_system(where, options, session, textfile, args.plots),
        args.out_dir,
        args.timings,
        None if textfile is None else textfile.finish,
    )


if __name__ == "__main__":
    sys.exit(main())
