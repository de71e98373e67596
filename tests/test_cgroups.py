"""What the collector reads of the memory cgroups: the parsers against fixture text with exact
answers, a fake /proc and cgroup tree through a whole snapshot, and Hypothesis for any bytes.
The real kernel is tests/test_cgroups_kernel.py's."""

from __future__ import annotations

import csv
import io
import os
from pathlib import Path

from hypothesis import given
from hypothesis import strategies as st

import collect_memory as cm
from conftest import FakeProcess, stat_line, status_text, write_fake_proc
from utils.collect import cgroups
from utils.collect import snapshot_format as fmt
from utils.collect.cgroups import CgroupMemory, CgroupReader, Hierarchy
from utils.core.signals import StopSignals

MIB = 1 << 20

# This machine's /proc/self/mountinfo, abridged: v1 controllers each on their own, and
# systemd's empty v2 hierarchy beside them (the "hybrid" layout).
MOUNTINFO_HYBRID = """\
22 27 0:21 / /proc rw,relatime - proc proc rw
31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
32 31 0:29 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu
35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
40 31 0:37 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,name=systemd
41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
"""
# A pure v2 host (optional fields before the "-"), and a v1 host that joins controllers.
MOUNTINFO_V2 = (
    "30 23 0:26 / /sys/fs/cgroup rw,nosuid,nodev,noexec,relatime shared:4 - cgroup2 cgroup2"
    " rw,nsdelegate,memory_recursiveprot\n"
)
MOUNTINFO_JOINED = (
    "36 25 0:31 / /sys/fs/cgroup/cpu,memory rw shared:9 - cgroup cgroup rw,cpu,memory\n"
    "37 25 0:32 /sub /mnt/my\\040cgroup rw - cgroup2 none rw\n"
)

# /proc/PID/cgroup of a process in a v1 memory cgroup on a hybrid host, and on pure v2.
PROC_CGROUP_V1 = (
    b"12:pids:/system.slice/nginx.service\n4:memory:/system.slice/nginx.service\n"
    b"2:cpu,cpuacct:/system.slice/nginx.service\n1:name=systemd:/system.slice/nginx.service\n"
    b"0::/system.slice/nginx.service\n"
)
PROC_CGROUP_V2 = b"0::/user.slice/user-1000.slice/session-3.scope\n"

# Linux 6.x memory.stat (v2), abridged, in the kernel's order (cgroup-v2.rst).
STAT_V2_6 = (
    b"anon 75247616\nfile 50835456\nkernel 4194304\nkernel_stack 180224\npagetables 573440\n"
    b"sock 0\nshmem 1048576\nfile_mapped 4038656\nanon_thp 2097152\ninactive_file 50204672\n"
)
# Linux 5.x (coroot-node-agent's fixture): no `kernel` line before 5.18.
STAT_V2_5 = b"anon 75247616\nfile 50835456\nkernel_stack 180224\nshmem 0\nslab 2043888\n"
# Linux 6.18 v1 memory.stat (this machine), abridged: the cgroup's own, then total_*.
STAT_V1 = (
    b"cache 0\nrss 0\nshmem 0\nswap 0\nhierarchical_memory_limit 9223372036854771712\n"
    b"total_cache 4881469440\ntotal_rss 1257062400\ntotal_rss_huge 6291456\ntotal_shmem 4096\n"
    b"total_mapped_file 48369664\ntotal_swap 8192\ntotal_inactive_file 1006333952\n"
)


def test_mountinfo_finds_the_memory_hierarchies() -> None:
    assert cgroups.parse_mountinfo(MOUNTINFO_HYBRID) == [
        Hierarchy(1, "/sys/fs/cgroup/memory", "/"),
        Hierarchy(2, "/sys/fs/cgroup/unified", "/"),
    ]
    assert cgroups.parse_mountinfo(MOUNTINFO_V2) == [Hierarchy(2, "/sys/fs/cgroup", "/")]
    assert cgroups.parse_mountinfo(MOUNTINFO_JOINED) == [
        Hierarchy(1, "/sys/fs/cgroup/cpu,memory", "/"),
        Hierarchy(2, "/mnt/my cgroup", "/sub"),  # "\040" is a space
    ]
    assert cgroups.parse_mountinfo("") == []


def test_proc_cgroup_line_of_the_memory_hierarchy() -> None:
    assert cgroups.parse_proc_cgroup(PROC_CGROUP_V1, 1) == "/system.slice/nginx.service"
    assert cgroups.parse_proc_cgroup(PROC_CGROUP_V1, 2) == "/system.slice/nginx.service"
    assert cgroups.parse_proc_cgroup(PROC_CGROUP_V2, 2) == (
        "/user.slice/user-1000.slice/session-3.scope"
    )
    assert cgroups.parse_proc_cgroup(PROC_CGROUP_V2, 1) == ""  # no memory line
    assert cgroups.parse_proc_cgroup(b"0::/gone (deleted)\n", 2) == "/gone"
    assert cgroups.parse_proc_cgroup(b"3:cpu,memory:/a:b\n", 1) == "/a:b"  # ":" in a name
    assert cgroups.parse_proc_cgroup(b"", 1) == ""


def test_v2_numbers() -> None:
    files = {
        "memory.current": b"134217728\n",
        "memory.max": b"268435456\n",
        "memory.stat": STAT_V2_6,
        "memory.swap.current": b"2097152\n",
        "memory.events": b"low 0\nhigh 12\nmax 40\noom 3\noom_kill 2\noom_group_kill 0\n",
        "memory.pressure": (
            b"some avg10=0.00 avg60=0.00 avg300=0.00 total=1234567\n"
            b"full avg10=0.00 avg60=0.00 avg300=0.00 total=7654\n"
        ),
    }
    assert cgroups.v2_memory(files) == CgroupMemory(
        134217728, 268435456, 75247616, 50835456, 1048576, 4194304, 2097152, 3, 2, 1234567
    )
    older = {**files, "memory.max": b"max\n", "memory.stat": STAT_V2_5, "memory.pressure": None}
    assert cgroups.v2_memory(older) == CgroupMemory(
        134217728, None, 75247616, 50835456, 0, None, 2097152, 3, 2, None
    )
    assert cgroups.v2_memory({}) == cgroups.UNKNOWN  # the root cgroup has none of these


def test_v1_numbers() -> None:
    files = {
        "memory.usage_in_bytes": b"6400000000\n",
        "memory.limit_in_bytes": b"8589934592\n",
        "memory.stat": STAT_V1,
        "memory.memsw.usage_in_bytes": b"6400100000\n",
        "memory.kmem.usage_in_bytes": b"232857600\n",
        "memory.oom_control": b"oom_kill_disable 0\nunder_oom 0\noom_kill 5\n",
    }
    assert cgroups.v1_memory(files) == CgroupMemory(
        6400000000, 8589934592, 1257062400, 4881469440, 4096, 232857600, 8192, None, 5, None
    )
    # No total_swap (swap not accounted in memory.stat): memsw - usage; no limit set.
    bare = {
        **files,
        "memory.stat": b"total_rss 10\n",
        "memory.limit_in_bytes": b"9223372036854771712\n",
    }
    assert cgroups.v1_memory(bare).swap_bytes == 100000
    assert cgroups.v1_memory(bare).limit_bytes is None
    dip = {**bare, "memory.memsw.usage_in_bytes": b"6399999000\n"}  # approximate counters
    assert cgroups.v1_memory(dip).swap_bytes == 0
    # A kernel before 4.13 has no oom_kill line; without swap accounting no memsw file.
    old: dict[str, bytes | None] = {**bare, "memory.oom_control": b"oom_kill_disable 0\n"}
    old["memory.memsw.usage_in_bytes"] = None
    assert cgroups.v1_memory(old).oom_kills is None
    assert cgroups.v1_memory(old).swap_bytes is None


def test_v1_no_limit_with_any_page_size() -> None:
    for page in (4096, 16384, 65536):
        assert cgroups.v1_limit((2**63 - 1) // page * page) is None
    assert cgroups.v1_limit(512 * MIB) == 512 * MIB
    assert cgroups.v1_limit(None) is None


def test_row_text() -> None:
    memory = CgroupMemory(100 * MIB, None, 60 * MIB, 30 * MIB, MIB, 5 * MIB, 0, None, 3, None)
    row = cgroups.cgroup_row("/system.slice/a.service", "a.service", memory)
    assert row == [
        "/system.slice/a.service",
        "a.service",
        "100.000",
        "",
        "60.000",
        "30.000",
        "1.000",
        "5.000",
        "0.000",
        "",
        "3",
        "",
    ]
    assert len(row) == len(fmt.CGROUP_HEADER)


def test_cgroup_dir_inside_a_mounted_subtree() -> None:
    whole = Hierarchy(1, "/sys/fs/cgroup/memory", "/")
    assert cgroups.cgroup_dir(whole, "/") == "/sys/fs/cgroup/memory"
    assert cgroups.cgroup_dir(whole, "/a/b") == "/sys/fs/cgroup/memory/a/b"
    part = Hierarchy(2, "/mnt/cg", "/sub")
    assert cgroups.cgroup_dir(part, "/sub/x") == "/mnt/cg/x"
    assert cgroups.cgroup_dir(part, "/sub") == "/mnt/cg"
    assert cgroups.cgroup_dir(part, "/subway") is None
    assert cgroups.cgroup_dir(part, "/other") is None


# --- A whole snapshot over a fake /proc and cgroup tree -----------------------------

NGINX = "/system.slice/nginx.service"
DOCKER_ID = "cf87ba651579c9231db817909e7865e5747bd7abcac0c57ce23cf4abbaee046b"
WEB = f"/system.slice/docker-{DOCKER_ID}.scope"
PS_OUTPUT = (
    "    1     0 root  9000 36000 /sbin/init\n"
    "    2     0 root     0     0 [kthreadd]\n"
    "  812     1 www   20000 90000 nginx: worker\n"
    "  900     1 root  30000 99000 /app/web\n"
    "  950     1 root   1000  2000 gone-by-now\n"
)


def v1_tree(root: Path) -> Path:
    """A v1 memory hierarchy as files: nginx.service with every file, the Docker container
    with a limit of 64 MiB and no memsw, the root with what v1's root shows."""
    mount = root / "memory"
    files = {
        "": {
            "memory.usage_in_bytes": "900000000\n",
            "memory.limit_in_bytes": "9223372036854771712\n",
        },
        "system.slice": {"memory.usage_in_bytes": f"{300 * MIB}\n"},
        "system.slice/nginx.service": {
            "memory.usage_in_bytes": f"{100 * MIB}\n",
            "memory.limit_in_bytes": f"{256 * MIB}\n",
            "memory.stat": f"rss 0\ntotal_rss {60 * MIB}\ntotal_cache {30 * MIB}\n"
            f"total_shmem {MIB}\ntotal_swap {2 * MIB}\n",
            "memory.memsw.usage_in_bytes": f"{102 * MIB}\n",
            "memory.kmem.usage_in_bytes": f"{5 * MIB}\n",
            "memory.oom_control": "oom_kill_disable 0\nunder_oom 0\noom_kill 3\n",
        },
        f"system.slice/docker-{DOCKER_ID}.scope": {
            "memory.usage_in_bytes": f"{40 * MIB}\n",
            "memory.limit_in_bytes": f"{64 * MIB}\n",
            "memory.stat": f"total_rss {32 * MIB}\ntotal_cache {8 * MIB}\ntotal_shmem 0\n",
        },
        "user.slice": {},
    }
    for folder, contents in files.items():
        (mount / folder).mkdir(parents=True, exist_ok=True)
        for name, text in contents.items():
            (mount / folder / name).write_text(text)
    return mount


def fake_host(tmp_path: Path) -> tuple[cm.Sources, CgroupReader]:
    mount = v1_tree(tmp_path / "cgroup")
    mountinfo = f"35 31 0:32 / {mount} rw,relatime - cgroup cgroup rw,memory\n"
    line = "4:memory:{}\n0::/\n".format
    processes = {
        1: FakeProcess(status_text("init", {"RssAnon": 100}), stat_line(1, "init", 1), line("/")),
        2: FakeProcess(status_text("kthreadd", {}), stat_line(2, "kthreadd", 2), line("/")),
        812: FakeProcess(status_text("nginx", {}), stat_line(812, "nginx", 3), line(NGINX)),
        900: FakeProcess(status_text("web", {}), stat_line(900, "web", 4), line(WEB)),
    }
    proc = write_fake_proc(tmp_path / "proc", processes, mountinfo=mountinfo)
    meminfo = tmp_path / "meminfo"
    meminfo.write_text("MemTotal:       16000000 kB\nMemFree:         8000000 kB\n")
    ps_text = tmp_path / "ps.txt"
    ps_text.write_text(PS_OUTPUT)
    containers = tmp_path / "containers"
    (containers / DOCKER_ID).mkdir(parents=True)
    (containers / DOCKER_ID / "config.v2.json").write_text('{"ID": "x", "Name": "/web"}')
    reader = CgroupReader(proc, containers, tmp_path / "no-pods")
    return cm.Sources(meminfo, ("cat", str(ps_text)), proc, tmp_path / "kmsg"), reader


def rows_of(path: Path) -> list[list[str]]:
    return list(csv.reader(io.StringIO(path.read_text(encoding="utf-8"))))


NGINX_NUMBERS = ["100.000", "256.000", "60.000", "30.000", "1.000", "5.000", "2.000", "", "3", ""]


def test_a_snapshot_writes_the_cgroup_column_and_file(tmp_path: Path) -> None:
    sources, reader = fake_host(tmp_path)
    dumps = tmp_path / "dumps"
    dumps.mkdir()
    state = cm.RunState(None, None, reader)
    cm.take_snapshot(dumps, "20260301_120000", StopSignals(), sources, state)
    process = rows_of(dumps / "process_mem_20260301_120000.csv")
    at = process[0].index("CGROUP")  # after STARTED, before the Pss columns
    assert process[0][at - 1] == "STARTED"
    assert [(row[0], row[at]) for row in process[1:]] == [
        ("1", "/"),
        ("2", "/"),
        ("812", NGINX),
        ("900", WEB),
        ("950", ""),  # gone between ps and its files
    ]
    cgroup = rows_of(dumps / "cgroup_mem_20260301_120000.csv")
    assert cgroup == [
        list(fmt.CGROUP_HEADER),
        ["/", "/", "858.307", "", "", "", "", "", "", "", "", ""],
        ["/system.slice", "system.slice", "300.000", "", "", "", "", "", "", "", "", ""],
        [WEB, "docker:web", "40.000", "64.000", "32.000", "8.000", "0.000", "", "", "", "", ""],
        [NGINX, "nginx.service", *NGINX_NUMBERS],
        ["/user.slice", "user.slice", "", "", "", "", "", "", "", "", "", ""],
    ]


def test_a_cgroup_named_in_no_utf_8_still_gives_a_snapshot(tmp_path: Path) -> None:
    sources, reader = fake_host(tmp_path)
    assert reader.hierarchy is not None
    os.mkdir(os.fsencode(reader.hierarchy.mount) + b"/caf\xe9.slice")
    dumps = tmp_path / "dumps"
    dumps.mkdir()
    cm.take_snapshot(
        dumps, "20260301_120000", StopSignals(), sources, cm.RunState(None, None, reader)
    )
    cgroup = rows_of(dumps / "cgroup_mem_20260301_120000.csv")
    assert ["/caf\ufffd.slice", "caf\ufffd.slice", *[""] * 10] in cgroup


def test_names_are_resolved_once_per_run_and_kept(tmp_path: Path) -> None:
    _, reader = fake_host(tmp_path)
    assert reader.names([WEB]) == {WEB: "docker:web"}
    # The container is gone, its config with it: the name found at its first sight stays.
    (tmp_path / "containers" / DOCKER_ID / "config.v2.json").unlink()
    assert reader.names([WEB, NGINX]) == {WEB: "docker:web", NGINX: "nginx.service"}


def test_a_name_not_found_yet_is_tried_again(tmp_path: Path) -> None:
    _, reader = fake_host(tmp_path)
    config = tmp_path / "containers" / DOCKER_ID / "config.v2.json"
    text = config.read_text()
    config.unlink()
    assert reader.names([WEB]) == {WEB: "docker:cf87ba651579"}
    config.write_text(text)
    assert reader.names([WEB]) == {WEB: "docker:web"}


def test_pods_named_from_their_log_dirs(tmp_path: Path) -> None:
    uid = "6a4ce4a0-ba47-11ea-b2a7-0cc47ac5979e"
    pods = tmp_path / "pods"
    (pods / f"shop_web-0_{uid}").mkdir(parents=True)
    (pods / "not-a-pod").mkdir()
    reader = CgroupReader(tmp_path / "no-proc", tmp_path / "none", pods)
    path = f"/kubepods/burstable/pod{uid}/{DOCKER_ID}"
    assert reader.names([path]) == {path: "k8s:shop/web-0"}


def test_no_hierarchy_means_empty_column_and_no_rows(tmp_path: Path) -> None:
    reader = CgroupReader(write_fake_proc(tmp_path / "proc", {}))
    assert reader.hierarchy is None
    assert reader.process_cgroup(1) == ""
    assert reader.rows(["/a"]) == []


def test_the_real_hierarchy_is_found_here() -> None:
    """Whatever this machine mounts, the reader finds the memory controller's hierarchy if
    /proc says there is one (the v1 memory mount here)."""
    reader = CgroupReader()
    mounts = Path("/proc/self/mountinfo").read_text()
    if " - cgroup " in mounts and "memory" in mounts:
        assert reader.hierarchy is not None and reader.hierarchy.version == 1
    own = reader.process_cgroup(1)
    assert own == "" or own.startswith("/")


# --- Any bytes ----------------------------------------------------------------------


@given(st.text())
def test_any_mountinfo(text: str) -> None:
    for found in cgroups.parse_mountinfo(text):
        assert found.version in (1, 2)


@given(st.binary(), st.sampled_from([1, 2]))
def test_any_proc_cgroup(data: bytes, version: int) -> None:
    path = cgroups.parse_proc_cgroup(data, version)
    assert path == "" or path.startswith("/")


@given(
    st.dictionaries(st.sampled_from(cgroups.V1_FILES + cgroups.V2_FILES), st.binary() | st.none())
)
def test_any_files_give_numbers_or_none(files: dict[str, bytes | None]) -> None:
    for memory in (cgroups.v1_memory(files), cgroups.v2_memory(files)):
        assert all(value is None or 0 <= value < 10**20 for value in memory)
        row = cgroups.cgroup_row("/x", "x", memory)
        assert len(row) == len(fmt.CGROUP_HEADER)
