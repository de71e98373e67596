"""The collector's proportional memory: the smaps parser against kernel text with exact
answers and on any bytes (Hypothesis), the choice of processes to read, the rotation, the
cap, and the budget with a fake clock over a fake /proc tree."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from utils.collect import smaps
from utils.collect.smaps import Candidate, Settings, Share, ShareReader

# /proc/PID/smaps_rollup of Linux 6.1 (a forked worker that reads its parent's 300 MiB).
ROLLUP_6_1 = b"""55d0c8a3c000-7ffd2b5fe000 ---p 00000000 00:00 0                          [rollup]
Rss:              310412 kB
Pss:               25391 kB
Pss_Dirty:         24760 kB
Pss_Anon:          24612 kB
Pss_File:            779 kB
Pss_Shmem:             0 kB
Shared_Clean:       3264 kB
Shared_Dirty:     307148 kB
Private_Clean:         0 kB
Private_Dirty:         0 kB
Referenced:       310412 kB
Anonymous:        307148 kB
LazyFree:              0 kB
AnonHugePages:         0 kB
ShmemPmdMapped:        0 kB
FilePmdMapped:         0 kB
Shared_Hugetlb:        0 kB
Private_Hugetlb:       0 kB
Swap:               1024 kB
SwapPss:             512 kB
Locked:                0 kB
"""
# /proc/PID/smaps before Linux 4.14: one block per mapping, abridged; no SwapPss before 4.3.
SMAPS_TWO_MAPPINGS = b"""00400000-0040c000 r-xp 00000000 08:01 1234   /usr/bin/app
Size:                 48 kB
Rss:                  40 kB
Pss:                  20 kB
Swap:                  0 kB
SwapPss:               0 kB
7f0000000000-7f0012c00000 rw-p 00000000 00:00 0
Size:             307200 kB
Rss:              307200 kB
Pss:               23630 kB
Swap:                100 kB
SwapPss:              50 kB
"""
SMAPS_4_2 = b"Size: 48 kB\nRss: 40 kB\nPss: 20 kB\nSwap: 0 kB\n"


def test_rollup_gives_pss_and_swap_pss_in_kb() -> None:
    # Pss_Anon, Pss_File, Pss_Dirty and Pss_Shmem are other lines, not added in.
    assert smaps.parse_smaps(ROLLUP_6_1) == Share(25391, 512)


def test_smaps_is_summed_over_its_mappings() -> None:
    assert smaps.parse_smaps(SMAPS_TWO_MAPPINGS) == Share(23650, 50)
    assert smaps.parse_smaps(SMAPS_4_2) == Share(20, 0)  # a kernel before SwapPss


@pytest.mark.parametrize(
    "data",
    [b"", b"Rss: 4 kB\n", b"Pss: lots kB\n", b"Pss: 12\n", b"Pss: -3 kB\n", b"xPss: 5 kB\n"],
)
def test_no_readable_pss_line_is_none(data: bytes) -> None:
    # A kernel thread's or a zombie's rollup is empty; a damaged line is not a number.
    assert smaps.parse_smaps(data) is None


@given(st.binary(max_size=600))
def test_any_bytes_give_a_share_or_none(data: bytes) -> None:
    share = smaps.parse_smaps(data)
    assert share is None or (share.pss_kb >= 0 and share.swap_pss_kb >= 0)


@given(st.lists(st.tuples(st.integers(0, 10**12), st.integers(0, 10**9)), max_size=8))
def test_any_smaps_sums_exactly(mappings: list[tuple[int, int]]) -> None:
    text = b"".join(b"Pss: %d kB\nSwapPss: %d kB\n" % pair for pair in mappings)
    expected = Share(sum(p for p, _ in mappings), sum(s for _, s in mappings))
    assert smaps.parse_smaps(text) == (expected if mappings else None)


@pytest.mark.parametrize(
    ("cmd", "key"),
    [
        ("/usr/sbin/php-fpm: pool www", "php-fpm"),
        ("nginx: worker process", "nginx"),
        ("-bash", "bash"),
        ("postgres: checkpointer", "postgres"),
        ("", ""),
        ("   ", ""),
    ],
)
def test_origin_key_is_the_executables_name(cmd: str, key: str) -> None:
    assert smaps.origin_key(cmd) == key


def candidate(
    pid: int, ppid: int, key: str, rss_kb: int = 1000, cg: str | None = None
) -> Candidate:
    return Candidate(pid, ppid, key, rss_kb, pid * 10, cg)


# A pool (master 100 under init, workers 101-103 retitled), a lone daemon, a kernel thread,
# two shells of one parent, and two processes of one cgroup.
HOST = [
    candidate(100, 1, "php-fpm"),
    candidate(101, 100, "php-fpm-worker-a"),
    candidate(102, 100, "php-fpm-worker-b"),
    candidate(103, 100, "php-fpm-worker-c"),
    candidate(200, 1, "sshd"),
    candidate(3, 2, "kworker", rss_kb=0),
    candidate(4, 2, "kworker", rss_kb=0),
    candidate(300, 299, "vim"),
    candidate(301, 299, "less"),
    candidate(400, 1, "app", cg="/system.slice/app.service"),
    candidate(401, 1, "helper", cg="/system.slice/app.service"),
    candidate(500, 1, "cron", cg="/system.slice/cron.service"),
]


def test_eligible_are_the_processes_that_may_share() -> None:
    chosen = [HOST[n].pid for n in smaps.eligible(HOST)]
    # Not the lone daemon, the lone cgroup, the kernel threads, nor init's other children.
    assert chosen == [100, 101, 102, 103, 300, 301, 400, 401]


def test_the_longest_waiting_first_newcomers_last() -> None:
    settings = Settings(1.0, 10**9, 5)
    pool = [candidate(10 + n, 9, "w", rss_kb=1000 + n) for n in range(5)]
    # 10 read at 7, 11 at 3, 12 first seen at 2 and never read; 13 and 14 new now, at 8.
    waiting: dict[smaps.Identity, int] = {(10, 100): 7, (11, 110): 3, (12, 120): -1 - 2}
    order = smaps.read_order(pool, waiting, 8, settings)
    assert [pool[n].pid for n in order] == [12, 11, 10, 13, 14]
    # Seen first in the snapshot another was read in: the never read goes first.
    assert smaps.read_order(pool[:2], {(10, 100): 4, (11, 110): -1 - 4}, 9, settings) == [1, 0]


def test_a_process_over_the_cap_waits_cap_every_snapshots() -> None:
    settings = Settings(1.0, 4 * 1024 * 1024, 6)
    big = [candidate(10, 9, "db", rss_kb=5 * 1024 * 1024), candidate(11, 9, "db")]
    assert smaps.read_order(big, {}, 0, settings) == [1, 0]  # never read: due
    last: dict[smaps.Identity, int] = {(10, 100): 0, (11, 110): 0}
    for snapshot in range(1, 6):
        assert smaps.read_order(big, last, snapshot, settings) == [1]
    assert smaps.read_order(big, last, 6, settings) == [1, 0]  # due again; smaller first


def write_rollups(proc: Path, shares: dict[int, int]) -> None:
    (proc / "self").mkdir(parents=True)
    (proc / "self" / "smaps_rollup").write_bytes(ROLLUP_6_1)
    for pid, pss in shares.items():
        (proc / str(pid)).mkdir()
        (proc / str(pid) / "smaps_rollup").write_bytes(b"Pss: %d kB\nSwapPss: 0 kB\n" % pss)


class Row:
    def __init__(self, pid: int, ppid: int, cmd: str, rss_kb: int) -> None:
        self.pid, self.ppid, self.cmd, self.rss_kb = pid, ppid, cmd, rss_kb


class StepClock:
    """A clock that moves 1 ms each time it is read: every read costs 2 ms."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        self.now += 0.001
        return self.now


def test_a_tiny_budget_still_reads_every_process_within_a_few_snapshots(tmp_path: Path) -> None:
    pids = list(range(50, 62))
    write_rollups(tmp_path, {pid: 1000 + pid for pid in pids})
    rows = [Row(pid, 49, "worker", 2000) for pid in pids]
    reader = ShareReader(Settings(0.005, 10**9, 12), tmp_path, StepClock())
    seen: dict[int, int] = {}
    for _ in range(6):
        shares = reader.shares(rows, [pid * 7 for pid in pids])
        read = [(row.pid, s.pss_kb) for row, s in zip(rows, shares, strict=True) if s]
        # Within the budget plus one read: never more than 3 reads of 2 ms in 5 ms.
        assert 1 <= len(read) <= 3
        seen.update(read)
    assert seen == {pid: 1000 + pid for pid in pids}


def test_no_budget_reads_nothing_and_unreadable_is_empty(tmp_path: Path) -> None:
    write_rollups(tmp_path, {70: 5})
    rows = [Row(70, 69, "w", 10), Row(71, 69, "w", 10)]  # 71 has no file (gone, not allowed)
    assert ShareReader(Settings(0.0, 10**9, 1), tmp_path).shares(rows, [1, 2]) == [None, None]
    shares = ShareReader(Settings(1.0, 10**9, 1), tmp_path).shares(rows, [1, 2])
    assert shares == [Share(5, 0), None]


def test_smaps_is_read_where_the_kernel_has_no_rollup(tmp_path: Path) -> None:
    (tmp_path / "self").mkdir()
    (tmp_path / "80").mkdir()
    (tmp_path / "80" / "smaps").write_bytes(SMAPS_TWO_MAPPINGS)
    rows = [Row(80, 79, "w", 10), Row(81, 79, "w", 10)]
    assert ShareReader(Settings(1.0, 10**9, 1), tmp_path).shares(rows, [1, 2])[0] == Share(
        23650, 50
    )


def test_shares_are_written_in_mib_or_empty() -> None:
    rows = list(smaps.with_shares([["1"], ["2"]], [Share(1536, 0), None]))
    assert rows == [["1", "1.500", "0.000"], ["2", "", ""]]
    assert list(smaps.with_shares([["1"]], None)) == [["1", "", ""]]


def test_flags_parse_and_refuse() -> None:
    parser = argparse.ArgumentParser()
    smaps.add_flags(parser, Settings(0.015, 4 * 1024 * 1024, 12))
    args = parser.parse_args([])
    assert smaps.settings_of(args) == Settings(0.015, 4 * 1024 * 1024, 12)
    args = parser.parse_args(
        ["--pss-budget-ms", "0", "--pss-cap-mb", "512", "--pss-cap-every", "3"]
    )
    assert smaps.settings_of(args) == Settings(0.0, 512 * 1024, 3)
    for bad in (["--pss-budget-ms", "-1"], ["--pss-cap-mb", "0"], ["--pss-cap-every", "0"]):
        with pytest.raises(SystemExit):
            parser.parse_args(bad)


def test_a_collector_that_is_not_root_says_what_it_cannot_read() -> None:
    assert smaps.limits_note(0) is None
    note = smaps.limits_note(1000)
    assert note is not None and "other users'" in note and "PSS_MB" in note
