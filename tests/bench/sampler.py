"""The memory and time of a command's whole process tree, sampled from /proc: measure()."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

# How often the process tree of a running command is sampled: VmRSS in the timed runs,
# Pss as well in the memory run (reading smaps_rollup walks the page tables under the
# mmap lock: every 20 ms took a year's process analysis from ~25 s to ~45 s).
POLL_INTERVAL_S = 0.01
PSS_INTERVAL_S = 0.02
# No single run takes near this, even the plain way on a year (about 80 s).
RUN_TIMEOUT_S = 3600
# Unset for the measured runs (measured_env).
BYTECODE_OFF = "PYTHONDONTWRITEBYTECODE"


class BenchmarkError(Exception):
    """Something failed: a command, the generation, an unexpected output."""


# The measured command runs under this launcher, which forks it, waits for it with
# wait4() and writes "wall_s ru_maxrss_kib exit_code" to the file named first.
#
# Why a launcher: ru_maxrss of a child is not that program's own peak. subprocess
# starts children with vfork(), and at exec() Linux folds the old address space's
# high-water mark into the child's maxrss: a `python -c pass` started by a parent that
# once held 300 MiB reports 300 MiB. With fork() it inherits the parent's current
# RSS instead. The launcher is a bare `python -I -S` (about 10 MiB), so the command
# it forks reports its own true peak (floored at those 10 MiB), counted by the kernel,
# with nothing missed between two samples.
#
# Why also sample: ru_maxrss covers one process; a command that starts workers peaks
# at the sum of their RSS at one moment. So the launcher's descendants are sampled
# every POLL_INTERVAL_S through /proc and the largest sum kept. The peak reported is
# the largest of (kernel ru_maxrss, largest sampled sum of VmRSS, largest sampled
# VmHWM of any one process): each is at most the true peak of the tree, the first is
# exact for a single process, the second catches simultaneous workers.
#
# PSS (proportional set size: each page divided by the number of processes mapping it)
# is what a tree of forked processes really costs the host, since a forked worker
# shares its parent's pages until either writes them. The kernel keeps no high-water
# mark of it, so it is only sampled (a spike shorter than PSS_INTERVAL_S can be
# missed), and only in a memory run of its own (see PSS_INTERVAL_S).
LAUNCHER = """\
import os, sys, time
result, argv = sys.argv[1], sys.argv[2:]
began = time.perf_counter()
pid = os.fork()
if pid == 0:
    try:
        os.execvp(argv[0], argv)
    except OSError as err:
        os.write(2, f"cannot run {argv[0]}: {err}\\n".encode())
    os._exit(127)
_, status, usage = os.wait4(pid, 0)
wall = time.perf_counter() - began
with open(result, "w") as handle:
    handle.write(f"{wall!r} {usage.ru_maxrss} {os.waitstatus_to_exitcode(status)}\\n")
"""


def _has_children_files() -> bool:
    pid = os.getpid()
    return Path(f"/proc/{pid}/task/{pid}/children").exists()


HAS_CHILDREN_FILES = _has_children_files()


def _children_from_task_files(pid: int) -> list[int]:
    try:
        tasks = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return []
    found: list[int] = []
    for tid in tasks:
        try:
            with open(f"/proc/{pid}/task/{tid}/children", encoding="ascii") as handle:
                found.extend(int(child) for child in handle.read().split())
        except OSError:
            continue  # the thread or the process has just ended
    return found


def _parent_map() -> dict[int, list[int]]:
    """Every process's children, from each /proc/<pid>/stat (when no children files)."""
    children: dict[int, list[int]] = {}
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/stat", encoding="utf-8", errors="replace") as handle:
                stat = handle.read()
        except OSError:
            continue
        # The command name in parentheses may hold spaces: the fields follow the last ')'.
        fields = stat[stat.rfind(")") + 2 :].split()
        if len(fields) > 1:
            children.setdefault(int(fields[1]), []).append(int(name))
    return children


def descendants(root: int, use_children_files: bool = HAS_CHILDREN_FILES) -> list[int]:
    """Every process below root (root excluded), from /proc."""
    table = None if use_children_files else _parent_map()
    found: list[int] = []
    stack = [root]
    while stack:
        pid = stack.pop()
        children = _children_from_task_files(pid) if table is None else table.get(pid, [])
        for child in children:
            found.append(child)
            stack.append(child)
    return found


@dataclass(frozen=True)
class ProcMemory:
    rss: int  # bytes resident now (VmRSS)
    hwm: int  # bytes resident at most so far (VmHWM)


def read_memory(pid: int) -> ProcMemory | None:
    """VmRSS and VmHWM of a process, or None if it is gone (or a zombie: no memory)."""
    try:
        with open(f"/proc/{pid}/status", encoding="utf-8", errors="replace") as handle:
            text = handle.read()
    except OSError:
        return None
    values: dict[str, int] = {}
    for line in text.splitlines():
        key, _, rest = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            values[key] = int(rest.split()[0]) * 1024  # kB
    if "VmRSS" not in values:
        return None
    return ProcMemory(values["VmRSS"], values.get("VmHWM", values["VmRSS"]))


def parse_pss(text: str) -> int | None:
    """Bytes of PSS in the text of /proc/<pid>/smaps_rollup (one `Pss:` line) or of
    /proc/<pid>/smaps (one per mapping: they add up); None if it has no `Pss:` line.

    Only `Pss:` itself counts: `Pss_Anon:`, `Pss_File:` and the rest split it up.
    """
    total = 0
    seen = False
    for line in text.splitlines():
        key, _, rest = line.partition(":")
        if key == "Pss":
            total += int(rest.split()[0]) * 1024  # kB
            seen = True
    return total if seen else None


def read_pss(pid: int) -> int | None:
    """A process's PSS in bytes, or None if it is gone. smaps_rollup is Linux 4.14+;
    before it, smaps has the same lines per mapping."""
    for name in ("smaps_rollup", "smaps"):
        try:
            with open(f"/proc/{pid}/{name}", encoding="utf-8", errors="replace") as handle:
                return parse_pss(handle.read())
        except FileNotFoundError:
            if not os.path.exists(f"/proc/{pid}"):
                return None
        except OSError:
            return None
    return None


class TreeSampler:
    """Samples the memory of every process below a root, in a thread, until stopped."""

    def __init__(self, root: int, interval_s: float = POLL_INTERVAL_S, pss: bool = False):
        self.root = root
        self.interval_s = interval_s
        self.pss = pss  # read every process's PSS too (slows the processes: see PSS_INTERVAL_S)
        self.peak_sum = 0  # largest sum of VmRSS over the tree at one sample
        self.peak_single = 0  # largest VmHWM of any one process seen
        self.peak_pss: int | None = None  # largest sum of Pss over the tree at one sample
        self.samples = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="tree-sampler", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()

    def sample(self) -> None:
        total = 0
        pss_total: int | None = None
        for pid in descendants(self.root):
            memory = read_memory(pid)
            if memory is None:
                continue
            total += memory.rss
            self.peak_single = max(self.peak_single, memory.hwm)
            pss = read_pss(pid) if self.pss else None
            if pss is not None:
                pss_total = pss + (pss_total or 0)
        self.peak_sum = max(self.peak_sum, total)
        if pss_total is not None:
            self.peak_pss = max(self.peak_pss or 0, pss_total)
        self.samples += 1

    def _run(self) -> None:
        while not self._stop.is_set():
            self.sample()
            self._stop.wait(self.interval_s)


@dataclass(frozen=True)
class Execution:
    """One run of a command: how it ended, how long it took and its peak memory."""

    exit_code: int
    wall_s: float
    peak_bytes: int
    maxrss_bytes: int  # the kernel's ru_maxrss of the command process
    sampled_sum_bytes: int  # the largest sampled sum of VmRSS over the tree
    samples: int
    stdout: str
    stderr: str
    pss_bytes: int | None = None  # the largest sampled sum of Pss (a memory run only)


def measured_env() -> dict[str, str]:
    """This environment, but for PYTHONDONTWRITEBYTECODE: a user's Python compiles each
    module once and then reads its cached bytecode (and pip compiled pandas' when it
    installed it); a shell that sets it, as some containers and CI images do, would have
    every measured run compile the analyses' sources again."""
    return {name: value for name, value in os.environ.items() if name != BYTECODE_OFF}


def measure(
    argv: Sequence[str],
    cwd: Path | None = None,
    interval_s: float = POLL_INTERVAL_S,
    pss: bool = False,
) -> Execution:
    """Run argv to completion under the launcher and measure it (see LAUNCHER); with
    pss, sample the tree's PSS too (a memory run: its wall time is not representative)."""
    with tempfile.TemporaryDirectory(prefix="bench-run-") as temp:
        result = Path(temp) / "result"
        out_path, err_path = Path(temp) / "stdout", Path(temp) / "stderr"
        launcher = [sys.executable, "-I", "-S", "-c", LAUNCHER, str(result), *argv]
        with open(out_path, "wb") as out, open(err_path, "wb") as err:
            process = subprocess.Popen(
                launcher,
                cwd=cwd,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=err,
                env=measured_env(),
            )
            sampler = TreeSampler(process.pid, interval_s, pss)
            sampler.start()
            try:
                launcher_code = process.wait(timeout=RUN_TIMEOUT_S)
            finally:
                sampler.stop()
        stdout = out_path.read_text(encoding="utf-8", errors="replace")
        stderr = err_path.read_text(encoding="utf-8", errors="replace")
        try:
            wall_text, maxrss_text, code_text = result.read_text(encoding="ascii").split()
        except (OSError, ValueError):
            raise BenchmarkError(
                f"the launcher failed (exit status {launcher_code}): {stderr.strip()}"
            ) from None
    maxrss = int(maxrss_text) * 1024  # Linux counts ru_maxrss in KiB
    return Execution(
        exit_code=int(code_text),
        wall_s=float(wall_text),
        peak_bytes=max(maxrss, sampler.peak_sum, sampler.peak_single),
        maxrss_bytes=maxrss,
        sampled_sum_bytes=sampler.peak_sum,
        samples=sampler.samples,
        stdout=stdout,
        stderr=stderr,
        pss_bytes=sampler.peak_pss,
    )
