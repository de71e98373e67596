#!/usr/bin/env python3
"""Analyse the per-process snapshots: which PIDs' RSS moved the most, and which processes leak.

Reads every process_mem_<YYYYMMDD_HHMMSS>.csv in the dumps dir (UTC), computes
each PID's RSS spread (max - min), writes the top N to top<N>_rss_spread.csv,
prints them as a table and draws rss_pid_<PID>.png for each. Then judges every
process instance for sustained growth and writes leaks.csv, a table and
leak_<PID>_<first seen>.png for each instance that leaks; and names the OOM killer's
victims (the sys_mem files count the kills) in oom_kills.csv and a table.
"""

from __future__ import annotations

import argparse
import contextlib
import itertools
import sys
from collections.abc import Sequence
from contextlib import AbstractContextManager
from pathlib import Path
from typing import TYPE_CHECKING

from utils.console import (
    EXIT_ALERT,
    Session,
    add_common_args,
    add_kernel_log_args,
    add_plots_arg,
    add_summary_args,
    duration_arg,
    kernel_logs_from_args,
    non_negative,
    positive_count,
    rate_arg,
    run_analysis,
    where_from_args,
)
from utils.core import defaults
from utils.core.text import plural
from utils.core.units import DAY_S
from utils.judge.breakdown import add_compare_arg
from utils.judge.growth import GrowthParams
from utils.outputs.process_console import format_result
from utils.outputs.process_tables import SPREAD_CSV, stale_tables, write_tables
from utils.outputs.prometheus import (
    Textfile,
    add_prometheus_args,
    process_metrics,
    snapshot_metric,
    textfile_from_args,
)
from utils.outputs.service_console import format_services
from utils.outputs.service_tables import write_services_csv
from utils.parser import Where
from utils.process_analysis import ProcessOptions, ProcessResult, compute_processes
from utils.read.day_workers import DayWorkers, add_read_workers_arg, default_read_workers
from utils.reduce.group_totals import GROUP_BY as GROUP_CHOICES

if TYPE_CHECKING:  # imported where the plots are drawn (see plot_worker)
    from utils.outputs.plotting import PlotWorker

# --- Defaults; flags override them ------------------------------------------------
DUMPS_DIR = defaults.DUMPS_DIR
OUT_DIR = defaults.PROCESS_OUT_DIR
TOP_N = defaults.TOP_N  # PIDs in the spread table, each with a plot
LEAK_MIN_RATE_MB_PER_DAY = defaults.LEAK_MIN_RATE_MB_PER_DAY  # below this, never a leak
LEAK_MIN_RISE_MB = defaults.LEAK_MIN_RISE_MB  # ... nor a smaller rise over its time scale (0: off)
# Instances observed less are never judged; None: LEAK_MIN_SPAN_DAYS, or most of a
# collection shorter than that.
LEAK_MIN_SPAN_S: float | None = None
LEAK_MIN_SPAN_DAYS = defaults.LEAK_MIN_SPAN_DAYS
# From this many plots on, a second process draws half of them.
PARALLEL_PLOTS_FROM = 4
PROGRAM_PLOTS = 5  # the programs that grew most get a plot each
PLOTS = True  # draw the PNGs; --no-plots: only the console, the CSVs and the exit status
GROUP_BY = "program"  # what memory is totalled by: program or user
PROMETHEUS_TOP = defaults.PROMETHEUS_TOP  # leaks in the Prometheus textfile, fastest first
# Where the day summaries are kept; None: a .summaries folder in the dumps dir.
SUMMARY_DIR: Path | None = None
SUMMARIES = True  # keep and use day summaries; --no-summaries reads every snapshot
# Processes that read the days not summarised, one per core (1: this process alone).
READ_WORKERS = default_read_workers()
# The default's workers read only a read of at least this many MB (an explicit --read-workers
# always forks them): below it, a few days of a small host, the forks cost more than they save.
READ_WORKERS_FROM_MB = 32
PROG = "analyze_processes"
PROG_LABEL = "processes"  # the `analysis` label of its Prometheus metrics


def write_outputs(result: ProcessResult, out_dir: Path, worker: PlotWorker | None) -> list[str]:
    """The CSVs and, with a worker, the plots; what was written, as lines for the console.
    Without one no PNG is drawn or deleted."""
    out_dir.mkdir(parents=True, exist_ok=True)
    written = write_tables(result, out_dir) + write_services_csv(result.services, out_dir)
    removed = stale_tables(out_dir, SPREAD_CSV.format(top_n=result.options.top_n))
    lines = [f"Wrote {path}" for path in written]
    if worker is not None:
        from utils.outputs import service_plots  # noqa: PLC0415 (see plot_worker)
        from utils.outputs.process_plots import stale_plots  # noqa: PLC0415 (see plot_worker)

        drawn, drew = draw_plots(result, out_dir, worker)
        services, drew_services = service_plots.draw_service_plots(result.services, out_dir, worker)
        lines += drew + drew_services
        removed += stale_plots(out_dir, drawn) + service_plots.stale_service_plots(
            out_dir, services
        )
    for path in removed:
        path.unlink(missing_ok=True)
    if removed:
        lines.append(f"Removed {len(removed)} file(s) of an earlier run not in these tables")
    return lines


def draw_plots(
    result: ProcessResult, out_dir: Path, worker: PlotWorker
) -> tuple[list[Path], list[str]]:
    """Draw every plot of a result: the PNGs, and what was drawn as lines for the console."""
    from utils.outputs.process_plots import plot_calls  # noqa: PLC0415 (see plot_worker)

    kinds = plot_calls(result, out_dir)
    drawn = worker.draw([call for calls in kinds for call in calls])
    cuts = itertools.accumulate(len(calls) for calls in kinds)
    plots, leak_plots, program_plots = (drawn[a:b] for a, b in itertools.pairwise([0, *cuts]))
    lines = [f"Wrote {plural(len(plots), 'plot')}: {out_dir}/rss_pid_<PID>.png"]
    for made, what, where in (
        (leak_plots, "leak plot", "leak_<PID>_<first seen>.png"),
        (program_plots, "program plot", "program_<name>.png"),
    ):
        if made:
            lines.append(f"Wrote {plural(len(made), what)}: {out_dir}/{where}")
    return drawn, lines


def analyze_processes(
    where: Where,
    options: ProcessOptions,
    session: Session,
    textfile: Textfile | None = None,
    read_workers: int | None = 1,
) -> int | None:
    """Compute, then write the CSVs and the plots, then print the tables; EXIT_ALERT when
    asked to (--fail-on-leak, --fail-on-oom, --alert-days) and an instance or a service
    leaks, a process was OOM-killed or a service nears its limit. The
    metrics go to the textfile, if any. read_workers: processes that read the days (1: this
    one; None: READ_WORKERS, for a read of READ_WORKERS_FROM_MB or more)."""
    # The reading workers are forked when the first days are read without a summary (a
    # re-run with every closed day summarised forks none). The plot worker is forked once
    # the reading is done and the workers are gone: it shares this process's pages, and
    # neither matplotlib nor it costs memory while the days are read.
    count, min_bytes = (
        (READ_WORKERS, READ_WORKERS_FROM_MB * 1e6) if read_workers is None else (read_workers, 0)
    )
    with DayWorkers(count, session.diagnostics.note, min_bytes) as workers:
        result = compute_processes(where, options, session, workers)
    with session.timer.phase("plotting"), plot_worker(options) as worker:
        written = write_outputs(result, where.out_dir, worker)
    for line in [*format_result(result), "", *format_services(result.services), "", *written]:
        session.console.print(line)
    for line in result.alerts:
        session.diagnostics.note(line)
    if textfile is not None:
        metrics = process_metrics(result, textfile.top)
        textfile.add([snapshot_metric(result.span[1]), *metrics])
    return EXIT_ALERT if result.alerts else None


def plot_worker(options: ProcessOptions) -> AbstractContextManager[PlotWorker | None]:
    """The plot worker (a second process from PARALLEL_PLOTS_FROM plots on), or None under
    --no-plots. The plotting modules are imported here, not at the top: a run that draws
    nothing (an hourly cron run) never loads matplotlib."""
    if not options.plots:
        return contextlib.nullcontext(None)
    from utils.outputs.plotting import PlotWorker  # noqa: PLC0415

    return PlotWorker(enabled=options.top_n >= PARALLEL_PLOTS_FROM)


def add_leak_args(parser: argparse.ArgumentParser) -> None:
    """The leak finder's limits: --min-growth, --min-rise, --min-span (or --min-days)."""
    parser.add_argument(
        "--min-growth",
        type=rate_arg,
        default=LEAK_MIN_RATE_MB_PER_DAY,
        metavar="RATE",
        help="the least growth rate called a leak: 10 (MiB/day), 10MiB/d, 40MiB/h"
        f" (default {LEAK_MIN_RATE_MB_PER_DAY:g} MiB/day)",
    )
    parser.add_argument(
        "--min-rise",
        type=non_negative,
        default=LEAK_MIN_RISE_MB,
        metavar="MIB",
        help="an absolute least growth called a leak over the time an instance is judged on"
        " (the shorter of its span and 2 days), in MiB, on top of the least rise relative to"
        f" the instance's size and noise (default {LEAK_MIN_RISE_MB:g}: off)",
    )
    span = parser.add_mutually_exclusive_group()
    span.add_argument(
        "--min-span",
        type=duration_arg,
        default=LEAK_MIN_SPAN_S,
        metavar="DURATION",
        help="judge only process instances observed this long: 90s, 10m, 2h, 2d (default:"
        f" {LEAK_MIN_SPAN_DAYS:g} days, or 3/4 of a shorter collection)",
    )
    span.add_argument(
        "--min-days",
        dest="min_span",
        type=lambda text: non_negative(text) * DAY_S,
        metavar="DAYS",
        help="the same as --min-span, in days",
    )


def add_program_args(parser: argparse.ArgumentParser) -> None:
    """The totals per program: --group-by and --compare."""
    parser.add_argument(
        "--group-by",
        choices=GROUP_CHOICES,
        default=GROUP_BY,
        help="total memory per program (a worker pool is one) or per user" " (default %(default)s)",
    )
    add_compare_arg(parser, "the totals per program compared")


def add_alert_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--fail-on-oom",
        action="store_true",
        help=f"exit with status {EXIT_ALERT} when the OOM killer killed in the window,"
        " after everything is written",
    )
    parser.add_argument(
        "--alert-days",
        type=non_negative,
        metavar="DAYS",
        help=f"exit with status {EXIT_ALERT} when a service (memory cgroup) reaches its limit"
        " within DAYS days at the fast end of its range, after everything is written",
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=PROG, description=__doc__.split("\n\n")[0])
    add_common_args(parser, DUMPS_DIR, OUT_DIR)
    add_kernel_log_args(parser)
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
    add_leak_args(parser)
    parser.add_argument(
        "--fail-on-leak",
        action="store_true",
        help=f"exit with status {EXIT_ALERT} when a process instance leaks,"
        " after everything is written (for cron)",
    )
    add_program_args(parser)
    add_alert_args(parser)
    add_plots_arg(parser, PLOTS, "console, CSVs, the textfile, the exit status")
    add_summary_args(parser, SUMMARY_DIR, SUMMARIES)
    add_read_workers_arg(parser, READ_WORKERS, READ_WORKERS_FROM_MB)
    add_prometheus_args(parser, PROMETHEUS_TOP)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    where = where_from_args(parser, args)
    options = ProcessOptions(
        top_n=args.top,
        match=args.match,
        growth=GrowthParams(
            min_rate_mb_per_day=args.min_growth,
            min_span_s=args.min_span,
            min_rise_mb=args.min_rise,
        ),
        fail_on_leak=args.fail_on_leak,
        fail_on_oom=args.fail_on_oom,
        group_by=args.group_by,
        compare=None if args.compare is None else (args.compare[0], args.compare[1]),
        read_users=args.prometheus_textfile is not None,  # the leaks' `user` label
        plots=args.plots,
        program_plots=PROGRAM_PLOTS,
        kernel_logs=kernel_logs_from_args(args),
        alert_days=args.alert_days,
    )
    textfile = textfile_from_args(args, PROG_LABEL)
    return run_analysis(
        PROG,
        lambda session: analyze_processes(where, options, session, textfile, args.read_workers),
        args.out_dir,
        args.timings,
        None if textfile is None else textfile.finish,
    )


if __name__ == "__main__":
    sys.exit(main())
