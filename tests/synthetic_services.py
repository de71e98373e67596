"""Generated dumps of services in their own memory cgroups: the three files of each snapshot,
with cgroup_mem rows as the collector writes them (docs/services.md) and each service's
workers in the process files, recycled as gunicorn's `max_requests` recycles them.

Every number is known: a service's anon grows at exactly its rate (plus seeded noise), its
page cache at its own, so the tests can hold the verdicts to the truth.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np

from conftest import write_sys
from utils.collect.snapshot_format import (
    CGROUP_HEADER,
    CGROUP_PREFIX,
    CSV_SUFFIX,
    PROCESS_HEADER,
    TIMESTAMP_FORMAT,
    csv_text,
    snapshot_names,
)

DAY_S = 86_400
SLICE = "/system.slice"
KERNEL_MB = 12.0  # each service's kernel memory: flat
WORKER_FILE_MB = 18.0  # each worker's file-backed RSS (its code): flat


@dataclass(frozen=True)
class ServiceShape:
    """One service: its unit, its workers and how its memory moves (MiB, MiB/day)."""

    name: str  # the unit, e.g. "orders.service"
    workers: int = 3
    worker_life_s: float = 3600.0  # each worker is replaced after this long
    anon_mb: float = 300.0  # the whole service's anon at the start...
    anon_mb_per_day: float = 0.0  # ... and how fast it grows
    file_mb: float = 50.0  # its page cache at the start...
    file_mb_per_day: float = 0.0  # ... and how fast it grows (I/O)
    noise_mb: float = 2.0  # each snapshot's anon jitter (a sawtooth's depth)
    limit_mb: float | None = None
    oom_kills_at: tuple[int, ...] = ()  # snapshots at which a task of it is OOM-killed

    @property
    def cgroup(self) -> str:
        return f"{SLICE}/{self.name}"


def _mb(value: float) -> str:
    return f"{value:.3f}"


def _process_row(cells: dict[str, str]) -> list[str]:
    """A row in PROCESS_HEADER's order, columns this generator does not know empty."""
    return [cells.get(name, "") for name in PROCESS_HEADER]


def _cgroup_row(path: str, name: str, numbers: dict[str, float | None]) -> list[str]:
    row = [path, name]
    for column in CGROUP_HEADER[2:]:
        value = numbers.get(column)
        if value is None:
            row.append("")
        elif column.endswith("_MB"):
            row.append(_mb(value))
        else:
            row.append(str(int(value)))
    return row


class _Service:
    """A service's state as it runs: its anon at each moment and its workers' PIDs."""

    def __init__(self, shape: ServiceShape, index: int, rng: np.random.Generator) -> None:
        self.shape = shape
        self.rng = rng
        self.master = 1000 + 1000 * index
        self.next_pid = self.master + 1
        self.kills = 0
        # Worker slots are staggered, so one is replaced every worker_life_s / workers.
        self.born = [-shape.worker_life_s * k / shape.workers for k in range(shape.workers)]
        self.pids = [self._spawn() for _ in range(shape.workers)]

    def _spawn(self) -> int:
        pid = self.next_pid
        self.next_pid += 1
        return pid

    def step(self, index: int, age_s: float) -> tuple[dict[str, float | None], list[list[str]]]:
        """The cgroup's numbers and its processes' rows at this snapshot."""
        shape = self.shape
        for slot, born in enumerate(self.born):
            if age_s - born >= shape.worker_life_s:
                self.born[slot] = age_s
                self.pids[slot] = self._spawn()
        days = age_s / DAY_S
        anon = shape.anon_mb + shape.anon_mb_per_day * days + self.rng.uniform(0, shape.noise_mb)
        cache = shape.file_mb + shape.file_mb_per_day * days + self.rng.uniform(0, 1.0)
        self.kills += shape.oom_kills_at.count(index)
        numbers: dict[str, float | None] = {
            "MEMORY_MB": anon + cache + KERNEL_MB,
            "LIMIT_MB": shape.limit_mb,
            "ANON_MB": anon,
            "FILE_MB": cache,
            "SHMEM_MB": 0.0,
            "KERNEL_MB": KERNEL_MB,
            "SWAP_MB": 0.0,
            "OOM_EVENTS": float(self.kills),
            "OOM_KILLS": float(self.kills),
            "PSI_SOME_TOTAL_US": float(1000 * index),
        }
        share = anon / shape.workers
        rows = [self._row(self.master, 1, 5.0, "master")]
        rows += [self._row(pid, self.master, share, "worker") for pid in self.pids]
        return numbers, rows

    def _row(self, pid: int, ppid: int, anon: float, role: str) -> list[str]:
        name = self.shape.name.removesuffix(".service")
        return _process_row(
            {
                "PID": str(pid),
                "PPID": str(ppid),
                "USER": "svc",
                "RSS_MB": _mb(anon + WORKER_FILE_MB),
                "VSZ_MB": _mb(anon * 3 + 400),
                "CMD": f"/usr/bin/python3 -m gunicorn {name}.app:{role}",
                "ANON_MB": _mb(anon),
                "SWAP_MB": _mb(0.0),
                "STARTED": "",
                "CGROUP": self.shape.cgroup,
            }
        )


def generate_service_dumps(
    out_dir: Path,
    shapes: Sequence[ServiceShape],
    snapshots: int,
    interval_s: int = 600,
    start: datetime = datetime(2026, 1, 1, tzinfo=UTC),
    seed: int = 0,
    cgroups: bool = True,
) -> list[str]:
    """Write `snapshots` snapshots `interval_s` apart: sys_mem, process_mem (each service's
    master and workers) and, with cgroups, cgroup_mem (each service, and system.slice holding
    them all). The timestamps written, in order."""
    out_dir.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    services = [_Service(shape, i, rng) for i, shape in enumerate(shapes)]
    stamps = []
    for index in range(snapshots):
        age_s = float(index * interval_s)
        stamp = (start + timedelta(seconds=age_s)).strftime(TIMESTAMP_FORMAT)
        stamps.append(stamp)
        steps = [service.step(index, age_s) for service in services]
        write_sys(out_dir, stamp, "boot-1", MemTotal=16384.0, MemFree=8000.0, MemAvailable=12000.0)
        rows = [row for _, service_rows in steps for row in service_rows]
        process_path = out_dir / snapshot_names(stamp)[1]
        process_path.write_text(csv_text(PROCESS_HEADER, rows), encoding="utf-8")
        if cgroups:
            write_cgroups(out_dir, stamp, shapes, [numbers for numbers, _ in steps])
    return stamps


def write_cgroups(
    out_dir: Path,
    stamp: str,
    shapes: Sequence[ServiceShape],
    numbers: Sequence[dict[str, float | None]],
) -> Path:
    """One cgroup_mem file: each service's row, and system.slice's with their sums."""
    total: dict[str, float | None] = {}
    for column in ("MEMORY_MB", "ANON_MB", "FILE_MB", "SHMEM_MB", "KERNEL_MB", "SWAP_MB"):
        total[column] = sum(float(n[column] or 0.0) for n in numbers)
    total["OOM_KILLS"] = sum(float(n["OOM_KILLS"] or 0.0) for n in numbers)
    rows = [_cgroup_row(SLICE, "system.slice", total)]
    rows += [_cgroup_row(s.cgroup, s.name, n) for s, n in zip(shapes, numbers, strict=True)]
    path = out_dir / f"{CGROUP_PREFIX}{stamp}{CSV_SUFFIX}"
    path.write_text(csv_text(CGROUP_HEADER, rows), encoding="utf-8")
    return path


def add_cgroup_files(dumps: Path, shapes: Sequence[ServiceShape], seed: int = 0) -> list[Path]:
    """A cgroup_mem file beside every loose sys_mem file of a dumps dir (as a collector that
    writes them would have), the services aged from the first snapshot."""
    rng = np.random.default_rng(seed)
    services = [_Service(shape, i, rng) for i, shape in enumerate(shapes)]
    stamps = sorted(
        path.name[len("sys_mem_") : -len(CSV_SUFFIX)] for path in dumps.glob("sys_mem_*.csv")
    )
    first = datetime.strptime(stamps[0], TIMESTAMP_FORMAT)
    written = []
    for index, stamp in enumerate(stamps):
        age_s = (datetime.strptime(stamp, TIMESTAMP_FORMAT) - first).total_seconds()
        numbers = [service.step(index, age_s)[0] for service in services]
        written.append(write_cgroups(dumps, stamp, shapes, numbers))
    return written
