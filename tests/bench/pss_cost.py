"""The collector's cost with its Pss reads: one snapshot's CPU against the `ps` run alone, on a
host with POOLS pre-fork pools of POOL_SIZE processes (600 in all) that share their parents'
pages, all of them eligible for a read. The snapshot is take_snapshot as the collector runs
it, with a ShareReader at the script's default budget and cap kept from one round to the
next (its rotation, as in a run); `ps` alone and the snapshot alternate, as in
bench/collector.py, and so does a snapshot that reads no Pss.
"""

from __future__ import annotations

import contextlib
import statistics
import tempfile
import time
from pathlib import Path
from typing import NamedTuple

from pools import running

import collect_memory
from bench.collector import _cpu_of
from bench.results import Check, format_ratio, ratio, ratio_check
from utils.collect import procfs, smaps
from utils.core.signals import StopSignals

POOLS = 50
POOL_SIZE = 12  # a parent and 11 workers
POOL_MIB = 16  # what each parent touches before it forks
ROUNDS = 15
# A snapshot with its Pss reads at most this many times the CPU of ps alone.
PSS_SNAPSHOT_CPU_LIMIT = 3.5


class PssCost(NamedTuple):
    processes: int
    ps_s: float  # median CPU seconds of each
    without_s: float
    snapshot_s: float
    shares_read: float  # per snapshot, the median


def measure(rounds: int = ROUNDS) -> PssCost:
    guard = StopSignals()
    clock = procfs.boot_clock()
    settings = smaps.Settings(
        collect_memory.PSS_BUDGET_MS / 1000,
        int(collect_memory.PSS_CAP_MB * 1024),
        collect_memory.PSS_CAP_EVERY,
    )
    reader = smaps.ShareReader(settings)
    samples: dict[str, list[float]] = {"ps": [], "without": [], "snapshot": [], "read": []}
    with contextlib.ExitStack() as stack, tempfile.TemporaryDirectory() as work:
        folder = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="bench-pools-")))
        pids = [
            stack.enter_context(running("pool", f"benchpool{n}", POOL_MIB, POOL_SIZE - 1, folder))
            for n in range(POOLS)
        ]
        second = int(time.time())

        def snapshot(shares: smaps.ShareReader | None) -> None:
            nonlocal second
            second += 1
            stamp = time.strftime("%Y%m%d_%H%M%S", time.gmtime(second))
            state = collect_memory.RunState(clock, None, shares=shares)
            collect_memory.take_snapshot(Path(work), stamp, guard, state=state)

        for _ in range(rounds):
            samples["ps"].append(_cpu_of(collect_memory.run_ps))
            samples["without"].append(_cpu_of(lambda: snapshot(None)))
            known = dict(reader.waiting)
            samples["snapshot"].append(_cpu_of(lambda: snapshot(reader)))
            fresh = sum(1 for key, at in reader.waiting.items() if at >= 0 and known.get(key) != at)
            samples["read"].append(float(fresh))
        count = sum(len(group) for group in pids)
    median = {name: statistics.median(values) for name, values in samples.items()}
    return PssCost(count, median["ps"], median["without"], median["snapshot"], median["read"])


def pss_section() -> tuple[list[str], list[Check]]:
    cost = measure()
    value = ratio(cost.snapshot_s, cost.ps_s)
    lines = [
        f"Collector with Pss reads (one snapshot's CPU, median of {ROUNDS}, {cost.processes:,}"
        f" processes in {POOLS} pre-fork pools, budget {collect_memory.PSS_BUDGET_MS:g} ms)",
        f"  ps alone                       {cost.ps_s * 1000:7.1f} ms",
        f"  snapshot reading no Pss        {cost.without_s * 1000:7.1f} ms"
        f"  {format_ratio(ratio(cost.without_s, cost.ps_s))} of ps",
        f"  snapshot                       {cost.snapshot_s * 1000:7.1f} ms"
        f"  {format_ratio(value)} of ps, {cost.shares_read:,.0f} Pss read",
        "",
    ]
    check = ratio_check("collector snapshot with Pss CPU / ps alone", value, PSS_SNAPSHOT_CPU_LIMIT)
    return lines, [check]
