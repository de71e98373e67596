"""The two benchmarks, the month and the year: the data prepared, the commands run, and
the report printed, from the machine and the exact commands to the verdict."""

from __future__ import annotations

import os
import platform
import shlex
import shutil
import tempfile
from collections.abc import Mapping, Sequence
from importlib import metadata
from pathlib import Path

import pandas as pd

from bench.baseline import ANALYSES
from bench.collector import collector_section
from bench.compaction import disk_usage, ensure_bundled
from bench.datasets import (
    MONTH,
    SERVICES_MONTH,
    YEAR,
    DataSet,
    ensure_dataset,
    warm_page_cache,
)
from bench.paths import REPO_ROOT, REPORT_SCRIPT, relative
from bench.pss_cost import pss_section
from bench.reference import Reference, ensure_reference
from bench.results import Check
from bench.runs import Command, analysis_command, memory_runs, report_command, run_rounds
from bench.sampler import POLL_INTERVAL_S, PSS_INTERVAL_S
from bench.summaries import (
    ServiceLeaks,
    ensure_summaries,
    make_summaries,
    rerun_folder,
    rerun_groups,
    service_leaks,
    summary_options,
)
from bench.targets import (
    bundled_section,
    compaction_section,
    loose_section,
    reference_section,
    report_section,
    rerun_section,
    services_section,
    targets_lines,
    year_section,
)


def _first_value(path: str, key: str) -> str | None:
    try:
        with open(path, encoding="utf-8", errors="replace") as handle:
            for line in handle:
                name, _, value = line.partition(":")
                if name.strip() == key:
                    return value.strip()
    except OSError:
        return None
    return None


def _version(package: str) -> str:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return "not installed"


def machine_lines() -> list[str]:
    cpus = os.cpu_count() or 0
    usable = len(os.sched_getaffinity(0))
    model = _first_value("/proc/cpuinfo", "model name") or platform.processor() or "unknown"
    mem_kb = _first_value("/proc/meminfo", "MemTotal")
    memory = f"{int(mem_kb.split()[0]) / 1024 / 1024:.1f} GiB" if mem_kb else "unknown"
    usable_text = f" ({usable} usable)" if usable != cpus else ""
    return [
        f"Machine: {cpus} CPUs{usable_text}, {model}, {memory} RAM, Linux {platform.release()}",
        f"Python {platform.python_version()}, pandas {pd.__version__},"
        f" numpy {_version('numpy')}, matplotlib {_version('matplotlib')}",
    ]


def warm(dumps_dir: Path) -> None:
    files, size = warm_page_cache(dumps_dir)
    print(f"warmed the page cache: read {files:,} files ({size / 1e6:,.1f} MB)", flush=True)


def prepare(data: DataSet, cache_dir: Path) -> Path:
    dumps_dir = ensure_dataset(data, cache_dir)
    warm(dumps_dir)
    return dumps_dir


def print_header(commands: Mapping[str, Sequence[str]], runs: Sequence[str]) -> None:
    print()
    for line in [*machine_lines(), *runs]:
        print(line)
    print(f"Commands (run from {REPO_ROOT}; the out dirs are temporary):")
    width = max(len(name) for name in commands)
    for name, argv in commands.items():
        print(f"  {name:<{width}}  {shlex.join(argv)}")
    print()


def print_lines(lines: Sequence[str]) -> None:
    for line in lines:
        print(line)


PSS_RUNS_TEXT = (
    "Peak PSS: one more run of each command, not timed: the largest sum of Pss over its process"
    f"\n  tree (/proc/<pid>/smaps_rollup), sampled every {PSS_INTERVAL_S * 1000:.0f} ms. Reading it"
    " walks the process's page\n  tables under its mmap lock and slows it (a year's process"
    " analysis: ~45 s instead of\n  ~25 s), so the timed runs sample only VmRSS."
    "\n  Every run may cache its modules' bytecode, as a user's Python does"
    " (PYTHONDONTWRITEBYTECODE\n  is unset for them)."
)


def month_runs_text(repeat: int) -> list[str]:
    return [
        f"Runs: {repeat} timed runs of each command, alternating baseline, ours and ours on the"
        " bundles (their\n  order flipped every other round), then the report: median wall time,"
        " largest peak RSS (the\n  process tree's VmRSS sampled every"
        f" {POLL_INTERVAL_S * 1000:.0f} ms, and the kernel's ru_maxrss), median of each phase.",
        PSS_RUNS_TEXT,
        "  On the services month, memory runs of ours only. Runs of ours read every snapshot"
        " and keep no\n  day summary (--no-summaries), but the services month's `summaries`"
        " runs, which use the\n  summaries an untimed run of each analysis made before them.",
    ]


def year_runs_text(repeat: int, month_repeat: int, with_baseline: bool) -> list[str]:
    skipped = "" if with_baseline else "; baseline skipped (--without-baseline)"
    return [
        f"Runs: {month_repeat} per command on the month, {repeat} on the year{skipped}:"
        "\n  median wall time, largest peak RSS (whole process tree), median of each phase.",
        PSS_RUNS_TEXT,
        "  The re-runs after one new hour: the same number of runs as the month, each given a"
        " fresh copy\n  of the year's kept day summaries (made by an untimed run of each"
        " analysis, cached).",
        "  Memory runs here: ours (and the --reference commit's) on the year only (the month's"
        " PSS shows\n  as -; the baseline's on the year would take minutes more at ~8 GB).",
    ]


def month_groups(loose_dir: Path, bundled_dir: Path, work_dir: Path) -> list[list[Command]]:
    """Per analysis: baseline and ours on the loose files, ours on the bundles; then the
    report, if scripts/make_report.py exists."""
    groups = [
        [
            analysis_command(label, analysis, MONTH, dumps_dir, work_dir)
            for label, dumps_dir in (
                ("baseline", loose_dir),
                ("ours", loose_dir),
                ("bundled", bundled_dir),
            )
        ]
        for analysis in ANALYSES
    ]
    if REPORT_SCRIPT.is_file():
        groups.append([report_command(MONTH, loose_dir, work_dir)])
    else:
        print(f"{relative(REPORT_SCRIPT)} is missing: no report runs")
    return groups


def services_groups(services_dir: Path, work_dir: Path) -> tuple[list[list[Command]], ServiceLeaks]:
    """Per analysis on the services month: baseline, our first run (no summaries) and ours
    with every day's summary in place, no plots; the summaries are made first by an untimed
    run of each analysis (the process analysis's with plots, to count the leaks drawn)."""
    summary_dir = work_dir / "services-summaries"
    print("making the services month's day summaries: both analyses once, untimed...", flush=True)
    out_dirs = make_summaries(services_dir, summary_dir, work_dir / "services-prep", "processes")
    leaks = service_leaks(out_dirs["processes"], SERVICES_MONTH.services)
    shutil.rmtree(work_dir / "services-prep", ignore_errors=True)
    groups = [
        [
            analysis_command("baseline", analysis, SERVICES_MONTH, services_dir, work_dir),
            analysis_command("ours", analysis, SERVICES_MONTH, services_dir, work_dir),
            analysis_command(
                "summaries",
                analysis,
                SERVICES_MONTH,
                services_dir,
                work_dir,
                options=summary_options(summary_dir, plots=False),
                title=f"ours {analysis} ({SERVICES_MONTH.name}, summaries, no plots)",
            ),
        ]
        for analysis in ANALYSES
    ]
    return groups, leaks


def bench_month(repeat: int, cache_dir: Path) -> None:
    loose_dir = prepare(MONTH, cache_dir)
    bundled_dir, compaction = ensure_bundled(loose_dir, cache_dir)
    warm(bundled_dir)
    services_dir = prepare(SERVICES_MONTH, cache_dir)
    print("measuring the collector's snapshot against ps alone", flush=True)
    collector = collector_section()
    pss = pss_section()  # the same with 600 processes in pools, their Pss read
    with tempfile.TemporaryDirectory(prefix="bench-") as work:
        groups = month_groups(loose_dir, bundled_dir, Path(work))
        results = run_rounds(groups, repeat)
        memory_runs([command for group in groups for command in group], results)
        services, leaks = services_groups(services_dir, Path(work))
        services_results = run_rounds(services, repeat)
        ours = [c for group in services for c in group if c.label != "baseline"]
        memory_runs(ours, services_results)
    commands: dict[str, Sequence[str]] = {
        c.name: c.argv for group in groups + services for c in group
    }
    commands["compaction (a copy of the month)"] = compaction.argv
    print_header(commands, month_runs_text(repeat))
    analyses = results[("ours", "system")], results[("ours", "processes")]
    sections = [
        loose_section(results),
        bundled_section(results),
        services_section(services_results, leaks),
        compaction_section(compaction, disk_usage(loose_dir), disk_usage(bundled_dir)),
        report_section(results.get(("ours", "report")), *analyses),
        collector,
        pss,
    ]
    checks: list[Check] = []
    for lines, section_checks in sections:
        print_lines(lines)
        checks += section_checks
    print_lines(targets_lines(checks))


def year_groups(
    year_dir: Path, work_dir: Path, with_baseline: bool, reference: Reference | None
) -> list[list[Command]]:
    """Per analysis: ours on the year, after the baseline (with_baseline) and before the
    reference commit's (if any)."""
    labels = ("baseline", "ours") if with_baseline else ("ours",)
    groups = [
        [analysis_command(label, analysis, YEAR, year_dir, work_dir) for label in labels]
        for analysis in ANALYSES
    ]
    if reference is not None:
        for group, analysis in zip(groups, ANALYSES, strict=True):
            group.append(
                analysis_command("reference", analysis, YEAR, year_dir, work_dir, reference)
            )
    return groups


def bench_year(
    repeat: int,
    month_repeat: int,
    with_baseline: bool,
    cache_dir: Path,
    reference_rev: str | None = None,
) -> None:
    month_dir = prepare(MONTH, cache_dir)
    year_dir = prepare(YEAR, cache_dir)
    reference = None if reference_rev is None else ensure_reference(reference_rev, cache_dir)
    with tempfile.TemporaryDirectory(prefix="bench-") as work:
        month_groups = [
            [analysis_command("ours", analysis, MONTH, month_dir, Path(work))]
            for analysis in ANALYSES
        ]
        groups = year_groups(year_dir, Path(work), with_baseline, reference)
        month = run_rounds(month_groups, month_repeat)
        year = run_rounds(groups, repeat)
        memory_runs([c for group in groups for c in group if c.label != "baseline"], year)
        kept = ensure_summaries(YEAR, year_dir, cache_dir)
        with rerun_folder(year_dir, cache_dir) as scratch:
            reruns = rerun_groups(YEAR, scratch, kept, Path(work))
            rerun = run_rounds(reruns, month_repeat)
            memory_runs([c for group in reruns for c in group], rerun)
    commands = {c.name: c.argv for group in month_groups + groups + reruns for c in group}
    print_header(commands, year_runs_text(repeat, month_repeat, with_baseline))
    lines, checks = year_section(month, year)
    rerun_lines, rerun_checks = rerun_section(rerun)
    print_lines(lines + rerun_lines)
    checks += rerun_checks
    if reference is not None:
        reference_lines, reference_checks = reference_section(year, reference, YEAR)
        print_lines(reference_lines)
        checks += reference_checks
    print_lines(targets_lines(checks))
