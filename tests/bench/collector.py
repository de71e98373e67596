"""The collector's cost: one snapshot's CPU against the `ps` run alone, on a host with at
least MIN_PROCESSES processes (idle `sleep`s are spawned to reach it, and killed after),
the spawned ones spread over CGROUPS memory cgroups of their own where this runs as root
on a host with a cgroup v1 memory hierarchy (removed after).

All four are measured in this process, alternating, as CPU seconds (user + system) of
this process and of the children it waited for (getrusage(2)):
- `ps` alone: the collector's ps command, run and its output read;
- a snapshot as before the /proc columns: take_snapshot with the per-process reads off;
- a snapshot as before the cgroup columns: the per-process reads on, the cgroups' off;
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
from utils.collect.cgroups import CgroupReader
from utils.core.signals import StopSignals

MIN_PROCESSES = 600
CGROUPS = 50
ROUNDS = 15
# A snapshot's CPU at most this many times that of ps alone: without the cgroup columns,
# and with them (600 processes in 50 cgroups).
SNAPSHOT_CPU_LIMIT = 2.5
CGROUP_SNAPSHOT_CPU_LIMIT = 3.0
V1_MEMORY = Path("/sys/fs/cgroup/memory")


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
def bench_cgroups(count: int) -> Iterator[list[Path]]:
    """`count` v1 memory cgroups of this run's own (none where it cannot make them); every
    process left in them is killed, and they are removed, after."""
    made: list[Path] = []
    try:
        if os.geteuid() == 0 and (V1_MEMORY / "memory.limit_in_bytes").exists():
            for number in range(count):
                path = V1_MEMORY / f"pmi-bench-{os.getpid()}-{number}"
                with contextlib.suppress(OSError):
                    path.mkdir()
                    made.append(path)
        yield made
    finally:
        for path in made:
            with contextlib.suppress(OSError):
                for pid in (path / "cgroup.procs").read_text().split():
                    with contextlib.suppress(ProcessLookupError):
                        os.kill(int(pid), 9)
            for _ in range(100):
                try:
                    path.rmdir()
                    break
                except OSError:
                    time.sleep(0.05)


@contextlib.contextmanager
def enough_processes(least: int, groups: list[Path] | None = None) -> Iterator[int]:
    """Idle processes until the host has at least `least`, spread over `groups`; how many
    the host has then."""
    spawned: list[subprocess.Popen[bytes]] = []
    try:
        for number in range(max(0, least - _process_count())):
            process = subprocess.Popen(["sleep", "3600"])
            spawned.append(process)
            if groups:
                with contextlib.suppress(OSError):
                    (groups[number % len(groups)] / "cgroup.procs").write_text(str(process.pid))
        yield _process_count()
    finally:
        for process in spawned:
            process.kill()
        for process in spawned:
            process.wait(timeout=10)


class CollectorCost(NamedTuple):
    processes: int
    cgroups: int  # rows of the snapshot's cgroup file
    ps_s: float  # median CPU seconds of each
    before_s: float
    without_cgroups_s: float
    snapshot_s: float


def measure(rounds: int = ROUNDS) -> CollectorCost:
    guard = StopSignals()
    clock = procfs.boot_clock()
    samples: dict[str, list[float]] = {"ps": [], "before": [], "without": [], "snapshot": []}
    with (
        bench_cgroups(CGROUPS) as groups,
        enough_processes(MIN_PROCESSES, groups) as count,
        tempfile.TemporaryDirectory() as work,
    ):
        second = int(time.time())
        # As the collector runs: the hierarchy found once, names kept; and none at all.
        cgroups = CgroupReader()
        no_cgroups = CgroupReader(Path(work) / "no-proc")

        def snapshot(reader: CgroupReader = cgroups) -> None:
            nonlocal second
            second += 1
            stamp = time.strftime("%Y%m%d_%H%M%S", time.gmtime(second))
            state = collect_memory.RunState(clock, None, reader)
            collect_memory.take_snapshot(Path(work), stamp, guard, state=state)

        def before() -> None:
            with mock.patch.object(collect_memory, "process_memory", lambda *_: procfs.NOTHING):
                snapshot(no_cgroups)

        for _ in range(rounds):
            samples["ps"].append(_cpu_of(collect_memory.run_ps))
            samples["before"].append(_cpu_of(before))
            samples["without"].append(_cpu_of(lambda: snapshot(no_cgroups)))
            samples["snapshot"].append(_cpu_of(snapshot))
        rows = len(cgroups.rows(cgroups.process_cgroup(pid) for pid in _pids()))
    median = {name: statistics.median(values) for name, values in samples.items()}
    return CollectorCost(
        count, rows, median["ps"], median["before"], median["without"], median["snapshot"]
    )


def _pids() -> list[int]:
    return [int(name) for name in os.listdir("/proc") if name.isdigit()]


def collector_section() -> tuple[list[str], list[Check]]:
    cost = measure()
    without = ratio(cost.without_cgroups_s, cost.ps_s)
    value = ratio(cost.snapshot_s, cost.ps_s)
    lines = [
        f"Collector (one snapshot's CPU, median of {ROUNDS}, with {cost.processes:,} processes"
        f" on the host in {cost.cgroups:,} memory cgroups)",
        f"  ps alone                       {cost.ps_s * 1000:7.1f} ms",
        f"  snapshot without /proc reads   {cost.before_s * 1000:7.1f} ms"
        f"  {format_ratio(ratio(cost.before_s, cost.ps_s))} of ps",
        f"  snapshot without cgroups       {cost.without_cgroups_s * 1000:7.1f} ms"
        f"  {format_ratio(without)} of ps",
        f"  snapshot                       {cost.snapshot_s * 1000:7.1f} ms"
        f"  {format_ratio(value)} of ps",
        "",
    ]
    return lines, [
        ratio_check(
            "collector snapshot CPU without cgroups / ps alone", without, SNAPSHOT_CPU_LIMIT
        ),
        ratio_check("collector snapshot CPU / ps alone", value, CGROUP_SNAPSHOT_CPU_LIMIT),
    ]
