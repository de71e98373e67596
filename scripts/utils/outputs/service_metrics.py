"""The Services section as Prometheus metrics, labelled `service` and `cgroup` (one cgroup per
service name, so the pair is one series).

Cardinality is bounded: a series for each of the `top` largest services by memory, and for
every one flagged as leaking or rising toward its limit (a host has tens of cgroups; a
container host's churn of short-lived ones stays out unless one of them matters). The counts
cover every service.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

from utils.core.units import DAY_S, MIB
from utils.judge.services import Service, ServiceFindings, plotted
from utils.outputs.prometheus import PREFIX, Labels, Metric, Sample, gauge

# Each series: its name, its HELP text and its value for a service (None: no sample).
SERIES: tuple[tuple[str, str, Callable[[Service], float | None]], ...] = (
    (
        "service_memory_bytes",
        "A service's memory (with page cache) at its last cgroup snapshot.",
        lambda s: s.last_mb * MIB,
    ),
    (
        "service_limit_bytes",
        "A service's memory limit at its last cgroup snapshot (none: no limit).",
        lambda s: None if s.limit_mb is None else s.limit_mb * MIB,
    ),
    (
        "service_leak_growth_bytes_per_second",
        "Growth rate of a service that leaks as a whole (its anon + swap).",
        lambda s: None if s.leak is None else s.leak.rate_mb_per_day * MIB / DAY_S,
    ),
    (
        "service_seconds_to_limit",
        "How soon a service rising toward its limit reaches it, at the fast end of the range.",
        lambda s: None if s.days_fast is None else s.days_fast * DAY_S,
    ),
    (
        "service_oom_kills",
        "Tasks of a service the OOM killer killed in the analysed window.",
        lambda s: float(s.oom_kills),
    ),
)


def service_metrics(found: ServiceFindings | None, top: int) -> list[Metric]:
    """The services' counts, and the series of the largest, flagged and near-limit ones; none
    when the dumps hold no cgroup snapshot."""
    if found is None:
        return []
    shown = plotted(found, top)
    counts = [
        gauge(
            "services", "Services (memory cgroups) in the cgroup snapshots.", len(found.services)
        ),
        gauge(
            "leaking_services",
            "Services whose anon + swap the leak finder flags as leaking, as a whole.",
            len(found.leaks),
        ),
    ]
    return counts + [_per_service(name, text, shown, value) for name, text, value in SERIES]


def _per_service(
    name: str,
    help_text: str,
    services: Sequence[Service],
    value: Callable[[Service], float | None],
) -> Metric:
    samples = []
    for service in services:
        number = value(service)
        if number is not None and not math.isnan(number):  # NaN: not reported
            labels: Labels = (("service", service.service), ("cgroup", service.cgroup))
            samples.append(Sample(labels, float(number)))
    return Metric(PREFIX + name, help_text, tuple(samples))
