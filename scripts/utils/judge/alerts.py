"""The alert rules, written once: the analyses' exit status and the report's table of what
each flag would give both ask them here.

--alert-pct P    holds when RAM used (htop) at the last snapshot is at least P % of MemTotal;
--alert-days D   holds when MemAvailable's fall is significant and the fast end of its range
                 reaches 0 within D days;
--fail-on-oom    holds when the OOM killer killed in the window;
--fail-on-leak   holds when a process instance leaks.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, NamedTuple

import pandas as pd

from utils.core.text import plural
from utils.parser import DISPLAY_FORMAT
from utils.reduce.counters import OomInterval

if TYPE_CHECKING:  # the process analysis asks the rules too, and needs no forecast
    from utils.judge.forecast import Forecast
    from utils.judge.system_metrics import SystemOptions, SystemSummary


class Threshold(NamedTuple):
    """An alert that compares a value with the number its flag is given."""

    flag: str
    metavar: str  # the flag's number, as the report's table names it
    at_least: bool  # True: holds when the value is at least the number; False: at most
    decimals: int  # the report shows the bound to this many decimals

    def holds(self, value: float | None, bound: float) -> bool:
        """Whether `flag bound` raises the alert on `value` (None: never)."""
        if value is None:
            return False
        return value >= bound if self.at_least else value <= bound

    def holds_for(self, value: float) -> str:
        """The numbers the flag raises the alert for on `value`, as the report says it
        (`P ≤ 87.45`): the bound is the last number with this many decimals for which
        `holds` is true, so every number it names raises the alert and the next does not."""
        inward = -1 if self.at_least else 1
        rounded: Callable[[float], int] = math.floor if self.at_least else math.ceil
        steps = rounded(value * 10**self.decimals)
        # value * 10**decimals is itself rounded: the bound may be one step off either way.
        while not self.holds(value, float(self._text(steps))):
            steps += inward
        while self.holds(value, float(self._text(steps - inward))):
            steps -= inward
        sign = "≤" if self.at_least else "≥"
        return f"{self.metavar} {sign} {self._text(steps)}"

    def _text(self, steps: int) -> str:
        return f"{steps / 10**self.decimals:.{self.decimals}f}"


PCT_ALERT = Threshold("--alert-pct", "P", at_least=True, decimals=2)
DAYS_ALERT = Threshold("--alert-days", "D", at_least=False, decimals=1)


def oom_kill_count(ooms: Sequence[OomInterval] | None) -> int:
    return 0 if ooms is None else sum(oom.kills for oom in ooms)


def oom_alert_holds(kills: int) -> bool:
    """--fail-on-oom, in both analyses: the window holds an OOM kill."""
    return kills > 0


def leak_alert_holds(leaks: int) -> bool:
    """--fail-on-leak: a process instance leaks."""
    return leaks > 0


def pct_fact(summary: SystemSummary, latest_pct: float) -> str:
    """What --alert-pct is judged on, as every alert and the report say it."""
    return (
        f"RAM used (htop) is {latest_pct:.2f}% of MemTotal at the last snapshot"
        f" ({summary.last:{DISPLAY_FORMAT}} UTC)"
    )


def alert_days(forecast: Forecast) -> float | None:
    """What --alert-days and the Prometheus rule compare with their threshold: the days to
    zero at the fast end of the range, only while the fall is significant at the forecast's
    level and reaches zero within its horizon (its status is FALLING); None otherwise."""
    if forecast.status.name != "FALLING":
        return None
    return forecast.days_to_zero_low


def zero_fact(forecast: Forecast) -> str | None:
    """What --alert-days is judged on, as every alert and the report say it; None unless
    MemAvailable's fall is significant (`forecast.alert_days`)."""
    days, fast = forecast.days_to_zero, alert_days(forecast)
    if days is None or fast is None:
        return None
    slow = forecast.days_to_zero_high
    return (
        f"{forecast.basis} reaches 0 in about {days:,.1f} days"
        f" ({fast:,.1f} to {'more' if slow is None else f'{slow:,.1f}'}), around"
        f" {forecast.zero_date} UTC"
    )


def oom_alert(ooms: Sequence[OomInterval]) -> str:
    """What --fail-on-oom says, in both analyses."""
    return (
        f"{plural(oom_kill_count(ooms), 'OOM kill')} in the window, the last between"
        f" {pd.Timestamp(ooms[-1].after):{DISPLAY_FORMAT}} and"
        f" {pd.Timestamp(ooms[-1].before):{DISPLAY_FORMAT}} UTC"
    )


def check_alerts(summary: SystemSummary, latest_pct: float, options: SystemOptions) -> list[str]:
    """A line for each alert asked for that holds."""
    raised = []
    if options.alert_pct is not None and PCT_ALERT.holds(latest_pct, options.alert_pct):
        raised.append(
            f"{pct_fact(summary, latest_pct)}, at or above {PCT_ALERT.flag}"
            f" {options.alert_pct:g}"
        )
    days, fact = alert_days(summary.forecast), zero_fact(summary.forecast)
    if options.alert_days is not None and DAYS_ALERT.holds(days, options.alert_days):
        raised.append(f"{fact}, within {DAYS_ALERT.flag} {options.alert_days:g}")
    if options.fail_on_oom and oom_alert_holds(oom_kill_count(summary.ooms)):
        assert summary.ooms is not None  # a kill was counted
        raised.append(oom_alert(summary.ooms))
    return raised
