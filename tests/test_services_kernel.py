"""A service on the real kernel: three worker processes in their own memory cgroup, each
replaced by a fresh one every 20 s, the cgroup's total rising about 1 MiB/s, with the
collector at 1 s for 3 minutes. The service is flagged at its measured rate, no worker is,
and its time to its limit agrees with the measured approach (each within 25 %).

The cgroup_mem rows come from the collector where it writes them; the other test writes them
itself from the cgroup's own counters at 1 s (cgroup v1: memory.usage_in_bytes,
memory.limit_in_bytes, memory.stat's hierarchical total_* fields, memory.oom_control;
Documentation/admin-guide/cgroup-v1/memory.rst), so that the analysis is checked on the real
kernel whether the collector writes them or not.
"""

from __future__ import annotations

import contextlib
import csv
import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import NamedTuple

import numpy as np
import pytest
from kernel import MIB, memory_cgroup

import analyze_processes
from conftest import run_main, script_path
from utils.collect.snapshot_format import (
    CGROUP_HEADER,
    CGROUP_PREFIX,
    CSV_SUFFIX,
    TIMESTAMP_FORMAT,
    csv_text,
)

pytestmark = pytest.mark.slow

RUN_S = 180  # the collector at 1 s for 3 minutes
WORKERS = 3
WORKER_LIFE_S = 20.0
RATE_MB_PER_S = 1.0  # the cgroup's total
START_MB = 30.0  # the workers' data at the start, all three together
LIMIT_MIB = 700  # far enough that 3 minutes never reach it: the approach is measured
TOLERANCE = 0.25
MARK = "pmi-test-service-worker"  # in each worker's command line

# A worker: joins the cgroup, takes its share of the service's data at once, says so, then
# grows at its share of the rate, in 64 KiB blocks written through (so they are resident).
WORKER = f"""
import os, sys, time
procs, start_mb, rate = sys.argv[1], float(sys.argv[2]), float(sys.argv[3])
with open(procs, "w") as handle:
    handle.write(str(os.getpid()))
block = 64 * 1024
held = [bytearray(b"\\1") * int(start_mb * {MIB})]
sys.stdout.write("ready\\n"); sys.stdout.flush()
began, taken = time.monotonic(), 0.0
while True:
    time.sleep(0.05)
    want = rate * (time.monotonic() - began)
    while taken < want:
        held.append(bytearray(b"\\1") * block)
        taken += block / {MIB}
# {MARK}
"""


def spawn(procs: Path, start_mb: float) -> subprocess.Popen[str]:
    """A worker holding start_mb, in the cgroup, once it says it is ready."""
    worker = subprocess.Popen(
        [sys.executable, "-c", WORKER, str(procs), f"{start_mb:.3f}", str(RATE_MB_PER_S / WORKERS)],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert worker.stdout is not None and worker.stdout.readline() == "ready\n"
    return worker


def run_service(procs: Path, stop: threading.Event) -> None:
    """Three workers, each replaced every WORKER_LIFE_S (staggered): the new one starts with
    what the old one held and only then is the old one killed, so the total never dips."""
    began = time.monotonic()
    share = START_MB / WORKERS
    workers = [spawn(procs, share) for _ in range(WORKERS)]
    born = [began - WORKER_LIFE_S * k / WORKERS for k in range(WORKERS)]
    try:
        while not stop.wait(0.2):
            now = time.monotonic()
            for slot in range(WORKERS):
                if now - born[slot] >= WORKER_LIFE_S:
                    total = START_MB + RATE_MB_PER_S * (now - began)
                    fresh = spawn(procs, total / WORKERS)
                    workers[slot].kill()
                    workers[slot].wait(timeout=30)
                    workers[slot], born[slot] = fresh, now
    finally:
        for worker in workers:
            with contextlib.suppress(ProcessLookupError):
                worker.kill()
            worker.wait(timeout=30)


class Sample(NamedTuple):
    at: float  # epoch seconds
    usage_mb: float
    anon_mb: float
    row: list[str]


def read_counters(group: Path, name: str) -> Sample:
    """The cgroup's row as the collector writes it, from its v1 counters now."""
    stat = dict(
        (key, int(value))
        for key, value in (
            line.split() for line in (group / "memory.stat").read_text().splitlines()
        )
    )
    usage = int((group / "memory.usage_in_bytes").read_text()) / MIB
    limit = int((group / "memory.limit_in_bytes").read_text()) / MIB
    oom = dict(line.split() for line in (group / "memory.oom_control").read_text().splitlines())
    swap = stat.get("total_swap")
    values = [
        usage,
        limit if limit < 2**40 else None,
        stat["total_rss"] / MIB,
        stat["total_cache"] / MIB,
        stat["total_shmem"] / MIB,
        None,
        None if swap is None else swap / MIB,
    ]
    cells = ["" if v is None else f"{v:.3f}" for v in values]
    row = [f"/{group.name}", name, *cells, "", oom.get("oom_kill", ""), ""]
    anon = (stat["total_rss"] + (swap or 0)) / MIB
    return Sample(time.time(), usage, anon, row)


def sample_cgroup(group: Path, out: Path, stop: threading.Event, samples: list[Sample]) -> None:
    """A cgroup_mem file each second, as the collector would write it."""
    while not stop.wait(1.0 - time.time() % 1.0):
        sample = read_counters(group, group.name)
        samples.append(sample)
        stamp = datetime.fromtimestamp(int(sample.at), UTC).strftime(TIMESTAMP_FORMAT)
        path = out / f"{CGROUP_PREFIX}{stamp}{CSV_SUFFIX}"
        if not path.exists():
            path.write_text(csv_text(CGROUP_HEADER, [sample.row]), encoding="utf-8")


class Run(NamedTuple):
    collected: Path  # the collector's dumps
    sampled: Path  # its sys_mem and process_mem files, with the test's cgroup_mem files
    group: str  # the cgroup's name
    samples: list[Sample]


@pytest.fixture(scope="module")
def service_run(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Run]:
    root = tmp_path_factory.mktemp("service-kernel")
    collected, sampled = root / "collected", root / "sampled"
    sampled.mkdir()
    stop = threading.Event()
    samples: list[Sample] = []
    with memory_cgroup(LIMIT_MIB, name=f"pmi-test-services-{os.getpid()}") as group:
        service = threading.Thread(target=run_service, args=(group.procs, stop))
        sampler = threading.Thread(target=sample_cgroup, args=(group.path, sampled, stop, samples))
        service.start()
        time.sleep(2.0)  # the workers are in before the first snapshot
        sampler.start()
        try:
            collect = [str(script_path("collect_memory.py")), "--interval", "1"]
            collector = subprocess.run(
                [sys.executable, *collect, "--count", str(RUN_S), "--dumps-dir", str(collected)],
                capture_output=True,
                text=True,
                timeout=RUN_S * 3,
                check=False,
            )
        finally:
            stop.set()
            service.join()
            sampler.join()
        assert collector.returncode == 0, collector.stderr
        for path in collected.iterdir():
            if not path.name.startswith(CGROUP_PREFIX):
                os.link(path, sampled / path.name)
        yield Run(collected, sampled, group.path.name, samples)


def measured(samples: list[Sample]) -> tuple[float, float]:
    """The measured rate of anon + swap (MiB/day) and the days until usage reaches the limit
    at the measured rate of usage, both by least squares over the run after its first 30 s."""
    at = np.array([s.at for s in samples])
    keep = at >= at[0] + 30
    t = at[keep] - at[0]
    anon_rate = float(np.polyfit(t, np.array([s.anon_mb for s in samples])[keep], 1)[0])
    usage = np.array([s.usage_mb for s in samples])[keep]
    slope, level = np.polyfit(t, usage, 1)
    now = slope * t[-1] + level
    return anon_rate * 86_400, float((LIMIT_MIB - now) / slope / 86_400)


def check(run: Run, dumps: Path, out: Path) -> None:
    rate, days = measured(run.samples)
    assert 0.75 * 86_400 < rate < 1.25 * 86_400, f"the workload rose {rate / 86_400:.2f} MiB/s"
    print(f"measured: {rate / 86_400:.3f} MiB/s, {days * 86_400:.1f} s to the limit")
    ran = run_main(
        analyze_processes.main, ["--dumps-dir", str(dumps), "--out-dir", str(out), "--no-plots"]
    )
    assert ran.status == 0, ran.stderr
    with (out / "services.csv").open() as handle:
        rows = {row["cgroup"]: row for row in csv.DictReader(handle)}
    service = rows[f"/{run.group}"]
    print(f"judged: {service}")
    assert service["service"] == run.group
    assert service["leak_MB_per_day"] != "", ran.stdout
    assert float(service["leak_MB_per_day"]) == pytest.approx(rate, rel=TOLERANCE)
    assert float(service["limit_MB"]) == LIMIT_MIB
    assert service["days_to_limit"] != "", ran.stdout
    assert float(service["days_to_limit"]) == pytest.approx(days, rel=TOLERANCE)
    with (out / "leaks.csv").open() as handle:
        flagged = [row["CMD"] for row in csv.DictReader(handle)]
    assert not [cmd for cmd in flagged if MARK in cmd]  # no single worker


def test_the_service_from_the_cgroups_own_counters(service_run: Run, tmp_path: Path) -> None:
    check(service_run, service_run.sampled, tmp_path / "sampled")


def test_the_service_from_the_collectors_cgroup_files(service_run: Run, tmp_path: Path) -> None:
    if not list(service_run.collected.glob(f"{CGROUP_PREFIX}*{CSV_SUFFIX}")):
        pytest.skip("the collector wrote no cgroup_mem file: it is one that does not write them")
    check(service_run, service_run.collected, tmp_path / "collected")
