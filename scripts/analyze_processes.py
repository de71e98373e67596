#!/usr/bin/env python3
"""Analyse the per-process snapshots: which PIDs' RSS moved the most, and which processes leak.

Reads every process_mem_<YYYYMMDD_HHMMSS>.csv in the dumps dir (UTC), computes
each PID's RSS spread (max - min), writes the top N to top<N>_rss_spread.csv,
prints them as a table and draws rss_pid_<PID>.png for each. Then judges every
process instance for sustained growth and writes leaks.csv, a table and
leak_<PID>_<first seen>.png for each instance that leaks.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from collect_memory import positive_count
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
from utils.growth import GrowthParams
from utils.parser import DISPLAY_FORMAT, PROCESS_PREFIX, TimeWindow
from utils.plotting import PlotWorker
from utils.process_analysis import (
    LEAKS_CSV,
    compute_rss_spread,
    find_leaks,
    format_leak_table,
    format_top_table,
    leak_plot_calls,
    load_all_records,
    remove_stale_outputs,
    top_plots,
    top_spreads,
    write_leaks_csv,
    write_spread_csv,
)
from utils.system_analysis import format_duration

# --- Defaults; flags override them ------------------------------------------------
REPO_ROOT = Path(__file__).resolve().parent.parent
DUMPS_DIR = REPO_ROOT / "dumps" / "time"
OUT_DIR = REPO_ROOT / "plots" / "processes"
TOP_N = 10
# The leak finder: below this rate a rise is never called a leak. 10 MiB/day is 300 MiB a
# month: a leak that takes a host down within months; slower rises are mostly allocator
# fragmentation and caches that settle, and flagging them would bury the real leaks.
LEAK_MIN_RATE_MB_PER_DAY = 10.0
# ... and an instance observed for less than this is not judged: after the 6-hour warm-up
# it leaves 1.5 days (6 floors) to tell a leak from a start-up ramp or a step.
LEAK_MIN_SPAN_DAYS = 2.0
# From this many plots on, a second process draws half of them.
PARALLEL_PLOTS_FROM = 4
PROG = "analyze_processes"


def analyze_processes(
    dumps_dir: Path,
    out_dir: Path,
    top_n: int,
    match: str | None,
    window: TimeWindow,
    growth: GrowthParams,
    fail_on_leak: bool,
    reporter: Reporter,
    console: Console,
    timer: PhaseTimer,
) -> int | None:
    """Discover, load, compute, write and plot; raises AnalysisError when there is no data.
    Returns EXIT_ALERT when asked to (fail_on_leak) and an instance leaks."""
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
        span = records.time_range()
        if span is None:
            raise AnalysisError(f"no command line contains {match!r}")
        with timer.phase("computing"):
            spreads = compute_rss_spread(records)
            top = top_spreads(spreads, top_n)
            out_dir.mkdir(parents=True, exist_ok=True)
            csv_path = write_spread_csv(top, out_dir / f"top{top_n}_rss_spread.csv")
        with timer.phase("growth"):
            leaks = find_leaks(records, growth)
            leaks_path = write_leaks_csv(leaks, out_dir / LEAKS_CSV)
        with timer.phase("plotting"):
            calls = top_plots(records, top, out_dir)
            drawn = worker.draw([*calls, *leak_plot_calls(records, leaks, out_dir)])
            plots, leak_plots = drawn[: len(calls)], drawn[len(calls) :]
            removed = remove_stale_outputs(out_dir, [*plots, *leak_plots], csv_path.name)

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
    duration = format_duration((span[1] - span[0]).total_seconds())
    judged = f"{len(records.instances().pid):,} process instances over {duration}"
    if leaks:
        console.print(f"Sustained growth (leaks): {len(leaks)} of {judged}, fastest first")
        console.print()
        for line in format_leak_table(leaks):
            console.print(line)
    else:
        console.print(f"No process shows sustained growth ({judged} judged)")
    console.print()
    console.print(f"Wrote {csv_path}")
    console.print(f"Wrote {leaks_path}")
    console.print(f"Wrote {len(plots)} plots: {out_dir}/rss_pid_<PID>.png")
    if leak_plots:
        plural = "s" if len(leak_plots) > 1 else ""
        console.print(
            f"Wrote {len(leak_plots)} leak plot{plural}: {out_dir}/leak_<PID>_<first seen>.png"
        )
    if removed:
        console.print(f"Removed {len(removed)} file(s) of an earlier run not in these tables")
    if fail_on_leak and leaks:
        reporter.note(f"{len(leaks)} process instance(s) leak; exit status {EXIT_ALERT}")
        return EXIT_ALERT
    return None


def non_negative(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not 0 <= value < float("inf"):
        raise argparse.ArgumentTypeError(f"must be a finite number >= 0, got {text}")
    return value


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
    parser.add_argument(
        "--min-growth",
        type=non_negative,
        default=LEAK_MIN_RATE_MB_PER_DAY,
        metavar="MIB_PER_DAY",
        help="the least growth called a leak, in MiB per day"
        f" (default {LEAK_MIN_RATE_MB_PER_DAY:g})",
    )
    parser.add_argument(
        "--min-days",
        type=non_negative,
        default=LEAK_MIN_SPAN_DAYS,
        metavar="DAYS",
        help="judge only process instances observed for at least this many days"
        f" (default {LEAK_MIN_SPAN_DAYS:g})",
    )
    parser.add_argument(
        "--fail-on-leak",
        action="store_true",
        help=f"exit with status {EXIT_ALERT} when a process instance leaks,"
        " after everything is written (for cron)",
    )
    args = parser.parse_args(argv)
    window = window_from_args(parser, args)
    growth = GrowthParams(min_rate_mb_per_day=args.min_growth, min_span_days=args.min_days)
    return run_analysis(
        PROG,
        lambda reporter, console, timer: analyze_processes(
            args.dumps_dir,
            args.out_dir,
            args.top,
            args.match,
            window,
            growth,
            args.fail_on_leak,
            reporter,
            console,
            timer,
        ),
        args.out_dir,
        args.timings,
    )


if __name__ == "__main__":
    sys.exit(main())
