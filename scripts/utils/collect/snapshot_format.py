"""The dump format: file names, timestamps, the fields of each CSV, and how they are written.

(The day bundles that compact_dumps.py makes of them are utils.collect.bundles.)

The collector writes these files and the analyses and the compactor read them; all of
them import the format from here. Standard library only: the collector and the
compactor run on the system python3, without the analyses' packages.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from enum import Enum
from types import MappingProxyType
from typing import NamedTuple
from urllib.parse import unquote

# Every time in a name is UTC, kept as a naive datetime: nothing is ever converted.
TIMESTAMP_FORMAT = "%Y%m%d_%H%M%S"
TIMESTAMP_SHAPE = "YYYYMMDD_HHMMSS"  # how TIMESTAMP_FORMAT reads to a person
SYS_PREFIX = "sys_mem_"
PROCESS_PREFIX = "process_mem_"
CGROUP_PREFIX = "cgroup_mem_"
CSV_SUFFIX = ".csv"
# Every kind of snapshot file, in the order the collector writes them (the cgroup files came
# later: a snapshot of an older collector has only the first two).
PREFIXES: tuple[str, ...] = (SYS_PREFIX, PROCESS_PREFIX, CGROUP_PREFIX)
# The order a day bundle holds them in: the small kinds first, so that their readers stop
# before the large process part (utils.collect.bundles.snapshot_members).
BUNDLE_ORDER: tuple[str, ...] = (SYS_PREFIX, CGROUP_PREFIX, PROCESS_PREFIX)
# No dump comes near this (30,000 processes with 2 kB command lines are 60 MB). A larger
# "file" is not a dump, or is /dev/zero behind a symlink: refused unread.
MAX_DUMP_BYTES = 64 * 1024 * 1024

# The /proc/meminfo fields written, in /proc/meminfo order.
MEMINFO_FIELDS: tuple[str, ...] = (
    "MemTotal",
    "MemFree",
    "MemAvailable",  # since Linux 3.14
    "Buffers",
    "Cached",
    "SwapCached",
    "Active",
    "Inactive",
    "SwapTotal",
    "SwapFree",
    "Dirty",
    "Writeback",
    "AnonPages",
    "Mapped",
    "Shmem",  # since Linux 2.6.32
    "Slab",
    "SReclaimable",  # since Linux 2.6.19
    "SUnreclaim",
    "KernelStack",
    "PageTables",
    "CommitLimit",
    "Committed_AS",
    "AnonHugePages",  # only with CONFIG_TRANSPARENT_HUGEPAGE
    "HugePages_Total",
    "HugePages_Free",
)
# These two are page counts, not kB: they keep their bare names.
PAGE_COUNT_FIELDS = frozenset({"HugePages_Total", "HugePages_Free"})
MEMINFO_HEADER: tuple[str, ...] = tuple(
    name if name in PAGE_COUNT_FIELDS else f"{name}_MB" for name in MEMINFO_FIELDS
)
# After the meminfo fields: the boot's random UUID (/proc/sys/kernel/random/boot_id), so
# that nothing is ever joined across a reboot; counters since boot from /proc/vmstat and
# /proc/pressure/memory (utils.collect.procfs); and the kills logged since the snapshot
# before, as VICTIM_SEPARATOR-separated items (victims_text).
COUNTER_FIELDS: tuple[str, ...] = (
    "oom_kill",
    "pswpin",
    "pswpout",
    "pgmajfault",
    "psi_some_total_us",
    "psi_full_total_us",
)
SYS_EXTRA: tuple[str, ...] = ("boot_id", *COUNTER_FIELDS, "oom_victims")
SYS_HEADER: tuple[str, ...] = (*MEMINFO_HEADER, *SYS_EXTRA)
# The original README's six columns, then what /proc/PID/status and stat add: the
# resident anonymous memory (RssAnon, since Linux 4.5) and the swapped (VmSwap, since
# 2.6.34), in MiB, and the process's start time, UTC, which with the PID names it.
PS_HEADER: tuple[str, ...] = ("PID", "PPID", "USER", "RSS_MB", "VSZ_MB", "CMD")
# Plain `user` cuts names over 8 characters to "averyve+"; 255 is the longest
# name the system allows (LOGIN_NAME_MAX - 1), so names are never cut.
PS_USER_WIDTH = 255
# -ww: never cut the command line, whatever COLUMNS says. Every snapshot lists this ps
# itself, gone by the next one.
PS_COMMAND: tuple[str, ...] = (
    "ps",
    "-ww",
    "--no-headers",
    "-eo",
    f"pid,ppid,user:{PS_USER_WIDTH},rss,vsz,cmd",
)
# Then the process's cgroup in the hierarchy holding the memory controller
# (utils.collect.cgroups), empty where /proc/PID/cgroup could not be read.
PROCESS_EXTRA: tuple[str, ...] = ("ANON_MB", "SWAP_MB", "STARTED", "CGROUP")
# Last, the process's proportional share of memory, Pss and SwapPss in MiB, empty where it
# was not read this snapshot (utils.collect.smaps says which are read, and why).
PSS_EXTRA: tuple[str, ...] = ("PSS_MB", "SWAP_PSS_MB")
PROCESS_HEADER: tuple[str, ...] = (*PS_HEADER, *PROCESS_EXTRA, *PSS_EXTRA)
# How STARTED is written: UTC to the hundredth of a second (a clock tick).
STARTED_SHAPE = "YYYY-MM-DD HH:MM:SS.ss"
# The cgroup_mem file: one row per cgroup holding a process and per child of the root, its
# own memory as the kernel counts it (utils.collect.cgroups; docs/services.md). MiB, empty
# where the kernel has no such number (LIMIT_MB: or no limit); then counters since the
# cgroup was made, empty where unavailable.
CGROUP_MB_FIELDS: tuple[str, ...] = (
    "MEMORY_MB",
    "LIMIT_MB",
    "ANON_MB",
    "FILE_MB",
    "SHMEM_MB",
    "KERNEL_MB",
    "SWAP_MB",
)
CGROUP_COUNT_FIELDS: tuple[str, ...] = ("OOM_EVENTS", "OOM_KILLS", "PSI_SOME_TOTAL_US")
CGROUP_HEADER: tuple[str, ...] = ("CGROUP", "NAME", *CGROUP_MB_FIELDS, *CGROUP_COUNT_FIELDS)


# No system reports a size of a pebibyte (2**30 MiB) or more, in any field: a larger value
# is a damaged file, and would overflow what is computed from it (1e308 times anything).
# Every size below it is kept exactly (servers with several TiB of RAM exist).
MAX_NUMBER = float(2**30)
# Counters are held as float64, exact below 2**53: 285 years of PSI microseconds.
MAX_COUNT = float(2**53)
VICTIM_SEPARATOR = ";"
# Who can kill: the kernel's OOM killer under each constraint of mm/oom_kill.c
# (CONSTRAINT_NONE, _MEMCG, _CPUSET, _MEMORY_POLICY), the two userspace killers, and
# "unknown" where the log that would tell was not read.
KILL_KINDS: tuple[str, ...] = (
    "global",
    "memcg",
    "cpuset",
    "mempolicy",
    "systemd-oomd",
    "earlyoom",
    "unknown",
)
USERSPACE_KINDS = frozenset({"systemd-oomd", "earlyoom"})  # /proc/vmstat never counts these
# What is escaped inside a field of an item: "%" itself, the separators (";" between items,
# ":" between fields), "," and '"' (so that the CSV field never needs quoting), and every
# character that is not printable (control characters, line ends).
_ESCAPED = frozenset('%;:,"')
_ITEM_FIELDS = 9
# Digit counts are bounded so that int() never meets Python's 4,300-digit limit.
_OLD_VICTIM = re.compile(r"([0-9]{1,10}):([^;]*):([0-9]{1,20})")
_NUMBER = re.compile(r"[0-9]{1,20}")


class OomVictim(NamedTuple):
    """One kill: whom (pid, comm, uid), what it held (kB, as the kernel logs them), who
    killed it and why (kind), the victim's cgroup and the cgroup whose limit was hit.
    None and "" where the log does not say: systemd-oomd kills a cgroup, not a PID."""

    pid: int | None
    comm: str
    uid: int | None = None
    anon_kb: int | None = None
    file_kb: int | None = None
    shmem_kb: int | None = None
    kind: str = "unknown"
    cgroup: str = ""
    limit_cgroup: str = ""


def escape_field(text: str) -> str:
    """A field of an oom_victims item: each escaped character as %XX of its UTF-8 bytes."""
    out = []
    for char in text:
        if char in _ESCAPED or not char.isprintable():
            raw = char.encode("utf-8", "surrogatepass")
            out.append("".join(f"%{byte:02X}" for byte in raw))
        else:
            out.append(char)
    return "".join(out)


def unescape_field(text: str) -> str:
    """escape_field undone (a "%" not followed by two hex digits stays as it is)."""
    return unquote(text, errors="surrogatepass")


def _number_text(value: int | None) -> str:
    return "" if value is None else str(value)


def victims_text(victims: Iterable[OomVictim]) -> str:
    """oom_victims as the collector writes it: items separated by ";", each
    `kind:pid:comm:uid:anon_kB:file_kB:shmem_kB:cgroup:limit_cgroup`, every field escaped
    (escape_field), numbers empty where unknown. An item starts with its kind, a word,
    where the older `PID:comm:anon_kB` items start with a digit."""
    items = []
    for victim in victims:
        numbers = (victim.uid, victim.anon_kb, victim.file_kb, victim.shmem_kb)
        fields = [
            victim.kind,
            _number_text(victim.pid),
            victim.comm,
            *map(_number_text, numbers),
            victim.cgroup,
            victim.limit_cgroup,
        ]
        items.append(":".join(escape_field(field) for field in fields))
    return VICTIM_SEPARATOR.join(items)


def parse_victims(text: str) -> list[OomVictim] | None:
    """The kills of an oom_victims field; None if it is not one. Older items
    `PID:comm:anon_kB` (their comm is what lies between the first and the last ":") are
    kills of kind "unknown"."""
    if text == "":
        return []
    victims = []
    for item in text.split(VICTIM_SEPARATOR):
        victim = _parse_item(item)
        if victim is None:
            return None
        victims.append(victim)
    return victims


def _parse_item(item: str) -> OomVictim | None:
    if item[:1].isdigit():
        match = _OLD_VICTIM.fullmatch(item)
        if match is None:
            return None
        victim = OomVictim(int(match[1]), match[2], anon_kb=int(match[3]))
    else:
        fields = item.split(":")
        if len(fields) != _ITEM_FIELDS or fields[0] not in KILL_KINDS:
            return None
        numbers = _numbers([fields[1], *fields[3:7]])
        if numbers is None:
            return None
        pid, uid, anon_kb, file_kb, shmem_kb = numbers
        comm, cgroup, limit = (unescape_field(fields[at]) for at in (2, 7, 8))
        victim = OomVictim(pid, comm, uid, anon_kb, file_kb, shmem_kb, fields[0], cgroup, limit)
    return victim if _plausible(victim) else None


def _numbers(fields: Sequence[str]) -> list[int | None] | None:
    """Each field as a whole number, None where empty; None if one is neither."""
    numbers: list[int | None] = []
    for field in fields:
        if field and _NUMBER.fullmatch(field) is None:
            return None
        numbers.append(int(field) if field else None)
    return numbers


def _plausible(victim: OomVictim) -> bool:
    """Within what a PID (below 2**31), a UID (below 2**32) and a size (below MAX_NUMBER
    MiB) can be, as for the other columns."""
    sizes = (victim.anon_kb, victim.file_kb, victim.shmem_kb)
    return (
        (victim.pid is None or victim.pid < 2**31)
        and (victim.uid is None or victim.uid < 2**32)
        and all(size is None or size < MAX_NUMBER * 1024 for size in sizes)
    )


class Kind(Enum):
    """What a field holds; readers check every field of a file against it."""

    INT = "a whole number"  # >= 0 and below 2**31, such as a PID (pid_max is at most 2**22)
    FLOAT = "a number"  # finite, >= 0 and below MAX_NUMBER, such as MiB
    POSITIVE = "a number above 0"  # finite and > 0, such as MemTotal (a divisor)
    FLOAT_OR_EMPTY = "a number or empty"  # a field this kernel may not report
    COUNT_OR_EMPTY = "a whole number or empty"  # a counter since boot, below MAX_COUNT
    VICTIMS_OR_EMPTY = "kills (kind:pid:comm:...) separated by ';' or empty"  # oom_victims
    TIME_OR_EMPTY = f"a UTC time {STARTED_SHAPE} or empty"  # STARTED
    TEXT = "text"  # anything, such as a command line


# The kind of every column either file can have. A sys_mem field is written empty when
# the running kernel lacks it, so any of them may be empty here; an analysis that
# needs one says so in its own table spec.
COLUMN_KINDS: Mapping[str, Kind] = MappingProxyType(
    {
        **dict.fromkeys(MEMINFO_HEADER, Kind.FLOAT_OR_EMPTY),
        "boot_id": Kind.TEXT,
        **dict.fromkeys(COUNTER_FIELDS, Kind.COUNT_OR_EMPTY),
        "oom_victims": Kind.VICTIMS_OR_EMPTY,
        "PID": Kind.INT,
        "PPID": Kind.INT,
        "USER": Kind.TEXT,
        "RSS_MB": Kind.FLOAT,
        "VSZ_MB": Kind.FLOAT,
        "CMD": Kind.TEXT,
        "ANON_MB": Kind.FLOAT_OR_EMPTY,
        "SWAP_MB": Kind.FLOAT_OR_EMPTY,
        "STARTED": Kind.TIME_OR_EMPTY,
        **dict.fromkeys(PSS_EXTRA, Kind.FLOAT_OR_EMPTY),
        "CGROUP": Kind.TEXT,
        "NAME": Kind.TEXT,
        **dict.fromkeys(CGROUP_MB_FIELDS, Kind.FLOAT_OR_EMPTY),
        **dict.fromkeys(CGROUP_COUNT_FIELDS, Kind.COUNT_OR_EMPTY),
    }
)

_NAME_STAMP = re.compile(r"[0-9]{8}_[0-9]{6}")
# Python 3.11's csv writer quotes a field holding a comma, a quote or "\n", but not a
# bare "\r" when lines end in "\n"; every CSV reader takes an unquoted "\r" as a line
# end. So fields are quoted here, for any of the four.
_NEEDS_QUOTES = re.compile(r'[,"\r\n]')


def snapshot_names(timestamp: str) -> tuple[str, str]:
    """The sys_mem and process_mem file names of one snapshot (`YYYYMMDD_HHMMSS`, UTC)."""
    return (
        f"{SYS_PREFIX}{timestamp}{CSV_SUFFIX}",
        f"{PROCESS_PREFIX}{timestamp}{CSV_SUFFIX}",
    )


def snapshot_file_names(timestamp: str) -> tuple[str, ...]:
    """Every file of one snapshot as this collector writes it, in PREFIXES order: the two
    of snapshot_names, then the cgroup_mem file."""
    return tuple(f"{prefix}{timestamp}{CSV_SUFFIX}" for prefix in PREFIXES)


def looks_like_dump(name: str, prefix: str) -> bool:
    """A name meant as `<prefix>...csv`, valid or not (to warn about the invalid ones)."""
    return name.startswith(prefix) and name.endswith(CSV_SUFFIX)


def parse_name_timestamp(name: str, prefix: str) -> datetime | None:
    """The UTC time in `<prefix><YYYYMMDD_HHMMSS>.csv`, or None for any other name."""
    if not looks_like_dump(name, prefix):
        return None
    stamp = name[len(prefix) : -len(CSV_SUFFIX)]
    if not _NAME_STAMP.fullmatch(stamp):
        return None
    # Slicing, not strptime (TIMESTAMP_FORMAT): this runs once per file, and is far faster.
    try:
        return datetime(
            int(stamp[0:4]),
            int(stamp[4:6]),
            int(stamp[6:8]),
            int(stamp[9:11]),
            int(stamp[11:13]),
            int(stamp[13:15]),
        )
    except ValueError:  # 20261341_250000 has the shape but is no date
        return None


def _csv_field(value: str) -> str:
    if _NEEDS_QUOTES.search(value) is None:
        return value
    return '"' + value.replace('"', '""') + '"'


def csv_text(header: Sequence[str], rows: Iterable[Sequence[str]]) -> str:
    """A whole CSV document: `\\n` line endings, a final newline, and fields quoted the
    CSV way when they hold a comma, a quote, `\\n` or `\\r` (so they round-trip)."""
    lines = [",".join(_csv_field(field) for field in row) for row in (header, *rows)]
    return "\n".join(lines) + "\n"
