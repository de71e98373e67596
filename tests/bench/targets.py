"""The targets, and the sections of the report that hold them: each section's lines, and
its checks against the targets."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from bench.baseline import ANALYSES
from bench.compaction import BUNDLED_NAME, CompactionRun, DiskUsage
from bench.datasets import MONTH, YEAR, DataSet
from bench.paths import REPORT_SCRIPT, relative
from bench.reference import Reference
from bench.results import (
    MIB,
    TABLE_HEADER,
    Check,
    Measurement,
    format_checks,
    format_comparison,
    format_ratio,
    format_row,
    format_verdict,
    measurement_cells,
    mib_text,
    peak_check,
    pss_check,
    ratio,
    ratio_check,
)
from bench.summaries import RERUN_DATA, ServiceLeaks

TITLES = {"system": "System analysis", "processes": "Process analysis"}
# The year's process analysis must stay under this peak (1.5 GB, decimal: the stricter).
YEAR_PEAK_LIMIT_BYTES = 1_500_000_000
# "Linear": the year's time per snapshot is at most this many times the month's.
LINEAR_TOLERANCE = 1.3
# Peak PSS of our process tree, MiB: the month's analyses and the year's.
MONTH_PSS_LIMITS = {"system": 150 * MIB, "processes": 200 * MIB}
YEAR_PSS_LIMIT = 500 * MIB
# Ours on the month's daily bundles against ours on its loose files.
BUNDLED_TIME_LIMIT = 1.10
# The month on disk, loose files against bundles, in allocated blocks: at least this.
DISK_RATIO_TARGET = 20.0
# make_report.py against the two analyses run one after the other.
REPORT_TIME_LIMIT = 1.0
# Ours against an earlier commit of ours (--reference REV) on the year: no slower, as a
# ratio measured in one run.
REFERENCE_TIME_LIMIT = 1.0
# The services month, against the baseline in the same run: the first run (no summaries,
# plots drawn), and a run with every day's summary in place (made by an untimed run before),
# no plots; the process analysis's peak PSS in its first run, plots and all; and how many of
# its random-walking services the leak finder must flag and plot.
SERVICES_FIRST_RUN_LIMIT = 0.40
SERVICES_SUMMARIES_LIMIT = 0.25
SERVICES_PSS_LIMIT = 200 * MIB
MIN_SERVICES_PLOTTED = 20
# The year re-run after one new hour, summaries in place, no plots: wall time and peak PSS.
RERUN_TIME_LIMIT_S = 2.0
RERUN_PSS_LIMIT = 150 * MIB
Section = tuple[list[str], list[Check]]  # the lines to print and the checks they hold


@dataclass(frozen=True)
class Target:
    """Upper bounds of ours/baseline for one analysis; None means no target."""

    analysis: str
    max_time_ratio: float | None
    max_memory_ratio: float | None


MONTH_TARGETS: dict[str, Target] = {
    "system": Target("system", 0.4, None),
    "processes": Target("processes", 0.4, 0.6),
}


def ratio_checks(target: Target, baseline: Measurement, ours: Measurement) -> list[Check]:
    """The target's checks of ours/baseline: wall time, then peak RSS."""
    checks: list[Check] = []
    name = target.analysis
    if target.max_time_ratio is not None:
        value = ratio(ours.wall_s, baseline.wall_s)
        checks.append(ratio_check(f"{name} time (ours/baseline)", value, target.max_time_ratio))
    if target.max_memory_ratio is not None:
        value = ratio(ours.peak_bytes, baseline.peak_bytes)
        what = f"{name} peak RSS (ours/baseline)"
        checks.append(ratio_check(what, value, target.max_memory_ratio))
    return checks


def growth_checks(
    analysis: str,
    month: Measurement,
    year: Measurement,
    tolerance: float = LINEAR_TOLERANCE,
) -> Section:
    """time(year)/time(month) next to the data ratio, and whether growth is linear: the
    year's time per snapshot at most `tolerance` times the month's.

    Checked twice: on the wall time, as a user sees it, and on reading + computing, the
    phases that depend on the data. The wall time alone would hide a superlinear reading
    phase behind the fixed costs (imports, plots), which weigh most on the month.
    """
    data_ratio = year.data.snapshots / month.data.snapshots
    wall_ratio = ratio(year.wall_s, month.wall_s)
    work_month = month.phases.reading + month.phases.computing
    work_year = year.phases.reading + year.phases.computing
    work_ratio = ratio(work_year, work_month)
    lines = [
        f"  {analysis}: data {format_ratio(data_ratio)};"
        f" wall time {year.wall_s:.2f} s / {month.wall_s:.2f} s = {format_ratio(wall_ratio)};"
        f" reading+computing {work_year:.2f} s / {work_month:.2f} s = {format_ratio(work_ratio)}"
    ]
    checks = [
        Check(
            f"{analysis} wall time per snapshot",
            wall_ratio / data_ratio,
            tolerance,
            f"{format_ratio(wall_ratio / data_ratio)} month's",
            f"{format_ratio(tolerance)} month's",
        ),
        Check(
            f"{analysis} reading+computing per snapshot",
            work_ratio / data_ratio,
            tolerance,
            f"{format_ratio(work_ratio / data_ratio)} month's",
            f"{format_ratio(tolerance)} month's",
        ),
    ]
    return lines, checks


def loose_section(results: dict[tuple[str, str], Measurement]) -> Section:
    """Baseline against ours on the loose month: the tables, the ratio and PSS checks."""
    data = results[("ours", "processes")].data
    lines = [f"Month: loose files ({data.describe()}, {2 * data.snapshots:,} files)", ""]
    checks: list[Check] = []
    for analysis in ANALYSES:
        baseline, ours = results[("baseline", analysis)], results[("ours", analysis)]
        lines += [*format_comparison(TITLES[analysis], baseline, ours), ""]
        checks += ratio_checks(MONTH_TARGETS[analysis], baseline, ours)
    for analysis in ANALYSES:
        pss = results[("ours", analysis)].pss_bytes
        checks.append(pss_check(f"{analysis} peak PSS", pss, MONTH_PSS_LIMITS[analysis]))
    return lines, checks


def bundled_section(results: dict[tuple[str, str], Measurement]) -> Section:
    """Ours on the daily bundles against ours on the loose files of the same month."""
    lines = ["Month: bundled (ours on the daily bundles of the same month, against loose)", ""]
    checks: list[Check] = []
    for analysis in ANALYSES:
        loose, bundled = results[("ours", analysis)], results[("bundled", analysis)]
        lines += [*format_comparison(TITLES[analysis], loose, bundled, ("loose", "bundled")), ""]
        value = ratio(bundled.wall_s, loose.wall_s)
        checks.append(ratio_check(f"{analysis} time (bundled/loose)", value, BUNDLED_TIME_LIMIT))
    return lines, checks


def compaction_section(run: CompactionRun, loose: DiskUsage, bundled: DiskUsage) -> Section:
    """What compacting the month cost, and what it saves on disk."""
    disk_ratio = ratio(loose.allocated_bytes, bundled.allocated_bytes)
    width = len(f"{max(loose.files, bundled.files):,}")
    rows = [
        f"    {name:<8} {usage.files:>{width},} files  {usage.allocated_bytes / MIB:>8,.1f} MiB"
        f"  (apparent size {usage.apparent_bytes / MIB:,.1f} MiB)"
        for name, usage in (("loose", loose), ("bundled", bundled))
    ]
    lines = [
        "Compaction (compact_dumps.py --older-than-days 0 on a copy of the month, every day"
        f" bundled;\n  measured once, when the cache was made: {run.measured_at}; to measure"
        f" it again, delete\n  .cache/bench-{BUNDLED_NAME}.done)",
        f"  wall time {run.wall_s:.2f} s, peak RSS {mib_text(run.peak_bytes)};"
        f" peak PSS {mib_text(run.pss_bytes)} (its memory run, on a second copy)",
        "  on disk (allocated blocks, st_blocks x 512, as du counts them):",
        *rows,
        f"    loose/bundled {format_ratio(disk_ratio)}",
        "",
    ]
    limit = DISK_RATIO_TARGET
    check = Check(
        "month on disk (loose/bundled)",
        disk_ratio,
        limit,
        format_ratio(disk_ratio),
        format_ratio(limit),
        at_least=True,
    )
    return lines, [check]


def report_section(
    report: Measurement | None, system: Measurement, processes: Measurement
) -> Section:
    """make_report.py against the two analyses run one after the other."""
    if report is None:
        return [f"Report: {relative(REPORT_SCRIPT)} is missing; skipped", ""], []
    both = system.wall_s + processes.wall_s
    value = ratio(report.wall_s, both)
    size = report.output_bytes
    size_text = "no page written" if size is None else f"report.html {size:,} bytes"
    lines = [
        "Report (make_report.py on the loose month, against both analyses on it)",
        f"  report            wall {report.wall_s:.2f} s, peak RSS {mib_text(report.peak_bytes)},"
        f" peak PSS {mib_text(report.pss_bytes)}; {size_text}",
        f"  both analyses     system {system.wall_s:.2f} s + processes {processes.wall_s:.2f} s"
        f" = {both:.2f} s",
        f"  report/(system + processes) {format_ratio(value)}",
        "",
    ]
    return lines, [ratio_check("report time / (system + processes)", value, REPORT_TIME_LIMIT)]


def targets_lines(checks: Sequence[Check]) -> list[str]:
    return ["Targets:", *format_checks(checks), format_verdict(checks)]


def year_section(
    month: dict[tuple[str, str], Measurement], year: dict[tuple[str, str], Measurement]
) -> Section:
    """The year's tables (ours' month row under each), the growth and the year's checks."""
    lines: list[str] = []
    for analysis in ANALYSES:
        title = f"{TITLES[analysis]}, synthetic year ({YEAR.describe()})"
        baseline = year.get(("baseline", analysis))
        lines += format_comparison(title, baseline, year[("ours", analysis)])
        lines += [format_row("ours (month)", measurement_cells(month[("ours", analysis)])), ""]
    lines.append(f"Growth from the month ({MONTH.snapshots:,} snapshots) to the year:")
    checks: list[Check] = []
    for analysis in ANALYSES:
        growth, growth_list = growth_checks(
            analysis, month[("ours", analysis)], year[("ours", analysis)]
        )
        lines += growth
        checks += growth_list
    lines.append("")
    processes = year[("ours", "processes")]
    checks.append(
        peak_check("processes peak RSS (year)", processes.peak_bytes, YEAR_PEAK_LIMIT_BYTES)
    )
    checks.append(pss_check("processes peak PSS (year)", processes.pss_bytes, YEAR_PSS_LIMIT))
    return lines, checks


def reference_section(
    results: dict[tuple[str, str], Measurement], reference: Reference, data: DataSet
) -> Section:
    """Ours against the reference commit's scripts, on the same data in the same run."""
    named = "" if reference.commit.startswith(reference.rev) else f" ({reference.rev})"
    lines = [f"Ours against {reference.short}{named}, {data.describe()}", ""]
    checks: list[Check] = []
    for analysis in ANALYSES:
        before, ours = results[("reference", analysis)], results[("ours", analysis)]
        names = (reference.short, "ours")
        lines += [*format_comparison(TITLES[analysis], before, ours, names), ""]
        value = ratio(ours.wall_s, before.wall_s)
        what = f"{analysis} time (ours/{reference.short}, {data.name})"
        checks.append(ratio_check(what, value, REFERENCE_TIME_LIMIT))
    return lines, checks


def services_section(results: dict[tuple[str, str], Measurement], leaks: ServiceLeaks) -> Section:
    """The services month: baseline against our first run, and against ours with the day
    summaries in place; the first run's peak PSS; the services flagged and plotted."""
    data = results[("ours", "processes")].data
    lines = [f"Services month ({data.describe()}, {2 * data.snapshots:,} files)", ""]
    checks: list[Check] = []
    for analysis in ANALYSES:
        baseline = results[("baseline", analysis)]
        first, kept = results[("ours", analysis)], results[("summaries", analysis)]
        title = TITLES[analysis]
        lines += [*format_comparison(f"{title}, first run (no summaries)", baseline, first), ""]
        names = ("baseline", "summaries")
        lines += [
            *format_comparison(f"{title}, summaries in place, no plots", baseline, kept, names),
            "",
        ]
        what = f"{analysis} time, first run (ours/baseline, services month)"
        checks.append(
            ratio_check(what, ratio(first.wall_s, baseline.wall_s), SERVICES_FIRST_RUN_LIMIT)
        )
        what = f"{analysis} time, summaries, no plots (ours/baseline, services month)"
        checks.append(
            ratio_check(what, ratio(kept.wall_s, baseline.wall_s), SERVICES_SUMMARIES_LIMIT)
        )
    pss = results[("ours", "processes")].pss_bytes
    what = "processes peak PSS, first run with plots (services month)"
    checks.append(pss_check(what, pss, SERVICES_PSS_LIMIT))
    lines += [
        f"Leak finder on the services month: {leaks.flagged} of its {leaks.services} services"
        f" in leaks.csv, {leaks.plotted} of them plotted (leak_<PID>_<time>.png)",
        "",
    ]
    shown = f"{leaks.plotted} of {leaks.services}"
    checks.append(
        Check(
            "services flagged and plotted (services month)",
            leaks.plotted,
            MIN_SERVICES_PLOTTED,
            shown,
            str(MIN_SERVICES_PLOTTED),
            at_least=True,
        )
    )
    return lines, checks


def rerun_section(results: dict[tuple[str, str], Measurement]) -> Section:
    """The year re-run after one new hour, summaries in place: without plots (the targets)
    and with them (what the plots add, no target)."""
    lines = [f"Year re-run after one new hour, summaries in place ({RERUN_DATA})", ""]
    checks: list[Check] = []
    for analysis in ANALYSES:
        bare, plots = results[("rerun", analysis)], results[("rerun-plots", analysis)]
        added_pss = (
            "-"
            if bare.pss_bytes is None or plots.pss_bytes is None
            else f"{(plots.pss_bytes - bare.pss_bytes) / MIB:+,.0f} MiB"
        )
        lines += [
            TITLES[analysis],
            format_row("", TABLE_HEADER),
            format_row("no plots", measurement_cells(bare)),
            format_row("plots", measurement_cells(plots)),
            f"  the plots add {plots.wall_s - bare.wall_s:+.2f} s of wall time and {added_pss}"
            " of peak PSS (no target)",
            "",
        ]
        what = f"{analysis} re-run, no plots: wall time ({RERUN_DATA})"
        checks.append(
            Check(
                what,
                bare.wall_s,
                RERUN_TIME_LIMIT_S,
                f"{bare.wall_s:.2f} s",
                f"{RERUN_TIME_LIMIT_S:.2f} s",
            )
        )
        what = f"{analysis} re-run, no plots: peak PSS ({RERUN_DATA})"
        checks.append(pss_check(what, bare.pss_bytes, RERUN_PSS_LIMIT))
    return lines, checks
