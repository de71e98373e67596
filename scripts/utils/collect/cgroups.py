"""What the collector reads of the memory cgroups: each process's cgroup, and each cgroup's
own memory, for the cgroup_mem_<timestamp>.csv file. Pure parsers of the files' bytes, then
a thin reader.

Which hierarchy: the one that holds the memory controller. With cgroup v1 that is the
hierarchy mounted with the `memory` option (the `memory` line of /proc/PID/cgroup), even
where a v2 hierarchy is mounted beside it without controllers (systemd's "hybrid" layout);
on a pure v2 host it is the unified hierarchy (the `0::` line). It is found once per run,
from /proc/self/mountinfo (proc(5); the mount point escapes space, tab, newline and "\\"
as octal).

The numbers, from Documentation/admin-guide/cgroup-v2.rst ("Memory Interface Files") and
Documentation/admin-guide/cgroup-v1/memory.rst, each in bytes (docs/services.md has the
table with the kernel version each arrived in):

- v2: memory.current; memory.max ("max": no limit); memory.stat `anon`, `file`, `shmem`
  (since Linux 4.11) and `kernel` (since 5.18); memory.swap.current; memory.events `oom`
  (the times the cgroup's own limit was hit and an allocation was about to fail) and
  `oom_kill` (its processes killed by any OOM killer, since 4.13); memory.pressure's `some`
  total= (microseconds, since 4.20). The memory.* files exist on non-root cgroups only.
- v1: memory.usage_in_bytes; memory.limit_in_bytes (no limit reads as the largest page
  multiple below 2**63, 9223372036854771712 with 4 KiB pages); the hierarchical `total_*`
  fields of memory.stat (`total_rss` anon, `total_cache` file, `total_shmem` since 4.11,
  `total_swap` where swap is accounted); else memory.memsw.usage_in_bytes - usage as swap;
  memory.kmem.usage_in_bytes as kernel; memory.oom_control `oom_kill` (since 4.13).
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import NamedTuple

from utils.collect.cgroup_names import (
    NO_NAMES,
    docker_name,
    identify,
    parse_pod_log_dir,
    service_name,
)
from utils.collect.procfs import PROC, read_small, read_whole

# The largest value v1 shows for "no limit": PAGE_COUNTER_MAX pages (LONG_MAX / PAGE_SIZE)
# in bytes, 9223372036854771712 with 4 KiB pages and lower with larger pages (mm/memcontrol.c,
# mem_cgroup_read_u64). Any value from the 64 KiB pages' one up is that, never a real limit.
V1_UNLIMITED_FROM = (2**63 - 1) // 65536 * 65536
CGROUP_READ_BYTES = 64 * 1024  # memory.stat is about 1.5 kB; a larger file is cut here
CONFIG_READ_BYTES = 1024 * 1024  # Docker's config.v2.json of one container
DOCKER_CONTAINERS = Path("/var/lib/docker/containers")
POD_LOGS = Path("/var/log/pods")
_DELETED = " (deleted)"  # kernel/cgroup/cgroup.c, proc_cgroup_show: a removed v2 cgroup
_OCTAL = re.compile(r"\\([0-7]{3})")


class Hierarchy(NamedTuple):
    """A mounted cgroup hierarchy: its version, mount point and the path of the hierarchy
    mounted there ("/" unless a sub-tree is bind-mounted)."""

    version: int
    mount: str
    root: str


class CgroupMemory(NamedTuple):
    """One cgroup's numbers; None where this kernel (or this cgroup) has no such number,
    and limit_bytes None where there is no limit."""

    memory_bytes: int | None = None
    limit_bytes: int | None = None
    anon_bytes: int | None = None
    file_bytes: int | None = None
    shmem_bytes: int | None = None
    kernel_bytes: int | None = None
    swap_bytes: int | None = None
    oom_events: int | None = None
    oom_kills: int | None = None
    psi_some_total_us: int | None = None


UNKNOWN = CgroupMemory()
V2_FILES = (
    "memory.current",
    "memory.max",
    "memory.stat",
    "memory.swap.current",
    "memory.events",
    "memory.pressure",
)
V1_FILES = (
    "memory.usage_in_bytes",
    "memory.limit_in_bytes",
    "memory.stat",
    "memory.memsw.usage_in_bytes",
    "memory.kmem.usage_in_bytes",
    "memory.oom_control",
)


# --- Parsers ---------------------------------------------------------------------------


def _unescape(text: str) -> str:
    return _OCTAL.sub(lambda match: chr(int(match[1], 8)), text)


def parse_mountinfo(text: str) -> list[Hierarchy]:
    """The cgroup hierarchies in a mountinfo file that can hold the memory controller: v1
    mounts with the `memory` option, then every v2 mount, each in the file's order."""
    legacy: list[Hierarchy] = []
    unified: list[Hierarchy] = []
    for line in text.split("\n"):
        fields = line.split(" ")
        if "-" not in fields[6:]:
            continue
        dash = fields.index("-", 6)
        tail = fields[dash + 1 :]
        if len(tail) < 3 or len(fields) < 5:
            continue
        where = Hierarchy(1, _unescape(fields[4]), _unescape(fields[3]))
        if tail[0] == "cgroup" and "memory" in tail[2].split(","):
            legacy.append(where)
        elif tail[0] == "cgroup2":
            unified.append(where._replace(version=2))
    return [*legacy, *unified]


def parse_proc_cgroup(data: bytes, version: int) -> str:
    """The path of /proc/PID/cgroup's line for the hierarchy holding the memory controller:
    `N:memory:/path` (v1, where the controller list may join several), `0::/path` (v2);
    "" if there is none."""
    for line in data.decode("utf-8", "replace").split("\n"):
        number, _, rest = line.partition(":")
        controllers, found, path = rest.partition(":")
        if not found or not path.startswith("/"):
            continue
        if (version == 1 and "memory" in controllers.split(",")) or (
            version == 2 and number == "0" and controllers == ""
        ):
            return path.removesuffix(_DELETED)
    return ""


def parse_number(data: bytes | None) -> int | None:
    """A single-value file's whole number, None if it holds anything else ("max" too)."""
    if data is None:
        return None
    text = data.strip()
    return int(text) if text.isdigit() and len(text) <= 20 else None


def parse_keyed(data: bytes | None) -> dict[str, int]:
    """The `key value` lines of a flat-keyed file (memory.stat, memory.events,
    memory.oom_control); lines of another shape are passed over."""
    values: dict[str, int] = {}
    if data is None:
        return values
    for line in data.split(b"\n"):
        key, _, value = line.partition(b" ")
        if value.isdigit() and len(value) <= 20 and key.isascii():
            values[key.decode("ascii")] = int(value)
    return values


def parse_pressure_some(data: bytes | None) -> int | None:
    """The total= of memory.pressure's `some avg10=... total=N` line (microseconds)."""
    if data is None:
        return None
    for line in data.split(b"\n"):
        kind, _, rest = line.partition(b" ")
        if kind != b"some":
            continue
        for item in rest.split(b" "):
            name, _, value = item.partition(b"=")
            if name == b"total" and value.isdigit() and len(value) <= 20:
                return int(value)
    return None


def v1_limit(value: int | None) -> int | None:
    """memory.limit_in_bytes, None for "no limit"."""
    return None if value is None or value >= V1_UNLIMITED_FROM else value


def v2_memory(files: Mapping[str, bytes | None]) -> CgroupMemory:
    """A v2 cgroup's numbers from its files' bytes (None: the file could not be read)."""
    stat = parse_keyed(files.get("memory.stat"))
    events = parse_keyed(files.get("memory.events"))
    return CgroupMemory(
        memory_bytes=parse_number(files.get("memory.current")),
        limit_bytes=parse_number(files.get("memory.max")),
        anon_bytes=stat.get("anon"),
        file_bytes=stat.get("file"),
        shmem_bytes=stat.get("shmem"),
        kernel_bytes=stat.get("kernel"),
        swap_bytes=parse_number(files.get("memory.swap.current")),
        oom_events=events.get("oom"),
        oom_kills=events.get("oom_kill"),
        psi_some_total_us=parse_pressure_some(files.get("memory.pressure")),
    )


def v1_memory(files: Mapping[str, bytes | None]) -> CgroupMemory:
    """A v1 cgroup's numbers from its files' bytes (None: the file could not be read). The
    usage counters are approximate (memory.rst, "usage_in_bytes"), so memsw - usage can dip
    below 0 for a moment: it is then 0."""
    stat = parse_keyed(files.get("memory.stat"))
    usage = parse_number(files.get("memory.usage_in_bytes"))
    memsw = parse_number(files.get("memory.memsw.usage_in_bytes"))
    swap = stat.get("total_swap")
    if swap is None and usage is not None and memsw is not None:
        swap = max(memsw - usage, 0)
    return CgroupMemory(
        memory_bytes=usage,
        limit_bytes=v1_limit(parse_number(files.get("memory.limit_in_bytes"))),
        anon_bytes=stat.get("total_rss"),
        file_bytes=stat.get("total_cache"),
        shmem_bytes=stat.get("total_shmem"),
        kernel_bytes=parse_number(files.get("memory.kmem.usage_in_bytes")),
        swap_bytes=swap,
        oom_kills=parse_keyed(files.get("memory.oom_control")).get("oom_kill"),
    )


def _mb(value: int | None) -> str:
    return "" if value is None else f"{value / 1048576:.3f}"


def _count(value: int | None) -> str:
    return "" if value is None else str(value)


def cgroup_row(path: str, name: str, memory: CgroupMemory) -> list[str]:
    """The cgroup_mem CSV row (snapshot_format.CGROUP_HEADER's order)."""
    return [
        path,
        name,
        *(_mb(value) for value in memory[:7]),
        _count(memory.oom_events),
        _count(memory.oom_kills),
        _count(memory.psi_some_total_us),
    ]


def cgroup_dir(hierarchy: Hierarchy, path: str) -> str | None:
    """Where a cgroup's files are, or None if the path lies outside the mounted sub-tree."""
    root = hierarchy.root.rstrip("/")
    if root and path != root and not path.startswith(root + "/"):
        return None
    inside = path[len(root) :].strip("/")
    return f"{hierarchy.mount}/{inside}" if inside else hierarchy.mount


# --- Readers ---------------------------------------------------------------------------


def find_hierarchy(proc: Path = PROC) -> Hierarchy | None:
    """The hierarchy holding the memory controller: a v1 `memory` mount, else a v2 mount
    whose cgroup.controllers lists memory, else any v2 mount (the processes' cgroups are
    known, their memory not); None without any."""
    data = read_whole(f"{proc}/self/mountinfo", 1 << 22)
    mounts = parse_mountinfo(data.decode("utf-8", "replace")) if data else []
    for mount in mounts:
        if mount.version == 1:
            return mount
    for mount in mounts:
        controllers = read_small(f"{mount.mount}/cgroup.controllers") or b""
        if b"memory" in controllers.split():
            return mount
    return mounts[0] if mounts else None


class CgroupReader:
    """The memory hierarchy, found once per run, each process's cgroup, and each cgroup's
    numbers and name. A name is resolved once per run; one that needed a runtime's file
    that could not be read yet is tried again at the next snapshot."""

    def __init__(
        self,
        proc: Path = PROC,
        docker_containers: Path = DOCKER_CONTAINERS,
        pod_logs: Path = POD_LOGS,
    ) -> None:
        self.proc = str(proc)
        self.hierarchy = find_hierarchy(proc)
        self._docker = docker_containers
        self._pod_logs = pod_logs
        self._names: dict[str, str] = {}

    def process_cgroup(self, pid: int) -> str:
        """The process's cgroup path, "" if unknown (no hierarchy, the process gone)."""
        if self.hierarchy is None:
            return ""
        data = read_small(f"{self.proc}/{pid}/cgroup", CGROUP_READ_BYTES)
        return "" if data is None else parse_proc_cgroup(data, self.hierarchy.version)

    def rows(self, held: Iterable[str]) -> list[list[str]]:
        """The cgroup_mem rows: every cgroup in `held` and every child of the root, by path."""
        if self.hierarchy is None:
            return []
        paths = sorted({path for path in held if path} | set(self._top_level()))
        names = self.names(paths)
        return [cgroup_row(path, names[path], self.memory(path)) for path in paths]

    def memory(self, path: str) -> CgroupMemory:
        hierarchy = self.hierarchy
        where = None if hierarchy is None else cgroup_dir(hierarchy, path)
        if hierarchy is None or where is None:
            return UNKNOWN
        files = V1_FILES if hierarchy.version == 1 else V2_FILES
        found = {name: read_small(f"{where}/{name}", CGROUP_READ_BYTES) for name in files}
        return v1_memory(found) if hierarchy.version == 1 else v2_memory(found)

    def _top_level(self) -> list[str]:
        """The children of the root. Names are bytes to the kernel: one that is not UTF-8 is
        decoded as /proc/PID/cgroup's are (its files then cannot be found: an empty row), never
        left holding surrogates that no UTF-8 file can hold."""
        if self.hierarchy is None or self.hierarchy.root != "/":
            return []
        try:
            with os.scandir(os.fsencode(self.hierarchy.mount)) as entries:
                return [
                    "/" + entry.name.decode("utf-8", "replace")
                    for entry in entries
                    if entry.is_dir(follow_symlinks=False)
                ]
        except OSError:
            return []

    def names(self, paths: Iterable[str]) -> dict[str, str]:
        """Each path's name, from the cache or resolved now."""
        new = [path for path in paths if path not in self._names]
        who = {path: identify(path) for path in new}
        docker = {
            found.ident: name
            for found in who.values()
            if found.kind == "docker" and (name := self._docker_name(found.ident))
        }
        pods = self._pods() if any(found.kind == "k8s" for found in who.values()) else NO_NAMES
        fresh = {path: service_name(path, docker, pods) for path in new}
        for path, found in who.items():
            if (found.kind != "docker" or found.ident in docker) and (
                found.kind != "k8s" or found.pod_uid in pods
            ):
                self._names[path] = fresh[path]
        return {path: self._names.get(path) or fresh[path] for path in paths}

    def _docker_name(self, container_id: str) -> str | None:
        config = read_whole(f"{self._docker}/{container_id}/config.v2.json", CONFIG_READ_BYTES)
        return None if config is None else docker_name(config)

    def _pods(self) -> dict[str, str]:
        try:
            entries = os.listdir(self._pod_logs)
        except OSError:
            return {}
        return dict(found for name in entries if (found := parse_pod_log_dir(name)))
