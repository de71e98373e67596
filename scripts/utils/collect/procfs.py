"""What the collector reads from /proc besides ps: parsers of the files' text, and thin readers.

Every field comes from proc(5) and the kernel's Documentation/filesystems/proc.rst:

- /proc/meminfo: the system's memory, in kB (HugePages_* in pages).
- /proc/PID/status: RssAnon (since Linux 4.5), the process's resident anonymous memory,
  and VmSwap (since 2.6.34), its anonymous memory in swap; in kB.
- /proc/PID/stat: field 22, starttime, the clock ticks after boot the process started at.
  The second field is the command name in parentheses, which may itself hold spaces and
  parentheses: the fields are counted from after the last ")".
- /proc/stat: btime, the boot time in seconds since 1970.
- /proc/sys/kernel/random/boot_id: a random UUID, new at every boot.
- /proc/vmstat: counters since boot: oom_kill (since Linux 4.13), pswpin and pswpout (pages
  swapped in and out), pgmajfault (page faults that read from disk).
- /proc/pressure/memory (PSI, since Linux 4.20; reading it fails when the kernel was booted
  with psi=0): `some` and `full` lines whose total= is the microseconds during which some or
  all non-idle tasks were stalled on memory (Documentation/accounting/psi.rst).
- /dev/kmsg, the kernel log, one record per read (Documentation/ABI/testing/dev-kmsg):
  the OOM killer's reports, read by utils.collect.oom_log.

A process listed by ps may be gone by the time its files are read: that is no error, its
fields are empty. Standard library only: the collector runs on the system python3.
"""

from __future__ import annotations

import errno
import os
import time
from pathlib import Path
from typing import NamedTuple

from utils.collect.oom_log import Found, KernelOomParser, kmsg_message
from utils.collect.snapshot_format import OomVictim

PROC = Path("/proc")
# What status and stat files hold at most: a read of this many bytes takes them whole.
READ_BYTES = 4096
# The fields of /proc/PID/stat after the ")" that ends the command name start at field 3.
_STARTTIME_AFTER_COMM = 22 - 3
STATUS_FIELDS = (b"RssAnon:", b"VmSwap:")
VMSTAT_FIELDS = ("oom_kill", "pswpin", "pswpout", "pgmajfault")
KMSG = Path("/dev/kmsg")
# /dev/kmsg hands out one record per read, up to this size (printk's CONSOLE_EXT_LOG_MAX).
_KMSG_RECORD_BYTES = 8192
# What a snapshot reads of the kernel log at most: a storm of log lines costs no more.
_KMSG_MAX_READS = 10_000


class ProcessMemory(NamedTuple):
    """What /proc/PID/status and stat add to a ps row; None where the kernel or the
    process (gone meanwhile) does not tell."""

    anon_kb: int | None
    swap_kb: int | None
    start_ticks: int | None


NOTHING = ProcessMemory(None, None, None)


class BootClock(NamedTuple):
    """What turns a process's start ticks into a UTC time: the boot time and the tick rate."""

    boot_s: int  # seconds since 1970 (/proc/stat btime)
    ticks_per_s: int  # sysconf(SC_CLK_TCK), 100 on Linux


# --- Parsers -------------------------------------------------------------------------


def parse_meminfo(text: str) -> dict[str, int]:
    """Map each /proc/meminfo field to its number (kB, or pages for HugePages_*)."""
    values: dict[str, int] = {}
    for line in text.splitlines():
        name, sep, rest = line.partition(":")
        parts = rest.split()
        if sep and parts and _whole(parts[0]):
            values[name.strip()] = int(parts[0])
    return values


def status_field_kb(data: bytes, name: bytes) -> int | None:
    """A `Name:   1234 kB` line of /proc/PID/status, in kB; None when there is none."""
    at = data.find(name)
    if at < 0 or (at > 0 and data[at - 1] != 0x0A):  # only at the start of a line
        return None
    end = data.find(b"\n", at)
    parts = data[at + len(name) : end if end >= 0 else len(data)].split()
    return int(parts[0]) if parts and parts[0].isdigit() else None


def parse_start_ticks(data: bytes) -> int | None:
    """Field 22 of /proc/PID/stat, starttime: clock ticks after boot; None if unreadable."""
    end_of_comm = data.rfind(b")")
    if end_of_comm < 0:
        return None
    fields = data[end_of_comm + 1 :].split()
    if len(fields) <= _STARTTIME_AFTER_COMM or not fields[_STARTTIME_AFTER_COMM].isdigit():
        return None
    return int(fields[_STARTTIME_AFTER_COMM])


def parse_btime(text: str) -> int | None:
    """The `btime` line of /proc/stat: the boot time, seconds since 1970."""
    for line in text.splitlines():
        name, _, value = line.partition(" ")
        if name == "btime" and _whole(value.strip()):
            return int(value)
    return None


def parse_vmstat(text: str) -> dict[str, int]:
    """The counters of /proc/vmstat: `name value` lines."""
    values: dict[str, int] = {}
    for line in text.splitlines():
        name, _, value = line.partition(" ")
        if _whole(value.strip()):
            values[name] = int(value)
    return values


def parse_psi_totals(text: str) -> dict[str, int]:
    """psi_some_total_us and psi_full_total_us from /proc/pressure/memory's lines
    `some avg10=0.00 avg60=0.00 avg300=0.00 total=202847` (and `full ...`)."""
    values: dict[str, int] = {}
    for line in text.splitlines():
        kind, _, rest = line.partition(" ")
        for item in rest.split():
            name, _, value = item.partition("=")
            if name == "total" and kind in ("some", "full") and _whole(value):
                values[f"psi_{kind}_total_us"] = int(value)
    return values


def _whole(text: str) -> bool:
    """ASCII digits only: str.isdigit() takes "¹" and "٣" too, which int() refuses."""
    return text.isascii() and text.isdigit()


def started_text(clock: BootClock, ticks: int) -> str:
    """A start time as the dumps write it: `YYYY-MM-DD HH:MM:SS.ss`, UTC. The same process
    gets the same text in every snapshot of a collector's run (its boot time is read once)."""
    hundredths = clock.boot_s * 100 + ticks * 100 // clock.ticks_per_s
    seconds, fraction = divmod(hundredths, 100)
    return time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(seconds)) + f".{fraction:02d}"


# --- Readers ---------------------------------------------------------------------------


def read_small(path: str, limit: int = READ_BYTES) -> bytes | None:
    """The bytes of a small /proc file, up to limit; None if it cannot be read (the process
    is gone). A /proc file is made as it is read: one read of its size takes it whole."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except OSError:
        return None
    try:
        chunks = [os.read(fd, READ_BYTES)]
        while chunks[-1] and sum(map(len, chunks)) < limit and len(chunks[-1]) == READ_BYTES:
            chunks.append(os.read(fd, READ_BYTES))
        return b"".join(chunks)
    except OSError:
        return None
    finally:
        os.close(fd)


def read_whole(path: str, limit: int, chunk_bytes: int = 1 << 16) -> bytes | None:
    """A file's bytes up to limit, read to its end; None if it cannot be read (gone, not
    allowed). For files of many records (mountinfo, smaps), where one read may return less
    than a buffer before the end; a file made in one go comes whole from read_small."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except OSError:
        return None
    try:
        chunks: list[bytes] = []
        size = 0
        while size < limit:
            chunk = os.read(fd, min(limit - size, chunk_bytes))
            if not chunk:
                break
            chunks.append(chunk)
            size += len(chunk)
        return b"".join(chunks)
    except OSError:
        return None
    finally:
        os.close(fd)


def process_memory(pid: int, proc: str = str(PROC)) -> ProcessMemory:
    """RssAnon, VmSwap and the start ticks of one process (NOTHING when it is gone)."""
    status = read_small(f"{proc}/{pid}/status")
    stat = read_small(f"{proc}/{pid}/stat")
    if status is None and stat is None:
        return NOTHING
    anon = swap = None
    if status is not None:
        anon, swap = (status_field_kb(status, name) for name in STATUS_FIELDS)
    return ProcessMemory(anon, swap, None if stat is None else parse_start_ticks(stat))


def missing_status_fields(proc: Path = PROC) -> list[str]:
    """The status fields this kernel does not have, judged on the collector's own process."""
    status = read_small(str(proc / "self" / "status")) or b""
    return [name.decode().rstrip(":") for name in STATUS_FIELDS if name not in status]


def boot_clock(proc: Path = PROC) -> BootClock | None:
    """The boot time and tick rate; None where /proc/stat has no btime."""
    # /proc/stat holds a line per CPU and one of every interrupt's count before btime.
    data = read_small(str(proc / "stat"), limit=1 << 20)
    boot = None if data is None else parse_btime(data.decode("ascii", "replace"))
    if boot is None:
        return None
    return BootClock(boot, os.sysconf("SC_CLK_TCK"))


def boot_id(proc: Path = PROC) -> str:
    """This boot's random UUID; "" where the kernel has none."""
    data = read_small(str(proc / "sys" / "kernel" / "random" / "boot_id"))
    return "" if data is None else data.decode("ascii", "replace").strip()


def vmstat_counters(proc: Path = PROC) -> dict[str, int]:
    """The VMSTAT_FIELDS this kernel has (none when /proc/vmstat cannot be read)."""
    data = read_small(str(proc / "vmstat"), limit=1 << 20)
    if data is None:
        return {}
    values = parse_vmstat(data.decode("ascii", "replace"))
    return {name: values[name] for name in VMSTAT_FIELDS if name in values}


def psi_totals(proc: Path = PROC) -> dict[str, int]:
    """psi_some_total_us and psi_full_total_us of memory pressure (none before Linux 4.20, or
    with psi=0)."""
    data = read_small(str(proc / "pressure" / "memory"))
    return {} if data is None else parse_psi_totals(data.decode("ascii", "replace"))


class KernelLog:
    """The kernel log from the moment it is opened: the OOM killer's victims since the last
    call. It never blocks and never raises: a log it cannot read names no victims."""

    def __init__(self, path: Path = KMSG) -> None:
        self.path = path
        self.error: str | None = None  # why the log cannot be read, if it cannot
        self._fd: int | None = None
        self._parser = KernelOomParser()
        self._held: Found | None = None  # a kill only an oom-kill: line named, kept one call
        try:
            self._fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
            os.lseek(self._fd, 0, os.SEEK_END)  # only what is logged from now on
        except OSError as err:
            self.error = err.strerror or str(err)
            self.close()

    @property
    def readable(self) -> bool:
        return self._fd is not None

    def victims(self) -> list[OomVictim]:
        """The kills logged since the last call (or the opening), oldest first. A kill that
        only an oom-kill: line named so far waits one call for its Killed line."""
        found = [kill.victim for kill in self._read()]
        pending = self._parser.report.pending
        if pending is not None and pending is self._held:
            found += [kill.victim for kill in self._parser.flush()]
        self._held = self._parser.report.pending
        return found

    def _read(self) -> list[Found]:
        if self._fd is None:
            return []
        found: list[Found] = []
        for _ in range(_KMSG_MAX_READS):
            try:
                record = os.read(self._fd, _KMSG_RECORD_BYTES)
            except BlockingIOError:
                break  # nothing more for now
            except OSError as err:
                if err.errno == errno.EPIPE:
                    continue  # records overwritten before they were read: go on
                break
            if not record:
                break  # a regular file (as in tests) at its end
            # One record per read on /dev/kmsg; a plain file gives many lines at once.
            # A record's continuation lines (" KEY=value") name no kill.
            for line in record.split(b"\n"):
                stamp, message = kmsg_message(line)
                found += self._parser.feed(message, stamp)
        return found

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
