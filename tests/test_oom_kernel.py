"""A real OOM kill: a process in a memory cgroup without swap grows until the kernel's OOM
killer ends it, while the real collector runs at 1 s; analyze_processes.py names it."""

from __future__ import annotations

import csv
import os
import re
import shutil
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
    if kernel_log_read:
        # A kill at the test cgroup's own limit (CONSTRAINT_MEMCG), the cgroup named as the
        # kernel names it: its path below the hierarchy's root.
        assert rows[0]["kind"] == "memcg"
        assert rows[0]["cgroup"].endswith(f"/{group.path.name}")
        assert rows[0]["limit_cgroup"] == rows[0]["cgroup"]
        assert rows[0]["UID"] == str(os.getuid())
    system = run_script("analyze_system.py", "--dumps-dir", str(dumps), "--out-dir", str(out))
    assert "  OOM kills 1, in 1 interval" in system.stdout, system.stdout + system.stderr
    if kernel_log_read:
        assert "(1 not host pressure" in system.stdout
        assert f"memcg limit of {rows[0]['limit_cgroup']} hit" in system.stdout
        saved_log_gives_the_same_row(tmp_path, dumps, rows[0])


def saved_log_gives_the_same_row(tmp_path: Path, dumps: Path, row: dict[str, str]) -> None:
    """The same dumps without what the collector read of /dev/kmsg, and the kill from a saved
    `dmesg` (raw and -T) and from journal lines written from it in each journalctl form,
    give the same row."""
    dmesg = subprocess.run(["dmesg"], capture_output=True, text=True, check=False, timeout=60)
    if dmesg.returncode != 0:
        pytest.skip(f"dmesg cannot be read here: {dmesg.stderr.strip()}")
    blind = tmp_path / "blind"
    shutil.copytree(dumps, blind)
    for path in blind.glob("sys_mem_*.csv"):
        lines = path.read_text(encoding="utf-8").splitlines()
        # oom_victims is the last field, as the collector with no readable kernel log
        # writes it: empty.
        body = [line.rsplit(",", 1)[0] + "," for line in lines[1:]]
        path.write_text("\n".join([lines[0], *body]) + "\n", encoding="utf-8")
    boot_s = time.time() - float(Path("/proc/uptime").read_text().split()[0])
    forms = {"dmesg": dmesg.stdout, **journal_forms(dmesg.stdout, boot_s, row["PID"])}
    for name, text in forms.items():
        saved = tmp_path / f"{name.replace(' ', '_')}.log"
        saved.write_text(text, encoding="utf-8")
        out = tmp_path / f"out-{saved.stem}"
        judged = run_script(
            "analyze_processes.py", "--dumps-dir", str(blind), "--out-dir", str(out),
            "--no-plots", "--kernel-log", str(saved), "--kernel-log-tz", "UTC",
        )  # fmt: skip
        assert judged.returncode == 0, judged.stdout + judged.stderr
        with (out / "oom_kills.csv").open(encoding="utf-8") as handle:
            found = [r for r in csv.DictReader(handle) if r["PID"] == row["PID"]]
        assert [{**r, "source": ""} for r in found] == [{**row, "source": ""}], name
        assert found[0]["source"] == "kernel log file"


KMSG_LINE = re.compile(r"\[\s*(\d+\.\d+)\] (.*)")


def journal_forms(dmesg: str, boot_s: float, pid: str) -> dict[str, str]:
    """The report that killed `pid`, as journalctl -k prints it in each form (UTC)."""
    lines = []
    for line in dmesg.splitlines():
        match = KMSG_LINE.fullmatch(line)
        if match is not None:
            lines.append((boot_s + float(match[1]), match[2]))
    at = max(i for i, (_, text) in enumerate(lines) if f"Killed process {pid} " in text)
    start = max(i for i, (_, text) in enumerate(lines[: at + 1]) if "invoked oom-killer" in text)
    report = lines[start : at + 1]

    def form(shape: str) -> str:
        return "".join(
            f"{time.strftime(shape, time.gmtime(when))} host kernel: {text}\n"
            for when, text in report
        )

    return {
        "dmesg -T": "".join(
            f"[{time.strftime('%a %b %e %H:%M:%S %Y', time.gmtime(when))}] {text}\n"
            for when, text in report
        ),
        "short": form("%b %d %H:%M:%S"),
        "short-iso": form("%Y-%m-%dT%H:%M:%S+0000"),
        "short-precise": form("%b %d %H:%M:%S.000000"),
        "kern.log": form("%b %e %H:%M:%S"),
    }
