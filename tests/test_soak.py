"""A soak test for real: a leaking and a steady process, sampled by the real collector at 1 s
for a bit over a minute, then judged by analyze_processes.py as docs/leaks.md's recipe does."""

from __future__ import annotations

import csv
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from conftest import run_script

# Touch each page, so that the memory is resident: RSS rises by the amount allocated.
PROGRAM = """
import sys, time
step = int(sys.argv[1]) * 1024 * 1024
kept = []
while True:
    if step:
        block = bytearray(step)
        block[::4096] = b"x" * len(block[::4096])
        kept.append(block)
    time.sleep(1.0)
"""
SNAPSHOTS = 75
LEAK_MIB_PER_S = 1


@pytest.fixture
def spawned() -> Iterator[list[subprocess.Popen[bytes]]]:
    """Processes a test starts, killed and reaped whatever happens."""
    processes: list[subprocess.Popen[bytes]] = []
    try:
        yield processes
    finally:
        for process in processes:
            process.kill()
        for process in processes:
            process.wait(timeout=10)


def start(processes: list[subprocess.Popen[bytes]], mib_per_s: int, marker: str) -> int:
    process = subprocess.Popen([sys.executable, "-c", PROGRAM, str(mib_per_s), marker])
    processes.append(process)
    return process.pid


@pytest.mark.slow
def test_a_minute_at_1_s_flags_the_leaker_and_only_the_leaker(
    tmp_path: Path, spawned: list[subprocess.Popen[bytes]]
) -> None:
    marker = f"soak-{uuid.uuid4().hex[:12]}"
    leaker = start(spawned, LEAK_MIB_PER_S, marker)
    steady = start(spawned, 0, marker)
    dumps, out = tmp_path / "dumps", tmp_path / "out"
    collected = run_script(
        "collect_memory.py", "--interval", "1", "--count", str(SNAPSHOTS), "--dumps-dir", str(dumps)
    )
    assert collected.returncode == 0, collected.stderr
    judged = run_script(
        "analyze_processes.py",
        *("--dumps-dir", str(dumps), "--out-dir", str(out), "--match", marker),
        "--fail-on-leak",
    )
    assert judged.returncode == 3, judged.stdout + judged.stderr
    assert "Sustained growth (leaks) in 1 of the 2 process instances judged" in judged.stdout
    with (out / "leaks.csv").open(encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    assert [int(row["PID"]) for row in rows] == [leaker]
    rate = float(rows[0]["growth_MB_per_day"])
    # 1 MiB a second is 86,400 MiB/day; the fit sees a little less (the first floors).
    assert 0.8 * LEAK_MIB_PER_S * 86_400 < rate < 1.1 * LEAK_MIB_PER_S * 86_400
    assert str(steady) not in {row["PID"] for row in rows}
    assert (out / f"rss_pid_{steady}.png").exists()
