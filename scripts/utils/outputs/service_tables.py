"""services.csv: one row per service (memory cgroup), largest memory at its last snapshot
first. leak_MB_per_day is empty unless the service leaks as a whole, days_to_limit empty
unless it rises toward a limit; limit_MB empty where it has none."""

from __future__ import annotations

import csv
import math
from pathlib import Path

from utils.core.atomic_files import replace_atomically
from utils.judge.services import SERVICES_CSV, Service, ServiceFindings

SERVICE_COLUMNS: tuple[str, ...] = (
    "service",
    "cgroup",
    "first_MB",
    "last_MB",
    "growth_MB",
    "limit_MB",
    "leak_MB_per_day",
    "days_to_limit",
    "oom_kills",
)
# Days to a limit may be minutes (a soak test): to the tenth of a second.
DAYS_DECIMALS = 6


def _number(value: float | None, decimals: int = 3) -> str:
    return "" if value is None or math.isnan(value) else f"{value:.{decimals}f}"


def service_row(service: Service) -> list[str]:
    """A row of services.csv, in SERVICE_COLUMNS' order."""
    return [
        service.service,
        service.cgroup,
        _number(service.first_mb),
        _number(service.last_mb),
        _number(service.growth_mb),
        _number(service.limit_mb),
        _number(service.leak_mb_per_day),
        _number(service.days_to_limit, DAYS_DECIMALS),
        str(service.oom_kills),
    ]


def write_services_csv(found: ServiceFindings | None, out_dir: Path) -> list[Path]:
    """services.csv, written whole; nothing when the dumps hold no cgroup snapshot."""
    if found is None:
        return []

    def write(temp: Path) -> None:
        with temp.open("w", encoding="utf-8", newline="") as handle:
            writer = csv.writer(handle, lineterminator="\n")
            writer.writerow(SERVICE_COLUMNS)
            writer.writerows(service_row(service) for service in found.services)

    return [replace_atomically(out_dir / SERVICES_CSV, write)]
