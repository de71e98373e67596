"""The runs that use day summaries: the summaries made by an untimed run first (the year's
cached with a marker, the services month's made afresh), the year re-run after one new
hour, and how many services the leak finder flagged and plotted on the services month."""

from __future__ import annotations

import csv
import os
import shutil
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from bench.baseline import ANALYSES
from bench.datasets import DataSet, build_cached, generator_digest, remove_stale_temps
from bench.one_hour import KeptSummaries, add_one_hour
from bench.paths import SCRIPTS_DIR, relative
from bench.runs import Command, command_for, measure_ok

# A summary records the digest of the code that made it and is recomputed under other code;
# the cache's marker names every script's source too, so stale summaries are not even kept.
SUMMARY_SOURCES = tuple(sorted(SCRIPTS_DIR.rglob("*.py")))
# The services month's services: their command lines (tests/synthetic.py, SERVICE_CMD).
SERVICE_CMD_PREFIX = "/opt/services/"
RERUN_DATA = "year + 1 hour"


def summary_options(summary_dir: Path, plots: bool) -> tuple[str, ...]:
    """Ours keeping (and using) its day summaries in summary_dir."""
    return ("--summary-dir", str(summary_dir), *(() if plots else ("--no-plots",)))


def make_summaries(
    dumps_dir: Path, summary_dir: Path, work_dir: Path, plotted: str | None = None
) -> dict[str, Path]:
    """Both analyses run once on dumps_dir, untimed, keeping their day summaries in
    summary_dir; without plots but for the `plotted` analysis. Their out dirs, by analysis."""
    summary_dir.mkdir(parents=True, exist_ok=True)
    out_dirs: dict[str, Path] = {}
    for analysis in ANALYSES:
        out_dir = work_dir / f"summaries-{analysis}"
        options = summary_options(summary_dir, plots=analysis == plotted)
        measure_ok(command_for("ours", analysis, dumps_dir, out_dir, options=options))
        out_dirs[analysis] = out_dir
    return out_dirs


def summaries_key(data: DataSet) -> str:
    return f"{data.marker_text().strip()} scripts={generator_digest(SUMMARY_SOURCES)}"


def ensure_summaries(
    data: DataSet, dumps_dir: Path, cache_dir: Path, say: Callable[[str], None] = print
) -> Path:
    """The data set's day summaries, kept in the cache (never in its folder), made first
    by make_summaries unless the marker says these data and these scripts made them."""
    name = f"{data.name}-summaries"
    target, marker = cache_dir / f"bench-{name}", cache_dir / f"bench-{name}.done"
    key = summaries_key(data)
    try:
        cached = marker.read_text(encoding="utf-8").strip() == key and target.is_dir()
    except OSError:
        cached = False
    if cached:
        say(f"using the cached day summaries of the {data.name} ({relative(target)})")
        return target
    say(f"making the day summaries of the {data.name}: both analyses once, untimed...")

    def build(temp: Path) -> None:
        scratch = cache_dir / f".bench-{name}-out.tmp-{os.getpid()}"
        try:
            make_summaries(dumps_dir, temp, scratch)
        finally:
            shutil.rmtree(scratch, ignore_errors=True)

    build_cached(name, cache_dir, build, lambda _: f"{key}\n")
    return target


@dataclass(frozen=True)
class ServiceLeaks:
    """What the leak finder made of the services month's services."""

    services: int  # in the data set
    flagged: int  # services in leaks.csv
    plotted: int  # of those, with a leak_<PID>_<time>.png


def service_leaks(out_dir: Path, services: int) -> ServiceLeaks:
    """Count the services in the process analysis's leaks.csv and their leak plots."""
    with open(out_dir / "leaks.csv", encoding="utf-8", newline="") as handle:
        pids = {row["PID"] for row in csv.DictReader(handle) if SERVICE_CMD_PREFIX in row["CMD"]}
    plots = {path.name.split("_")[1] for path in out_dir.glob("leak_*.png")}
    return ServiceLeaks(services, len(pids), len(pids & plots))


@contextmanager
def rerun_folder(dumps_dir: Path, cache_dir: Path) -> Iterator[Path]:
    """A scratch folder in the cache (the file system of the data set, for hard links),
    holding `data`: the data set plus one new hour (add_one_hour); deleted after."""
    remove_stale_temps("rerun", cache_dir)
    scratch = cache_dir / f".bench-rerun.tmp-{os.getpid()}"
    shutil.rmtree(scratch, ignore_errors=True)
    try:
        added = add_one_hour(dumps_dir, scratch / "data")
        print(f"one new hour: {len(added)} files added to a linked copy of {relative(dumps_dir)}")
        yield scratch
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def rerun_groups(
    data: DataSet, scratch: Path, kept: Path, work_dir: Path
) -> list[Sequence[Command]]:
    """Per analysis: the re-run on scratch/data with the kept summaries (a fresh copy each
    run), without plots and with them."""
    groups: list[Sequence[Command]] = []
    for analysis in ANALYSES:
        group = []
        for plots in (False, True):
            label = "rerun-plots" if plots else "rerun"
            out_dir = work_dir / f"{label}-{analysis}"
            used = scratch / f"summaries-{label}-{analysis}"
            argv = command_for(
                "ours", analysis, scratch / "data", out_dir, options=summary_options(used, plots)
            )
            title = f"ours {analysis} ({RERUN_DATA}, {'plots' if plots else 'no plots'})"
            summaries = KeptSummaries(kept, used)
            group.append(
                Command(
                    label, analysis, data, tuple(argv), out_dir, summaries=summaries, title=title
                )
            )
        groups.append(group)
    return groups
