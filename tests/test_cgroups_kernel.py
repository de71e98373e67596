"""The cgroup columns on the real kernel: a process that allocates a known amount in a memory
cgroup of our own with a known limit, and a real snapshot taken by the collector's functions.
Each test skips with its reason where the machine cannot, and removes what it made."""

from __future__ import annotations

import contextlib
import csv
import io
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from kernel import _empty_and_remove, need_root

import collect_memory as cm
from utils.collect import cgroups
from utils.collect.cgroups import CgroupReader
from utils.core.signals import StopSignals

MIB = 1 << 20
LIMIT_MIB = 96
ALLOCATED_MIB = 40
# The child's own interpreter: its anonymous memory beside what it allocates.
INTERPRETER_MIB = 16
V1_MEMORY = Path("/sys/fs/cgroup/memory")
# Joins the cgroup first, so that every page it touches after is charged to it; then
# allocates and touches ALLOCATED_MIB (bytes * n writes every page), says so and waits.
CHILD = """
import os, sys, time
with open(sys.argv[1], "w") as procs:
    procs.write(str(os.getpid()))
data = b"\\x01" * (int(sys.argv[2]) << 20)
print("ready", flush=True)
time.sleep(120)
"""


@contextlib.contextmanager
def cgroup_dir(parent: Path, name: str) -> Iterator[Path]:
    path = parent / name
    try:
        path.mkdir()
    except OSError as err:
        pytest.skip(f"cannot make a cgroup in {parent}: {err.strerror}")
    try:
        yield path
    finally:
        _empty_and_remove(path)


@contextlib.contextmanager
def allocating_child(procs: Path, mib: int) -> Iterator[subprocess.Popen[str]]:
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD, str(procs), str(mib)], stdout=subprocess.PIPE, text=True
    )
    try:
        assert child.stdout is not None and child.stdout.readline() == "ready\n"
        yield child
    finally:
        child.kill()
        child.communicate(timeout=10)


def snapshot(tmp_path: Path, reader: CgroupReader) -> tuple[list[list[str]], list[list[str]]]:
    dumps = tmp_path / "dumps"
    dumps.mkdir(exist_ok=True)
    stamp = "20260301_120000"
    state = cm.RunState(None, None, reader)
    cm.take_snapshot(dumps, stamp, StopSignals(), cm.DEFAULT_SOURCES, state)
    read = [
        list(csv.reader(io.StringIO((dumps / f"{kind}_{stamp}.csv").read_text())))
        for kind in ("process_mem", "cgroup_mem")
    ]
    return read[0], read[1]


@pytest.mark.slow  # a real allocation and a real snapshot
def test_a_v1_memory_cgroup_in_a_real_snapshot(tmp_path: Path) -> None:
    need_root("a memory cgroup")
    if not (V1_MEMORY / "memory.limit_in_bytes").exists():
        pytest.skip("no cgroup v1 memory hierarchy at /sys/fs/cgroup/memory")
    name = f"pmi-test-cgroups-{os.getpid()}"
    with cgroup_dir(V1_MEMORY, name) as path:
        (path / "memory.limit_in_bytes").write_text(str(LIMIT_MIB * MIB))
        with allocating_child(path / "cgroup.procs", ALLOCATED_MIB) as child:
            reader = CgroupReader()
            assert reader.hierarchy is not None and reader.hierarchy.version == 1
            processes, groups = snapshot(tmp_path, reader)
    header = processes[0]
    (row,) = [row for row in processes[1:] if row[0] == str(child.pid)]
    assert row[header.index("CGROUP")] == f"/{name}"
    cgroup_header = groups[0]
    (mine,) = [
        dict(zip(cgroup_header, row, strict=True)) for row in groups[1:] if row[0] == f"/{name}"
    ]
    assert mine["NAME"] == name
    assert float(mine["LIMIT_MB"]) == LIMIT_MIB
    anon = float(mine["ANON_MB"])
    assert ALLOCATED_MIB <= anon <= ALLOCATED_MIB + INTERPRETER_MIB, mine
    assert anon <= float(mine["MEMORY_MB"]) <= LIMIT_MIB, mine
    assert mine["OOM_KILLS"] == "0"
    assert mine["OOM_EVENTS"] == "" and mine["PSI_SOME_TOTAL_US"] == ""  # v2 only
    # Every child of the root is a row, whether a process of ours is in it or not.
    top = {f"/{entry.name}" for entry in V1_MEMORY.iterdir() if entry.is_dir()}
    assert top - {f"/{name}"} <= {row[0] for row in groups[1:]} | {f"/{name}"}


def unified_mount() -> Path | None:
    mounts = cgroups.parse_mountinfo(Path("/proc/self/mountinfo").read_text())
    found = [Path(mount.mount) for mount in mounts if mount.version == 2 and mount.root == "/"]
    return found[0] if found else None


@pytest.mark.slow  # a real process in a real v2 cgroup
def test_a_v2_cgroup_where_the_machine_has_one(tmp_path: Path) -> None:
    """The v2 path of a process and what a v2 cgroup says of it. Where the memory controller
    is bound to v1 (as on a hybrid host), v2 has memory.pressure but no memory.current: the
    row says what it can and leaves the rest empty."""
    need_root("a v2 cgroup")
    mount = unified_mount()
    if mount is None:
        pytest.skip("no cgroup v2 hierarchy mounted")
    controllers = (mount / "cgroup.controllers").read_text().split()
    name = f"pmi-test-cgroups-v2-{os.getpid()}"
    with cgroup_dir(mount, name) as path:
        if "memory" in controllers and "memory" in (mount / "cgroup.subtree_control").read_text():
            (path / "memory.max").write_text(str(LIMIT_MIB * MIB))
        with allocating_child(path / "cgroup.procs", ALLOCATED_MIB) as child:
            # Only the v2 hierarchy, as on a pure v2 host: a /proc whose mountinfo lists it.
            proc = tmp_path / "proc"
            (proc / "self").mkdir(parents=True)
            (proc / "self" / "mountinfo").write_text(
                f"41 31 0:38 / {mount} rw,relatime - cgroup2 cgroup2 rw\n"
            )
            (proc / str(child.pid)).symlink_to(f"/proc/{child.pid}")
            reader = CgroupReader(proc)
            assert reader.hierarchy == cgroups.Hierarchy(2, str(mount), "/")
            assert reader.process_cgroup(child.pid) == f"/{name}"
            (row,) = [found for found in reader.rows([f"/{name}"]) if found[0] == f"/{name}"]
    assert row[1] == name
    psi = row[-1]
    has_pressure = psi != ""
    if has_pressure:
        assert int(psi) >= 0
    if "memory" not in controllers:
        assert row[2:9] == [""] * 7, "no memory controller on v2: no memory numbers"
        pytest.skip(
            "the v2 hierarchy here has no memory controller (it is bound to v1): only the "
            f"path, the name and PSI ({'read' if has_pressure else 'absent'}) are checked"
        )
    assert float(row[3]) == LIMIT_MIB
    assert ALLOCATED_MIB <= float(row[4]) <= ALLOCATED_MIB + INTERPRETER_MIB
