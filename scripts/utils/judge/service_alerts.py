"""The process analysis's alerts about services: --fail-on-leak for a service that leaks as a
whole, --alert-days for one whose time to its limit (the fast end of its range) is within
the days given. The rules themselves are utils.judge.alerts's, shared with the system
analysis: leak_alert_holds and DAYS_ALERT."""

from __future__ import annotations

from typing import TYPE_CHECKING

from utils.console import EXIT_ALERT
from utils.core.text import format_duration
from utils.core.units import DAY_S
from utils.judge.alerts import DAYS_ALERT, leak_alert_holds
from utils.judge.services import Service, ServiceFindings

if TYPE_CHECKING:  # the options live with the result, which imports this stage's findings
    from utils.judge.process_result import ProcessOptions


def limit_fact(service: Service) -> str | None:
    """How soon a service reaches its limit, as the alert and the outputs say it; None when it
    does not rise toward one."""
    if service.days_to_limit is None or service.limit_mb is None:
        return None
    fast = "now" if service.days_fast is None else days_text(service.days_fast)
    slow = "more" if service.days_slow is None else days_text(service.days_slow)
    return (
        f"{service.service} ({service.cgroup}) reaches its limit of {service.limit_mb:,.0f} MiB"
        f" in about {days_text(service.days_to_limit)} ({fast} to {slow})"
    )


def days_text(days: float) -> str:
    """A time to a limit as the alerts say it: `4.74 days` from a day on, else a duration
    (`5 min 8 s`: a soak test's)."""
    return f"{days:,.2f} days" if days >= 1 else format_duration(days * DAY_S)


def service_alerts(options: ProcessOptions, found: ServiceFindings | None) -> list[str]:
    """The lines of --fail-on-leak (services) and --alert-days that hold."""
    if found is None:
        return []
    alerts = []
    if options.fail_on_leak and leak_alert_holds(len(found.leaks)):
        names = ", ".join(service.service for service in found.leaks)
        alerts.append(
            f"{len(found.leaks)} service(s) leak as a whole: {names}; exit status {EXIT_ALERT}"
        )
    if options.alert_days is not None:
        for service in found.near_limit:
            fact = limit_fact(service)
            if fact is not None and DAYS_ALERT.holds(service.days_fast, options.alert_days):
                alerts.append(
                    f"{fact}, within {DAYS_ALERT.flag} {options.alert_days:g};"
                    f" exit status {EXIT_ALERT}"
                )
    return alerts
