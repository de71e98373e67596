"""What the process analysis was asked, and everything it found: the one object every output
renders (console text, CSVs, PNGs, the report, the Prometheus textfile).

It holds what the outputs show and nothing of the records the answers were computed from:
counts, the time range, the tables, and the series each plot draws.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

import numpy as np
import numpy.typing as npt
import pandas as pd

from utils.core import defaults
from utils.judge.breakdown import Period
from utils.judge.growth import GrowthParams
from utils.judge.leaks import Leak, LeakPlot, LeakSurvey
from utils.judge.oom import OomFindings
from utils.judge.program_growth import ProgramFindings, ProgramSeries
from utils.judge.services import ServiceFindings
from utils.judge.spreads import PidPlot
from utils.read.kernel_log import KernelLogs


@dataclass(frozen=True)
class ProcessOptions:
    """What the user asked of the analysis (the defaults are the script's constants)."""

    top_n: int = defaults.TOP_N
    match: str | None = None
    growth: GrowthParams = field(default_factory=GrowthParams)
    fail_on_leak: bool = False
    fail_on_oom: bool = False
    group_by: str = "program"  # --group-by: program totals by "program" or "user"
    compare: tuple[Period, Period] | None = None  # None: the first and the last day
    read_users: bool = False  # each leak's user, for the Prometheus labels
    plots: bool = True  # False (--no-plots): the series the plots draw are not taken
    program_plots: int = 0  # the programs that grew most whose series are taken
    kernel_logs: KernelLogs = field(
        default_factory=KernelLogs
    )  # --kernel-log: saved logs whose kills join
    alert_days: float | None = None  # --alert-days: a service within this many days of its limit


@dataclass(frozen=True)
class PlotData:
    """The series each plot draws, in the order the plots are drawn (empty under
    --no-plots)."""

    pids: tuple[PidPlot, ...] = ()  # one per row of `top`
    leaks: tuple[LeakPlot, ...] = ()  # one per leak
    programs: tuple[ProgramSeries, ...] = ()  # the programs that grew most


@dataclass(frozen=True)
class ProcessResult:
    """Everything the process analysis found."""

    options: ProcessOptions
    snapshots_read: int  # snapshots that gave rows (before --match)
    times: npt.NDArray[np.datetime64]  # UTC, of every snapshot read: the collector's outages
    pids: int  # PIDs seen (after --match)
    top: pd.DataFrame  # the original README's table: the top N by RSS spread
    survey: LeakSurvey  # the leaks, highest rate first, and what was judged
    span: tuple[datetime, datetime]  # first and last snapshot with a row (after --match)
    alerts: list[str]
    ooms: OomFindings | None = None  # None: the dumps carry no OOM counter
    programs: ProgramFindings | None = None  # None: under two snapshots
    plots: PlotData = PlotData()
    services: ServiceFindings | None = None  # None: the dumps hold no cgroup_mem file

    @property
    def leaks(self) -> list[Leak]:
        return self.survey.leaks

    @property
    def instances(self) -> int:
        """Process instances seen (after --match), judged or not."""
        return self.survey.instances
