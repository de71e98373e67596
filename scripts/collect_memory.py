#!/usr/bin/env python3
"""Collect system and per-process memory snapshots into timestamped CSV files.

Every interval this reads /proc/meminfo and runs `ps`, and writes three files
sharing a UTC timestamp into the dumps dir: sys_mem_<YYYYMMDD_HHMMSS>.csv,
process_mem_<YYYYMMDD_HHMMSS>.csv and cgroup_mem_<YYYYMMDD_HHMMSS>.csv.
It is meant to run for weeks under nohup, tmux or systemd, so it imports
nothing beyond the standard library and never stops on a failed snapshot.
"""

from __future__ import annotations

import argparse
import logging
import math
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import suppress
from pathlib import Path
from typing import NamedTuple

from utils.collect import smaps, snapshot_format
from utils.collect.cgroups import CgroupReader
from utils.collect.procfs import (
    KMSG,
    NOTHING,
    PROC,
    BootClock,
    KernelLog,
    ProcessMemory,
    boot_clock,
    boot_id,
    missing_status_fields,
    parse_meminfo,
    process_memory,
    psi_totals,
    started_text,
    vmstat_counters,
)
from utils.collect.snapshot_format import (
    CGROUP_HEADER,
    COUNTER_FIELDS,
    MEMINFO_FIELDS,
    PAGE_COUNT_FIELDS,
    PROCESS_HEADER,
    SYS_HEADER,
    TIMESTAMP_FORMAT,
    csv_text,
    snapshot_file_names,
    victims_text,
)
from utils.collect.userspace_kills import UserspaceKills, killer_running
from utils.console import (
    EXIT_INTERNAL,
    EXIT_NO_DATA,
    EXIT_OK,
    internal_error_line,
    positive_count,
    save_traceback,
)
from utils.core import defaults
from utils.core.atomic_files import temp_name, write_private_file
from utils.core.signals import Stopped, StopSignals

# --- Defaults; every one of them can be overridden by a flag -----------------
INTERVAL_S = 600.0  # ten minutes between snapshots
COUNT: int | None = None  # None: run until stopped
DUMPS_DIR = defaults.DUMPS_DIR
PSS_BUDGET_MS = 15.0  # time a snapshot may spend reading Pss (utils.collect.smaps)
PSS_CAP_MB = 4096.0  # a process with more RSS than this has its Pss read ...
PSS_CAP_EVERY = 12  # ... at most once every this many snapshots

# --- Fixed behaviour ----------------------------------------------------------
MIN_INTERVAL_S = 1.0  # file names have one-second resolution
# Each ends the collector cleanly (exit 0), within a second, also in its sleep.
STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)
MEMINFO_PATH = Path("/proc/meminfo")
# `ps` can block on a process whose memory map is locked (stuck in D state);
# a snapshot that takes this long is abandoned and the next slot is tried.
PS_TIMEOUT_S = 60.0
# What ps prints: the dump format's (utils.collect.snapshot_format, where the why is).
PS_USER_WIDTH = snapshot_format.PS_USER_WIDTH
PS_COMMAND: tuple[str, ...] = snapshot_format.PS_COMMAND
# ps prints non-ASCII command lines only in a UTF-8 locale (else as "?").
PS_ENV_OVERRIDES = {"LC_ALL": "C.UTF-8"}

# Dumps hold every user's command lines, which can carry secrets (files: utils/files.py).
DIR_MODE = 0o750

PROG = "collect_memory"
log = logging.getLogger(PROG)


class ProcessRow(NamedTuple):
    """One line of `ps` output, sizes as ps reports them (KiB)."""

    pid: int
    ppid: int
    user: str
    rss_kb: int
    vsz_kb: int
    cmd: str


class SnapshotError(Exception):
    """A snapshot could not be taken; the daemon logs it and carries on."""


# --- Pure functions: parsing and formatting -----------------------------------


def missing_meminfo_fields(values: dict[str, int]) -> list[str]:
    """The selected fields this kernel does not report."""
    return [name for name in MEMINFO_FIELDS if name not in values]


def kb_to_mb_text(kb: int) -> str:
    """KiB to MiB with the 3 decimals every dump carries."""
    return f"{kb / 1024:.3f}"


def sys_row(
    values: dict[str, int],
    boot: str = "",
    counters: Mapping[str, int] | None = None,
    victims: str = "",
) -> list[str]:
    """The sys_mem CSV row: kB fields in MiB, page counts as they are, missing empty; then
    the boot's id, the counters since boot (missing: empty) and the OOM victims logged."""
    counted = counters or {}
    tail = [boot, *(str(counted[name]) if name in counted else "" for name in COUNTER_FIELDS)]
    row: list[str] = []
    for name in MEMINFO_FIELDS:
        value = values.get(name)
        if value is None:
            row.append("")
        elif name in PAGE_COUNT_FIELDS:
            row.append(str(value))
        else:
            row.append(kb_to_mb_text(value))
    return [*row, *tail, victims]


# pid, ppid, user (padded to PS_USER_WIDTH), rss, vsz, then one space and the
# command line verbatim (it may start with or contain any whitespace).
_PS_LINE = re.compile(r" *(\d+) +(\d+) (\S+) +(\d+) +(\d+) (.*)")


def parse_ps_output(text: str) -> tuple[list[ProcessRow], int]:
    """Parse `ps --no-headers -o pid,ppid,user,rss,vsz,cmd` output.

    Returns the rows and the number of lines that did not parse (there should
    be none; they are counted rather than allowed to sink the snapshot).
    """
    rows: list[ProcessRow] = []
    bad = 0
    for line in text.split("\n"):
        if not line.strip():
            continue
        match = _PS_LINE.fullmatch(line)
        if match is None:
            bad += 1
            continue
        pid, ppid, user, rss, vsz, cmd = match.groups()
        rows.append(ProcessRow(int(pid), int(ppid), user, int(rss), int(vsz), cmd))
    return rows, bad


def optional_mb_text(kb: int | None) -> str:
    return "" if kb is None else kb_to_mb_text(kb)


def process_rows(
    rows: Sequence[ProcessRow],
    memory: Sequence[ProcessMemory] | None = None,
    clock: BootClock | None = None,
    cgroups: Sequence[str] | None = None,
) -> Iterator[list[str]]:
    """The process_mem CSV rows for parsed ps output, with what /proc added of each
    process (empty where it did not: an old kernel, a process gone meanwhile)."""
    for number, row in enumerate(rows):
        extra = NOTHING if memory is None else memory[number]
        ticks = extra.start_ticks
        yield [
            str(row.pid),
            str(row.ppid),
            row.user,
            kb_to_mb_text(row.rss_kb),
            kb_to_mb_text(row.vsz_kb),
            row.cmd,
            optional_mb_text(extra.anon_kb),
            optional_mb_text(extra.swap_kb),
            "" if ticks is None or clock is None else started_text(clock, ticks),
            "" if cgroups is None else cgroups[number],
        ]


def next_slot_index(start: float, interval_s: float, now: float) -> int:
    """k of the first slot start + k * interval strictly after now (at least 1).

    Slots are counted from the start, never from the previous snapshot, so a
    slow snapshot does not shift later ones, and slots that have already gone
    by are skipped rather than made up in a burst. Counting whole slots (not
    adding floats) keeps rounding from ever skipping one by mistake.
    """
    return max(math.floor((now - start) / interval_s) + 1, 1)


def snapshot_second(wall_s: float, previous: int | None) -> int:
    """The UTC second that names a snapshot: the wall clock's, or one after the
    previous snapshot's when a late wake-up lands in the same second (possible
    at a 1 s interval), so two snapshots never share a name."""
    second = int(wall_s)
    return previous + 1 if previous is not None and second == previous else second


# --- I/O: reading /proc, running ps, writing files ---------------------------


def read_meminfo(path: Path = MEMINFO_PATH) -> dict[str, int]:
    try:
        text = path.read_text(encoding="ascii", errors="replace")
    except OSError as err:
        raise SnapshotError(f"cannot read {path}: {err.strerror or err}") from err
    values = parse_meminfo(text)
    if "MemTotal" not in values:
        raise SnapshotError(f"{path} has no MemTotal line")
    return values


def run_ps(command: Sequence[str] = PS_COMMAND, timeout_s: float = PS_TIMEOUT_S) -> str:
    """ps's standard output; SnapshotError if it cannot run, fails or hangs.

    ps runs in a process group of its own: whatever it started is killed with it when
    it hangs (or when we are stopped meanwhile), so no stuck process piles up.
    """
    env = {**os.environ, **PS_ENV_OVERRIDES}
    try:
        process = subprocess.Popen(
            list(command),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=env,
            start_new_session=True,
        )
    except FileNotFoundError as err:
        raise SnapshotError(f"cannot run {command[0]}: not found") from err
    except OSError as err:
        raise SnapshotError(f"cannot run {command[0]}: {err.strerror or err}") from err
    try:
        stdout, stderr = process.communicate(timeout=timeout_s)
    except subprocess.TimeoutExpired as err:
        _kill_group(process)
        raise SnapshotError(f"{command[0]} took over {timeout_s:g} s; killed") from err
    except BaseException:  # stopped by a signal meanwhile: leave nothing running
        _kill_group(process)
        raise
    if process.returncode != 0:
        detail = stderr.decode("utf-8", "replace").strip().splitlines()
        reason = detail[0] if detail else "no message"
        raise SnapshotError(f"{command[0]} exited with {process.returncode}: {reason}")
    return stdout.decode("utf-8", "replace")


def _kill_group(process: subprocess.Popen[bytes]) -> None:
    """SIGKILL the process group ps leads, then reap ps and close its pipes."""
    with suppress(ProcessLookupError, PermissionError):
        os.killpg(process.pid, signal.SIGKILL)
    # Its children are gone too, so nothing holds the pipes open any more.
    process.communicate()


def _remove(path: Path) -> None:
    """Delete a temporary file if it is there; a failure here (a read-only or vanished
    dir) must not hide the error that brought us here."""
    with suppress(OSError):
        path.unlink(missing_ok=True)


class Snapshot(NamedTuple):
    timestamp: str
    process_count: int


class Sources(NamedTuple):
    """Where a snapshot's numbers come from (tests give fakes): meminfo, ps, the /proc
    tree the processes' status and stat, the boot's files and the counters are read from,
    and the kernel log."""

    meminfo_path: Path = MEMINFO_PATH
    ps_command: Sequence[str] = PS_COMMAND
    proc: Path = PROC
    kmsg: Path = KMSG


DEFAULT_SOURCES = Sources()


class RunState(NamedTuple):
    """What a run keeps from one snapshot to the next: the boot clock read once at start
    (so that a process's STARTED is the same text in every snapshot), and the kernel log,
    opened at its end at start; and the memory cgroup hierarchy, found at start."""

    clock: BootClock | None
    kernel_log: KernelLog | None
    cgroups: CgroupReader | None = None
    userspace: UserspaceKills | None = None  # systemd-oomd's and earlyoom's kills
    shares: smaps.ShareReader | None = None  # what reads Pss, and when each was read


def take_snapshot(
    dumps_dir: Path,
    timestamp: str,
    guard: StopSignals,
    sources: Sources = DEFAULT_SOURCES,
    state: RunState | None = None,
) -> Snapshot:
    """Read memory, run ps and publish every file of the snapshot, or publish nothing.

    Every failure, whatever the OSError (a read-only or vanished dir, a full disk), is
    a SnapshotError: the daemon logs it and tries again at the next slot.
    """
    names = snapshot_file_names(timestamp)
    finals = [dumps_dir / name for name in names]
    for final in finals:
        try:
            exists = os.path.lexists(final)
        except OSError as err:  # lexists only swallows some errors
            raise SnapshotError(f"cannot look at {final}: {err.strerror or err}") from err
        if exists:
            raise SnapshotError(f"{final} already exists; not overwritten")
    texts, count = _snapshot_texts(sources, state or RunState(None, None))
    temps = [dumps_dir / temp_name(name) for name in names]
    published: list[Path] = []
    with guard.deferred():
        try:
            for temp, text in zip(temps, texts, strict=True):
                write_private_file(temp, text)
            for temp, final in zip(temps, finals, strict=True):
                # link() fails if the name exists: never overwrite a snapshot.
                os.link(temp, final)
                published.append(final)
        except OSError as err:
            for path in published:  # keep snapshots whole
                _remove(path)
            where = err.filename or dumps_dir
            raise SnapshotError(f"cannot write {where}: {err.strerror or err}") from err
        finally:
            for temp in temps:
                _remove(temp)
    return Snapshot(timestamp, count)


def _snapshot_texts(sources: Sources, state: RunState) -> tuple[list[str], int]:
    """The files' text, and how many processes: meminfo and the counters, then ps, then
    each listed process's status, stat and cgroup (read right after ps, so that few are
    gone meanwhile), then what the kernel logged of OOM kills since the last snapshot,
    then the memory of the processes' cgroups."""
    meminfo = read_meminfo(sources.meminfo_path)
    counters = {**vmstat_counters(sources.proc), **psi_totals(sources.proc)}
    rows, bad_lines = parse_ps_output(run_ps(sources.ps_command))
    if not rows:
        raise SnapshotError(f"{sources.ps_command[0]} listed no processes")
    if bad_lines:
        log.warning("ps printed %d line(s) that did not parse; left out", bad_lines)
    proc = str(sources.proc)
    memory = [process_memory(row.pid, proc) for row in rows]
    cgroups = state.cgroups or CgroupReader(sources.proc)
    paths = [cgroups.process_cgroup(row.pid) for row in rows]
    clock = state.clock or boot_clock(sources.proc)
    log_ = state.kernel_log
    found = log_.victims() if log_ is not None else []
    if state.userspace is not None:
        found += state.userspace.kills(killer_running(row.cmd for row in rows))
    victims = victims_text(found)
    ticks = [extra.start_ticks for extra in memory]
    shares = None if state.shares is None else state.shares.shares(rows, ticks, paths)
    texts = [
        csv_text(SYS_HEADER, [sys_row(meminfo, boot_id(sources.proc), counters, victims)]),
        csv_text(
            PROCESS_HEADER, smaps.with_shares(process_rows(rows, memory, clock, paths), shares)
        ),
        csv_text(CGROUP_HEADER, cgroups.rows(paths)),
    ]
    return texts, len(rows)


def prepare_dumps_dir(dumps_dir: Path) -> None:
    """Create the dumps dir (0750) if needed and prove it is writable.

    Raises OSError with a readable strerror when it cannot be used.
    """
    if not dumps_dir.is_dir():
        dumps_dir.mkdir(mode=DIR_MODE, parents=True, exist_ok=True)
        os.chmod(dumps_dir, DIR_MODE)  # exact, whatever the umask
    # os.access() lies for root and on read-only mounts: really try.
    probe = dumps_dir / f".write-test-{os.getpid()}.tmp"
    write_private_file(probe, "")
    probe.unlink()


class Schedule(NamedTuple):
    interval_s: float
    snapshots: int | None  # how many to take; None: until stopped


class _Failures:
    """Counts failed snapshots and logs each; a bug's traceback is saved once per run,
    however often it repeats."""

    def __init__(self, dumps_dir: Path) -> None:
        self.dumps_dir = dumps_dir
        self.count = 0
        self.traced = False
        self.trace: Path | None = None

    def failed(self, timestamp: str, error: Exception) -> None:
        self.count += 1
        if isinstance(error, SnapshotError):
            log.error("snapshot %s UTC failed: %s", timestamp, error)
            return
        if not self.traced:
            self.trace, self.traced = save_traceback(PROG, error, [self.dumps_dir]), True
        log.error("snapshot %s UTC failed: %s", timestamp, internal_error_line(error, self.trace))


class Collecting(NamedTuple):
    """What every snapshot of a run shares: its sources, and the state kept between them."""

    sources: Sources
    state: RunState


def _snapshot_once(
    dumps_dir: Path, second: int, guard: StopSignals, run: Collecting, failures: _Failures
) -> None:
    """One snapshot named after `second`, logged; a failure never ends the daemon."""
    began = time.monotonic()
    timestamp = time.strftime(TIMESTAMP_FORMAT, time.gmtime(second))
    try:
        snap = take_snapshot(dumps_dir, timestamp, guard, run.sources, run.state)
    except Exception as err:  # a bug too: say so, keep the traceback, keep collecting
        failures.failed(timestamp, err)
        return
    took = time.monotonic() - began
    log.info("snapshot %s UTC: %d processes in %.2f s", snap.timestamp, snap.process_count, took)


def _say_what_is_collected(dumps_dir: Path, schedule: Schedule, run: Collecting) -> None:
    """The fields this kernel lacks, in one line (as psutil warns once for all), and a line
    if the kernel log cannot be read; then what is collected where."""
    sources = run.sources
    try:
        missing = missing_meminfo_fields(read_meminfo(sources.meminfo_path))
    except SnapshotError:
        missing = []  # unreadable now: the first snapshot says so
    missing += missing_status_fields(sources.proc)
    if run.state.clock is None:
        missing.append("btime in /proc/stat (so STARTED)")
    if run.state.cgroups is not None and run.state.cgroups.hierarchy is None:
        missing.append("a mounted cgroup hierarchy (so CGROUP and the cgroup_mem rows)")
    if not boot_id(sources.proc):
        missing.append("boot_id")
    counters = {**vmstat_counters(sources.proc), **psi_totals(sources.proc)}
    missing += [name for name in COUNTER_FIELDS if name not in counters]
    if missing:
        log.warning("this kernel lacks %s; written empty", ", ".join(missing))
    if run.state.shares is not None and (note := smaps.limits_note(os.geteuid())):
        log.warning(note)
    kernel_log = run.state.kernel_log
    if kernel_log is not None and not kernel_log.readable:
        log.warning(
            "cannot read the kernel log %s (%s): oom_victims stays empty, and the analyses"
            " infer OOM victims from the oom_kill counter",
            sources.kmsg,
            kernel_log.error,
        )
    until = "until stopped" if schedule.snapshots is None else f"{schedule.snapshots} snapshot(s)"
    log.info("collecting every %g s into %s, %s", schedule.interval_s, dumps_dir, until)


def run_collector(
    dumps_dir: Path,
    schedule: Schedule,
    guard: StopSignals,
    sources: Sources = DEFAULT_SOURCES,
    pss: smaps.Settings | None = None,
) -> int:
    """Take snapshots on a fixed schedule; return the number that failed."""
    kernel_log = KernelLog(sources.kmsg)
    cgroups = CgroupReader(sources.proc)
    shares = None if pss is None else smaps.ShareReader(pss, sources.proc)
    state = RunState(boot_clock(sources.proc), kernel_log, cgroups, UserspaceKills(), shares)
    run = Collecting(sources, state)
    _say_what_is_collected(dumps_dir, schedule, run)
    failures = _Failures(dumps_dir)
    taken = 0
    start = time.monotonic()
    slot = 0  # the snapshot now due is at start + slot * interval_s
    second: int | None = None
    while True:
        second = snapshot_second(time.time(), second)
        _snapshot_once(dumps_dir, second, guard, run, failures)
        taken += 1
        if schedule.snapshots is not None and taken >= schedule.snapshots:
            return failures.count
        upcoming = next_slot_index(start, schedule.interval_s, time.monotonic())
        if upcoming > slot + 1:
            log.warning("snapshot overran its slot; skipping %d slot(s)", upcoming - slot - 1)
        slot = upcoming
        time.sleep(max(0.0, start + slot * schedule.interval_s - time.monotonic()))


# --- Command line ---------------------------------------------------------------


def positive_interval(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number of seconds: {text!r}") from None
    if not math.isfinite(value) or value < MIN_INTERVAL_S:
        raise argparse.ArgumentTypeError(f"must be at least {MIN_INTERVAL_S:g} s, got {text}")
    return value


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--interval",
        type=positive_interval,
        default=INTERVAL_S,
        metavar="SECONDS",
        help=f"seconds between snapshots, at least {MIN_INTERVAL_S:g} (default {INTERVAL_S:g})",
    )
    parser.add_argument(
        "--count",
        type=positive_count,
        default=COUNT,
        metavar="N",
        help="take N snapshots, then exit (default: run until stopped)",
    )
    parser.add_argument(
        "--dumps-dir",
        type=Path,
        default=DUMPS_DIR,
        metavar="DIR",
        help=f"where the CSV files go, created 0750 if missing (default {DUMPS_DIR})",
    )
    smaps.add_flags(
        parser, smaps.Settings(PSS_BUDGET_MS / 1000, int(PSS_CAP_MB * 1024), PSS_CAP_EVERY)
    )
    return parser


def configure_logging() -> None:
    handler = logging.StreamHandler()
    formatter = logging.Formatter(
        "%(asctime)s UTC %(levelname)s %(message)s", datefmt="%Y-%m-%d %H:%M:%S"
    )
    formatter.converter = time.gmtime
    handler.setFormatter(formatter)
    log.addHandler(handler)
    log.setLevel(logging.INFO)


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    configure_logging()
    guard = StopSignals(STOP_SIGNALS).install()
    dumps_dir: Path = args.dumps_dir
    try:
        try:
            prepare_dumps_dir(dumps_dir)
        except OSError as err:
            print(
                f"{PROG}: cannot use dumps dir {dumps_dir}: {err.strerror or err}",
                file=sys.stderr,
            )
            return EXIT_NO_DATA
        schedule, pss = Schedule(args.interval, args.count), smaps.settings_of(args)
        failures = run_collector(dumps_dir, schedule, guard, DEFAULT_SOURCES, pss)
    except Stopped as stop:
        log.info("stopped by %s", stop.name)
        return EXIT_OK
    except Exception as err:  # a bug outside a snapshot: one line, never a wall of Python
        trace = save_traceback(PROG, err, [dumps_dir])
        print(f"{PROG}: {internal_error_line(err, trace)}", file=sys.stderr)
        return EXIT_INTERNAL
    return EXIT_NO_DATA if failures else EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
