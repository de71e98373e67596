"""The Services section of the process analysis on the console: the largest services and
every flagged or near-limit one, which of them leak as a whole, and how soon each rising one
reaches its limit."""

from __future__ import annotations

import math

from utils.core.text import aligned_table, format_duration, plural, signed
from utils.core.units import DAY_S
from utils.judge.growth import span_text
from utils.judge.service_alerts import limit_fact
from utils.judge.services import SERVICES_CSV, Service, ServiceFindings, plotted
from utils.reduce.buckets import BUCKET_S

NO_CGROUPS = "Services: no cgroup snapshots in these dumps"
SERVICE_ROWS = 10  # the largest services on the console (flagged ones come on top of these)


def _mb(value: float | None, with_sign: bool = False) -> str:
    if value is None or math.isnan(value):
        return "-"
    return signed(value, 1) if with_sign else f"{value:,.1f}"


def days_text(days: float | None) -> str:
    """A time to a limit as a person reads it: days from a day on, else a duration."""
    if days is None:
        return "-"
    return f"{days:,.1f} d" if days >= 1 else format_duration(days * DAY_S)


def format_services(found: ServiceFindings | None, rows: int = SERVICE_ROWS) -> list[str]:
    """The Services section; one line when the dumps hold no cgroup snapshot."""
    if found is None:
        return [NO_CGROUPS]
    shown = plotted(found, rows)
    order = {service.cgroup: at for at, service in enumerate(found.services)}
    shown.sort(key=lambda service: order[service.cgroup])
    hourly = bool(found.leaks) and all(s.leak and s.leak.bucket_s < BUCKET_S for s in found.leaks)
    unit, per_day = ("MiB/h", 24.0) if hourly else ("MiB/day", 1.0)
    cells = [
        (
            service.service,
            _mb(service.last_mb),
            _mb(service.growth_mb, with_sign=True),
            _mb(service.limit_mb),
            "-" if service.leak is None else f"{service.leak.rate_mb_per_day / per_day:,.1f}",
            days_text(service.days_to_limit),
            f"{service.oom_kills:,}",
        )
        for service in shown
    ]
    header = ("service", "last MiB", "growth MiB", "limit MiB", f"leak {unit}", "to limit", "OOM")
    lines = [
        f"Services: {plural(len(found.services), 'memory cgroup')} in"
        f" {found.snapshots:,} cgroup snapshots, the largest {len(shown)} ({SERVICES_CSV})",
        "",
        *aligned_table(header, cells, "cgroup", [service.cgroup for service in shown]),
        "",
        leak_sentence(found),
    ]
    return lines + [f"  {fact}" for fact in map(limit_fact, found.near_limit) if fact]


def leak_sentence(found: ServiceFindings) -> str:
    """What the leak finder judged of the services and found, in one sentence."""
    least = span_text(found.min_span_s)
    if found.judged == 0:
        return f"No service was watched long enough to judge (at least {least}); nothing judged"
    if not found.leaks:
        return (
            f"No service shows sustained growth of its anon + swap ({found.judged:,} of"
            f" {len(found.services):,} judged: those watched at least {least})"
        )
    names = ", ".join(_named(service) for service in found.leaks)
    return (
        f"Sustained growth (leaks) of the whole service in {len(found.leaks)} of the"
        f" {plural(found.judged, 'service')} judged: {names}"
    )


def _named(service: Service) -> str:
    return f"{service.service} ({service.basis})"
