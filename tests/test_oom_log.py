"""The OOM kill log parser (utils.collect.oom_log) on one fixture per form the kernel and
the userspace killers have printed, with exact answers; the oom_victims item grammar; and
Hypothesis: any bytes on any line, never a traceback, never a victim from a non-kill line.

The fixture lines are written from the printk formats of mm/oom_kill.c and mm/memcontrol.c
at the commits the module's docstring names, and from real reports posted in public
(Red Hat's forms: RHEL/CentOS 6 `Killed process N, UID u, (comm)`, RHEL/CentOS 7
`Killed process N (comm), UID u,`)."""

from __future__ import annotations

import string

import pytest
from hypothesis import given
from hypothesis import strategies as st

from utils.collect.oom_log import KernelOomParser, kmsg_message, userspace_kill
from utils.collect.snapshot_format import (
    KILL_KINDS,
    OomVictim,
    escape_field,
    parse_victims,
    unescape_field,
    victims_text,
)


def kills(text: str) -> list[OomVictim]:
    parser = KernelOomParser()
    found = [kill for line in text.splitlines() for kill in parser.feed(line)]
    return [kill.victim for kill in found + parser.flush()]


# 2.6.32 upstream (mm/oom_kill.c oom_kill_process, __oom_kill_task).
V2_6_32 = """\
httpd invoked oom-killer: gfp_mask=0x201da, order=0, oom_adj=0
Out of memory: kill process 4120 (httpd) score 81032 or a child
Killed process 4121 (httpd)
"""
# 2.6.36 to 4.4: a63d83f427fb "oom: badness heuristic rewrite"; the child is the victim.
V3_10_SACRIFICE = """\
java invoked oom-killer: gfp_mask=0x280da, order=0, oom_score_adj=0
Out of memory: Kill process 2592 (java) score 909 or sacrifice child
Killed process 2601 (jsvc worker) total-vm:2936856kB, anon-rss:1843004kB, file-rss:0kB
"""
# RHEL/CentOS 6 (2.6.32-573.el6): the UID between the PID and the comm.
RHEL6 = """\
Memory cgroup out of memory: Kill process 15947 (init) score 1 or sacrifice child
Killed process 16944, UID 0, (mingetty) total-vm:4064kB, anon-rss:4kB, file-rss:56kB
"""
# RHEL/CentOS 7 (3.10.0-1127.el7): ", UID n," after the comm, shmem-rss at the end.
RHEL7 = """\
Out of memory: Kill process 45465 (tail) score 902 or sacrifice child
Killed process 45465 (tail), UID 0, total-vm:7582132kB, anon-rss:7420324kB, file-rss:0kB, \
shmem-rss:0kB
"""
# 4.5 to 4.20, a cgroup v1 limit: memcontrol.c's "Task in ... killed as a result of limit of".
V4_14_MEMCG = """\
stress invoked oom-killer: gfp_mask=0x14000c0(GFP_KERNEL), nodemask=(null), order=0, \
oom_score_adj=0
Task in /docker/4f1a killed as a result of limit of /docker/4f1a
memory: usage 102400kB, limit 102400kB, failcnt 2301
Memory cgroup out of memory: Kill process 9002 (stress) score 1987 or sacrifice child
Killed process 9002 (stress) total-vm:108256kB, anon-rss:101976kB, file-rss:268kB, \
shmem-rss:0kB
oom_reaper: reaped process 9002 (stress), now anon-rss:0kB, file-rss:0kB, shmem-rss:0kB
"""
# 5.0 (ef8444ea01d7): the oom-kill: line (pid and uid padded "%5d"), then the chosen and
# the killed, as before bbbe48029720 (5.1).
V5_0 = """\
node invoked oom-killer: gfp_mask=0x6000c0(GFP_KERNEL), nodemask=(null), order=0, \
oom_score_adj=0
oom-kill:constraint=CONSTRAINT_MEMCG,nodemask=(null),cpuset=/,mems_allowed=0,\
oom_memcg=/kubepods/burstable/pod7,task_memcg=/kubepods/burstable/pod7/0ab1,task=node,\
pid= 3150,uid=  1000
Memory cgroup out of memory: Kill process 3150 (node) score 1996 or sacrifice child
Killed process 3150 (node) total-vm:1391732kB, anon-rss:518012kB, file-rss:28356kB, \
shmem-rss:0kB
"""
# 5.4+: 8ac3f8fe91a2 (UID), 70cb6d267790 (pgtables, oom_score_adj); the message leads
# (bbbe48029720).
V6_1_MEMCG = """\
java invoked oom-killer: gfp_mask=0xcc0(GFP_KERNEL), order=0, oom_score_adj=999
oom-kill:constraint=CONSTRAINT_MEMCG,nodemask=(null),cpuset=cri-containerd-9f2e,\
mems_allowed=0,oom_memcg=/kubepods/burstable/pod1f/cri-containerd-9f2e,\
task_memcg=/kubepods/burstable/pod1f/cri-containerd-9f2e,task=java,pid=24572,uid=1001
Memory cgroup out of memory: Killed process 24572 (java) total-vm:7498536kB, \
anon-rss:2097152kB, file-rss:33120kB, shmem-rss:0kB, UID:1001 pgtables:5032kB \
oom_score_adj:999
oom_reaper: reaped process 24572 (java), now anon-rss:0kB, file-rss:0kB, shmem-rss:0kB
"""
V6_1_GLOBAL = """\
a.out invoked oom-killer: gfp_mask=0x140cca(GFP_HIGHUSER_MOVABLE|__GFP_COMP), order=0, \
oom_score_adj=0
oom-kill:constraint=CONSTRAINT_NONE,nodemask=(null),cpuset=/,mems_allowed=0,global_oom,\
task_memcg=/user.slice/user-1000.slice/session-3.scope,task=a (b), c,pid=777,uid=1000
Out of memory: Killed process 777 (a (b), c) total-vm:9kB, anon-rss:8kB, file-rss:4kB, \
shmem-rss:2kB, UID:1000 pgtables:1kB oom_score_adj:0
"""
# Only the oom-kill: line names the victim (its Killed line lost, or cut off the log).
V5_10_CPUSET_ONLY = """\
db invoked oom-killer: gfp_mask=0x100cca(GFP_HIGHUSER_MOVABLE), order=0, oom_score_adj=0
oom-kill:constraint=CONSTRAINT_CPUSET,nodemask=(null),cpuset=db,mems_allowed=1,global_oom,\
task_memcg=/system.slice/db.service,task=db,pid=501,uid=27
"""
V5_10_MEMPOLICY = """\
oom-kill:constraint=CONSTRAINT_MEMORY_POLICY,nodemask=1,cpuset=/,mems_allowed=0-1,global_oom,\
task_memcg=/,task=numa,pid=88,uid=0
Out of memory: Killed process 88 (numa) total-vm:10kB, anon-rss:6kB, file-rss:0kB, \
shmem-rss:0kB, UID:0 pgtables:1kB oom_score_adj:0
"""
# memory.oom.group (4.19+): every task of the group killed, one report, several kills.
V5_15_GROUP = """\
w invoked oom-killer: gfp_mask=0xcc0(GFP_KERNEL), order=0, oom_score_adj=0
oom-kill:constraint=CONSTRAINT_MEMCG,nodemask=(null),cpuset=/,mems_allowed=0,\
oom_memcg=/system.slice/web.service,task_memcg=/system.slice/web.service,task=w,pid=10,uid=33
Memory cgroup out of memory: Killed process 10 (w) total-vm:5kB, anon-rss:3kB, \
file-rss:0kB, shmem-rss:0kB, UID:33 pgtables:1kB oom_score_adj:0
Tasks in /system.slice/web.service are going to be killed due to memory.oom.group set
Memory cgroup out of memory: Killed process 11 (w) total-vm:5kB, anon-rss:2kB, \
file-rss:0kB, shmem-rss:0kB, UID:33 pgtables:1kB oom_score_adj:0
"""

CASES = {
    "2.6.32": (V2_6_32, [OomVictim(4121, "httpd", kind="global")]),
    "3.10 sacrificed child": (
        V3_10_SACRIFICE,
        [OomVictim(2601, "jsvc worker", None, 1843004, 0, None, "global")],
    ),
    "RHEL 6": (RHEL6, [OomVictim(16944, "mingetty", 0, 4, 56, None, "memcg")]),
    "RHEL 7": (RHEL7, [OomVictim(45465, "tail", 0, 7420324, 0, 0, "global")]),
    "4.14 memcg v1": (
        V4_14_MEMCG,
        [OomVictim(9002, "stress", None, 101976, 268, 0, "memcg", "/docker/4f1a", "/docker/4f1a")],
    ),
    "5.0": (
        V5_0,
        [
            OomVictim(
                3150,
                "node",
                1000,
                518012,
                28356,
                0,
                "memcg",
                "/kubepods/burstable/pod7/0ab1",
                "/kubepods/burstable/pod7",
            )
        ],
    ),
    "6.1 memcg": (
        V6_1_MEMCG,
        [
            OomVictim(
                24572,
                "java",
                1001,
                2097152,
                33120,
                0,
                "memcg",
                "/kubepods/burstable/pod1f/cri-containerd-9f2e",
                "/kubepods/burstable/pod1f/cri-containerd-9f2e",
            )
        ],
    ),
    "6.1 global": (
        V6_1_GLOBAL,
        [
            OomVictim(
                777,
                "a (b), c",
                1000,
                8,
                4,
                2,
                "global",
                "/user.slice/user-1000.slice/session-3.scope",
            )
        ],
    ),
    "5.10 cpuset, constraint line only": (
        V5_10_CPUSET_ONLY,
        [OomVictim(501, "db", 27, None, None, None, "cpuset", "/system.slice/db.service")],
    ),
    "5.10 mempolicy": (V5_10_MEMPOLICY, [OomVictim(88, "numa", 0, 6, 0, 0, "mempolicy", "/")]),
    "5.15 oom.group": (
        V5_15_GROUP,
        [
            OomVictim(10, "w", 33, 3, 0, 0, "memcg", *["/system.slice/web.service"] * 2),
            OomVictim(11, "w", 33, 2, 0, 0, "memcg", *["/system.slice/web.service"] * 2),
        ],
    ),
}


@pytest.mark.parametrize("name", CASES)
def test_each_kernel_form_gives_its_kills_exactly(name: str) -> None:
    text, expected = CASES[name]
    assert kills(text) == expected


def test_reports_one_after_another_keep_their_own_kind_and_cgroups() -> None:
    found = kills(V6_1_MEMCG + V6_1_GLOBAL + RHEL7 + V4_14_MEMCG)
    assert [(v.pid, v.kind, v.limit_cgroup) for v in found] == [
        (24572, "memcg", "/kubepods/burstable/pod1f/cri-containerd-9f2e"),
        (777, "global", ""),
        (45465, "global", ""),  # its "invoked" line rate-limited away: its Kill line opens it
        (9002, "memcg", "/docker/4f1a"),
    ]


def test_a_kill_without_a_header_of_its_own_keeps_no_cgroup_of_the_report_before() -> None:
    # 5.1+: dump_header is rate-limited, so a second kill may be its Killed line alone.
    second = V6_1_MEMCG.splitlines()[2].replace("24572", "24600")
    found = kills(V6_1_MEMCG + second + "\n")
    assert [(v.pid, v.kind, v.cgroup) for v in found] == [
        (24572, "memcg", "/kubepods/burstable/pod1f/cri-containerd-9f2e"),
        (24600, "memcg", ""),
    ]


def test_kmsg_records_and_their_time_since_boot() -> None:
    record = b"3,1210,4567890,-;Out of memory: Killed process 77 (x) total-vm:9kB\n SUBSYSTEM=mem"
    assert kmsg_message(record) == (4.56789, "Out of memory: Killed process 77 (x) total-vm:9kB")
    assert kmsg_message(b"no prefix") == (None, "no prefix")
    parser = KernelOomParser()
    stamp, message = kmsg_message(b"3,1,2000000,-;" + RHEL7.splitlines()[1].encode())
    assert [kill.stamp for kill in parser.feed(message, stamp)] == [2.0]


# systemd's src/oom/oomd-manager.c (v247 to v255: "Killed %s due to memory pressure for %s
# being %lu.%02lu%% > %lu.%02lu%% for > %s with reclaim activity" and "Killed %s due to
# memory used (%PRIu64) / total (%PRIu64) and swap used (%PRIu64) / total (%PRIu64) being
# more than %u.%02u%%"; later "Marked %s for killing due to ...").
OOMD_PRESSURE = (
    "Killed /user.slice/user-1000.slice/user@1000.service/app.slice/app-gnome-firefox-41.scope"
    " due to memory pressure for /user.slice/user-1000.slice/user@1000.service being"
    " 58.21% > 50.00% for > 20s with reclaim activity"
)
OOMD_SWAP = (
    "Killed /system.slice/batch.service due to memory used (16254369792) / total (16663465984)"
    " and swap used (4008714240) / total (4294963200) being more than 90.00%"
)
OOMD_MARKED = (
    "Marked /system.slice/a b.service for killing due to memory pressure for /system.slice"
    " being 71.00% > 60.00% for > 30s with reclaim activity"
)
# rfjakob/earlyoom kill.c: v1.8+ (5c452f9 "Rename badness -> oom_score", cbf0bb2 "Also
# print oom_score_adj when killing something"), v1.6 (522fdd1 "kill.c: log uid of killed
# process"), and before it.
EARLYOOM_NEW = (
    'sending SIGTERM to process 1234 uid 1000 "Web Content": oom_score 900, oom_score_adj 0,'
    ' VmRSS 7000 MiB, cmdline "/usr/lib/firefox/firefox -contentproc"'
)
EARLYOOM_1_6 = 'sending SIGKILL to process 99 uid 0 "a\\": b": badness 800, VmRSS 50 MiB'
EARLYOOM_OLD = 'sending SIGTERM to process 7 "x": badness 1, VmRSS 2 MiB'


def test_userspace_killers_in_their_exact_formats() -> None:
    assert userspace_kill(OOMD_PRESSURE) == OomVictim(
        None,
        "",
        kind="systemd-oomd",
        cgroup="/user.slice/user-1000.slice/user@1000.service/app.slice/app-gnome-firefox-41.scope",
    )
    assert userspace_kill(OOMD_SWAP) == OomVictim(
        None, "", kind="systemd-oomd", cgroup="/system.slice/batch.service"
    )
    assert userspace_kill(OOMD_MARKED) == OomVictim(
        None, "", kind="systemd-oomd", cgroup="/system.slice/a b.service"
    )
    assert userspace_kill(EARLYOOM_NEW) == OomVictim(1234, "Web Content", 1000, kind="earlyoom")
    assert userspace_kill(EARLYOOM_1_6) == OomVictim(99, 'a\\": b', 0, kind="earlyoom")
    assert userspace_kill(EARLYOOM_OLD) == OomVictim(7, "x", kind="earlyoom")
    # Not kills: earlyoom's startup line, a dry run's no-op signal, oomd's own debug lines.
    assert (
        userspace_kill("sending SIGTERM when mem avail <= 10.00% and swap free <= 10.00%,") is None
    )
    assert userspace_kill('sending 0 (no-op signal) to process 7 uid 0 "x": oom_score 1') is None
    assert userspace_kill("Memory pressure for /user.slice is 5.00% > 1.00% for > 1s") is None


def test_lines_that_are_no_kill_name_no_victim() -> None:
    text = """\
oom_reaper: reaped process 9002 (stress), now anon-rss:0kB, file-rss:0kB, shmem-rss:0kB
[ pid ]   uid  tgid total_vm      rss nr_ptes swapents oom_score_adj name
[ 9002]     0  9002    27064    25494      56        0             0 stress
Memory cgroup stats for /docker/4f1a: cache:0KB rss:101976KB
oom killer 55 (x) has mm pinned by 56 (y)
"""
    assert kills(text) == []


# --- The oom_victims items ----------------------------------------------------------------


def test_items_escape_every_separator_and_old_items_stay_readable() -> None:
    victim = OomVictim(24572, "a:b;c,d%e\n", 0, 1, 2, 3, "memcg", "/k8s/pod:1;x", "/k8s")
    text = victims_text([victim, OomVictim(None, "", kind="systemd-oomd", cgroup="/s.slice")])
    assert text == (
        "memcg:24572:a%3Ab%3Bc%2Cd%25e%0A:0:1:2:3:/k8s/pod%3A1%3Bx:/k8s;"
        "systemd-oomd:::::::/s.slice:"
    )
    assert parse_victims(text) == [
        victim,
        OomVictim(None, "", kind="systemd-oomd", cgroup="/s.slice"),
    ]
    assert parse_victims("812:python3:40704;999:a:b:1") == [
        OomVictim(812, "python3", anon_kb=40704),
        OomVictim(999, "a:b", anon_kb=1),
    ]
    for bad in ("x", "memcg:1:a", "nokind:1:a:::::::", "memcg:x:a:::::::", "1:a"):
        assert parse_victims(bad) is None, bad


numbers = st.none() | st.integers(0, 2**31 - 1)
victims = st.builds(
    OomVictim,
    numbers,
    st.text(max_size=20),
    numbers,
    numbers,
    numbers,
    numbers,
    st.sampled_from(KILL_KINDS),
    st.text(max_size=40),
    st.text(max_size=40),
)


@given(st.lists(victims, max_size=4))
def test_any_kills_round_trip_through_their_items(found: list[OomVictim]) -> None:
    text = victims_text(found)
    assert not {'"', ",", "\n", "\r"} & set(text)  # never needs CSV quoting
    assert parse_victims(text) == found


@given(st.text())
def test_any_field_round_trips(text: str) -> None:
    assert unescape_field(escape_field(text)) == text


@given(st.text(max_size=200))
def test_any_victims_text_parses_or_is_refused(text: str) -> None:
    parsed = parse_victims(text)
    assert parsed is None or all(v.kind in KILL_KINDS for v in parsed)


# --- Hypothesis: any bytes on any line ------------------------------------------------------

KILL_WORDS = ["Killed process ", "Kill process ", "oom-kill:constraint=", "sending SIGKILL to"]
noise = st.one_of(
    st.binary(max_size=200).map(lambda raw: raw.decode("utf-8", "replace")),
    st.lists(
        st.sampled_from(["(", ")", ",", " ", ":", "=", "1", "kB", "UID", *KILL_WORDS]),
        max_size=30,
    ).map("".join),
)


@given(st.lists(noise, max_size=12))
def test_any_lines_never_raise(lines: list[str]) -> None:
    parser = KernelOomParser()
    found = [kill for line in lines for kill in parser.feed(line, 1.0)] + parser.flush()
    for line in lines:
        userspace_kill(line)
    for kill in found:
        assert kill.victim.kind in KILL_KINDS
        assert kill.victim.pid is not None and kill.victim.pid >= 0


no_kill_words = st.text(alphabet=string.printable, max_size=120).filter(
    lambda text: "illed process" not in text and "oom-kill:" not in text
)


@given(st.lists(no_kill_words, max_size=12))
def test_lines_without_a_kill_phrase_name_no_victim(lines: list[str]) -> None:
    parser = KernelOomParser()
    assert [kill for line in lines for kill in parser.feed(line)] + parser.flush() == []


@given(st.binary(max_size=300))
def test_any_kmsg_record_gives_a_message(record: bytes) -> None:
    stamp, message = kmsg_message(record)
    assert stamp is None or stamp >= 0
    assert isinstance(message, str)
