#!/usr/bin/env python3
"""Benchmark both analyses against the plain pandas approach on synthetic dumps.

`make bench` (this script without arguments) generates a synthetic month once (4,320
snapshots x 500 processes, cached in .cache/bench-month), then runs four commands, each
as a whole process, alternating baseline and ours: the plain approach and
scripts/analyze_system.py, the plain approach and scripts/analyze_processes.py. It prints
the machine, the exact commands, the median wall time, the peak memory of each command's
process tree and its phase split, the ratios ours/baseline and a verdict against the
targets. `make bench YEAR=1` (--year) does the same for a synthetic year (the baseline
needs ~8 GB there; --without-baseline skips it) and checks that the time grows linearly
from the month.

The plain approach lives here too, so the tests can import it and this script can run it
as a process of its own: `python tests/benchmark.py --baseline system|processes DIR`.

The exit status is 0 whenever the benchmark ran, targets met or not (the report says
MISSED); it is 1 only when something failed (a command, the data generation).
"""

from __future__ import annotations

import argparse
import hashlib
import os
import platform
import re
import shlex
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path

import pandas as pd

# Run as `python tests/benchmark.py`, neither scripts/ nor tests/ is on sys.path.
for _folder in (Path(__file__).resolve().parent.parent / "scripts", Path(__file__).parent):
    if str(_folder) not in sys.path:
        sys.path.insert(0, str(_folder))

from synthetic import generate_dumps  # noqa: E402
from utils.console import PhaseTimer, positive_count  # noqa: E402

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
# How often the process tree of a running command is sampled.
POLL_INTERVAL_S = 0.01
# No single run takes near this, even the plain way on a year (about 80 s here).
RUN_TIMEOUT_S = 3600
# The year's process analysis must stay under this peak (1.5 GB, decimal: the stricter).
YEAR_PEAK_LIMIT_BYTES = 1_500_000_000
# "Linear": the year's time per snapshot is at most this many times the month's.
LINEAR_TOLERANCE = 1.3


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


def _remove_stale_temps(data: DataSet, cache_dir: Path) -> None:
    """Delete the temp folders of interrupted generations (whose process is gone)."""
    for temp in cache_dir.glob(f".bench-{data.name}.tmp-*"):
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
    marker = data.marker(cache_dir)
    marker.unlink(missing_ok=True)
    if target.exists():
        shutil.rmtree(target)
    _remove_stale_temps(data, cache_dir)
    temp = cache_dir / f".bench-{data.name}.tmp-{os.getpid()}"
    shutil.rmtree(temp, ignore_errors=True)
    began = time.perf_counter()
    try:
        summary = generate_dumps(
            temp, data.snapshots, data.processes, data.seed, interval_s=data.interval_s
        )
        os.rename(temp, target)
    finally:
        shutil.rmtree(temp, ignore_errors=True)
    marker_temp = marker.with_name(f".{marker.name}.tmp")
    marker_temp.write_text(data.marker_text(), encoding="utf-8")
    os.replace(marker_temp, marker)
    say(
        f"  done in {time.perf_counter() - began:.1f} s:"
        f" {summary.bytes_written / 1e6:,.1f} MB in {2 * summary.snapshots:,} files"
    )
    return target


def warm_page_cache(dumps_dir: Path) -> tuple[int, int]:
    """Read every dump once, so that no command pays for the disk: (files, bytes)."""
    files = total = 0
    for entry in os.scandir(dumps_dir):
        if entry.name.endswith(".csv"):
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


class TreeSampler:
    """Samples the memory of every process below a root, in a thread, until stopped."""

    def __init__(self, root: int, interval_s: float = POLL_INTERVAL_S):
        self.root = root
        self.interval_s = interval_s
        self.peak_sum = 0  # largest sum of VmRSS over the tree at one sample
        self.peak_single = 0  # largest VmHWM of any one process seen
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
        for pid in descendants(self.root):
            memory = read_memory(pid)
            if memory is not None:
                total += memory.rss
                self.peak_single = max(self.peak_single, memory.hwm)
        self.peak_sum = max(self.peak_sum, total)
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


class BenchmarkError(Exception):
    """Something failed: a command, the generation, an unexpected output."""


def measure(
    argv: Sequence[str], cwd: Path | None = None, interval_s: float = POLL_INTERVAL_S
) -> Execution:
    """Run argv to completion under the launcher and measure it (see LAUNCHER)."""
    with tempfile.TemporaryDirectory(prefix="bench-run-") as temp:
        result = Path(temp) / "result"
        out_path, err_path = Path(temp) / "stdout", Path(temp) / "stderr"
        launcher = [sys.executable, "-I", "-S", "-c", LAUNCHER, str(result), *argv]
        with open(out_path, "wb") as out, open(err_path, "wb") as err:
            process = subprocess.Popen(
                launcher, cwd=cwd, stdin=subprocess.DEVNULL, stdout=out, stderr=err
            )
            sampler = TreeSampler(process.pid, interval_s)
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
    )


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


@dataclass
class Measurement:
    """Every run of one command."""

    label: str  # "baseline" or "ours"
    analysis: str  # "system" or "processes"
    data: DataSet
    runs: list[RunResult] = field(default_factory=list)

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

    @property
    def met(self) -> bool:
        return self.value <= self.limit


# --- Formatting (pure) -----------------------------------------------------------

TABLE_HEADER = ("wall s", "peak MiB", *PHASES)
LABEL_WIDTH = 15
CELL_WIDTH = 11


def format_row(label: str, cells: Sequence[str]) -> str:
    return f"  {label:<{LABEL_WIDTH}}" + "".join(f"{cell:>{CELL_WIDTH}}" for cell in cells)


def measurement_cells(measurement: Measurement) -> list[str]:
    phases = measurement.phases.as_tuple()
    return [
        f"{measurement.wall_s:.2f}",
        f"{measurement.peak_bytes / MIB:,.0f}",
        *(f"{seconds:.3f}" for seconds in phases),
    ]


def ratio(ours: float, baseline: float) -> float:
    return ours / baseline if baseline > 0 else float("inf")


def format_ratio(value: float) -> str:
    return f"{value:.2f}x"


def format_comparison(title: str, baseline: Measurement | None, ours: Measurement) -> list[str]:
    """A table of the rows baseline / ours, then the ratios ours/baseline."""
    lines = [title, format_row("", TABLE_HEADER)]
    if baseline is not None:
        lines.append(format_row("baseline", measurement_cells(baseline)))
    lines.append(format_row("ours", measurement_cells(ours)))
    if baseline is not None:
        time_ratio = ratio(ours.wall_s, baseline.wall_s)
        memory_ratio = ratio(ours.peak_bytes, baseline.peak_bytes)
        phase_ratios = [
            format_ratio(ratio(o, b)) if b >= 0.001 else "-"
            for o, b in zip(ours.phases.as_tuple(), baseline.phases.as_tuple(), strict=True)
        ]
        cells = [format_ratio(time_ratio), format_ratio(memory_ratio), *phase_ratios]
        lines.append(format_row("ours/baseline", cells))
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
    """The target's checks of ours/baseline: wall time, then peak memory."""
    checks: list[Check] = []
    if target.max_time_ratio is not None:
        value = ratio(ours.wall_s, baseline.wall_s)
        checks.append(ratio_check(f"{target.analysis} time", value, target.max_time_ratio))
    if target.max_memory_ratio is not None:
        value = ratio(ours.peak_bytes, baseline.peak_bytes)
        checks.append(ratio_check(f"{target.analysis} memory", value, target.max_memory_ratio))
    return checks


def format_checks(checks: Sequence[Check]) -> list[str]:
    """One aligned line per check, ending in `met` or `MISSED`."""
    if not checks:
        return []
    what = max(len(check.what) for check in checks)
    shown = max(len(check.shown) for check in checks)
    limit = max(len(check.limit_shown) for check in checks)
    return [
        f"  {check.what:<{what}}  {check.shown:>{shown}}  target <= {check.limit_shown:<{limit}}"
        f"  {'met' if check.met else 'MISSED'}"
        for check in checks
    ]


def format_verdict(checks: Sequence[Check]) -> str:
    missed = [check.what for check in checks if not check.met]
    if not missed:
        return f"Verdict: all {len(checks)} targets met"
    return f"Verdict: MISSED {len(missed)} of {len(checks)} targets: " + ", ".join(missed)


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


def command_for(label: str, analysis: str, dumps_dir: Path, out_dir: Path) -> list[str]:
    """The argv of one measured command; paths relative to the repository (the cwd)."""
    python = _relative(Path(sys.executable))
    if label == "baseline":
        return [python, "tests/benchmark.py", "--baseline", analysis, _relative(dumps_dir)]
    return [
        python,
        f"scripts/analyze_{analysis}.py",
        "--dumps-dir",
        _relative(dumps_dir),
        "--out-dir",
        str(out_dir),
        "--timings",
    ]


def run_once(argv: Sequence[str]) -> RunResult:
    execution = measure(argv, cwd=REPO_ROOT)
    if execution.exit_code != 0:
        tail = "\n".join(execution.stderr.strip().splitlines()[-10:])
        raise BenchmarkError(
            f"{shlex.join(argv)} exited with status {execution.exit_code}:\n{tail}"
        )
    phases = parse_timings(execution.stderr)
    if phases is None:
        raise BenchmarkError(f"{shlex.join(argv)} printed no timings line on stderr")
    return RunResult(execution.wall_s, execution.peak_bytes, phases)


def run_measurements(
    data: DataSet,
    dumps_dir: Path,
    labels: Sequence[str],
    repeat: int,
    work_dir: Path,
    commands: dict[str, list[str]],
) -> dict[tuple[str, str], Measurement]:
    """Run each (label, analysis) command `repeat` times, alternating the labels (and
    flipping their order every other round) so that both share the machine's noise."""
    results = {
        (label, analysis): Measurement(label, analysis, data)
        for analysis in ANALYSES
        for label in labels
    }
    for round_index in range(repeat):
        order = list(labels) if round_index % 2 == 0 else list(reversed(labels))
        for analysis in ANALYSES:
            for label in order:
                out_dir = work_dir / f"{data.name}-{label}-{analysis}-{round_index + 1}"
                argv = command_for(label, analysis, dumps_dir, out_dir)
                commands.setdefault(f"{label} {analysis} ({data.name})", argv)
                print(
                    f"  {data.name} run {round_index + 1}/{repeat}: {label} {analysis}...",
                    end="",
                    flush=True,
                )
                result = run_once(argv)
                results[(label, analysis)].runs.append(result)
                print(f" {result.wall_s:.2f} s, {result.peak_bytes / MIB:,.0f} MiB", flush=True)
                shutil.rmtree(out_dir, ignore_errors=True)
    return results


def prepare(data: DataSet, cache_dir: Path) -> Path:
    dumps_dir = ensure_dataset(data, cache_dir)
    files, size = warm_page_cache(dumps_dir)
    print(f"warmed the page cache: read {files:,} files ({size / 1e6:,.1f} MB)", flush=True)
    return dumps_dir


def print_header(commands: dict[str, list[str]], runs: str) -> None:
    print()
    for line in machine_lines():
        print(line)
    print(runs)
    print(f"Commands (run from {REPO_ROOT}; the out dirs are temporary):")
    width = max(len(name) for name in commands)
    for name, argv in commands.items():
        print(f"  {name:<{width}}  {shlex.join(argv)}")
    print()


def bench_month(repeat: int, cache_dir: Path) -> None:
    dumps_dir = prepare(MONTH, cache_dir)
    commands: dict[str, list[str]] = {}
    with tempfile.TemporaryDirectory(prefix="bench-") as work:
        results = run_measurements(
            MONTH, dumps_dir, ("baseline", "ours"), repeat, Path(work), commands
        )
    print_header(
        commands,
        f"Runs: {repeat} of each command, alternating baseline and ours; median wall time,"
        " largest peak memory (whole process tree), median of each phase",
    )
    checks: list[Check] = []
    for analysis in ANALYSES:
        baseline, ours = results[("baseline", analysis)], results[("ours", analysis)]
        title = f"{TITLES[analysis]}, synthetic month ({MONTH.describe()})"
        for line in format_comparison(title, baseline, ours):
            print(line)
        print()
        checks += ratio_checks(MONTH_TARGETS[analysis], baseline, ours)
    print("Targets (ours/baseline):")
    for line in format_checks(checks):
        print(line)
    print(format_verdict(checks))


def bench_year(repeat: int, month_repeat: int, with_baseline: bool, cache_dir: Path) -> None:
    month_dir = prepare(MONTH, cache_dir)
    year_dir = prepare(YEAR, cache_dir)
    commands: dict[str, list[str]] = {}
    year_labels = ("baseline", "ours") if with_baseline else ("ours",)
    with tempfile.TemporaryDirectory(prefix="bench-") as work:
        month = run_measurements(MONTH, month_dir, ("ours",), month_repeat, Path(work), commands)
        year = run_measurements(YEAR, year_dir, year_labels, repeat, Path(work), commands)
    skipped = "" if with_baseline else "; baseline skipped (--without-baseline)"
    print_header(
        commands,
        f"Runs: {month_repeat} per command on the month, {repeat} on the year{skipped};"
        " median wall time, largest peak memory (whole process tree), median of each phase",
    )
    checks: list[Check] = []
    for analysis in ANALYSES:
        title = f"{TITLES[analysis]}, synthetic year ({YEAR.describe()})"
        baseline = year.get(("baseline", analysis))
        for line in format_comparison(title, baseline, year[("ours", analysis)]):
            print(line)
        print(format_row("ours (month)", measurement_cells(month[("ours", analysis)])))
        print()
    print(f"Growth from the month ({MONTH.snapshots:,} snapshots) to the year:")
    for analysis in ANALYSES:
        lines, growth = growth_checks(analysis, month[("ours", analysis)], year[("ours", analysis)])
        for line in lines:
            print(line)
        checks += growth
    print()
    checks.append(
        peak_check(
            "processes peak memory (year)",
            year[("ours", "processes")].peak_bytes,
            YEAR_PEAK_LIMIT_BYTES,
        )
    )
    print("Targets:")
    for line in format_checks(checks):
        print(line)
    print(format_verdict(checks))


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
        "--repeat",
        type=positive_count,
        metavar="N",
        help="runs of each command (default 3 on the month, 1 on the year)",
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
    if args.without_baseline and not args.year:
        parser.error("--without-baseline goes with --year (the month always runs the baseline)")
    try:
        if args.year:
            bench_year(args.repeat or 1, args.repeat or 3, not args.without_baseline, CACHE_DIR)
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
