"""A real OOM kill: a process in a memory cgroup without swap grows until the kernel's OOM
killer ends it, while the real collector runs at 1 s; analyze_processes.py names it."""

from __future__ import annotations

import csv
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
from kernel import memory_cgroup

from conftest import run_script, script_path

CAP_MIB = 40
SNAPSHOTS = 20
# Moves into the cgroup (argv[1]: its cgroup.procs), then grows 2 MiB every quarter second,
# each page touched, until the OOM killer ends it.
HOG = """
import os, sys, time
open(sys.argv[1], "w").write(str(os.getpid()))
kept = []
while True:
    block = bytearray(2 << 20)
    block[::4096] = b"x" * len(block[::4096])
    kept.append(block)
    time.sleep(0.25)
"""


@pytest.mark.slow
def test_a_process_the_oom_killer_ends_is_named_as_the_victim(tmp_path: Path) -> None:
    dumps, out = tmp_path / "dumps", tmp_path / "out"
    marker = f"oom-hog-{uuid.uuid4().hex[:12]}"
    with memory_cgroup(CAP_MIB, swap=False) as group:
        collector = subprocess.Popen(
            [sys.executable, str(script_path("collect_memory.py")), "--interval", "1",
             "--count", str(SNAPSHOTS), "--dumps-dir", str(dumps)],
            stderr=subprocess.PIPE,
            text=True,
        )  # fmt: skip
        try:
            time.sleep(3)  # a few snapshots before the hog starts
            hog = subprocess.Popen([sys.executable, "-c", HOG, str(group.procs), marker])
            try:
                code = hog.wait(timeout=60)
            finally:
                hog.kill()
                hog.wait(timeout=10)
            assert code == -9, f"the hog ended with {code}, not by the OOM killer's SIGKILL"
            _, log = collector.communicate(timeout=60)
        finally:
            collector.kill()
            collector.wait(timeout=10)
    assert collector.returncode == 0, log
    judged = run_script(
        "analyze_processes.py", "--dumps-dir", str(dumps), "--out-dir", str(out), "--fail-on-oom"
    )
    assert judged.returncode == 3, judged.stdout + judged.stderr
    with (out / "oom_kills.csv").open(encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    kernel_log_read = "cannot read the kernel log" not in log
    assert [(int(r["PID"]), r["source"]) for r in rows] == [
        (hog.pid, "kernel log" if kernel_log_read else "inferred")
    ]
    assert marker in rows[0]["CMD"]
    # What the process held before it moved in stays charged to the group it came from
    # (cgroup v1 moves no charges by default): a little over the cap.
    assert 10 < float(rows[0]["RSS_MB"]) < CAP_MIB + 15
    assert 10 < float(rows[0]["kernel_anon_rss_MB"]) < CAP_MIB + 15
    system = run_script("analyze_system.py", "--dumps-dir", str(dumps), "--out-dir", str(out))
    assert "  OOM kills 1, in 1 interval:" in system.stdout, system.stdout + system.stderr
