#!/usr/bin/env python3
"""Analyse the system memory snapshots: RAM and swap used over time, and when memory runs out.

Reads every sys_mem_<YYYYMMDD_HHMMSS>.csv in the dumps dir (UTC), writes
system_metrics.csv, forecast.json and five PNG plots to the out dir, and prints the
time span, a summary of the metrics (three definitions of "used" RAM side by side)
and a forecast of when MemAvailable would reach zero.
"""

from __future__ import annotations

import argparse
import math
import sys
from collections.abc import Sequence
from pathlib import Path

from utils.console import (
    EXIT_ALERT,
    AnalysisError,
    Console,
    PhaseTimer,
    Reporter,
    add_common_args,
    discover,
    run_analysis,
    window_from_args,
)
from utils.forecast import ForecastStatus
from utils.parser import DISPLAY_FORMAT, SYS_PREFIX, TimeWindow
from utils.system_analysis import (
    FORECAST_JSON,
    METRICS_CSV,
    SystemSummary,
    format_summary,
    load_and_compute_metrics,
    missing_field_notes,
    plot_system,
    summarize,
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


def analyze_system(
    dumps_dir: Path,
    out_dir: Path,
    window: TimeWindow,
    trend_days: float,
    alerts: Alerts,
    reporter: Reporter,
    console: Console,
    timer: PhaseTimer,
) -> int | None:
    """Discover, load, compute, write and plot; raises AnalysisError when there is no data.
    Returns EXIT_ALERT when an alert asked for holds."""
    with timer.phase("discovery"):
        files = discover(dumps_dir, SYS_PREFIX, window, reporter.warn)
    with timer.phase("reading"):
        metrics = load_and_compute_metrics(
            files, reporter.warn, lambda done, total: reporter.progress("reading", done, total)
        )
        reporter.end_progress()
    if metrics.empty:
        raise AnalysisError(f"none of the {len(files)} {SYS_PREFIX}*.csv files could be used")
    for note in missing_field_notes(metrics):
        reporter.note(f"warning: {note}")
    with timer.phase("computing"):
        summary = summarize(metrics, trend_days)
        out_dir.mkdir(parents=True, exist_ok=True)
        csv_path = write_metrics_csv(metrics, out_dir / METRICS_CSV)
        json_path = write_forecast_json(summary.forecast, out_dir / FORECAST_JSON)
    with timer.phase("plotting"):
        plots = plot_system(metrics, out_dir)
    for line in format_summary(summary):
        console.print(line)
    console.print()
    console.print(f"Wrote {csv_path}")
    console.print(f"Wrote {json_path}")
    console.print(f"Wrote {len(plots)} plots: " + ", ".join(str(p) for p in plots))
    raised = alerts.check(summary, float(metrics["RAM_Used_Pct"].iloc[-1]))
    for line in raised:
        reporter.note(f"alert: {line}")
    return EXIT_ALERT if raised else None


class Alerts:
    """The alerts asked for on the command line (None: not asked)."""

    def __init__(self, used_pct: float | None, days: float | None) -> None:
        self.used_pct = used_pct
        self.days = days

    def check(self, summary: SystemSummary, latest_pct: float) -> list[str]:
        """A line for each alert that holds."""
        raised = []
        if self.used_pct is not None and latest_pct >= self.used_pct:
            raised.append(
                f"RAM used (htop) is {latest_pct:.1f}% of MemTotal at"
                f" {summary.last:{DISPLAY_FORMAT}} UTC, at or above --alert-pct {self.used_pct:g}"
            )
        forecast = summary.forecast
        days = forecast.days_to_zero
        if (
            self.days is not None
            and forecast.status is ForecastStatus.FALLING
            and days is not None
            and days <= self.days
        ):
            raised.append(
                f"{forecast.basis} reaches 0 in about {days:,.1f} days (around"
                f" {forecast.zero_date} UTC), within --alert-days {self.days:g}"
            )
        return raised


def positive_number(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not 0 < value < math.inf:
        raise argparse.ArgumentTypeError(f"must be a finite number above 0, got {text}")
    return value


def main(argv: Sequence[str] | None = None) -> int:
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
    args = parser.parse_args(argv)
    window = window_from_args(parser, args)
    alerts = Alerts(args.alert_pct, args.alert_days)
    return run_analysis(
        PROG,
        lambda reporter, console, timer: analyze_system(
            args.dumps_dir, args.out_dir, window, args.trend_days, alerts, reporter, console, timer
        ),
        args.out_dir,
        args.timings,
    )


if __name__ == "__main__":
    sys.exit(main())
