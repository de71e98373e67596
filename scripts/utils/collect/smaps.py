"""Proportional memory: each process's Pss and SwapPss, read within a time budget.

A page mapped by n processes counts 1/n in each one's Pss, so a program's Pss summed over
its processes counts every shared page once (Documentation/filesystems/proc.rst, "The
/proc/PID/smaps"). SwapPss (since Linux 4.3) is the same share of what is in swap.
/proc/PID/smaps_rollup (since Linux 4.14) holds the sums over every mapping; before it,
/proc/PID/smaps has one Pss and one SwapPss line per mapping, summed here.

Reading either walks the process's page tables under its mmap lock (fs/proc/task_mmu.c,
show_smaps_rollup): the process cannot fault or map meanwhile, and the walk takes time in
proportion to what is mapped. So the collector reads only processes whose pages may be
shared with others (the eligible below), stops when the snapshot's budget is spent, reads
the largest ones only every few snapshots, and rotates so that every eligible process is
read within a few snapshots. A process not read in a snapshot has its columns empty; the
analysis carries its last share forward. ps has just read each listed process's command line
under the same lock (fs/proc/base.c, get_mm_cmdline), within its timeout: a process whose lock
was stuck then fails the snapshot before any share is asked for; only one stuck in the
moment between can hold a read up.

A collector that is not root reads only its own user's processes: another user's
smaps_rollup needs PTRACE_MODE_READ (proc(5)), and those columns stay empty.
Standard library only: the collector runs on the system python3.
"""

from __future__ import annotations

import argparse
import math
import os
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import NamedTuple, Protocol

from utils.collect.procfs import read_whole

ROLLUP = "smaps_rollup"
SMAPS = "smaps"
# smaps_rollup is about 1 KiB; smaps has ~20 lines per mapping, and a process has at most
# vm.max_map_count (65,530 by default) mappings: 64 MiB holds any of them whole.
ROLLUP_BYTES = 16 * 1024
SMAPS_BYTES = 64 * 1024 * 1024
# PIDs 0, 1 and 2 (the idle task, init, kthreadd) parent unrelated processes: being
# their child says nothing of what a process shares.
_UNRELATED_PARENTS = frozenset({0, 1, 2})
# How fast the learnt cost of a read per resident KiB follows the last read.
_COST_WEIGHT = 0.3
# A read's fixed cost (opening, the rollup's text) dominates for a small process: its cost
# is counted per KiB as if it had this much, so that the estimate for a large one is not
# inflated by it.
_COST_FLOOR_KB = 64 * 1024
_MAX_DIGITS = 20  # a kB figure of a sane kernel; longer is a damaged line


class Share(NamedTuple):
    """A process's proportional memory, kB."""

    pss_kb: int
    swap_pss_kb: int  # 0 where the kernel has no SwapPss (before Linux 4.3)


class Settings(NamedTuple):
    """How much a snapshot may spend on reading shares."""

    budget_s: float  # per snapshot; 0 reads none
    cap_kb: int  # a process with more RSS than this is read ...
    cap_every: int  # ... at most once every this many snapshots


class Candidate(NamedTuple):
    """What the scheduler knows of a listed process."""

    pid: int
    ppid: int
    key: str  # its address-space origin: origin_key(CMD)
    rss_kb: int
    start_ticks: int | None  # with pid, names the process (None: unknown)
    cgroup: str | None = None  # its memory cgroup, where the collector knows it


# --- Parsers and pure scheduling -----------------------------------------------------


def parse_smaps(data: bytes) -> Share | None:
    """The sum of the `Pss:` and `SwapPss:` lines of smaps_rollup (one each) or smaps (one
    per mapping); None when there is no Pss line (a kernel thread, a zombie, a damaged
    text). `Pss_Anon:` and the like are other lines."""
    pss = swap = 0
    found = False
    for line in data.split(b"\n"):
        if line.startswith(b"Pss:"):
            value = _kb(line[4:])
            found = found or value is not None
            pss += value or 0
        elif line.startswith(b"SwapPss:"):
            swap += _kb(line[8:]) or 0
    return Share(pss, swap) if found else None


def _kb(rest: bytes) -> int | None:
    """`   1234 kB` as 1234; None when it is not that."""
    parts = rest.split()
    if len(parts) != 2 or parts[1] != b"kB":
        return None
    digits = parts[0]
    if not (digits.isdigit() and len(digits) <= _MAX_DIGITS):
        return None
    return int(digits)


def origin_key(cmd: str) -> str:
    """What processes started from one executable share: the base name of the command's
    first word, a trailing ':' dropped (nginx, php-fpm and postgres retitle their
    workers "nginx: worker process") and a login shell's leading '-'."""
    words = cmd.split(maxsplit=1)
    if not words:
        return ""
    return words[0].rsplit("/", 1)[-1].removesuffix(":").lstrip("-")


def eligible(candidates: Sequence[Candidate]) -> list[int]:
    """The indexes of the processes whose pages may be shared with others': ones whose
    executable, parent (init and kthreadd aside) or memory cgroup they share with another
    listed process, and the parents of such siblings. Kernel threads (no RSS) never are."""
    keys = Counter(c.key for c in candidates if c.key)
    parents = Counter(c.ppid for c in candidates if c.ppid not in _UNRELATED_PARENTS)
    cgroups = Counter(c.cgroup for c in candidates if c.cgroup)
    pool_parents = {pid for pid, count in parents.items() if count > 1}
    return [
        number
        for number, c in enumerate(candidates)
        if c.rss_kb > 0
        and (
            keys[c.key] > 1
            or parents[c.ppid] > 1
            or c.pid in pool_parents
            or (c.cgroup is not None and cgroups[c.cgroup] > 1)
        )
    ]


Identity = tuple[int, int | None]


def identity(candidate: Candidate) -> Identity:
    return (candidate.pid, candidate.start_ticks)


def read_order(
    candidates: Sequence[Candidate],
    waiting: Mapping[Identity, int],
    snapshot: int,
    settings: Settings,
) -> list[int]:
    """The eligible processes this snapshot may read, in the order to read them: the one
    waiting longest first (ties: the never read, then the smaller, then by PID). `waiting`
    holds per process the snapshot of its last read or, never read, -1 - the snapshot it
    was first seen in (so that short-lived newcomers never starve the others). One with
    more RSS than the cap is left out until cap_every snapshots have passed since its last
    read."""
    chosen = []
    for number in eligible(candidates):
        candidate = candidates[number]
        since = waiting.get(identity(candidate), -1 - snapshot)
        capped = candidate.rss_kb > settings.cap_kb
        if capped and since >= 0 and snapshot - since < settings.cap_every:
            continue
        chosen.append(number)

    def due(number: int) -> tuple[int, bool, int, int]:
        since = waiting.get(identity(candidates[number]), -1 - snapshot)
        never = since < 0  # waiting since first seen: before one read in that snapshot
        size = candidates[number].rss_kb
        return (-1 - since if never else since, not never, size, candidates[number].pid)

    return sorted(chosen, key=due)


def share_texts(share: Share | None) -> list[str]:
    """PSS_MB and SWAP_PSS_MB as written: MiB with 3 decimals, empty where not read."""
    if share is None:
        return ["", ""]
    return [f"{share.pss_kb / 1024:.3f}", f"{share.swap_pss_kb / 1024:.3f}"]


def with_shares(
    rows: Iterable[list[str]], shares: Sequence[Share | None] | None
) -> Iterator[list[str]]:
    """Each process row with its PSS_EXTRA columns appended (empty: not read)."""
    for number, row in enumerate(rows):
        yield [*row, *share_texts(None if shares is None else shares[number])]


def limits_note(euid: int) -> str | None:
    """The line a collector run by euid says at start about the shares it cannot read."""
    if euid == 0:
        return None
    return (
        "not root: other users' smaps_rollup cannot be read (proc(5), PTRACE_MODE_READ);"
        " their PSS_MB and SWAP_PSS_MB stay empty"
    )


# --- I/O: reading the shares of one snapshot ------------------------------------------


class Listed(Protocol):
    """What the collector knows of a listed process (its ps row)."""

    @property
    def pid(self) -> int: ...
    @property
    def ppid(self) -> int: ...
    @property
    def rss_kb(self) -> int: ...
    @property
    def cmd(self) -> str: ...


class ShareReader:
    """Reads the shares of a snapshot's processes, keeping from one snapshot to the next
    when each was last read and what a read costs. Never raises for a process."""

    def __init__(
        self,
        settings: Settings,
        proc: Path = Path("/proc"),
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.settings = settings
        self.proc = str(proc)
        self.clock = clock
        self.rollup = os.path.exists(f"{proc}/self/{ROLLUP}")
        self.snapshot = 0
        self.waiting: dict[Identity, int] = {}  # as read_order takes it
        self.cost_s_per_kb = 0.0  # learnt from the reads

    def shares(
        self,
        rows: Sequence[Listed],
        start_ticks: Sequence[int | None],
        cgroups: Sequence[str | None] | None = None,
    ) -> list[Share | None]:
        """Per row, its share if read this snapshot."""
        candidates = [
            Candidate(
                row.pid,
                row.ppid,
                origin_key(row.cmd),
                row.rss_kb,
                ticks,
                (cgroups[number] or None) if cgroups is not None else None,
            )
            for number, (row, ticks) in enumerate(zip(rows, start_ticks, strict=True))
        ]
        found: list[Share | None] = [None] * len(candidates)
        for candidate in candidates:  # first seen: waiting since the snapshot before
            self.waiting.setdefault(identity(candidate), -1 - self.snapshot)
        if self.settings.budget_s > 0:
            order = read_order(candidates, self.waiting, self.snapshot, self.settings)
            self._read(candidates, order, found)
        listed = {identity(c) for c in candidates}
        self.waiting = {key: at for key, at in self.waiting.items() if key in listed}
        self.snapshot += 1
        return found

    def _read(
        self, candidates: Sequence[Candidate], order: list[int], found: list[Share | None]
    ) -> None:
        """Read in order until the budget is spent: a read is begun only while time is left
        and its learnt cost fits, or as the snapshot's first; so a snapshot ends within its
        budget plus one read."""
        began = self.clock()
        done = 0
        for number in order:
            candidate = candidates[number]
            spent = self.clock() - began
            if done and spent >= self.settings.budget_s:
                break
            estimate = self.cost_s_per_kb * candidate.rss_kb
            if done and spent + estimate > self.settings.budget_s:
                continue  # a smaller one may still fit
            before = self.clock()
            found[number] = self.read_one(candidate.pid)
            took = self.clock() - before
            done += 1
            self.waiting[identity(candidate)] = self.snapshot
            rate = took / max(candidate.rss_kb, _COST_FLOOR_KB)
            self.cost_s_per_kb += _COST_WEIGHT * (rate - self.cost_s_per_kb)

    def read_one(self, pid: int) -> Share | None:
        """One process's share: smaps_rollup, or smaps summed on a kernel before 4.14."""
        if self.rollup:
            data = read_whole(f"{self.proc}/{pid}/{ROLLUP}", ROLLUP_BYTES)
        else:
            data = read_whole(f"{self.proc}/{pid}/{SMAPS}", SMAPS_BYTES)
        return None if data is None else parse_smaps(data)


# --- The collector's flags ------------------------------------------------------------


def _milliseconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number of milliseconds: {text!r}") from None
    if not math.isfinite(value) or value < 0:
        raise argparse.ArgumentTypeError(f"must be 0 or more, got {text}")
    return value


def _mebibytes(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number of MiB: {text!r}") from None
    if not math.isfinite(value) or value <= 0:
        raise argparse.ArgumentTypeError(f"must be above 0, got {text}")
    return value


def _snapshots(text: str) -> int:
    if not (text.isascii() and text.isdigit()) or int(text) < 1:
        raise argparse.ArgumentTypeError(f"must be a whole number of snapshots >= 1: {text!r}")
    return int(text)


def add_flags(parser: argparse.ArgumentParser, defaults: Settings) -> None:
    """--pss-budget-ms, --pss-cap-mb and --pss-cap-every, with the script's defaults."""
    budget_ms, cap_mb = defaults.budget_s * 1000, defaults.cap_kb / 1024
    parser.add_argument(
        "--pss-budget-ms",
        type=_milliseconds,
        default=budget_ms,
        metavar="MS",
        help="milliseconds a snapshot may spend reading processes' Pss (smaps_rollup); 0 reads"
        f" none (default {budget_ms:g})",
    )
    parser.add_argument(
        "--pss-cap-mb",
        type=_mebibytes,
        default=cap_mb,
        metavar="MIB",
        help=f"a process with more RSS than this, in MiB, has its Pss read only every"
        f" --pss-cap-every snapshots (default {cap_mb:g})",
    )
    parser.add_argument(
        "--pss-cap-every",
        type=_snapshots,
        default=defaults.cap_every,
        metavar="N",
        help=f"snapshots between two reads of a process over --pss-cap-mb (default"
        f" {defaults.cap_every})",
    )


def settings_of(args: argparse.Namespace) -> Settings:
    return Settings(args.pss_budget_ms / 1000, int(args.pss_cap_mb * 1024), args.pss_cap_every)
