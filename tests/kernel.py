"""Real-kernel fixtures for the slow tests: a swap file and a memory cgroup, set up for one
test and removed whatever happens. Each skips the test, with the reason, where the machine
cannot do it (not root, no memory controller, a filesystem that cannot hold swap).

cgroup v2 (Documentation/admin-guide/cgroup-v2.rst): memory.max, memory.swap.max.
cgroup v1 (Documentation/admin-guide/cgroup-v1/memory.rst): memory.limit_in_bytes, with
memory.memsw.limit_in_bytes left unlimited so the group may swap.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import NamedTuple

import pytest

CGROUP_ROOT = Path("/sys/fs/cgroup")
MIB = 1 << 20


def need_root(what: str) -> None:
    if os.geteuid() != 0:
        pytest.skip(f"{what} needs root")


def _run(*command: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)


@contextlib.contextmanager
def swap_file(folder: Path, size_mib: int) -> Iterator[Path]:
    """A swap file on for the test (skipped where swapon cannot), off and gone after."""
    need_root("a swap file")
    for tool in ("mkswap", "swapon", "swapoff"):
        if shutil.which(tool) is None:
            pytest.skip(f"no {tool} on this machine")
    path = folder / f"pmi-swap-{uuid.uuid4().hex[:8]}"
    try:
        # dd, not fallocate: swapon refuses files with holes on some filesystems.
        with path.open("wb") as handle:
            for _ in range(size_mib):
                handle.write(b"\0" * MIB)
        path.chmod(0o600)
        made = _run("mkswap", str(path))
        if made.returncode != 0:
            pytest.skip(f"mkswap failed: {made.stderr.strip()}")
        on = _run("swapon", str(path))
        if on.returncode != 0:
            pytest.skip(f"swapon failed here: {on.stderr.strip()}")
        yield path
    finally:
        if str(path) in Path("/proc/swaps").read_text():
            _run("swapoff", str(path))
        path.unlink(missing_ok=True)


class MemoryCgroup(NamedTuple):
    path: Path
    procs: Path  # write a PID here to move it in


def _memory_controller() -> tuple[Path, int] | None:
    """Where new memory cgroups are made, and the cgroup version."""
    unified = CGROUP_ROOT / "cgroup.controllers"
    if unified.exists():
        if "memory" not in unified.read_text().split():
            return None
        # Children get the memory controller only if the root hands it down.
        control = CGROUP_ROOT / "cgroup.subtree_control"
        if "memory" not in control.read_text().split():
            with contextlib.suppress(OSError):
                control.write_text("+memory")
        return CGROUP_ROOT, 2
    legacy = CGROUP_ROOT / "memory"
    if (legacy / "memory.limit_in_bytes").exists():
        return legacy, 1
    return None


@contextlib.contextmanager
def memory_cgroup(
    limit_mib: int, swap: bool = True, name: str = "pmi-test"
) -> Iterator[MemoryCgroup]:
    """A memory cgroup capped at limit_mib of RAM, swap allowed or not, named `name` and a
    random suffix; every process left in it is killed, and the group removed, after the
    test."""
    need_root("a memory cgroup")
    found = _memory_controller()
    if found is None:
        pytest.skip("no memory cgroup controller on this machine")
    parent, version = found
    path = parent / f"{name}-{uuid.uuid4().hex[:8]}"
    try:
        path.mkdir()
    except OSError as err:
        pytest.skip(f"cannot make a memory cgroup in {parent}: {err.strerror}")
    try:
        limit = str(limit_mib * MIB)
        if version == 2:
            (path / "memory.max").write_text(limit)
            if (path / "memory.swap.max").exists():
                (path / "memory.swap.max").write_text("max" if swap else "0")
        else:
            (path / "memory.limit_in_bytes").write_text(limit)
            (path / "memory.swappiness").write_text("100" if swap else "0")
            if not swap and (path / "memory.memsw.limit_in_bytes").exists():
                (path / "memory.memsw.limit_in_bytes").write_text(limit)  # RAM + swap
        yield MemoryCgroup(path, path / "cgroup.procs")
    finally:
        _empty_and_remove(path)


def _empty_and_remove(path: Path) -> None:
    deadline = time.monotonic() + 20
    while path.exists() and time.monotonic() < deadline:
        with contextlib.suppress(OSError):
            for pid in (path / "cgroup.procs").read_text().split():
                with contextlib.suppress(ProcessLookupError):
                    os.kill(int(pid), signal.SIGKILL)
        try:
            path.rmdir()
        except OSError:
            time.sleep(0.1)
