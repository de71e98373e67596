"""The analyses' answers as Prometheus metrics, for node_exporter's textfile collector.

A batch job reaches Prometheus through a `*.prom` file in node_exporter's
`--collector.textfile.directory`, written whole and renamed into place (node_exporter's
README, "Textfile Collector"). The file is in the text exposition format 0.0.4
(prometheus.io/docs/instrumenting/exposition_formats): a HELP and a TYPE line per metric,
then one line per sample, with no timestamps (the collector rejects them), as
prometheus_client's generate_latest writes it. The file itself is written by
utils.core.atomic_files, not the library's write_to_textfile, so that its temporary has the
hidden name every other output's has, which a leftover of a killed run is known by. Names follow
prometheus.io/docs/practices/naming: the `pmi_` prefix, base units (bytes, seconds, ratios
0..1), `_total` only for counters. `promtool check metrics` checks every file the tests
write. docs/prometheus.md lists the metrics and the alert rules built on them.

A label never holds a command line: one series per command line is a cardinality
explosion, and command lines carry secrets. A leak is labelled by PID, program
(utils.reduce.programs) and user only.
"""

from __future__ import annotations

import argparse
import math
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, NamedTuple

import numpy as np
import pandas as pd

from utils.collect.snapshot_format import KILL_KINDS
from utils.console import EXIT_ALERT, EXIT_NO_DATA, EXIT_OK, Session, positive_count
from utils.core import defaults
from utils.core.atomic_files import write_text_atomically
from utils.core.units import DAY_S, MIB
from utils.judge.alerts import alert_days
from utils.judge.forecast import LEVEL, Forecast, ForecastStatus
from utils.judge.leaks import Leak
from utils.judge.process_result import ProcessResult
from utils.judge.program_leaks import ProgramLeak
from utils.judge.system_metrics import SystemResult
from utils.outputs.program_leak_outputs import program_leak_samples
from utils.reduce.limit_hits import unnamed_kind
from utils.reduce.programs import program_of

if TYPE_CHECKING:  # imported where a file is rendered (see render)
    from prometheus_client.core import GaugeMetricFamily

PREFIX = "pmi_"
SUFFIX = ".prom"  # the only files node_exporter's textfile collector reads
TOP = defaults.PROMETHEUS_TOP  # leaks exported, highest rate first (--prometheus-top)
# The three definitions of "used" RAM (system_metrics.csv's columns) by label value.
USED_LABELS: tuple[tuple[str, str], ...] = (
    ("htop", "RAM_Used_MB"),
    ("htop_shmem", "RAM_Used_Shmem_MB"),
    ("memavailable", "RAM_Used_Available_MB"),
)

Labels = tuple[tuple[str, str], ...]


class Sample(NamedTuple):
    labels: Labels
    value: float


@dataclass(frozen=True)
class Metric:
    """One gauge family: its name, HELP text and samples (all ours are gauges)."""

    name: str
    help: str
    samples: tuple[Sample, ...]


def gauge(name: str, help_text: str, value: float, labels: Labels = ()) -> Metric:
    return Metric(PREFIX + name, help_text, (Sample(labels, value),))


# --- The text format, through prometheus_client ---------------------------------------


def encodable(text: str) -> str:
    """Text with what is not valid UTF-8 (a lone surrogate) replaced by ?: the format is
    UTF-8, and generate_latest would fail on it."""
    return text.encode("utf-8", "replace").decode("utf-8")


class Family(NamedTuple):
    """One metric family as it is exported: its samples by label set, label names alike."""

    name: str
    help: str
    label_names: tuple[str, ...]
    samples: dict[Labels, float]


def families(metrics: Iterable[Metric]) -> list[Family]:
    """Each family once (its samples merged, a repeated label set kept once, the first), in
    the order first given; a family without samples left out."""
    merged: dict[str, tuple[str, dict[Labels, float]]] = {}
    for metric in metrics:
        _, samples = merged.setdefault(metric.name, (metric.help, {}))
        for sample in metric.samples:
            samples.setdefault(sample.labels, sample.value)
    found = []
    for name, (help_text, samples) in merged.items():
        if not samples:
            continue
        label_sets = {tuple(label for label, _ in labels) for labels in samples}
        if len(label_sets) != 1:
            raise ValueError(f"{name}: samples with different label names {label_sets}")
        found.append(Family(name, help_text, label_sets.pop(), samples))
    return found


@dataclass(frozen=True, eq=False)  # the registry keys collectors by identity
class _Collected:
    """A collector of families already made: what one run found, exported once."""

    found: tuple[GaugeMetricFamily, ...]

    def collect(self) -> Iterator[GaugeMetricFamily]:
        return iter(self.found)


def render(metrics: Iterable[Metric]) -> str:
    """The exposition text (format 0.0.4, as generate_latest writes it: HELP, TYPE and the
    samples of each family; label values and HELP escaped there)."""
    # Imported only when a file is written: the library brings its HTTP server with it,
    # about 2 MiB and 25 ms (docs/performance.md) that a run without the flag would pay.
    from prometheus_client import CollectorRegistry, generate_latest  # noqa: PLC0415
    from prometheus_client.core import GaugeMetricFamily  # noqa: PLC0415

    found = []
    for family in families(metrics):
        gauge_family = GaugeMetricFamily(family.name, family.help, labels=family.label_names)
        for labels, value in family.samples.items():
            gauge_family.add_metric([encodable(text) for _, text in labels], value)
        found.append(gauge_family)
    registry = CollectorRegistry()
    registry.register(_Collected(tuple(found)))
    return generate_latest(registry).decode("utf-8")


# --- What each analysis exports --------------------------------------------------------


def epoch_s(moment: datetime | pd.Timestamp) -> float:
    """A UTC time (naive, as the analyses keep them) as seconds since 1970."""
    stamp = pd.Timestamp(moment)
    return float(stamp.timestamp() if stamp.tzinfo else stamp.tz_localize(UTC).timestamp())


def _latest(metrics: pd.DataFrame, column: str) -> float | None:
    """The last snapshot's value of a column; None when missing there."""
    if column not in metrics or metrics.empty:
        return None
    value = float(metrics[column].iloc[-1])
    return None if math.isnan(value) else value


def system_metrics(result: SystemResult) -> list[Metric]:
    """RAM and swap at the last snapshot, the forecast, the OOM kills and the pressure."""
    metrics = result.metrics
    used = [
        Sample((("definition", label),), round(value * MIB))
        for label, column in USED_LABELS
        if (value := _latest(metrics, column)) is not None
    ]
    found: list[Metric] = [
        Metric(
            PREFIX + "ram_used_bytes",
            "RAM used at the last snapshot, by definition: htop (MemTotal - MemFree - Buffers"
            " - Cached - SReclaimable), htop_shmem (htop + Shmem), memavailable (MemTotal -"
            " MemAvailable).",
            tuple(used),
        )
    ]
    for name, column, help_text in (
        ("memory_total_bytes", "MemTotal_MB", "MemTotal at the last snapshot."),
        ("memory_available_bytes", "MemAvailable_MB", "MemAvailable at the last snapshot."),
        (
            "swap_used_bytes",
            "Swap_Used_MB",
            "Swap used (SwapTotal - SwapFree) at the last snapshot.",
        ),
    ):
        value = _latest(metrics, column)
        if value is not None:
            found.append(gauge(name, help_text, round(value * MIB)))
    found.extend(forecast_metrics(result.summary.forecast))
    return [*found, *system_oom_metrics(result), *pressure_metrics(result)]


def forecast_metrics(forecast: Forecast) -> list[Metric]:
    """The MemAvailable forecast: the fall rate and its bounds whenever there is enough
    data, the time to zero only while the fall is significant (the gate --alert-days
    applies: no made-up value, and no alert on a fall the data do not bear out)."""
    if forecast.status is ForecastStatus.TOO_LITTLE_DATA:
        return []
    falling = alert_days(forecast) is not None
    found = [
        gauge(
            "memavailable_falling",
            f"1 when MemAvailable's fall over the forecast window is significant at the"
            f" {LEVEL:.0%} level, else 0.",
            1 if falling else 0,
        )
    ]
    per_s = MIB / DAY_S
    for name, rate, what in (
        ("fall", forecast.falls_mb_per_day, "MemAvailable's fall rate (negative: rising)"),
        ("fall_low", forecast.falls_low_mb_per_day, "The slowest fall rate the data allow"),
        ("fall_high", forecast.falls_high_mb_per_day, "The fastest fall rate the data allow"),
    ):
        if rate is not None and math.isfinite(rate):  # an unbounded side: no value
            text = f"{what}, over the forecast window."
            found.append(gauge(f"memavailable_{name}_bytes_per_second", text, rate * per_s))
    if not falling:
        return found
    for name, days, what in (
        ("", forecast.days_to_zero, "at the fitted rate"),
        ("_low", forecast.days_to_zero_low, "at the fastest fall rate (the soonest)"),
        ("_high", forecast.days_to_zero_high, "at the slowest fall rate (the latest)"),
    ):
        if days is not None and math.isfinite(days):
            text = (
                "Time from the last snapshot with MemAvailable until it reaches zero,"
                f" {what}; only while the fall is significant."
            )
            metric = f"memavailable_time_to_zero{name}_seconds"
            found.append(gauge(metric, text, round(days * DAY_S)))
    return found


def system_oom_metrics(result: SystemResult) -> list[Metric]:
    """The OOM kills the sys_mem counters count in the window (see oom_metrics)."""
    ooms = result.ooms
    if ooms is None:
        return []
    kinds: list[str] = []
    for oom in ooms:
        named = [victim.kind for victim in [*oom.logged, *oom.filed]]
        kinds += named + [unnamed_kind(oom)] * max(oom.kills - len(named), 0)
    return oom_metrics(kinds, ooms[-1].before if ooms else None)


def oom_metrics(kinds: Sequence[str], last: np.datetime64 | datetime | None) -> list[Metric]:
    """The kills in the window by kind (one sample per kind, 0 for a kind without any: the
    labels are bounded), and when the last one was seen (the first snapshot after it);
    given only where the dumps carry the oom_kill counter or a log named kills."""
    counted = Counter(kinds)
    help_text = (
        "Processes killed for memory in the analysed window, by who killed and why: the"
        " kernel's OOM killer (global, memcg, cpuset, mempolicy), systemd-oomd, earlyoom,"
        " or unknown (counted by /proc/vmstat oom_kill, not logged)."
    )
    samples = tuple(Sample((("kind", kind),), counted[kind]) for kind in KILL_KINDS)
    found = [Metric(PREFIX + "oom_kills", help_text, samples)]
    if last is not None:
        found.append(
            gauge(
                "oom_last_kill_timestamp_seconds",
                "The first snapshot after the latest OOM kill in the window (Unix time).",
                epoch_s(pd.Timestamp(last)),
            )
        )
    return found


def pressure_metrics(result: SystemResult) -> list[Metric]:
    """PSI memory some and full over the last interval between snapshots (Linux 4.20+)."""
    found = []
    for name, column, what in (
        ("some", "PSI_Some_Pct", "at least one task"),
        ("full", "PSI_Full_Pct", "all non-idle tasks"),
    ):
        value = _latest(result.metrics, column)
        if value is not None:
            text = (
                f"Share of the last interval between snapshots in which {what} stalled on"
                " memory (PSI, /proc/pressure/memory)."
            )
            found.append(gauge(f"memory_pressure_{name}_ratio", text, value / 100))
    return found


def process_metrics(result: ProcessResult, top: int, oom: bool = True) -> list[Metric]:
    """How many instances leak and were judged, the OOM kills (unless `oom` is False: the
    report has the system analysis's), the top leaks by rate, and the services."""
    found = [
        gauge(
            "leaking_processes",
            "Process instances the leak finder flags as leaking in the analysed window.",
            len(result.leaks),
        ),
        gauge(
            "judged_processes",
            "Process instances observed long enough to be judged by the leak finder.",
            result.survey.judged,
        ),
    ]
    if oom and result.ooms is not None:
        kills = result.ooms.kills
        kinds = [kill.kind for kill in kills]
        found.extend(oom_metrics(kinds, kills[-1].before if kills else None))
    # Imported here: that module builds on this one's Metric.
    from utils.outputs.service_metrics import service_metrics  # noqa: PLC0415

    return [
        *found,
        *leak_metrics(result.leaks, top),
        *program_leak_metrics(result.program_leaks),
        *service_metrics(result.services, top),
    ]


def program_leak_metrics(found: Sequence[ProgramLeak]) -> list[Metric]:
    """The programs leaking across restarts, labelled by program."""
    return [
        Metric(PREFIX + name, text, tuple(Sample(labels, value) for labels, value in samples))
        for name, text, samples in program_leak_samples(found)
    ]


def leak_metrics(leaks: Sequence[Leak], top: int) -> list[Metric]:
    """The rate, growth and start of the `top` fastest leaks, labelled pid, program, user."""
    labelled = _labelled(leaks)[:top]
    found = []
    for name, help_text, value in (
        (
            "leak_growth_bytes_per_second",
            "Growth rate of a leaking process (anon + swap, else RSS); the top leaks by rate.",
            lambda leak: leak.growth_mb_per_day * MIB / DAY_S,
        ),
        (
            "leak_growth_bytes",
            "Growth of a leaking process since its growth began (the fitted line).",
            lambda leak: round(leak.growth_mb * MIB),
        ),
        (
            "leak_since_timestamp_seconds",
            "When a leaking process's sustained growth began (Unix time).",
            lambda leak: epoch_s(leak.since),
        ),
    ):
        found.append(_per_leak(name, help_text, labelled, value))
    return found


def _labelled(leaks: Sequence[Leak]) -> list[tuple[Labels, Leak]]:
    """Each leak with its labels, highest rate first; of two with the same labels (a
    reused PID of the same program) the faster."""
    seen: dict[Labels, Leak] = {}
    for leak in leaks:
        labels = (
            ("pid", str(leak.pid)),
            ("program", program_of(leak.cmd)),
            ("user", leak.user or ""),
        )
        seen.setdefault(labels, leak)
    return list(seen.items())


def _per_leak(
    name: str, help_text: str, leaks: Sequence[tuple[Labels, Leak]], value: Callable[[Leak], float]
) -> Metric:
    return Metric(
        PREFIX + name, help_text, tuple(Sample(labels, value(leak)) for labels, leak in leaks)
    )


def labelled(metrics: Iterable[Metric], analysis: str) -> list[Metric]:
    """Every sample with the `analysis` label first."""
    first: Labels = (("analysis", analysis),)
    return [
        Metric(m.name, m.help, tuple(Sample(first + s.labels, s.value) for s in m.samples))
        for m in metrics
    ]


def run_metrics(status: int, duration_s: float, finished_s: float) -> list[Metric]:
    """Whether the analysis ran to the end (exit 0, or 3 for an alert asked for), its exit
    status, how long it took and when it finished."""
    labels: Labels = ()
    success = 1 if status in (EXIT_OK, EXIT_ALERT) else 0
    return [
        gauge(
            "analysis_success",
            "1 when the analysis ran to the end (exit status 0 or 3), else 0.",
            success,
            labels,
        ),
        gauge(
            "analysis_exit_code", "The analysis's exit status (docs/prometheus.md).", status, labels
        ),
        gauge("analysis_duration_seconds", "How long the analysis took.", duration_s, labels),
        gauge(
            "analysis_timestamp_seconds",
            "When the analysis finished (Unix time).",
            finished_s,
            labels,
        ),
    ]


def part_metric(available: dict[str, bool]) -> Metric:
    """Which of the report's two analyses had data (their metrics are missing otherwise)."""
    samples = tuple(Sample((("part", part),), int(ok)) for part, ok in available.items())
    return Metric(
        PREFIX + "report_part_available",
        "1 when the report's system or processes part had data, else 0 (its metrics missing).",
        samples,
    )


def snapshot_metric(last: datetime | pd.Timestamp) -> Metric:
    return gauge(
        "last_snapshot_timestamp_seconds",
        "The time of the last snapshot analysed (Unix time).",
        epoch_s(last),
    )


# --- The file --------------------------------------------------------------------------


@dataclass
class Textfile:
    """The metrics one analysis gathers, written once it has ended (see finish)."""

    path: Path
    analysis: str  # the `analysis` label: system, processes or report
    top: int = TOP
    started_s: float = field(default_factory=time.monotonic)
    found: list[Metric] = field(default_factory=list)

    def add(self, metrics: Iterable[Metric]) -> None:
        self.found.extend(metrics)

    def text(self, status: int) -> str:
        """The file's text: the run's own metrics, then (when it succeeded) its findings;
        every sample labelled with the analysis, so that the files of two analyses never
        hold the same series (node_exporter would fail the scrape)."""
        duration_s = round(time.monotonic() - self.started_s, 3)
        metrics = run_metrics(status, duration_s, round(time.time(), 3))
        if status in (EXIT_OK, EXIT_ALERT):
            metrics.extend(self.found)
        return render(labelled(metrics, self.analysis))

    def finish(self, status: int, session: Session) -> int:
        """Write the file, whatever the status (and say so, after a run that succeeded);
        one line and exit status 1 (from 0) when it cannot be written."""
        try:
            write_text_atomically(self.path, self.text(status))
        except OSError as err:
            session.diagnostics.note(f"cannot write {self.path}: {err.strerror or err}")
            return EXIT_NO_DATA if status == EXIT_OK else status
        if status in (EXIT_OK, EXIT_ALERT):
            session.console.print(f"Wrote {self.path}")
        return status


def textfile_arg(text: str) -> Path:
    """--prometheus-textfile's type: a path ending in .prom."""
    path = Path(text)
    if not path.name.endswith(SUFFIX) or path.name == SUFFIX:
        raise argparse.ArgumentTypeError(
            f"{text!r} does not end in {SUFFIX}: node_exporter's textfile collector reads"
            f" only *{SUFFIX} files"
        )
    return path


def add_prometheus_args(parser: argparse.ArgumentParser, top: int | None = None) -> None:
    """--prometheus-textfile PATH, and --prometheus-top N where there are leaks."""
    parser.add_argument(
        "--prometheus-textfile",
        type=textfile_arg,
        metavar="PATH",
        help="after the analysis, write its answers as Prometheus metrics to PATH (a *.prom"
        " file in node_exporter's textfile directory; its folder must exist), replaced whole;"
        " written with pmi_analysis_success 0 when the analysis fails",
    )
    if top is not None:
        parser.add_argument(
            "--prometheus-top",
            type=positive_count,
            default=top,
            metavar="N",
            help="how many leaks, fastest first, get a series each (default %(default)s)",
        )


def textfile_from_args(args: argparse.Namespace, analysis: str) -> Textfile | None:
    if args.prometheus_textfile is None:
        return None
    return Textfile(args.prometheus_textfile, analysis, getattr(args, "prometheus_top", TOP))
