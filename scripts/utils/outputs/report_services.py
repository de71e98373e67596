"""The report's Services section: every service (memory cgroup) as services.csv has it, the
leak verdict, each one's way to its limit, and its plot where the run drew one."""

from __future__ import annotations

import math
from collections.abc import Mapping

from utils.console import EXIT_ALERT, EXIT_OK
from utils.core.text import signed
from utils.judge.alerts import DAYS_ALERT
from utils.judge.service_alerts import limit_fact
from utils.judge.services import SERVICES_CSV, Service, ServiceFindings
from utils.outputs.report_page import Block, Cell, Column, Paragraph, Table, one_decimal
from utils.outputs.service_console import NO_CGROUPS, days_text, leak_sentence

SERVICE_COLUMNS = (
    Column("service"),
    Column("cgroup"),
    Column("memory", "MiB, last", numeric=True),
    Column("growth", "MiB", numeric=True),
    Column("limit", "MiB", numeric=True),
    Column("leak", "MiB/day", numeric=True),
    Column("to limit", "days", numeric=True),
    Column("OOM kills", numeric=True),
    Column("memory over time", "click a plot for its full size", sortable=False),
)


def _number(value: float | None, with_sign: bool = False) -> Cell:
    if value is None or math.isnan(value):
        return Cell("-")
    return Cell(signed(value, 1) if with_sign else one_decimal(value), value)


def _row(service: Service, thumbnail: Cell | None) -> list[Cell]:
    days = service.days_to_limit
    return [
        Cell(service.service),
        Cell(service.cgroup, css="cmd"),
        _number(service.last_mb),
        _number(service.growth_mb, with_sign=True),
        _number(service.limit_mb),
        _number(service.leak_mb_per_day),
        Cell(days_text(days), days) if days is not None else Cell("-"),
        Cell(f"{service.oom_kills:,}", service.oom_kills),
        thumbnail or Cell(""),
    ]


def services_blocks(
    found: ServiceFindings | None, thumbnails: Mapping[str, Cell]
) -> tuple[Block, ...]:
    """The section's blocks; thumbnails: a plot's cell by cgroup, for those drawn."""
    if found is None:
        return (Paragraph(NO_CGROUPS + "."),)
    lead = (
        f"Each memory cgroup (a systemd unit, a container, a pod) in {found.snapshots:,} cgroup"
        f" snapshots, largest memory first ({SERVICES_CSV}). A service leaks when its anon +"
        " swap keeps rising by the leak finder's rules, whatever its workers do; page cache"
        " rises with any I/O and is no leak."
    )
    verdict = leak_sentence(found) + "."
    css = "verdict leaking" if found.leaks else "verdict"
    near = [Paragraph(fact + ".") for fact in map(limit_fact, found.near_limit) if fact]
    rows = [_row(service, thumbnails.get(service.cgroup)) for service in found.services]
    return (
        Paragraph(verdict, css),
        *near,
        Paragraph(lead),
        Table(SERVICE_COLUMNS, rows, sorted_by=2),
    )


def days_alert_row(found: ServiceFindings | None, flags: str) -> list[str] | None:
    """What `analyze_processes.py --alert-days D` would give, as the alerts table says it;
    None when the dumps hold no cgroup snapshot."""
    if found is None:
        return None
    command = f"analyze_processes.py{flags} {DAYS_ALERT.flag} {DAYS_ALERT.metavar}"
    near = found.near_limit
    fact = None if not near else limit_fact(near[0])
    if fact is None or near[0].days_fast is None:
        return [
            command,
            f"{EXIT_OK} for any {DAYS_ALERT.metavar}",
            "no service rises toward a limit",
        ]
    status = f"{EXIT_ALERT} for {DAYS_ALERT.holds_for(near[0].days_fast)}, else {EXIT_OK}"
    return [command, status, f"{fact}, the soonest"]
