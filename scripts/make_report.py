#!/usr/bin/env python3
"""Write both analyses into one self-contained HTML file, to copy and open anywhere.

Computes the system and the process analysis in one process (as analyze_system.py and
analyze_processes.py do, with their defaults), draws their plots into a temporary folder
and embeds them, and writes one HTML page (default plots/report.html): what was analysed,
the system summary and forecast, the system plots, the leak table and the top-N RSS spread
table with their plots, and the exit statuses the analyses' alert flags would give. The
page needs no network, no server and no other file. Exit status 1 when neither analysis
has data; the alerts are the analyses' own (their flags), so this exits 0 otherwise.
"""

from __future__ import annotations

import argparse
import shlex
import sys
import tempfile
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import NamedTuple, TypeVar

from utils.console import (
    Session,
    add_dumps_dir_arg,
    add_kernel_log_args,
    add_summary_args,
    add_window_args,
    kernel_logs_from_args,
    positive_count,
    run_analysis,
    summary_dir_from_args,
    window_from_args,
)
from utils.core import defaults
from utils.core.atomic_files import write_text_atomically
from utils.judge.growth import GrowthParams
from utils.outputs.plotting import PlotCall, PlotWorker
from utils.outputs.process_plots import leak_plot_calls, top_plots
from utils.outputs.prometheus import (
    Textfile,
    add_prometheus_args,
    part_metric,
    process_metrics,
    snapshot_metric,
    system_metrics,
    textfile_from_args,
)
from utils.outputs.report import Missing, Plot, ProcessPart, ReportData, SystemPart, render_report
from utils.outputs.service_plots import service_plot_calls
from utils.outputs.system_plots import plot_calls as system_plot_calls
from utils.parser import NoDataError, TimeWindow, Where
from utils.process_analysis import ProcessOptions, ProcessResult, compute_processes
from utils.reduce.day_summaries import SummaryChangedError
from utils.system_analysis import SystemOptions, SystemResult, compute_system

# --- Defaults; flags override them (the analyses' own come from where theirs do) ----
DUMPS_DIR = defaults.DUMPS_DIR
OUT_FILE = defaults.REPORT_FILE
TOP_N = defaults.TOP_N
PROMETHEUS_TOP = defaults.PROMETHEUS_TOP  # leaks in the Prometheus textfile, fastest first
# Where the day summaries are kept; None: a .summaries folder in the dumps dir.
SUMMARY_DIR: Path | None = None
SUMMARIES = True  # keep and use day summaries; --no-summaries reads every snapshot
PROG = "make_report"
PROG_LABEL = "report"  # the `analysis` label of its Prometheus metrics

Result = TypeVar("Result")


class Page(NamedTuple):
    """Which snapshots to read and where the page goes."""

    dumps_dir: Path
    window: TimeWindow
    out: Path
    summary_dir: Path | None = None  # the day summaries' folder; None: none kept


class Options(NamedTuple):
    """Each analysis's options: the scripts' defaults, and --top and --match."""

    system: SystemOptions
    processes: ProcessOptions


def attempt(compute: Callable[[], Result]) -> Result | Missing:
    """The result, or why there is none: one analysis without data leaves the other's."""
    try:
        return compute()
    except SummaryChangedError:
        raise  # not a part without data: the whole run stops, on one line, and is run again
    except NoDataError as err:
        return Missing(str(err))


def compute_both(
    page: Page, options: Options, session: Session
) -> tuple[SystemResult | Missing, ProcessResult | Missing]:
    """Both analyses' results; NoDataError (one line) when neither has data."""
    analysed = Where(page.dumps_dir, page.window, page.out.parent, summary_dir=page.summary_dir)
    system = attempt(lambda: compute_system(analysed, options.system, session))
    processes = attempt(lambda: compute_processes(analysed, options.processes, session))
    if isinstance(system, Missing) and isinstance(processes, Missing):
        reasons = dict.fromkeys([system.reason, processes.reason])  # once if the same
        raise NoDataError("; ".join(reasons))
    return system, processes


def plot_calls(
    system: SystemResult | Missing, processes: ProcessResult | Missing, folder: Path
) -> tuple[list[PlotCall], list[PlotCall], list[PlotCall]]:
    """The system plots, the per-PID plots and the leak plots, as the analyses draw them."""
    system_calls: list[PlotCall] = []
    if not isinstance(system, Missing):
        system_calls = system_plot_calls(system, folder)
    if isinstance(processes, Missing):
        return system_calls, [], []
    pid_calls = top_plots(processes, folder)
    leak_calls = leak_plot_calls(processes, folder) + service_plot_calls(processes.services, folder)
    return system_calls, pid_calls, leak_calls


def draw_parts(
    system: SystemResult | Missing, processes: ProcessResult | Missing, worker: PlotWorker
) -> tuple[SystemPart | Missing, ProcessPart | Missing]:
    """Every plot in one batch (the worker draws every other one), read back as PNG bytes."""
    with tempfile.TemporaryDirectory(prefix=f"{PROG}-") as temp:
        system_calls, pid_calls, leak_calls = plot_calls(system, processes, Path(temp))
        paths = worker.draw([*system_calls, *pid_calls, *leak_calls])
        plots = tuple(Plot(path.name, path.read_bytes()) for path in paths)
    cut = len(system_calls)
    cut_leaks = cut + len(pid_calls)
    system_part = system if isinstance(system, Missing) else SystemPart(system, plots[:cut])
    if isinstance(processes, Missing):
        return system_part, processes
    leaks = cut_leaks + len(processes.plots.leaks)
    return system_part, ProcessPart(
        processes, plots[cut:cut_leaks], plots[cut_leaks:leaks], plots[leaks:]
    )


def export(
    system: SystemResult | Missing, processes: ProcessResult | Missing, textfile: Textfile
) -> None:
    """Both analyses' metrics, as theirs; the last snapshot is the later of the two."""
    lasts = []
    if isinstance(system, SystemResult):
        lasts.append(system.summary.last.to_pydatetime())
        textfile.add(system_metrics(system))
    if isinstance(processes, ProcessResult):
        lasts.append(processes.span[1])
        # The OOM kills once: the system part's count them where both have them.
        oom = not isinstance(system, SystemResult) or system.ooms is None
        textfile.add(process_metrics(processes, textfile.top, oom))
    available = {"system": isinstance(system, SystemResult)}
    available["processes"] = isinstance(processes, ProcessResult)
    textfile.add([snapshot_metric(max(lasts)), part_metric(available)])


def make_report(
    page: Page, options: Options, session: Session, textfile: Textfile | None = None
) -> None:
    """Compute both analyses, draw their plots, write the page and say where it is; the
    metrics go to the textfile, if any."""
    # Fork the plot worker first, while this process holds no rows and runs no threads.
    with PlotWorker() as worker:
        system, processes = compute_both(page, options, session)
        with session.timer.phase("plotting"):
            system_part, process_part = draw_parts(system, processes, worker)
    if isinstance(system, SystemResult):
        for note in system.notes:
            session.diagnostics.note(f"warning: {note}")
    data = ReportData(
        dumps_dir=page.dumps_dir,
        window=page.window,
        system=system_part,
        processes=process_part,
        skipped=tuple(session.diagnostics.skipped),
        command=shlex.join(sys.argv),
        made_at=datetime.now(UTC).replace(tzinfo=None),
    )
    with session.timer.phase("computing"):
        page.out.parent.mkdir(parents=True, exist_ok=True)
        write_text_atomically(page.out, render_report(data))
    for part in (system_part, process_part):
        if isinstance(part, Missing):
            session.diagnostics.note(f"warning: {part.reason}; the report says so")
    size = page.out.stat().st_size
    session.console.print(f"Wrote {page.out} ({size / 1e6:.1f} MB)")
    if textfile is not None:
        export(system, processes, textfile)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=PROG, description=__doc__.split("\n\n")[0])
    add_dumps_dir_arg(parser, DUMPS_DIR)
    parser.add_argument(
        "--out",
        type=Path,
        default=OUT_FILE,
        metavar="FILE",
        help=f"the HTML file to write, its folder created if missing (default {OUT_FILE})",
    )
    add_window_args(parser)
    parser.add_argument(
        "--top",
        type=positive_count,
        default=TOP_N,
        metavar="N",
        help=f"how many PIDs go into the spread table (default {TOP_N})",
    )
    parser.add_argument(
        "--match",
        metavar="TEXT",
        help="only process rows whose CMD contains TEXT (plain substring, case-sensitive)",
    )
    add_summary_args(parser, SUMMARY_DIR, SUMMARIES)
    add_kernel_log_args(parser)
    add_prometheus_args(parser, PROMETHEUS_TOP)
    return parser


def options_from_args(args: argparse.Namespace) -> Options:
    growth = GrowthParams(
        min_rate_mb_per_day=defaults.LEAK_MIN_RATE_MB_PER_DAY,
        min_rise_mb=defaults.LEAK_MIN_RISE_MB,
    )
    logs = kernel_logs_from_args(args)
    return Options(
        SystemOptions(defaults.TREND_DAYS, kernel_logs=logs),
        ProcessOptions(
            top_n=args.top,
            match=args.match,
            growth=growth,
            read_users=args.prometheus_textfile is not None,  # the leaks' `user` label
            kernel_logs=logs,
        ),
    )


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    window = window_from_args(parser, args)
    page = Page(args.dumps_dir, window, args.out, summary_dir_from_args(args))
    options = options_from_args(args)
    textfile = textfile_from_args(args, PROG_LABEL)
    return run_analysis(
        PROG,
        lambda session: make_report(page, options, session, textfile),
        args.out.parent,
        False,
        None if textfile is None else textfile.finish,
    )


if __name__ == "__main__":
    sys.exit(main())
