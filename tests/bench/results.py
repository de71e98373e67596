"""Measurements and their formatting: the runs of a command, its timings, the tables of
time and memory, the ratios, and the checks that end in `PASS` or `MISSED`."""

from __future__ import annotations

import re
import statistics
from collections.abc import Sequence
from dataclasses import dataclass, field

from bench.datasets import DataSet

MIB = 1024 * 1024
PHASES: tuple[str, ...] = ("discovery", "reading", "computing", "growth", "plotting")
TIMINGS_RE = re.compile(r"timings: ((?:[a-z]+ [0-9.]+ s(?:, |$))+)", re.MULTILINE)
PHASE_RE = re.compile(r"([a-z]+) ([0-9.]+) s")
# Peak RSS: the timed runs' largest; peak PSS: the memory run's.
TABLE_HEADER = ("wall s", "RSS MiB", "PSS MiB", *PHASES)
LABEL_WIDTH = 19  # the longest label, "summaries/baseline", and a space
CELL_WIDTH = 11


@dataclass(frozen=True)
class Phases:
    discovery: float
    reading: float
    computing: float
    plotting: float
    growth: float = 0.0  # the leak finder (process analysis)

    def as_tuple(self) -> tuple[float, ...]:
        """In PHASES order."""
        return tuple(getattr(self, name) for name in PHASES)

    @classmethod
    def from_tuple(cls, values: Sequence[float]) -> Phases:
        return cls(**dict(zip(PHASES, values, strict=True)))


NO_PHASES = Phases(0.0, 0.0, 0.0, 0.0)  # a command that prints no timings (the report)


def parse_timings(stderr: str) -> Phases | None:
    """The last `timings: discovery X s, ...` line of a command's stderr (phases it does
    not name count 0)."""
    matches = TIMINGS_RE.findall(stderr)
    if not matches:
        return None
    seconds = {name: float(value) for name, value in PHASE_RE.findall(matches[-1])}
    return Phases.from_tuple([seconds.get(name, 0.0) for name in PHASES])


@dataclass(frozen=True)
class RunResult:
    wall_s: float
    peak_bytes: int
    phases: Phases
    output_bytes: int | None = None  # the size of the file it wrote (the report's page)


@dataclass
class Measurement:
    """Every timed run of one command, and the peak PSS of its memory run."""

    label: str  # "baseline", "ours" or "bundled" (ours on the bundles)
    analysis: str  # "system", "processes" or "report"
    data: DataSet
    runs: list[RunResult] = field(default_factory=list)
    pss_bytes: int | None = None  # None: no memory run (or no sample)

    @property
    def wall_s(self) -> float:
        return statistics.median(run.wall_s for run in self.runs)

    @property
    def peak_bytes(self) -> int:
        return max(run.peak_bytes for run in self.runs)

    @property
    def phases(self) -> Phases:
        columns = zip(*(run.phases.as_tuple() for run in self.runs), strict=True)
        return Phases.from_tuple([statistics.median(column) for column in columns])

    @property
    def output_bytes(self) -> int | None:
        sizes = [run.output_bytes for run in self.runs if run.output_bytes is not None]
        return max(sizes) if sizes else None


@dataclass(frozen=True)
class Check:
    """One verdict line: what was checked, the measured value and the limit."""

    what: str
    value: float
    limit: float
    shown: str  # the value as printed, with its unit
    limit_shown: str  # the limit as printed
    at_least: bool = False  # the value must reach the limit (a size ratio), not stay under

    @property
    def met(self) -> bool:
        return self.value >= self.limit if self.at_least else self.value <= self.limit


def format_row(label: str, cells: Sequence[str]) -> str:
    return f"  {label:<{LABEL_WIDTH}}" + "".join(f"{cell:>{CELL_WIDTH}}" for cell in cells)


def mib_cell(size: int | None) -> str:
    return "-" if size is None else f"{size / MIB:,.0f}"


def mib_text(size: int | None) -> str:
    return "not measured" if size is None else f"{size / MIB:,.0f} MiB"


def measurement_cells(measurement: Measurement) -> list[str]:
    phases = measurement.phases.as_tuple()
    return [
        f"{measurement.wall_s:.2f}",
        mib_cell(measurement.peak_bytes),
        mib_cell(measurement.pss_bytes),
        *(f"{seconds:.3f}" for seconds in phases),
    ]


def ratio(ours: float, baseline: float) -> float:
    return ours / baseline if baseline > 0 else float("inf")


def format_ratio(value: float) -> str:
    return f"{value:.2f}x"


def ratio_cells(baseline: Measurement, ours: Measurement) -> list[str]:
    """ours/baseline for each cell of measurement_cells(); a dash where either lacks it."""
    pss = (
        format_ratio(ratio(ours.pss_bytes, baseline.pss_bytes))
        if ours.pss_bytes is not None and baseline.pss_bytes is not None
        else "-"
    )
    phase_ratios = [
        format_ratio(ratio(o, b)) if b >= 0.001 else "-"
        for o, b in zip(ours.phases.as_tuple(), baseline.phases.as_tuple(), strict=True)
    ]
    return [
        format_ratio(ratio(ours.wall_s, baseline.wall_s)),
        format_ratio(ratio(ours.peak_bytes, baseline.peak_bytes)),
        pss,
        *phase_ratios,
    ]


def format_comparison(
    title: str,
    baseline: Measurement | None,
    ours: Measurement,
    names: tuple[str, str] = ("baseline", "ours"),
) -> list[str]:
    """A table of the rows baseline / ours (as `names` call them), then the ratios."""
    lines = [title, format_row("", TABLE_HEADER)]
    if baseline is not None:
        lines.append(format_row(names[0], measurement_cells(baseline)))
    lines.append(format_row(names[1], measurement_cells(ours)))
    if baseline is not None:
        lines.append(format_row(f"{names[1]}/{names[0]}", ratio_cells(baseline, ours)))
        if baseline.phases.plotting < 0.001 <= ours.phases.plotting:
            # For information only: the targets are on the whole wall time.
            without = ours.wall_s - ours.phases.plotting
            lines.append(
                f"  (the baseline draws no plots; ours without its plotting phase:"
                f" {without:.2f} s, {format_ratio(ratio(without, baseline.wall_s))})"
            )
    return lines


def ratio_check(what: str, value: float, limit: float) -> Check:
    return Check(what, value, limit, format_ratio(value), format_ratio(limit))


def pss_check(what: str, pss_bytes: int | None, limit_bytes: int) -> Check:
    """Peak PSS at most limit_bytes, in MiB; not measured (no sample) is missed."""
    value = float("inf") if pss_bytes is None else float(pss_bytes)
    return Check(what, value, limit_bytes, mib_text(pss_bytes), mib_text(limit_bytes))


def format_checks(checks: Sequence[Check]) -> list[str]:
    """One aligned line per check, ending in `PASS` or `MISSED`."""
    if not checks:
        return []
    what = max(len(check.what) for check in checks)
    shown = max(len(check.shown) for check in checks)
    limit = max(len(check.limit_shown) for check in checks)
    return [
        f"  {check.what:<{what}}  {check.shown:>{shown}}"
        f"  target {'>=' if check.at_least else '<='} {check.limit_shown:<{limit}}"
        f"  {'PASS' if check.met else 'MISSED'}"
        for check in checks
    ]


def format_verdict(checks: Sequence[Check]) -> str:
    missed = [check.what for check in checks if not check.met]
    if not missed:
        return f"Verdict: all {len(checks)} targets met"
    return f"Verdict: MISSED {len(missed)} of {len(checks)} targets: " + "; ".join(missed)


def peak_check(what: str, peak_bytes: int, limit_bytes: int) -> Check:
    """Peak memory at most limit_bytes; shown in MiB, the limit also in decimal GB."""
    return Check(
        what,
        peak_bytes,
        limit_bytes,
        f"{peak_bytes / MIB:,.0f} MiB",
        f"{limit_bytes / MIB:,.0f} MiB ({limit_bytes / 1e9:g} GB)",
    )
