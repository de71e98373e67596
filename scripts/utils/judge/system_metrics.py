"""The system analysis's numbers: the metrics of each snapshot, the summary, and the result
every output renders (pure functions of the raw frame; no I/O, no matplotlib)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import NamedTuple

import numpy as np
import pandas as pd

from utils.judge.breakdown import Comparison, Period
from utils.judge.forecast import Forecast, forecast_available
from utils.judge.gaps import Gap, find_gaps, gap_threshold_s
from utils.read.kernel_log import KernelLogs
from utils.read.snapshot_specs import OPTIONAL_FIELDS, RAW_FIELDS
from utils.reduce.counters import OomInterval, rate_frame

METRIC_COLUMNS: tuple[str, ...] = (
    "RAM_Used_MB",
    "Swap_Used_MB",
    "RAM_Used_Pct",
    "RAM_Used_Available_MB",
    "RAM_Used_Shmem_MB",
)
KERNEL_SINCE = {"MemAvailable": "Linux before 3.14", "Shmem": "Linux before 2.6.32"}


class UsedDefinition(NamedTuple):
    """One way tools define "used" RAM, as a column of system_metrics.csv."""

    column: str
    label: str  # short, for the console and the legend
    formula: str
    needs: str | None  # the optional field it needs, if any
    color: str  # its line in the plots and its swatch in the report


USED_DEFINITIONS: tuple[UsedDefinition, ...] = (
    UsedDefinition(
        "RAM_Used_MB",
        "htop",
        "MemTotal - MemFree - Buffers - Cached - SReclaimable",
        None,
        "#1f6fb4",  # the RAM blue of every plot (outputs/plotting.py's RAM_COLOR)
    ),
    UsedDefinition(
        "RAM_Used_Shmem_MB", "htop + Shmem", "the htop method + Shmem", "Shmem_MB", "#7b3fa0"
    ),
    UsedDefinition(
        "RAM_Used_Available_MB",
        "MemTotal - MemAvailable",
        "MemTotal - MemAvailable",
        "MemAvailable_MB",
        "#2a8f5a",
    ),
)
# The summary's rows: the three definitions of "used" RAM side by side, then the rest.
SUMMARY_ROWS: tuple[tuple[str, str, str], ...] = (
    *((f"RAM used ({d.label})", "MiB", d.column) for d in USED_DEFINITIONS),
    ("RAM used (htop)", "%", "RAM_Used_Pct"),
    ("Swap used", "MiB", "Swap_Used_MB"),
)


def compute_metrics(raw: pd.DataFrame) -> pd.DataFrame:
    """The original README's formulas, all in MiB from the _MB columns, then two more
    definitions of "used" RAM; a definition whose field is missing is empty (NaN) there:

    RAM Used (htop method) = MemTotal - MemFree - Buffers - Cached - SReclaimable
    Swap Used = SwapTotal - SwapFree
    RAM Used % = RAM Used / MemTotal * 100
    RAM Used (available) = MemTotal - MemAvailable (procps free 4.0.1+, sysstat sar -r)
    RAM Used (htop + Shmem) = RAM Used + Shmem (tmpfs and shared memory: in Cached, but
        not droppable)
    """
    ram_used = (
        raw["MemTotal_MB"]
        - raw["MemFree_MB"]
        - raw["Buffers_MB"]
        - raw["Cached_MB"]
        - raw["SReclaimable_MB"]
    )
    optional = {name: raw.get(name, pd.Series(np.nan, index=raw.index)) for name in OPTIONAL_FIELDS}
    metrics = pd.DataFrame(
        {
            "RAM_Used_MB": ram_used,
            "Swap_Used_MB": raw["SwapTotal_MB"] - raw["SwapFree_MB"],
            "RAM_Used_Pct": ram_used / raw["MemTotal_MB"] * 100,
            "RAM_Used_Available_MB": raw["MemTotal_MB"] - optional["MemAvailable_MB"],
            "RAM_Used_Shmem_MB": ram_used + optional["Shmem_MB"],
        },
        index=raw.index,
    )
    extra = pd.DataFrame(optional, index=raw.index)
    return pd.concat([metrics, raw[list(RAW_FIELDS)], extra, rate_frame(raw)], axis=1)


def missing_field_notes(metrics: pd.DataFrame) -> list[str]:
    """One line naming every optional field some snapshots lack (as psutil warns once for
    all), and what that leaves empty."""
    lacking: list[tuple[str, int, str]] = []
    for definition in USED_DEFINITIONS:
        if definition.needs is not None:
            missing = int(metrics[definition.needs].isna().sum())
            if missing:
                lacking.append((definition.needs.removesuffix("_MB"), missing, definition.column))
    if not lacking:
        return []
    fields = ", ".join(
        f"{name} from {missing:,} ({KERNEL_SINCE[name]})" for name, missing, _ in lacking
    )
    columns = " and ".join(column for _, _, column in lacking)
    verb = "is" if len(lacking) == 1 else "are"
    return [
        f"fields missing from snapshots (of {len(metrics):,}): {fields}; {columns} {verb}"
        " empty there"
    ]


def breakdown_note(missing: tuple[str, ...]) -> list[str]:
    """The note on the breakdown's fields some snapshots lack, if any."""
    if not missing:
        return []
    return [
        "the breakdown of MemTotal counts as 0, and so as unaccounted, what some snapshots"
        f" lack: {', '.join(missing)}"
    ]


# --- The summary and the result -------------------------------------------------


@dataclass(frozen=True)
class MetricStats:
    label: str
    unit: str
    minimum: float  # NaN when the metric is empty throughout
    mean: float
    maximum: float


@dataclass(frozen=True)
class SystemSummary:
    first: pd.Timestamp
    last: pd.Timestamp
    snapshots: int
    gaps: list[Gap]
    gap_threshold_s: float | None
    stats: list[MetricStats]
    forecast: Forecast
    ooms: list[OomInterval] | None = None  # None: the dumps carry no OOM counter


def summarize(
    metrics: pd.DataFrame, trend_days: float, ooms: list[OomInterval] | None = None
) -> SystemSummary:
    times = metrics.index.to_numpy()
    threshold = gap_threshold_s(times)
    stats = [
        MetricStats(
            label,
            unit,
            float(metrics[column].min()),
            float(metrics[column].mean()),
            float(metrics[column].max()),
        )
        for label, unit, column in SUMMARY_ROWS
    ]
    available = metrics["MemAvailable_MB"].to_numpy(np.float64)
    return SystemSummary(
        first=metrics.index[0],
        last=metrics.index[-1],
        snapshots=len(metrics),
        gaps=find_gaps(times, threshold),
        gap_threshold_s=threshold,
        stats=stats,
        forecast=forecast_available(times, available, trend_days),
        ooms=ooms,
    )


@dataclass(frozen=True)
class SystemOptions:
    """What the user asked of the analysis (the defaults are the script's constants)."""

    trend_days: float
    alert_pct: float | None = None  # alert when the latest RAM used % is at least this
    alert_days: float | None = None  # alert when MemAvailable reaches 0 within this
    fail_on_oom: bool = False  # alert when the OOM killer killed in the window
    compare: tuple[Period, Period] | None = None  # --compare; None: the first and last day
    kernel_logs: KernelLogs = field(
        default_factory=KernelLogs
    )  # --kernel-log: saved logs whose kills join


@dataclass(frozen=True)
class SystemResult:
    """Everything the system analysis found; rendered as console text, CSV, JSON, PNGs,
    the HTML report and Prometheus metrics by the modules of outputs/."""

    metrics: pd.DataFrame  # one row per snapshot, indexed by UTC time: the CSV and the plots
    summary: SystemSummary
    notes: list[str]  # fields the kernel lacks, and what that leaves empty
    alerts: list[str]  # the alerts asked for that hold, one line each
    latest_pct: float  # RAM used (htop) % at the last snapshot
    breakdown: pd.DataFrame | None = None  # memory_breakdown.csv, one row per snapshot
    comparison: Comparison | None = None  # what changed; None with under two snapshots

    @property
    def ooms(self) -> list[OomInterval] | None:
        return self.summary.ooms
