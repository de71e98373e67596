"""Shared memory counted once, on the real kernel: a pre-fork pool and a shared segment
through the real collector and analysis, and the budget, the rotation and the size cap of
the collector's Pss reads against real processes. Slow; skipped with the reason where the
kernel has no smaps_rollup. Every process started is ended whatever happens."""

from __future__ import annotations

import csv
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from pools import rollup_missing, running, summed_anon_swap_mb, summed_pss_mb

import analyze_processes
from bench import pss_cost
from conftest import run_main, script_path
from utils.collect import smaps
from utils.collect.procfs import process_memory

pytestmark = pytest.mark.slow
# The machine's other processes share the collector's budget (it reads every process that may
# share, the pool's among them): a larger budget than the default has the pool's 13 read
# within the few snapshots of a test, wherever the rotation stands.
TEST_BUDGET_MS = "250"


@pytest.fixture(autouse=True)
def _need_rollup() -> None:
    why = rollup_missing()
    if why is not None:
        pytest.skip(why)


def collect_and_analyze(tmp_path: Path, snapshots: int) -> dict[str, dict[str, str]]:
    """The real collector at 2 s, then the process analysis: program_growth.csv's rows."""
    dumps, out = tmp_path / "dumps", tmp_path / "out"
    command = [sys.executable, str(script_path("collect_memory.py")), "--interval", "2"]
    command += ["--count", str(snapshots), "--pss-budget-ms", TEST_BUDGET_MS]
    collected = subprocess.run(
        [*command, "--dumps-dir", str(dumps)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert collected.returncode == 0, collected.stderr
    argv = ["--dumps-dir", str(dumps), "--out-dir", str(out), "--no-plots", "--no-summaries"]
    result = run_main(analyze_processes.main, argv)
    assert result.status == 0, result.stderr
    with (out / "program_growth.csv").open(encoding="utf-8") as handle:
        return {row["program"]: row for row in csv.DictReader(handle)}


def test_a_pre_fork_pool_is_counted_once(tmp_path: Path) -> None:
    name = f"h5pool{os.getpid()}"
    with running("pool", name, 300, 12, tmp_path) as pids:
        programs = collect_and_analyze(tmp_path, 5)
        pss_mb, anon_mb = summed_pss_mb(pids), summed_anon_swap_mb(pids)
    pool = programs[name]
    assert pool["basis"] in ("pss", "pss carried")
    assert int(pool["max_concurrent"]) == 13
    assert anon_mb > 3500  # anon + swap counts the 300 MiB in each of the 13
    assert 300 < pss_mb < 360
    for column in ("first_total_MB", "last_total_MB"):
        assert float(pool[column]) == pytest.approx(pss_mb, rel=0.10)


def test_a_shared_segment_is_counted_once(tmp_path: Path) -> None:
    name = f"h5segment{os.getpid()}"
    with running("segment", name, 200, 10, tmp_path) as pids:
        programs = collect_and_analyze(tmp_path, 4)
        pss_mb = summed_pss_mb(pids)
    segment = programs[name]
    assert segment["basis"] in ("pss", "pss carried")
    # The 200 MiB once, and each Python's own few MiB.
    assert 200 < pss_mb < 200 * 1.10 + 10 * 5
    assert float(segment["last_total_MB"]) == pytest.approx(pss_mb, rel=0.10)
    assert float(segment["last_total_MB"]) == pytest.approx(200, rel=0.25)


class Timed(smaps.ShareReader):
    """A reader that notes when each read began and ended, on its own clock."""

    def __init__(self, settings: smaps.Settings) -> None:
        super().__init__(settings)
        self.reads: list[tuple[int, float, float]] = []  # (pid, began, ended)

    def read_one(self, pid: int) -> smaps.Share | None:
        began = self.clock()
        share = super().read_one(pid)
        self.reads.append((pid, began, self.clock()))
        return share


class Row:
    def __init__(self, pid: int, ppid: int, cmd: str, rss_kb: int) -> None:
        self.pid, self.ppid, self.cmd, self.rss_kb = pid, ppid, cmd, rss_kb


def rows_of(pids: list[int]) -> tuple[list[Row], list[int | None]]:
    """The pool's processes as the collector sees them (ps's RSS is status's VmRSS)."""
    rows = []
    for pid in pids:
        status = Path(f"/proc/{pid}/status").read_text()
        rss = next(int(line.split()[1]) for line in status.splitlines() if line.startswith("VmRSS"))
        ppid = next(int(line.split()[1]) for line in status.splitlines() if line.startswith("PPid"))
        rows.append(Row(pid, ppid, "pool-member", rss))
    return rows, [process_memory(pid).start_ticks for pid in pids]


def test_a_tiny_budget_reads_every_process_within_a_few_snapshots(tmp_path: Path) -> None:
    budget_s = 0.0005
    with running("pool", f"h5tiny{os.getpid()}", 40, 12, tmp_path) as pids:
        rows, ticks = rows_of(pids)
        reader = Timed(smaps.Settings(budget_s, 1 << 40, 1))
        read: set[int] = set()
        # At least one process not read before in each snapshot: all within len(pids).
        for _ in range(len(pids)):
            before = len(reader.reads)
            began = reader.clock()
            shares = reader.shares(rows, ticks)
            mine = reader.reads[before:]
            # Each read after the first began inside the budget: the snapshot ends within
            # its budget plus one read.
            assert mine and all(start - began < budget_s for _, start, _ in mine[1:])
            read |= {row.pid for row, share in zip(rows, shares, strict=True) if share}
            if len(read) == len(pids):
                break
        assert read == set(pids)


def test_a_process_over_the_cap_is_read_once_every_cap_every_snapshots(tmp_path: Path) -> None:
    cap_every = 4
    with running("pool", f"h5big{os.getpid()}", 4096, 1, tmp_path) as pids:
        rows, ticks = rows_of(pids)
        assert all(row.rss_kb > 4 << 20 for row in rows)  # past the default cap, 4 GiB
        reader = Timed(smaps.Settings(1.0, 4 << 20, cap_every))
        when: dict[int, list[int]] = {pid: [] for pid in pids}
        for snapshot in range(3 * cap_every + 1):
            for row, share in zip(rows, reader.shares(rows, ticks), strict=True):
                if share is not None:
                    assert share.pss_kb > 2 << 20  # half of the 4 GiB each
                    when[row.pid].append(snapshot)
        assert when == {pid: [0, 4, 8, 12] for pid in pids}


def test_the_bench_measures_a_snapshot_with_its_reads(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(pss_cost, "POOLS", 2)
    monkeypatch.setattr(pss_cost, "POOL_SIZE", 3)
    cost = pss_cost.measure(rounds=2)
    assert cost.processes == 6
    assert min(cost.ps_s, cost.without_s, cost.snapshot_s) > 0
    assert cost.shares_read >= 1
    # Killed: each is gone (or a zombie, without a command line) within a few seconds.
    deadline = time.monotonic() + 10
    while (mine := _bench_pools()) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert mine == []


def _bench_pools() -> list[Path]:
    return [p for p in Path("/proc").iterdir() if p.name.isdigit() and _is_bench_pool(p)]


def _is_bench_pool(proc: Path) -> bool:
    try:
        return (proc / "cmdline").read_bytes().startswith(b"benchpool")
    except OSError:
        return False
