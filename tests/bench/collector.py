"""The collector's cost: one snapshot's CPU against the `ps` run alone, on a host with at
least MIN_PROCESSES processes (idle `sleep`s are spawned to reach it, and killed after).

All three are measured in this process, alternating, as CPU seconds (user + system) of
this process and of the children it waited for (getrusage(2)):
- `ps` alone: the collector's ps command, run and its output read;
- a snapshot as before the /proc columns: take_snapshot with the per-process reads off;
- a snapshot: take_snapshot as the collector runs it, files written to a temporary dir.
"""

from __future__ import annotations

import contextlib
import os
import resource
import statistics
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import NamedTuple
from unittest import mock

import collect_memory
from bench.results import Check, format_ratio, ratio, ratio_check
from utils.collect import procfs
from utils.core.signals import StopSignals

MIN_PROCESSES = 600
ROUNDS = 15
# A snapshot's CPU at most this many times that of ps alone.
SNAPSHOT_CPU_LIMIT = 2.5


def _cpu_s() -> float:
    own = resource.getrusage(resource.RUSAGE_SELF)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def _cpu_of(action: Callable[[], object]) -> float:
    before = _cpu_s()
    action()
    return _cpu_s() - before


def _process_count() -> int:
    return sum(1 for name in os.listdir("/proc") if name.isdigit())


@contextlib.contextmanager
def enough_processes(least: int) -> Iterator[int]:
    """Idle processes until the host has at least `least`; how many it has then."""
    spawned: list[subprocess.Popen[bytes]] = []
    try:
        for _ in range(max(0, least - _process_count())):
            spawned.append(subprocess.Popen(["sleep", "3600"]))
        yield _process_count()
    finally:
        for process in spawned:
            process.kill()
        for process in spawned:
            process.wait(timeout=10)


class CollectorCost(NamedTuple):
    processes: int
    ps_s: float  # median CPU seconds of each
    before_s: float
    snapshot_s: float


def measure(rounds: int = ROUNDS) -> CollectorCost:
    guard = StopSignals()
    clock = procfs.boot_clock()
    samples: dict[str, list[float]] = {"ps": [], "before": [], "snapshot": []}
    with enough_processes(MIN_PROCESSES) as count, tempfile.TemporaryDirectory() as work:
        second = int(time.time())

        def snapshot() -> None:
            nonlocal second
            second += 1
            stamp = time.strftime("%Y%m%d_%H%M%S", time.gmtime(second))
            collect_memory.take_snapshot(
                Path(work), stamp, guard, state=collect_memory.RunState(clock, None)
            )

        def before() -> None:
            with mock.patch.object(collect_memory, "process_memory", lambda *_: procfs.NOTHING):
                snapshot()

        for _ in range(rounds):
            samples["ps"].append(_cpu_of(collect_memory.run_ps))
            samples["before"].append(_cpu_of(before))
            samples["snapshot"].append(_cpu_of(snapshot))
    median = {name: statistics.median(values) for name, values in samples.items()}
    return CollectorCost(count, median["ps"], median["before"], median["snapshot"])


def collector_section() -> tuple[list[str], list[Check]]:
    cost = measure()
    value = ratio(cost.snapshot_s, cost.ps_s)
    lines = [
        f"Collector (one snapshot's CPU, median of {ROUNDS}, with {cost.processes:,} processes"
        " on the host)",
        f"  ps alone                       {cost.ps_s * 1000:7.1f} ms",
        f"  snapshot without /proc reads   {cost.before_s * 1000:7.1f} ms"
        f"  {format_ratio(ratio(cost.before_s, cost.ps_s))} of ps",
        f"  snapshot                       {cost.snapshot_s * 1000:7.1f} ms"
        f"  {format_ratio(value)} of ps",
        "",
    ]
    return lines, [ratio_check("collector snapshot CPU / ps alone", value, SNAPSHOT_CPU_LIMIT)]
