#!/usr/bin/env python3
"""Benchmark both analyses against the plain pandas approach on synthetic dumps.

`make bench` (this script without arguments) generates a synthetic month once (4,320
snapshots x 500 processes, cached in .cache/bench-month) and a compacted copy of it once
(scripts/compact_dumps.py, measured; cached in .cache/bench-month-bundled). Then it runs
each command as a whole process, 3 times, alternating: the plain approach and ours for
each analysis, ours on the bundles, and scripts/make_report.py. It prints the machine,
the exact commands, and, grouped as "Month: loose files", "Month: bundled",
"Compaction", "Report" and "Targets": the median wall time, the peak RSS and the peak PSS
of each command's process tree, its phase split, the ratios, and a verdict against the
targets. The peak PSS comes from one more run of each command, not timed: reading
/proc/<pid>/smaps_rollup slows the process it measures. `make bench YEAR=1` (--year)
does the same for our analyses on a synthetic year (the baseline needs ~8 GB there;
--without-baseline skips it) and checks that the time grows linearly from the month.

The plain approach lives here too, so the tests can import it and this script can run it
as a process of its own: `python tests/benchmark.py --baseline system|processes DIR`.

The exit status is 0 whenever the benchmark ran, targets met or not (the report says
MISSED); it is 1 only when something failed (a command, the data generation).
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import os
import platform
import re
import shlex
import shutil
import statistics
import subprocess
import sys
import tarfile
import tempfile
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import TypeVar

import pandas as pd

# Run as `python tests/benchmark.py`, neither scripts/ nor tests/ is on sys.path.
for _folder in (Path(__file__).resolve().parent.parent / "scripts", Path(__file__).parent):
    if str(_folder) not in sys.path:
        sys.path.insert(0, str(_folder))

from synthetic import generate_dumps  # noqa: E402
from utils.console import PhaseTimer, positive_count  # noqa: E402
from utils.files import write_text_atomically  # noqa: E402

REPO_ROOT = Path(__file__).resolve().parent.parent
CACHE_DIR = REPO_ROOT / ".cache"
PROG = "benchmark"

SYS_PREFIX = "sys_mem_"
PROCESS_PREFIX = "process_mem_"
NAME_TIME_FORMAT = "%Y%m%d_%H%M%S"
PHASES: tuple[str, ...] = ("discovery", "reading", "computing", "growth", "plotting")
TIMINGS_RE = re.compile(r"timings: ((?:[a-z]+ [0-9.]+ s(?:, |$))+)", re.MULTILINE)
PHASE_RE = re.compile(r"([a-z]+) ([0-9.]+) s")
ANALYSES: tuple[str, ...] = ("system", "processes")
TITLES = {"system": "System analysis", "processes": "Process analysis"}
TOP_N = 10
MIB = 1024 * 1024
# How often the process tree of a running command is sampled: VmRSS in the timed runs,
# Pss as well in the memory run (reading smaps_rollup walks the page tables under the
# mmap lock: every 20 ms took a year's process analysis from ~25 s to ~45 s).
POLL_INTERVAL_S = 0.01
PSS_INTERVAL_S = 0.02
# No single run takes near this, even the plain way on a year (about 80 s here).
RUN_TIMEOUT_S = 3600
# The year's process analysis must stay under this peak (1.5 GB, decimal: the stricter).
YEAR_PEAK_LIMIT_BYTES = 1_500_000_000
# "Linear": the year's time per snapshot is at most this many times the month's.
LINEAR_TOLERANCE = 1.3
# Peak PSS of our process tree (issue 13), MiB: the month's analyses and the year's.
MONTH_PSS_LIMITS = {"system": 150 * MIB, "processes": 200 * MIB}
YEAR_PSS_LIMIT = 500 * MIB
# Ours on the month's daily bundles against ours on its loose files (issue 12).
BUNDLED_TIME_LIMIT = 1.10
# The month on disk, loose files against bundles, in allocated blocks: at least this.
DISK_RATIO_TARGET = 20.0
# make_report.py against the two analyses run one after the other (issue 11).
REPORT_TIME_LIMIT = 1.0
# Ours against an earlier commit of ours (--reference REV) on the year: "no slower than
# today" (issue 13), as a ratio measured in one run.
REFERENCE_TIME_LIMIT = 1.0
COMPACT_SCRIPT = REPO_ROOT / "scripts" / "compact_dumps.py"
REPORT_SCRIPT = REPO_ROOT / "scripts" / "make_report.py"


# --- Data sets -----------------------------------------------------------------


@dataclass(frozen=True)
class DataSet:
    """A synthetic data set, cached under `<cache>/bench-<name>`."""

    name: str
    snapshots: int
    processes: int = 500
    seed: int = 0
    interval_s: int = 600

    def path(self, cache_dir: Path) -> Path:
        return cache_dir / f"bench-{self.name}"

    def marker(self, cache_dir: Path) -> Path:
        return cache_dir / f"bench-{self.name}.done"

    def marker_text(self) -> str:
        """Written after a generation succeeded; the cache is valid only if it matches.

        It names the generator's source too, so a changed generator means new data.
        """
        return (
            f"snapshots={self.snapshots} processes={self.processes} seed={self.seed}"
            f" interval_s={self.interval_s} generator={generator_digest()}\n"
        )

    def describe(self) -> str:
        return f"{self.snapshots:,} snapshots x {self.processes:,} processes"


# What the synthetic dumps depend on: the generator and the collector's CSV formatting.
GENERATOR_SOURCES = (
    REPO_ROOT / "tests" / "synthetic.py",
    REPO_ROOT / "scripts" / "collect_memory.py",
)


def generator_digest(sources: Sequence[Path] = GENERATOR_SOURCES) -> str:
    digest = hashlib.sha256()
    for source in sources:
        digest.update(source.read_bytes())
    return digest.hexdigest()[:16]


MONTH = DataSet("month", 4_320)
YEAR = DataSet("year", 52_560)


def is_cached(data: DataSet, cache_dir: Path) -> bool:
    marker = data.marker(cache_dir)
    try:
        text = marker.read_text(encoding="utf-8")
    except OSError:
        return False
    return text == data.marker_text() and data.path(cache_dir).is_dir()


def _remove_stale_temps(name: str, cache_dir: Path) -> None:
    """Delete the temp folders of interrupted generations (whose process is gone)."""
    for temp in cache_dir.glob(f".bench-{name}.tmp-*"):
        owner = temp.name.rsplit("-", 1)[-1]
        if owner.isdigit() and int(owner) != os.getpid() and _pid_alive(int(owner)):
            continue  # another benchmark is generating right now
        shutil.rmtree(temp, ignore_errors=True)


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


T = TypeVar("T")


def build_cached(
    name: str, cache_dir: Path, build: Callable[[Path], T], marker_text: Callable[[T], str]
) -> T:
    """Make cache_dir/bench-<name> with build(folder), marked valid by bench-<name>.done.

    The old copy and its marker go first; build fills a temp sibling folder (its process id
    in its name, so another run's is left alone) that is renamed into place, and the marker
    is written last: an interrupted build never looks complete."""
    target, marker = cache_dir / f"bench-{name}", cache_dir / f"bench-{name}.done"
    marker.unlink(missing_ok=True)
    if target.exists():
        shutil.rmtree(target)
    _remove_stale_temps(name, cache_dir)
    temp = cache_dir / f".bench-{name}.tmp-{os.getpid()}"
    shutil.rmtree(temp, ignore_errors=True)
    try:
        built = build(temp)
        os.rename(temp, target)
    finally:
        shutil.rmtree(temp, ignore_errors=True)
    write_text_atomically(marker, marker_text(built))
    return built


def ensure_dataset(data: DataSet, cache_dir: Path, say: Callable[[str], None] = print) -> Path:
    """The data set's folder, generated first unless a valid cached copy exists.

    Generation goes into a temp sibling folder that is renamed into place, and the marker
    is written last: an interrupted generation never looks complete.
    """
    target = data.path(cache_dir)
    shown = _relative(target)
    if is_cached(data, cache_dir):
        say(f"using the cached synthetic {data.name}: {data.describe()} ({shown})")
        return target
    say(f"generating a synthetic {data.name}: {data.describe()} (cached in {shown})...")
    cache_dir.mkdir(parents=True, exist_ok=True)
    began = time.perf_counter()
    summary = build_cached(
        data.name,
        cache_dir,
        lambda temp: generate_dumps(
            temp, data.snapshots, data.processes, data.seed, interval_s=data.interval_s
        ),
        lambda _: data.marker_text(),
    )
    say(
        f"  done in {time.perf_counter() - began:.1f} s:"
        f" {summary.bytes_written / 1e6:,.1f} MB in {2 * summary.snapshots:,} files"
    )
    return target


def warm_page_cache(dumps_dir: Path) -> tuple[int, int]:
    """Read every dump and bundle once, so that no command pays for the disk: (files, bytes)."""
    files = total = 0
    for entry in os.scandir(dumps_dir):
        if entry.name.endswith((".csv", ".tar.xz")):
            with open(entry.path, "rb") as handle:
                total += len(handle.read())
            files += 1
    return files, total


# --- The plain approach (the baseline) -----------------------------------------


def plain_discover(dumps_dir: Path, prefix: str) -> list[Path]:
    return sorted(dumps_dir.glob(f"{prefix}*.csv"))


def plain_read(paths: Sequence[Path], prefix: str) -> pd.DataFrame:
    """One pd.read_csv per file, a timestamp column from the file name, one concat."""
    frames: list[pd.DataFrame] = []
    for path in paths:
        frame = pd.read_csv(path)
        stamp = path.name[len(prefix) : -len(".csv")]
        # strptime, not pd.to_datetime: the latter costs a tenth of a read_csv per file,
        # and the baseline should be plain, not needlessly slow.
        frame["timestamp"] = datetime.strptime(stamp, NAME_TIME_FORMAT).replace(tzinfo=UTC)
        frames.append(frame)
    return pd.concat(frames, ignore_index=True)


def plain_system_compute(data: pd.DataFrame) -> pd.DataFrame:
    data["RAM_Used_MB"] = (
        data["MemTotal_MB"]
        - data["MemFree_MB"]
        - data["Buffers_MB"]
        - data["Cached_MB"]
        - data["SReclaimable_MB"]
    )
    data["Swap_Used_MB"] = data["SwapTotal_MB"] - data["SwapFree_MB"]
    data["RAM_Used_Pct"] = data["RAM_Used_MB"] / data["MemTotal_MB"] * 100
    return data.sort_values("timestamp").reset_index(drop=True)


def plain_rss_compute(data: pd.DataFrame, top: int = TOP_N) -> pd.DataFrame:
    data = data.sort_values("timestamp", kind="stable")
    table = (
        data.groupby("PID")
        .agg(min_RSS=("RSS_MB", "min"), max_RSS=("RSS_MB", "max"), CMD=("CMD", "first"))
        .reset_index()
    )
    table["spread"] = (table["max_RSS"] - table["min_RSS"]).round(3)
    table = table.sort_values(["spread", "PID"], ascending=[False, True], kind="stable")
    return table.head(top)[["PID", "min_RSS", "max_RSS", "spread", "CMD"]].reset_index(drop=True)


def plain_system_metrics(dumps_dir: Path) -> pd.DataFrame:
    """The system metrics, computed the plain way."""
    return plain_system_compute(plain_read(plain_discover(dumps_dir, SYS_PREFIX), SYS_PREFIX))


def plain_rss_spread(dumps_dir: Path, top: int = TOP_N) -> pd.DataFrame:
    """The top PIDs by RSS spread, computed the plain way."""
    paths = plain_discover(dumps_dir, PROCESS_PREFIX)
    return plain_rss_compute(plain_read(paths, PROCESS_PREFIX), top)


def run_baseline(analysis: str, dumps_dir: Path) -> int:
    """The baseline as a process: read, compute, write the table to a temp dir (no plots)."""
    prog = f"baseline_{analysis}"
    watch = PhaseTimer()
    prefix = SYS_PREFIX if analysis == "system" else PROCESS_PREFIX
    try:
        with tempfile.TemporaryDirectory(prefix="bench-baseline-") as out_dir:
            with watch.phase("discovery"):
                paths = plain_discover(dumps_dir, prefix)
            with watch.phase("reading"):
                data = plain_read(paths, prefix)
            with watch.phase("computing"):
                if analysis == "system":
                    table = plain_system_compute(data)
                    out = Path(out_dir) / "system_metrics.csv"
                else:
                    table = plain_rss_compute(data, TOP_N)
                    out = Path(out_dir) / f"top{TOP_N}_rss_spread.csv"
                table.to_csv(out, index=False)
            print(f"{prog}: {len(paths):,} files, wrote {len(table):,} rows to {out.name}")
    except (OSError, ValueError, KeyError) as err:
        print(f"{prog}: error: {err}", file=sys.stderr)
        return 1
    finally:
        print(f"{prog}: {watch.summary()}", file=sys.stderr, flush=True)
    return 0


# --- Measuring a command ---------------------------------------------------------

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
        self.pss = pss  # read every process's PSS too (slows the processes: see above)
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


class BenchmarkError(Exception):
    """Something failed: a command, the generation, an unexpected output."""


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
                launcher, cwd=cwd, stdin=subprocess.DEVNULL, stdout=out, stderr=err
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


def measure_ok(argv: Sequence[str], pss: bool = False) -> Execution:
    """measure() from the repository, raising BenchmarkError unless it exits 0."""
    execution = measure(argv, REPO_ROOT, PSS_INTERVAL_S if pss else POLL_INTERVAL_S, pss)
    if execution.exit_code != 0:
        tail = "\n".join(execution.stderr.strip().splitlines()[-10:])
        raise BenchmarkError(
            f"{shlex.join(argv)} exited with status {execution.exit_code}:\n{tail}"
        )
    return execution


# --- Results -------------------------------------------------------------------


@dataclass(frozen=True)
class Phases:
    discovery: float
    reading: float
    computing: float
    plotting: float
    growth: float = 0.0  # the leak finder (process analysis)

    def as_tuple(self) -> tuple[float, ...]:
        """In PHASES order."""
        return tuple(getattr(self, name) for name in PHASES)

    @classmethod
    def from_tuple(cls, values: Sequence[float]) -> Phases:
        return cls(**dict(zip(PHASES, values, strict=True)))


NO_PHASES = Phases(0.0, 0.0, 0.0, 0.0)  # a command that prints no timings (the report)


def parse_timings(stderr: str) -> Phases | None:
    """The last `timings: discovery X s, ...` line of a command's stderr (phases it does
    not name count 0)."""
    matches = TIMINGS_RE.findall(stderr)
    if not matches:
        return None
    seconds = {name: float(value) for name, value in PHASE_RE.findall(matches[-1])}
    return Phases.from_tuple([seconds.get(name, 0.0) for name in PHASES])


@dataclass(frozen=True)
class RunResult:
    wall_s: float
    peak_bytes: int
    phases: Phases
    output_bytes: int | None = None  # the size of the file it wrote (the report's page)


@dataclass
class Measurement:
    """Every timed run of one command, and the peak PSS of its memory run."""

    label: str  # "baseline", "ours" or "bundled" (ours on the bundles)
    analysis: str  # "system", "processes" or "report"
    data: DataSet
    runs: list[RunResult] = field(default_factory=list)
    pss_bytes: int | None = None  # None: no memory run (or no sample)

    @property
    def wall_s(self) -> float:
        return statistics.median(run.wall_s for run in self.runs)

    @property
    def peak_bytes(self) -> int:
        return max(run.peak_bytes for run in self.runs)

    @property
    def phases(self) -> Phases:
        columns = zip(*(run.phases.as_tuple() for run in self.runs), strict=True)
        return Phases.from_tuple([statistics.median(column) for column in columns])

    @property
    def output_bytes(self) -> int | None:
        sizes = [run.output_bytes for run in self.runs if run.output_bytes is not None]
        return max(sizes) if sizes else None


@dataclass(frozen=True)
class Target:
    """Upper bounds of ours/baseline for one analysis; None means no target."""

    analysis: str
    max_time_ratio: float | None
    max_memory_ratio: float | None


MONTH_TARGETS: dict[str, Target] = {
    "system": Target("system", 0.4, None),
    "processes": Target("processes", 0.5, 0.6),
}


@dataclass(frozen=True)
class Check:
    """One verdict line: what was checked, the measured value and the limit."""

    what: str
    value: float
    limit: float
    shown: str  # the value as printed, with its unit
    limit_shown: str  # the limit as printed
    at_least: bool = False  # the value must reach the limit (a size ratio), not stay under

    @property
    def met(self) -> bool:
        return self.value >= self.limit if self.at_least else self.value <= self.limit


@dataclass(frozen=True)
class DiskUsage:
    """The files directly in a folder (hidden ones aside) and what they take on disk."""

    files: int
    allocated_bytes: int  # st_blocks x 512, as du counts: a 500-byte file takes 4 KiB
    apparent_bytes: int  # st_size, as ls shows


def disk_usage(folder: Path) -> DiskUsage:
    files = allocated = apparent = 0
    for entry in os.scandir(folder):
        if entry.name.startswith(".") or not entry.is_file(follow_symlinks=False):
            continue  # the compactor's lock file, temporaries
        st = entry.stat(follow_symlinks=False)
        files += 1
        allocated += st.st_blocks * 512  # st_blocks counts 512-byte units, whatever the fs
        apparent += st.st_size
    return DiskUsage(files, allocated, apparent)


@dataclass(frozen=True)
class CompactionRun:
    """How scripts/compact_dumps.py did on a copy of the month (kept with the cache)."""

    argv: tuple[str, ...]
    wall_s: float  # the timed run
    peak_bytes: int  # peak RSS of the timed run
    pss_bytes: int | None  # peak PSS of the memory run, on a second copy
    measured_at: str  # when (UTC): the cache is made once, so these may be older

    def to_json(self) -> str:
        return json.dumps(
            {
                "argv": list(self.argv),
                "wall_s": self.wall_s,
                "peak_bytes": self.peak_bytes,
                "pss_bytes": self.pss_bytes,
                "measured_at": self.measured_at,
            }
        )

    @classmethod
    def from_json(cls, text: str) -> CompactionRun:
        """Raises ValueError (json's errors are ValueErrors) or KeyError, TypeError."""
        values = json.loads(text)
        pss = values["pss_bytes"]
        return cls(
            tuple(str(part) for part in values["argv"]),
            float(values["wall_s"]),
            int(values["peak_bytes"]),
            None if pss is None else int(pss),
            str(values["measured_at"]),
        )


# --- Formatting (pure) -----------------------------------------------------------

# Peak RSS: the timed runs' largest; peak PSS: the memory run's.
TABLE_HEADER = ("wall s", "RSS MiB", "PSS MiB", *PHASES)
LABEL_WIDTH = 15
CELL_WIDTH = 11
Section = tuple[list[str], list[Check]]  # the lines to print and the checks they hold


def format_row(label: str, cells: Sequence[str]) -> str:
    return f"  {label:<{LABEL_WIDTH}}" + "".join(f"{cell:>{CELL_WIDTH}}" for cell in cells)


def mib_cell(size: int | None) -> str:
    return "-" if size is None else f"{size / MIB:,.0f}"


def mib_text(size: int | None) -> str:
    return "not measured" if size is None else f"{size / MIB:,.0f} MiB"


def measurement_cells(measurement: Measurement) -> list[str]:
    phases = measurement.phases.as_tuple()
    return [
        f"{measurement.wall_s:.2f}",
        mib_cell(measurement.peak_bytes),
        mib_cell(measurement.pss_bytes),
        *(f"{seconds:.3f}" for seconds in phases),
    ]


def ratio(ours: float, baseline: float) -> float:
    return ours / baseline if baseline > 0 else float("inf")


def format_ratio(value: float) -> str:
    return f"{value:.2f}x"


def ratio_cells(baseline: Measurement, ours: Measurement) -> list[str]:
    """ours/baseline for each cell of measurement_cells(); a dash where either lacks it."""
    pss = (
        format_ratio(ratio(ours.pss_bytes, baseline.pss_bytes))
        if ours.pss_bytes is not None and baseline.pss_bytes is not None
        else "-"
    )
    phase_ratios = [
        format_ratio(ratio(o, b)) if b >= 0.001 else "-"
        for o, b in zip(ours.phases.as_tuple(), baseline.phases.as_tuple(), strict=True)
    ]
    return [
        format_ratio(ratio(ours.wall_s, baseline.wall_s)),
        format_ratio(ratio(ours.peak_bytes, baseline.peak_bytes)),
        pss,
        *phase_ratios,
    ]


def format_comparison(
    title: str,
    baseline: Measurement | None,
    ours: Measurement,
    names: tuple[str, str] = ("baseline", "ours"),
) -> list[str]:
    """A table of the rows baseline / ours (as `names` call them), then the ratios."""
    lines = [title, format_row("", TABLE_HEADER)]
    if baseline is not None:
        lines.append(format_row(names[0], measurement_cells(baseline)))
    lines.append(format_row(names[1], measurement_cells(ours)))
    if baseline is not None:
        lines.append(format_row(f"{names[1]}/{names[0]}", ratio_cells(baseline, ours)))
        if baseline.phases.plotting < 0.001 <= ours.phases.plotting:
            # For information only: the targets are on the whole wall time.
            without = ours.wall_s - ours.phases.plotting
            lines.append(
                f"  (the baseline draws no plots; ours without its plotting phase:"
                f" {without:.2f} s, {format_ratio(ratio(without, baseline.wall_s))})"
            )
    return lines


def ratio_check(what: str, value: float, limit: float) -> Check:
    return Check(what, value, limit, format_ratio(value), format_ratio(limit))


def ratio_checks(target: Target, baseline: Measurement, ours: Measurement) -> list[Check]:
    """The target's checks of ours/baseline: wall time, then peak RSS."""
    checks: list[Check] = []
    name = target.analysis
    if target.max_time_ratio is not None:
        value = ratio(ours.wall_s, baseline.wall_s)
        checks.append(ratio_check(f"{name} time (ours/baseline)", value, target.max_time_ratio))
    if target.max_memory_ratio is not None:
        value = ratio(ours.peak_bytes, baseline.peak_bytes)
        what = f"{name} peak RSS (ours/baseline)"
        checks.append(ratio_check(what, value, target.max_memory_ratio))
    return checks


def pss_check(what: str, pss_bytes: int | None, limit_bytes: int) -> Check:
    """Peak PSS at most limit_bytes, in MiB; not measured (no sample) is missed."""
    value = float("inf") if pss_bytes is None else float(pss_bytes)
    return Check(what, value, limit_bytes, mib_text(pss_bytes), mib_text(limit_bytes))


def format_checks(checks: Sequence[Check]) -> list[str]:
    """One aligned line per check, ending in `met` or `MISSED`."""
    if not checks:
        return []
    what = max(len(check.what) for check in checks)
    shown = max(len(check.shown) for check in checks)
    limit = max(len(check.limit_shown) for check in checks)
    return [
        f"  {check.what:<{what}}  {check.shown:>{shown}}"
        f"  target {'>=' if check.at_least else '<='} {check.limit_shown:<{limit}}"
        f"  {'met' if check.met else 'MISSED'}"
        for check in checks
    ]


def format_verdict(checks: Sequence[Check]) -> str:
    missed = [check.what for check in checks if not check.met]
    if not missed:
        return f"Verdict: all {len(checks)} targets met"
    return f"Verdict: MISSED {len(missed)} of {len(checks)} targets: " + "; ".join(missed)


def growth_checks(
    analysis: str,
    month: Measurement,
    year: Measurement,
    tolerance: float = LINEAR_TOLERANCE,
) -> tuple[list[str], list[Check]]:
    """time(year)/time(month) next to the data ratio, and whether growth is linear: the
    year's time per snapshot at most `tolerance` times the month's.

    Checked twice: on the wall time, as a user sees it, and on reading + computing, the
    phases that depend on the data. The wall time alone would hide a superlinear reading
    phase behind the fixed costs (imports, plots), which weigh most on the month.
    """
    data_ratio = year.data.snapshots / month.data.snapshots
    wall_ratio = ratio(year.wall_s, month.wall_s)
    work_month = month.phases.reading + month.phases.computing
    work_year = year.phases.reading + year.phases.computing
    work_ratio = ratio(work_year, work_month)
    lines = [
        f"  {analysis}: data {format_ratio(data_ratio)};"
        f" wall time {year.wall_s:.2f} s / {month.wall_s:.2f} s = {format_ratio(wall_ratio)};"
        f" reading+computing {work_year:.2f} s / {work_month:.2f} s = {format_ratio(work_ratio)}"
    ]
    checks = [
        Check(
            f"{analysis} wall time per snapshot",
            wall_ratio / data_ratio,
            tolerance,
            f"{format_ratio(wall_ratio / data_ratio)} month's",
            f"{format_ratio(tolerance)} month's",
        ),
        Check(
            f"{analysis} reading+computing per snapshot",
            work_ratio / data_ratio,
            tolerance,
            f"{format_ratio(work_ratio / data_ratio)} month's",
            f"{format_ratio(tolerance)} month's",
        ),
    ]
    return lines, checks


def peak_check(what: str, peak_bytes: int, limit_bytes: int) -> Check:
    """Peak memory at most limit_bytes; shown in MiB, the limit also in decimal GB."""
    return Check(
        what,
        peak_bytes,
        limit_bytes,
        f"{peak_bytes / MIB:,.0f} MiB",
        f"{limit_bytes / MIB:,.0f} MiB ({limit_bytes / 1e9:g} GB)",
    )


def loose_section(results: dict[tuple[str, str], Measurement]) -> Section:
    """Baseline against ours on the loose month: the tables, the ratio and PSS checks."""
    data = results[("ours", "processes")].data
    lines = [f"Month: loose files ({data.describe()}, {2 * data.snapshots:,} files)", ""]
    checks: list[Check] = []
    for analysis in ANALYSES:
        baseline, ours = results[("baseline", analysis)], results[("ours", analysis)]
        lines += [*format_comparison(TITLES[analysis], baseline, ours), ""]
        checks += ratio_checks(MONTH_TARGETS[analysis], baseline, ours)
    for analysis in ANALYSES:
        pss = results[("ours", analysis)].pss_bytes
        checks.append(pss_check(f"{analysis} peak PSS", pss, MONTH_PSS_LIMITS[analysis]))
    return lines, checks


def bundled_section(results: dict[tuple[str, str], Measurement]) -> Section:
    """Ours on the daily bundles against ours on the loose files of the same month."""
    lines = ["Month: bundled (ours on the daily bundles of the same month, against loose)", ""]
    checks: list[Check] = []
    for analysis in ANALYSES:
        loose, bundled = results[("ours", analysis)], results[("bundled", analysis)]
        lines += [*format_comparison(TITLES[analysis], loose, bundled, ("loose", "bundled")), ""]
        value = ratio(bundled.wall_s, loose.wall_s)
        checks.append(ratio_check(f"{analysis} time (bundled/loose)", value, BUNDLED_TIME_LIMIT))
    return lines, checks


def compaction_section(run: CompactionRun, loose: DiskUsage, bundled: DiskUsage) -> Section:
    """What compacting the month cost, and what it saves on disk."""
    disk_ratio = ratio(loose.allocated_bytes, bundled.allocated_bytes)
    width = len(f"{max(loose.files, bundled.files):,}")
    rows = [
        f"    {name:<8} {usage.files:>{width},} files  {usage.allocated_bytes / MIB:>8,.1f} MiB"
        f"  (apparent size {usage.apparent_bytes / MIB:,.1f} MiB)"
        for name, usage in (("loose", loose), ("bundled", bundled))
    ]
    lines = [
        "Compaction (compact_dumps.py --older-than-days 0 on a copy of the month, every day"
        f" bundled;\n  measured once, when the cache was made: {run.measured_at}; to measure"
        f" it again, delete\n  .cache/bench-{BUNDLED_NAME}.done)",
        f"  wall time {run.wall_s:.2f} s, peak RSS {mib_text(run.peak_bytes)};"
        f" peak PSS {mib_text(run.pss_bytes)} (its memory run, on a second copy)",
        "  on disk (allocated blocks, st_blocks x 512, as du counts them):",
        *rows,
        f"    loose/bundled {format_ratio(disk_ratio)}",
        "",
    ]
    limit = DISK_RATIO_TARGET
    check = Check(
        "month on disk (loose/bundled)",
        disk_ratio,
        limit,
        format_ratio(disk_ratio),
        format_ratio(limit),
        at_least=True,
    )
    return lines, [check]


def report_section(
    report: Measurement | None, system: Measurement, processes: Measurement
) -> Section:
    """make_report.py against the two analyses run one after the other."""
    if report is None:
        return [f"Report: {_relative(REPORT_SCRIPT)} is missing; skipped", ""], []
    both = system.wall_s + processes.wall_s
    value = ratio(report.wall_s, both)
    size = report.output_bytes
    size_text = "no page written" if size is None else f"report.html {size:,} bytes"
    lines = [
        "Report (make_report.py on the loose month, against both analyses on it)",
        f"  report            wall {report.wall_s:.2f} s, peak RSS {mib_text(report.peak_bytes)},"
        f" peak PSS {mib_text(report.pss_bytes)}; {size_text}",
        f"  both analyses     system {system.wall_s:.2f} s + processes {processes.wall_s:.2f} s"
        f" = {both:.2f} s",
        f"  report/(system + processes) {format_ratio(value)}",
        "",
    ]
    return lines, [ratio_check("report time / (system + processes)", value, REPORT_TIME_LIMIT)]


def targets_lines(checks: Sequence[Check]) -> list[str]:
    return ["Targets:", *format_checks(checks), format_verdict(checks)]


# --- The machine -----------------------------------------------------------------


def _first_value(path: str, key: str) -> str | None:
    try:
        with open(path, encoding="utf-8", errors="replace") as handle:
            for line in handle:
                name, _, value = line.partition(":")
                if name.strip() == key:
                    return value.strip()
    except OSError:
        return None
    return None


def _version(package: str) -> str:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return "not installed"


def machine_lines() -> list[str]:
    cpus = os.cpu_count() or 0
    usable = len(os.sched_getaffinity(0))
    model = _first_value("/proc/cpuinfo", "model name") or platform.processor() or "unknown"
    mem_kb = _first_value("/proc/meminfo", "MemTotal")
    memory = f"{int(mem_kb.split()[0]) / 1024 / 1024:.1f} GiB" if mem_kb else "unknown"
    usable_text = f" ({usable} usable)" if usable != cpus else ""
    return [
        f"Machine: {cpus} CPUs{usable_text}, {model}, {memory} RAM," f" Linux {platform.release()}",
        f"Python {platform.python_version()}, pandas {pd.__version__},"
        f" numpy {_version('numpy')}, matplotlib {_version('matplotlib')}",
    ]


# --- Running the benchmark -------------------------------------------------------


def _relative(path: Path) -> str:
    """A path as shown and passed to commands: relative to the repository if inside it.

    Symbolic links are not resolved: .venv/bin/python must stay the venv's python.
    """
    absolute = Path(os.path.abspath(path))
    try:
        relative = absolute.relative_to(REPO_ROOT)
    except ValueError:
        return str(absolute)
    # With a slash, exec() takes the path as it is instead of looking it up on PATH.
    return str(relative) if len(relative.parts) > 1 else f"./{relative}"


def command_for(
    label: str, analysis: str, dumps_dir: Path, out_dir: Path, reference: Reference | None = None
) -> list[str]:
    """The argv of one measured analysis (ours for any label but "baseline", the
    reference's scripts if one is given); paths relative to the repository (the cwd)."""
    python = _relative(Path(sys.executable))
    if label == "baseline":
        return [python, "tests/benchmark.py", "--baseline", analysis, _relative(dumps_dir)]
    scripts = REPO_ROOT / "scripts" if reference is None else reference.scripts
    return [
        python,
        _relative(scripts / f"analyze_{analysis}.py"),
        "--dumps-dir",
        _relative(dumps_dir),
        "--out-dir",
        str(out_dir),
        "--timings",
    ]


def report_argv(dumps_dir: Path, out_file: Path) -> list[str]:
    python = _relative(Path(sys.executable))
    script, dumps = _relative(REPORT_SCRIPT), _relative(dumps_dir)
    return [python, script, "--dumps-dir", dumps, "--out", str(out_file)]


def compact_argv(dumps_dir: Path) -> list[str]:
    """Every closed day (--older-than-days 0: the synthetic days are long past) bundled.

    The venv's python runs it: the same interpreter as the system python3 here, without
    a version manager's shim in front (the compactor imports the standard library only).
    """
    python = _relative(Path(sys.executable))
    script, dumps = _relative(COMPACT_SCRIPT), _relative(dumps_dir)
    return [python, script, "--dumps-dir", dumps, "--older-than-days", "0"]


@dataclass(frozen=True)
class Command:
    """One measured command, and the folder its outputs go to (emptied after each run)."""

    label: str  # "baseline", "ours" or "bundled" (ours on the bundles)
    analysis: str  # "system", "processes" or "report"
    data: DataSet
    argv: tuple[str, ...]
    out_dir: Path
    output: Path | None = None  # a file whose size is reported (the report's page)
    timings: bool = True  # it prints a `timings:` line on stderr

    @property
    def key(self) -> tuple[str, str]:
        return (self.label, self.analysis)

    @property
    def name(self) -> str:
        if self.analysis == "report":
            return f"report ({self.data.name})"
        if self.label == "bundled":
            return f"ours {self.analysis} ({self.data.name}, bundled)"
        return f"{self.label} {self.analysis} ({self.data.name})"


def analysis_command(
    label: str,
    analysis: str,
    data: DataSet,
    dumps_dir: Path,
    work_dir: Path,
    reference: Reference | None = None,
) -> Command:
    out_dir = work_dir / f"{data.name}-{label}-{analysis}"
    argv = command_for(label, analysis, dumps_dir, out_dir, reference)
    return Command(label, analysis, data, tuple(argv), out_dir)


def report_command(data: DataSet, dumps_dir: Path, work_dir: Path) -> Command:
    out_dir = work_dir / f"{data.name}-report"
    page = out_dir / "report.html"
    argv = report_argv(dumps_dir, page)
    return Command("ours", "report", data, tuple(argv), out_dir, output=page, timings=False)


def run_once(command: Command) -> RunResult:
    execution = measure_ok(command.argv)
    phases = parse_timings(execution.stderr) if command.timings else NO_PHASES
    if phases is None:
        raise BenchmarkError(f"{shlex.join(command.argv)} printed no timings line on stderr")
    output = command.output
    size = output.stat().st_size if output is not None and output.is_file() else None
    shutil.rmtree(command.out_dir, ignore_errors=True)
    return RunResult(execution.wall_s, execution.peak_bytes, phases, size)


def run_rounds(
    groups: Sequence[Sequence[Command]], repeat: int
) -> dict[tuple[str, str], Measurement]:
    """Run each command `repeat` times, round after round; within a group (one analysis:
    baseline, ours, ours on bundles) alternating, their order flipped every other round,
    so that they share the machine's noise."""
    results = {
        command.key: Measurement(command.label, command.analysis, command.data)
        for group in groups
        for command in group
    }
    for round_index in range(repeat):
        for group in groups:
            order = list(group) if round_index % 2 == 0 else list(reversed(group))
            for command in order:
                print(f"  run {round_index + 1}/{repeat}: {command.name}...", end="", flush=True)
                result = run_once(command)
                results[command.key].runs.append(result)
                print(f" {result.wall_s:.2f} s, {mib_text(result.peak_bytes)}", flush=True)
    return results


def memory_runs(commands: Sequence[Command], results: dict[tuple[str, str], Measurement]) -> None:
    """One more run of each command, untimed, sampling the PSS of its process tree."""
    for command in commands:
        print(f"  memory run: {command.name}...", end="", flush=True)
        execution = measure_ok(command.argv, pss=True)
        shutil.rmtree(command.out_dir, ignore_errors=True)
        results[command.key].pss_bytes = execution.pss_bytes
        print(
            f" peak PSS {mib_text(execution.pss_bytes)}"
            f" ({execution.wall_s:.2f} s, slowed by the sampling; not timed)",
            flush=True,
        )


# --- The bundled month -------------------------------------------------------------

BUNDLED_NAME = f"{MONTH.name}-bundled"
# What the bundles depend on, besides the month: the compactor and the dump format.
COMPACTOR_SOURCES = (COMPACT_SCRIPT, REPO_ROOT / "scripts" / "utils" / "dump_format.py")


def bundled_key(month: DataSet = MONTH) -> str:
    """The first line of the bundled month's marker: the month's own key (the generator's
    digest) and the compactor's digest; a change to either means compacting again."""
    return f"{month.marker_text().strip()} compactor={generator_digest(COMPACTOR_SOURCES)}"


def cached_compaction(cache_dir: Path, key: str) -> CompactionRun | None:
    """The compaction recorded in the marker, if the cached bundled month is valid."""
    marker = cache_dir / f"bench-{BUNDLED_NAME}.done"
    try:
        first, _, rest = marker.read_text(encoding="utf-8").partition("\n")
        run = CompactionRun.from_json(rest)
    except (OSError, ValueError, KeyError, TypeError):
        return None
    if first != key or not (cache_dir / f"bench-{BUNDLED_NAME}").is_dir():
        return None
    return run


def compact_copy(month_dir: Path, temp: Path, second: Path) -> CompactionRun:
    """Copy the month to temp and compact it there, timed; then compact a second copy
    (deleted after) in a memory run, for the peak PSS."""
    argv = compact_argv(temp)
    shutil.copytree(month_dir, temp)  # copy2: mtimes kept, as the bundles record them
    timed = measure_ok(argv)
    left = [name for name in os.listdir(temp) if name.endswith(".csv")]
    if left:
        raise BenchmarkError(f"{shlex.join(argv)} left {len(left):,} loose files")
    try:
        shutil.copytree(month_dir, second)
        memory = measure_ok(compact_argv(second), pss=True)
    finally:
        shutil.rmtree(second, ignore_errors=True)
    now = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    return CompactionRun(tuple(argv), timed.wall_s, timed.peak_bytes, memory.pss_bytes, now)


def ensure_bundled(
    month_dir: Path, cache_dir: Path, say: Callable[[str], None] = print
) -> tuple[Path, CompactionRun]:
    """The bundled month's folder and how its compaction went, compacted first unless a
    valid cached copy exists (the marker, holding both, is written last)."""
    target = cache_dir / f"bench-{BUNDLED_NAME}"
    key = bundled_key()
    cached = cached_compaction(cache_dir, key)
    if cached is not None:
        say(f"using the cached bundled month ({_relative(target)}, compacted {cached.measured_at})")
        return target, cached
    say(f"compacting a copy of the month into {_relative(target)} (measured; cached)...")
    second = cache_dir / f".bench-{BUNDLED_NAME}.tmp-pss-{os.getpid()}"
    run = build_cached(
        BUNDLED_NAME,
        cache_dir,
        lambda temp: compact_copy(month_dir, temp, second),
        lambda done: f"{key}\n{done.to_json()}\n",
    )
    say(f"  done: {run.wall_s:.1f} s, peak RSS {mib_text(run.peak_bytes)}")
    return target, run


# --- An earlier commit, for "no slower than before" ----------------------------------


@dataclass(frozen=True)
class Reference:
    """The scripts of an earlier commit, extracted from git into the cache."""

    rev: str  # as given
    commit: str  # its full hash
    scripts: Path

    @property
    def short(self) -> str:
        return self.commit[:7]


def ensure_reference(rev: str, cache_dir: Path, say: Callable[[str], None] = print) -> Reference:
    """The scripts/ folder of commit `rev` (git archive, extracted once into the cache;
    the working tree and the index are left alone). Raises BenchmarkError."""
    try:
        found = subprocess.run(
            ["git", "-C", str(REPO_ROOT), "rev-parse", "--verify", "--quiet", f"{rev}^{{commit}}"],
            capture_output=True,
            text=True,
            timeout=60,
            check=True,
        )
    except (OSError, subprocess.SubprocessError) as err:
        raise BenchmarkError(f"--reference {rev}: not a commit of this repository") from err
    commit = found.stdout.strip()
    target = cache_dir / f"bench-reference-{commit[:12]}"
    if not (target / "scripts").is_dir():
        say(f"extracting scripts/ of {commit[:7]} into {_relative(target)}...")
        temp = cache_dir / f".bench-reference.tmp-{os.getpid()}"
        shutil.rmtree(temp, ignore_errors=True)
        temp.mkdir(parents=True)
        try:
            archive = subprocess.run(
                ["git", "-C", str(REPO_ROOT), "archive", "--format=tar", commit, "scripts"],
                capture_output=True,
                timeout=120,
                check=True,
            ).stdout
            with tarfile.open(fileobj=io.BytesIO(archive), mode="r:") as tar:
                tar.extractall(temp, filter="data")
            shutil.rmtree(target, ignore_errors=True)
            os.rename(temp, target)
        except (OSError, subprocess.SubprocessError, tarfile.TarError) as err:
            raise BenchmarkError(f"--reference {rev}: cannot extract its scripts: {err}") from err
        finally:
            shutil.rmtree(temp, ignore_errors=True)
    return Reference(rev, commit, target / "scripts")


def reference_section(
    results: dict[tuple[str, str], Measurement], reference: Reference, data: DataSet
) -> Section:
    """Ours against the reference commit's scripts, on the same data in the same run."""
    named = "" if reference.commit.startswith(reference.rev) else f" ({reference.rev})"
    lines = [f"Ours against {reference.short}{named}, {data.describe()}", ""]
    checks: list[Check] = []
    for analysis in ANALYSES:
        before, ours = results[("reference", analysis)], results[("ours", analysis)]
        names = (reference.short, "ours")
        lines += [*format_comparison(TITLES[analysis], before, ours, names), ""]
        value = ratio(ours.wall_s, before.wall_s)
        what = f"{analysis} time (ours/{reference.short}, {data.name})"
        checks.append(ratio_check(what, value, REFERENCE_TIME_LIMIT))
    return lines, checks


# --- The two benchmarks -------------------------------------------------------------


def warm(dumps_dir: Path) -> None:
    files, size = warm_page_cache(dumps_dir)
    print(f"warmed the page cache: read {files:,} files ({size / 1e6:,.1f} MB)", flush=True)


def prepare(data: DataSet, cache_dir: Path) -> Path:
    dumps_dir = ensure_dataset(data, cache_dir)
    warm(dumps_dir)
    return dumps_dir


def print_header(commands: Mapping[str, Sequence[str]], runs: Sequence[str]) -> None:
    print()
    for line in [*machine_lines(), *runs]:
        print(line)
    print(f"Commands (run from {REPO_ROOT}; the out dirs are temporary):")
    width = max(len(name) for name in commands)
    for name, argv in commands.items():
        print(f"  {name:<{width}}  {shlex.join(argv)}")
    print()


def print_lines(lines: Sequence[str]) -> None:
    for line in lines:
        print(line)


PSS_RUNS_TEXT = (
    "Peak PSS: one more run of each command, not timed: the largest sum of Pss over its process"
    f"\n  tree (/proc/<pid>/smaps_rollup), sampled every {PSS_INTERVAL_S * 1000:.0f} ms. Reading it"
    " walks the process's page\n  tables under its mmap lock and slows it (a year's process"
    " analysis: ~45 s instead of\n  ~25 s), so the timed runs sample only VmRSS."
)


def month_runs_text(repeat: int) -> list[str]:
    return [
        f"Runs: {repeat} timed runs of each command, alternating baseline, ours and ours on the"
        " bundles (their\n  order flipped every other round), then the report: median wall time,"
        " largest peak RSS (the\n  process tree's VmRSS sampled every"
        f" {POLL_INTERVAL_S * 1000:.0f} ms, and the kernel's ru_maxrss), median of each phase.",
        PSS_RUNS_TEXT,
    ]


def year_runs_text(repeat: int, month_repeat: int, with_baseline: bool) -> list[str]:
    skipped = "" if with_baseline else "; baseline skipped (--without-baseline)"
    return [
        f"Runs: {month_repeat} per command on the month, {repeat} on the year{skipped}:"
        "\n  median wall time, largest peak RSS (whole process tree), median of each phase.",
        PSS_RUNS_TEXT,
        "  Memory runs here: ours (and the --reference commit's) on the year only (the month's"
        " PSS shows\n  as -; the baseline's on the year would take minutes more at ~8 GB).",
    ]


def month_groups(loose_dir: Path, bundled_dir: Path, work_dir: Path) -> list[list[Command]]:
    """Per analysis: baseline and ours on the loose files, ours on the bundles; then the
    report, if scripts/make_report.py exists."""
    groups = [
        [
            analysis_command(label, analysis, MONTH, dumps_dir, work_dir)
            for label, dumps_dir in (
                ("baseline", loose_dir),
                ("ours", loose_dir),
                ("bundled", bundled_dir),
            )
        ]
        for analysis in ANALYSES
    ]
    if REPORT_SCRIPT.is_file():
        groups.append([report_command(MONTH, loose_dir, work_dir)])
    else:
        print(f"{_relative(REPORT_SCRIPT)} is missing: no report runs")
    return groups


def bench_month(repeat: int, cache_dir: Path) -> None:
    loose_dir = prepare(MONTH, cache_dir)
    bundled_dir, compaction = ensure_bundled(loose_dir, cache_dir)
    warm(bundled_dir)
    with tempfile.TemporaryDirectory(prefix="bench-") as work:
        groups = month_groups(loose_dir, bundled_dir, Path(work))
        results = run_rounds(groups, repeat)
        memory_runs([command for group in groups for command in group], results)
    commands: dict[str, Sequence[str]] = {c.name: c.argv for group in groups for c in group}
    commands["compaction (a copy of the month)"] = compaction.argv
    print_header(commands, month_runs_text(repeat))
    ours = results[("ours", "system")], results[("ours", "processes")]
    sections = [
        loose_section(results),
        bundled_section(results),
        compaction_section(compaction, disk_usage(loose_dir), disk_usage(bundled_dir)),
        report_section(results.get(("ours", "report")), *ours),
    ]
    checks: list[Check] = []
    for lines, section_checks in sections:
        print_lines(lines)
        checks += section_checks
    print_lines(targets_lines(checks))


def year_section(
    month: dict[tuple[str, str], Measurement], year: dict[tuple[str, str], Measurement]
) -> Section:
    """The year's tables (ours' month row under each), the growth and the year's checks."""
    lines: list[str] = []
    for analysis in ANALYSES:
        title = f"{TITLES[analysis]}, synthetic year ({YEAR.describe()})"
        baseline = year.get(("baseline", analysis))
        lines += format_comparison(title, baseline, year[("ours", analysis)])
        lines += [format_row("ours (month)", measurement_cells(month[("ours", analysis)])), ""]
    lines.append(f"Growth from the month ({MONTH.snapshots:,} snapshots) to the year:")
    checks: list[Check] = []
    for analysis in ANALYSES:
        growth, growth_list = growth_checks(
            analysis, month[("ours", analysis)], year[("ours", analysis)]
        )
        lines += growth
        checks += growth_list
    lines.append("")
    processes = year[("ours", "processes")]
    checks.append(
        peak_check("processes peak RSS (year)", processes.peak_bytes, YEAR_PEAK_LIMIT_BYTES)
    )
    checks.append(pss_check("processes peak PSS (year)", processes.pss_bytes, YEAR_PSS_LIMIT))
    return lines, checks


def bench_year(
    repeat: int,
    month_repeat: int,
    with_baseline: bool,
    cache_dir: Path,
    reference_rev: str | None = None,
) -> None:
    month_dir = prepare(MONTH, cache_dir)
    year_dir = prepare(YEAR, cache_dir)
    reference = None if reference_rev is None else ensure_reference(reference_rev, cache_dir)
    year_labels = ("baseline", "ours") if with_baseline else ("ours",)
    with tempfile.TemporaryDirectory(prefix="bench-") as work:
        month_groups = [
            [analysis_command("ours", analysis, MONTH, month_dir, Path(work))]
            for analysis in ANALYSES
        ]
        year_groups = [
            [analysis_command(label, analysis, YEAR, year_dir, Path(work)) for label in year_labels]
            for analysis in ANALYSES
        ]
        if reference is not None:
            for group, analysis in zip(year_groups, ANALYSES, strict=True):
                group.append(
                    analysis_command("reference", analysis, YEAR, year_dir, Path(work), reference)
                )
        month = run_rounds(month_groups, month_repeat)
        year = run_rounds(year_groups, repeat)
        memory_runs([c for group in year_groups for c in group if c.label != "baseline"], year)
    commands = {c.name: c.argv for group in month_groups + year_groups for c in group}
    print_header(commands, year_runs_text(repeat, month_repeat, with_baseline))
    lines, checks = year_section(month, year)
    print_lines(lines)
    if reference is not None:
        reference_lines, reference_checks = reference_section(year, reference, YEAR)
        print_lines(reference_lines)
        checks += reference_checks
    print_lines(targets_lines(checks))


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog=PROG, description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--year",
        action="store_true",
        help=f"benchmark a synthetic year ({YEAR.describe()}) and its growth from the month",
    )
    parser.add_argument(
        "--without-baseline",
        action="store_true",
        help="with --year, skip the baseline on the year (it needs ~8 GB and minutes)",
    )
    parser.add_argument(
        "--reference",
        metavar="REV",
        help="with --year, run the analyses of this earlier commit too (git archive of its"
        " scripts/, cached) and check that ours is no slower on the year",
    )
    parser.add_argument(
        "--repeat",
        type=positive_count,
        metavar="N",
        help="timed runs of each command (default 3 on the month, 1 on the year)",
    )
    parser.add_argument(
        "--baseline",
        nargs=2,
        metavar=("ANALYSIS", "DUMPS_DIR"),
        help="run the plain approach (ANALYSIS is system or processes) as this process",
    )
    args = parser.parse_args(argv)
    if args.baseline is not None:
        analysis, dumps_dir = args.baseline
        if analysis not in ANALYSES:
            parser.error(f"--baseline: ANALYSIS must be system or processes, not {analysis!r}")
        return run_baseline(analysis, Path(dumps_dir))
    if args.reference is not None and not args.year:
        parser.error("--reference goes with --year")
    if args.without_baseline and not args.year:
        parser.error("--without-baseline goes with --year (the month always runs the baseline)")
    try:
        if args.year:
            bench_year(
                args.repeat or 1,
                args.repeat or 3,
                not args.without_baseline,
                CACHE_DIR,
                args.reference,
            )
        else:
            bench_month(args.repeat or 3, CACHE_DIR)
    except BenchmarkError as err:
        print(f"\n{PROG}: error: {err}", file=sys.stderr)
        return 1
    except (OSError, ValueError) as err:  # generation or cache trouble
        print(f"\n{PROG}: error: {err}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"\n{PROG}: interrupted", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
