"""Real processes that share memory, for the slow tests and the bench: a pre-fork pool (a
parent touches anonymous memory, then forks workers that only read it) and a shared segment
(a memfd mapped by several processes). Each runs under a name of its own and is ended,
with every process it forked, whatever happens."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

ROLLUP = Path("/proc/self/smaps_rollup")
PAGE = 4096

# The pool: the parent writes every page of `mib` MiB, forks `workers` children that read
# every page, then all of them wait for SIGTERM. Each writes nothing after the fork, so the
# pages stay shared copy-on-write (mm/memory.c, do_wp_page copies only on a write).
_POOL = r"""
import mmap, os, signal, sys, time
mib, workers, ready = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
memory = mmap.mmap(-1, mib << 20, flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS)
for at in range(0, mib << 20, 4096):
    memory[at] = 1
children = []
for _ in range(workers):
    pid = os.fork()
    if pid == 0:
        total = sum(memory[at] for at in range(0, mib << 20, 4096))
        open(f"{ready}.{os.getpid()}", "w").close()
        signal.sigwait({signal.SIGTERM})
        os._exit(0)
    children.append(pid)
signal.signal(signal.SIGTERM, lambda *_: None)
open(f"{ready}.parent", "w").close()
signal.sigwait({signal.SIGTERM})
for pid in children:
    os.kill(pid, signal.SIGTERM)
for pid in children:
    os.waitpid(pid, 0)
"""

# The segment: one memfd of `mib` MiB written whole, mapped shared by `processes`
# processes that each read it (the file's pages are one copy, Shmem in meminfo).
_SEGMENT = r"""
import mmap, os, signal, sys
mib, processes, ready = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
fd = os.memfd_create("pmi-shared-segment")
os.ftruncate(fd, mib << 20)
memory = mmap.mmap(fd, mib << 20, flags=mmap.MAP_SHARED)
for at in range(0, mib << 20, 4096):
    memory[at] = 1
children = []
for _ in range(processes - 1):
    pid = os.fork()
    if pid == 0:
        own = mmap.mmap(fd, mib << 20, flags=mmap.MAP_SHARED)
        memory.close()
        total = sum(own[at] for at in range(0, mib << 20, 4096))
        open(f"{ready}.{os.getpid()}", "w").close()
        signal.sigwait({signal.SIGTERM})
        os._exit(0)
    children.append(pid)
open(f"{ready}.parent", "w").close()
signal.sigwait({signal.SIGTERM})
for pid in children:
    os.kill(pid, signal.SIGTERM)
for pid in children:
    os.waitpid(pid, 0)
"""


def rollup_missing() -> str | None:
    """Why the kernel cannot be asked (None: it can)."""
    if not ROLLUP.exists():
        return "this kernel has no /proc/PID/smaps_rollup (Linux before 4.14)"
    return None


@contextmanager
def running(kind: str, name: str, mib: int, count: int, folder: Path) -> Iterator[list[int]]:
    """A pool ("pool": a parent and `count` workers) or a segment ("segment": `count`
    processes) whose command line's first word is `name`; yields its PIDs, parent first,
    once every process has touched its memory. Every process is ended on the way out."""
    script = folder / f"{name}.py"
    script.write_text(_POOL if kind == "pool" else _SEGMENT, encoding="utf-8")
    ready = folder / f"{name}.ready"
    workers = count if kind == "pool" else count - 1
    process = subprocess.Popen(  # argv[0] is the name: ps shows it as the command
        [name, str(script), str(mib), str(count), str(ready)],
        executable=sys.executable,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 120
        while len(list(folder.glob(f"{name}.ready.*"))) < workers + 1:
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"the {kind} {name} did not start")
            time.sleep(0.05)
        children = [int(p.name.rsplit(".", 1)[1]) for p in folder.glob(f"{name}.ready.[0-9]*")]
        yield [process.pid, *sorted(children)]
    finally:
        with suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=30)


def _summed_mb(pids: list[int], file: str, names: tuple[str, ...]) -> float:
    """The processes' `names` fields of /proc/PID/<file> now, summed, MiB (they are kB)."""
    total_kb = 0
    for pid in pids:
        for line in Path(f"/proc/{pid}/{file}").read_text().splitlines():
            name, _, rest = line.partition(":")
            if name in names:
                total_kb += int(rest.split()[0])
    return total_kb / 1024


def summed_pss_mb(pids: list[int]) -> float:
    """The processes' Pss + SwapPss now, MiB (from smaps_rollup)."""
    return _summed_mb(pids, "smaps_rollup", ("Pss", "SwapPss"))


def summed_anon_swap_mb(pids: list[int]) -> float:
    """The processes' RssAnon + VmSwap now, MiB (from status)."""
    return _summed_mb(pids, "status", ("RssAnon", "VmSwap"))
