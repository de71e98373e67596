"""Tests of compact_dumps.py: round trips (tarfile and the real `tar`), day selection,
crash safety under SIGKILL at random instants, merging late files, verification and
disk errors, retention, dry runs, the lock, signals, memory and imports."""

from __future__ import annotations

import builtins
import errno
import fcntl
import functools
import hashlib
import io
import json
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import tarfile
import tempfile
import time
from collections.abc import Generator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import IO, Any

import pytest

import compact_dumps as cd
from conftest import ProcessRow, run_script, script_path, write_proc, write_sys
from synthetic import generate_dumps
from utils.collect import bundle_writer, compaction, day_compaction
from utils.collect.bundles import BUNDLE_MODE, TarMember, bundle_name, parse_bundle_day, read_bundle
from utils.core.text import decimal_size

NAME = "compact_dumps.py"
SCRIPT = script_path(NAME)
TAR = shutil.which("tar")
TODAY = date(2026, 11, 25)  # injected; the days of most tests are relative to it
ROWS: list[ProcessRow] = [
    (1, 0, "root", 11.5, 160.25, "/sbin/init splash"),
    (4242, 1, "averyverylongusername", 300.125, 1200.0, 'python3 -c "print(1, 2)"'),
    (77, 2, "root", 0.0, 0.0, "[kworker/0:1-events]"),
]


# --- Helpers -------------------------------------------------------------------------


def stamp(day: date, hour: int = 0, minute: int = 0, second: int = 0) -> str:
    return f"{day:%Y%m%d}_{hour:02d}{minute:02d}{second:02d}"


def write_snapshot(dumps: Path, when: str, rss_mb: float = 300.125) -> list[Path]:
    """A sys_mem/process_mem pair; rss_mb makes the bytes of two pairs differ."""
    rows = [*ROWS[:1], (4242, 1, "alice", rss_mb, 1200.0, "leaky --serve"), *ROWS[2:]]
    return [
        write_sys(dumps, when, MemTotal=16000.0, MemFree=rss_mb),
        write_proc(dumps, when, rows),
    ]


def write_days(dumps: Path, days: list[date], per_day: int = 3) -> list[Path]:
    """per_day snapshots of each day, written in shuffled order (the order on disk and
    in the listing must not matter), with distinct bytes and mtimes."""
    rng = random.Random(7)
    stamps = [stamp(day, hour) for day in days for hour in range(0, 24, 24 // per_day)]
    rng.shuffle(stamps)
    paths: list[Path] = []
    for index, when in enumerate(stamps):
        for path in write_snapshot(dumps, when, rss_mb=100.0 + index):
            ns = 1_700_000_000_123_456_789 + index * 1_000_000_007
            os.utime(path, ns=(ns, ns))
            paths.append(path)
    return paths


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def loose_table(dumps: Path) -> dict[str, str]:
    """name -> checksum of every snapshot file in the dir."""
    return {
        path.name: sha(path.read_bytes())
        for path in dumps.iterdir()
        if path.is_file() and day_compaction.dump_key(path.name) is not None
    }


def expected_order(names: list[str]) -> list[str]:
    """Member order: the sys_mem files in time order, then the process_mem files."""
    keyed = [(day_compaction.dump_key(name), name) for name in names]
    return [name for key, name in sorted((k, n) for k, n in keyed if k is not None)]


def link_copy(source: Path, target: Path) -> None:
    """A copy of a dir of dumps made of hard links: fast, and safe here, since the
    compactor never writes to a snapshot file (it reads it, then unlinks it). Should it
    ever write to one, the checksums taken before would catch it."""
    shutil.copytree(source, target, copy_function=os.link)


@functools.cache
def _member_checksums(
    path: str, inode: int, size: int, mtime_ns: int
) -> tuple[tuple[str, str], ...]:
    """(name, checksum) of every member of a bundle, read once per bundle file."""
    return tuple((m.name, sha(data)) for m, data in bundle_members(Path(path)))


def member_checksums(bundle: Path) -> tuple[tuple[str, str], ...]:
    st = bundle.stat()
    return _member_checksums(str(bundle), st.st_ino, st.st_size, st.st_mtime_ns)


def bundle_members(bundle: Path) -> list[tuple[tarfile.TarInfo, bytes]]:
    with tarfile.open(bundle, "r:xz") as tar:
        members = []
        for member in tar:
            data = tar.extractfile(member)
            assert data is not None, member.name
            members.append((member, data.read()))
        return members


def day_of(name: str) -> date:
    key = day_compaction.dump_key(name)
    assert key is not None
    return key[1].date()


def compact_here(
    dumps: Path,
    older_than_days: int = 2,
    today: date = TODAY,
    keep_days: int | None = None,
    dry_run: bool = False,
) -> tuple[compaction.CompactionReport, list[str], list[str]]:
    said: list[str] = []
    warned: list[str] = []
    report = compaction.compact(
        compaction.RunSettings(
            dumps,
            today,
            older_than_days=older_than_days,
            keep_days=keep_days,
            dry_run=dry_run,
            say=said.append,
            warn=warned.append,
        )
    )
    return report, said, warned


def utc_today() -> date:
    return datetime.now(UTC).date()


def dir_state(dumps: Path) -> dict[str, tuple[int, int, str]]:
    """Every entry: (mode, mtime in ns, checksum) - to prove that nothing changed."""
    state = {}
    for path in sorted(dumps.iterdir()):
        st = path.lstat()
        state[path.name] = (st.st_mode, st.st_mtime_ns, sha(path.read_bytes()))
    return state


# --- Round trip ------------------------------------------------------------------------


def test_bundle_round_trips_byte_for_byte_with_tarfile_and_tar(tmp_path: Path) -> None:
    dumps = tmp_path / "dumps"
    dumps.mkdir()
    days = [TODAY - timedelta(days=5), TODAY - timedelta(days=4)]
    write_days(dumps, days, per_day=4)
    (dumps / "sys_mem_20261120_060000.csv").chmod(0o600)  # modes are kept per file
    originals = {path.name: path.read_bytes() for path in dumps.iterdir()}
    stats = {path.name: path.stat() for path in dumps.iterdir()}

    report, said, warned = compact_here(dumps)

    assert warned == []
    assert report.ok and report.days_written == 2 and report.members_written == 16
    assert sorted(p.name for p in dumps.iterdir()) == sorted(
        [".compact_dumps.lock", *(bundle_name(day) for day in days)]
    )
    for day in days:
        bundle = dumps / bundle_name(day)
        assert bundle.stat().st_mode & 0o777 == BUNDLE_MODE
        members = bundle_members(bundle)
        names = [member.name for member, _ in members]
        day_names = [name for name in originals if day_of(name) == day]
        assert names == expected_order(day_names)
        assert names[:4] == sorted(n for n in day_names if n.startswith("sys_mem_"))
        for member, data in members:
            assert member.isreg() and "/" not in member.name
            assert data == originals[member.name]
            st = stats[member.name]
            assert member.mode == st.st_mode & 0o7777
            seconds, nanos = divmod(st.st_mtime_ns, 10**9)
            assert member.pax_headers["mtime"] == f"{seconds}.{nanos:09d}"

    # The real tar gives back the very files, with their mtimes to the nanosecond.
    assert TAR is not None, "tar is needed for this test"
    out = tmp_path / "extracted"
    out.mkdir()
    for day in days:
        subprocess.run(
            [TAR, "-xJf", str(dumps / bundle_name(day))], cwd=out, check=True, timeout=60
        )
    assert sorted(p.name for p in out.iterdir()) == sorted(originals)
    for path in out.iterdir():
        assert path.read_bytes() == originals[path.name]
        assert path.stat().st_mtime_ns == stats[path.name].st_mtime_ns
        assert path.stat().st_mode == stats[path.name].st_mode
    bundle = dumps / bundle_name(days[0])
    loose_bytes = sum(len(data) for name, data in originals.items() if day_of(name) == days[0])
    size = bundle.stat().st_size
    assert said[0] == (
        f"{bundle.name}: 8 files, {decimal_size(loose_bytes)} -> {decimal_size(size)}"
        f" ({loose_bytes / size:.1f}x)"
    )


def test_output_lines(tmp_path: Path) -> None:
    write_days(tmp_path, [TODAY - timedelta(days=3), TODAY - timedelta(days=4)])
    report, said, _ = compact_here(tmp_path)
    day_line = r"mem_\d{8}\.tar\.xz: 6 files, [\d.]+ k?B -> [\d.]+ k?B \(\d+\.\dx\)"
    assert [line for line in said[:2] if re.fullmatch(day_line, line)] == said[:2]
    assert said[0].startswith(bundle_name(TODAY - timedelta(days=4)))  # oldest first
    assert re.fullmatch(
        r"compacted 2 days: 12 files, .* -> .* \(\d+\.\dx\); 12 loose files removed in \d+\.\d s",
        said[2],
    )
    assert len(said) == 3 and report.loose_removed == 12


@pytest.mark.parametrize(
    ("size", "text"),
    [(0, "0 B"), (999, "999 B"), (1000, "1.0 kB"), (201_400, "201 kB"), (6_090_000, "6.1 MB")],
)
def test_human_bytes(size: int, text: str) -> None:
    assert decimal_size(size) == text


@pytest.mark.parametrize(
    ("size", "text"),
    [
        (99_949, "99.9 kB"),
        (99_960, "100 kB"),  # not "100.0 kB"
        (999_499, "999 kB"),
        (999_999, "1.0 MB"),  # not "1000 kB"
        (999_999_999, "1.0 GB"),
        (10**13, "10000 GB"),
    ],
)
def test_human_bytes_picks_the_unit_after_rounding(size: int, text: str) -> None:
    assert decimal_size(size) == text


# --- Which days ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("older_than_days", "last_bundled"),
    [(0, TODAY - timedelta(days=1)), (2, TODAY - timedelta(days=3))],
)
def test_day_selection_at_the_boundaries(
    tmp_path: Path, older_than_days: int, last_bundled: date
) -> None:
    days = [TODAY - timedelta(days=back) for back in range(5, -1, -1)]
    for day in days:  # the first and the last second of every day, today included
        write_snapshot(tmp_path, stamp(day, 0, 0, 0))
        write_snapshot(tmp_path, stamp(day, 23, 59, 59))
    before = loose_table(tmp_path)
    today_state = {n: h for n, h in before.items() if day_of(n) == TODAY}

    report, _, warned = compact_here(tmp_path, older_than_days)

    assert warned == [] and report.ok
    bundled = {day for day in days if day <= last_bundled}
    bundles = {parse_bundle_day(p.name) for p in tmp_path.glob("mem_*.tar.xz")}
    assert bundles == bundled
    after = loose_table(tmp_path)
    assert after == {n: h for n, h in before.items() if day_of(n) not in bundled}
    assert {n: h for n, h in after.items() if day_of(n) == TODAY} == today_state
    for day in bundled:
        names = [m.name for m, _ in bundle_members(tmp_path / bundle_name(day))]
        assert names == [
            f"sys_mem_{stamp(day)}.csv",
            f"sys_mem_{stamp(day, 23, 59, 59)}.csv",
            f"process_mem_{stamp(day)}.csv",
            f"process_mem_{stamp(day, 23, 59, 59)}.csv",
        ]


def test_last_eligible_day_matches_the_rule() -> None:
    # D + 1 + N <= today: with N=2 on 2026-11-25, days up to 2026-11-22.
    assert compaction.last_eligible_day(TODAY, 2) == date(2026, 11, 22)
    assert compaction.last_eligible_day(TODAY, 0) == date(2026, 11, 24)


def test_other_files_are_left_alone(tmp_path: Path) -> None:
    old = TODAY - timedelta(days=10)
    write_days(tmp_path, [old], per_day=2)
    others = {
        "notes.txt": b"mine\n",
        "sys_mem_20261341_250000.csv": b"no such date\n",
        "sys_mem_2026.csv": b"short\n",
        f"process_mem_{stamp(old)}.csv.bak": b"a backup\n",
        f".sys_mem_{stamp(old, 5)}.csv.123.tmp": b"the collector's temporary\n",
        "mem_2026.tar.xz": b"not a bundle name\n",
    }
    for name, data in others.items():
        (tmp_path / name).write_bytes(data)
    (tmp_path / f"sys_mem_{stamp(old, 7)}.csv").symlink_to(tmp_path / "notes.txt")

    report, _, warned = compact_here(tmp_path)

    assert report.days_written == 1 and report.members_written == 4
    for name, data in others.items():
        assert (tmp_path / name).read_bytes() == data
    assert (tmp_path / f"sys_mem_{stamp(old, 7)}.csv").is_symlink()
    assert warned == [
        f"warning: {tmp_path / f'sys_mem_{stamp(old, 7)}.csv'}: not a regular file; left alone"
    ]


# --- Killed at any instant --------------------------------------------------------------


@dataclass
class Observed:
    temps: int = 0  # a temporary was left
    partial: int = 0  # a day had its bundle and some of its loose files
    bundled: int = 0  # some eligible days were bundled
    finished: int = 0  # the run had ended before the kill


def check_invariant(dumps: Path, originals: dict[str, str], eligible: set[date]) -> Observed:
    """Every original is there, as a loose file or as an identical member of its day's
    bundle (or both, then identical); a bundle in place is complete and in order; the
    only other entries are temporaries and the lock file."""
    seen = Observed()
    names = set(os.listdir(dumps))
    loose = {n for n in names if day_compaction.dump_key(n) is not None}
    bundles = {n for n in names if parse_bundle_day(n) is not None}
    temps = {n for n in names if re.fullmatch(r"\.mem_\d{8}\.tar\.xz\.\d+\.tmp", n)}
    assert names - loose - bundles - temps <= {".compact_dumps.lock"}
    assert loose <= originals.keys()
    for name in loose:
        assert sha((dumps / name).read_bytes()) == originals[name], name
    in_bundles: set[str] = set()
    for name in bundles:
        day = parse_bundle_day(name)
        assert day in eligible, name
        members = member_checksums(dumps / name)
        member_names = [member for member, _ in members]
        day_originals = [n for n in originals if day_of(n) == day]
        assert member_names == expected_order(day_originals), name
        for member, checksum in members:
            assert checksum == originals[member], member
        in_bundles.update(member_names)
        if loose & set(member_names):
            seen.partial += 1
    assert originals.keys() <= loose | in_bundles
    seen.temps = len(temps)
    seen.bundled = bool(bundles)
    return seen


def check_final(dumps: Path, originals: dict[str, str], eligible: set[date]) -> None:
    check_invariant(dumps, originals, eligible)
    names = set(os.listdir(dumps))
    assert {parse_bundle_day(n) for n in names if n.startswith("mem_")} == eligible
    assert {n for n in names if day_compaction.dump_key(n)} == {
        n for n in originals if day_of(n) not in eligible
    }
    assert not [n for n in names if n.endswith(".tmp")]


@pytest.fixture(scope="module")
def small_days(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, set[date]]:
    """8 days of 48 small snapshots each, up to yesterday: 6 eligible days (N=2). Many
    small files make a run long enough (about half a second) for kills to land in every
    phase, without any sleep in the script."""
    pristine = tmp_path_factory.mktemp("pristine")
    today = datetime.combine(utc_today(), datetime.min.time(), tzinfo=UTC)
    generate_dumps(
        pristine,
        snapshots=8 * 48,
        processes=30,
        seed=3,
        start=today - timedelta(days=8),
        interval_s=1800,
    )
    eligible = {(today - timedelta(days=back)).date() for back in range(3, 9)}
    return pristine, eligible


@pytest.mark.slow  # 40 runs, each killed at a random instant
def test_sigkill_at_random_instants_loses_nothing(
    tmp_path: Path, small_days: tuple[Path, set[date]]
) -> None:
    pristine, eligible = small_days
    originals = loose_table(pristine)
    command = [sys.executable, str(SCRIPT), "--older-than-days", "2", "--dumps-dir"]

    # How long a whole run takes here, so that the kills spread over all of it.
    full = tmp_path / "full"
    link_copy(pristine, full)
    began = time.monotonic()
    subprocess.run([*command, str(full)], capture_output=True, check=True, timeout=120)
    full_s = time.monotonic() - began
    check_final(full, originals, eligible)

    rng = random.Random(2026)
    rounds = 20  # two kills each: one on a fresh dir, one during the recovery run
    delays = [full_s * (i + rng.random()) / rounds for i in range(rounds)]
    rng.shuffle(delays)
    totals = Observed()
    for index, delay in enumerate(delays):
        dumps = tmp_path / f"run{index}"
        link_copy(pristine, dumps)
        # The second kill lands in the run that recovers from the first, within the
        # time the work left should take.
        for attempt_delay in (delay, rng.uniform(0, max(full_s - delay, 0.1) + 0.1)):
            proc = subprocess.Popen(
                [*command, str(dumps)], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
            )
            time.sleep(attempt_delay)
            proc.send_signal(signal.SIGKILL)
            _, stderr = proc.communicate(timeout=30)
            assert proc.returncode in (-signal.SIGKILL, 0), stderr
            totals.finished += proc.returncode == 0
            seen = check_invariant(dumps, originals, eligible)
            totals.temps += seen.temps > 0
            totals.partial += seen.partial > 0
            totals.bundled += seen.bundled
        done = subprocess.run(
            [*command, str(dumps)], capture_output=True, text=True, timeout=120, check=False
        )
        assert done.returncode == 0, done.stderr
        assert done.stderr == ""
        check_final(dumps, originals, eligible)
        shutil.rmtree(dumps)
    print(f"full run {full_s:.2f} s; after 40 kills: {totals}")
    # The kills landed all over the run: while a bundle was being written, and after
    # some days were done.
    assert totals.temps >= 3 and totals.bundled >= 10 and totals.finished <= 20


# --- A day that already has a bundle -----------------------------------------------------


def test_loose_files_already_in_the_bundle_are_removed(tmp_path: Path) -> None:
    day = TODAY - timedelta(days=6)
    write_days(tmp_path, [day])
    compact_here(tmp_path)
    bundle = tmp_path / bundle_name(day)
    before = bundle.read_bytes()
    out = tmp_path / "x"  # a run killed after the rename: the originals are back
    out.mkdir()
    with tarfile.open(bundle) as tar:
        tar.extractall(out, filter="tar")
    for path in out.iterdir():
        path.rename(tmp_path / path.name)
    out.rmdir()

    report, said, warned = compact_here(tmp_path)

    assert warned == [] and report.ok
    assert said[0] == f"{bundle.name}: removed 6 loose files already in the bundle"
    assert re.fullmatch(r"6 loose files removed in \d+\.\d s", said[1])
    assert bundle.read_bytes() == before  # not rewritten
    assert loose_table(tmp_path) == {}
    assert report.loose_removed == 6 and report.days_written == 0


def test_a_late_file_is_merged_into_the_bundle(tmp_path: Path) -> None:
    day = TODAY - timedelta(days=6)
    write_days(tmp_path, [day])
    table = loose_table(tmp_path)
    compact_here(tmp_path)
    bundle = tmp_path / bundle_name(day)
    old_headers = {m.name: m.pax_headers["mtime"] for m, _ in bundle_members(bundle)}
    late = write_snapshot(tmp_path, stamp(day, 12, 34, 56), rss_mb=1.5)
    # and a copy of a member that is already in (a run killed after the rename)
    copy_name = f"process_mem_{stamp(day, 8)}.csv"
    copy_data = dict((m.name, d) for m, d in bundle_members(bundle))[copy_name]
    (tmp_path / copy_name).write_bytes(copy_data)
    table.update({path.name: sha(path.read_bytes()) for path in late})

    report, said, warned = compact_here(tmp_path)

    assert warned == [] and report.ok
    assert re.fullmatch(
        rf"{bundle.name}: added 2 late files, now 8, .* -> .* \(\d+\.\dx\)", said[0]
    ), said
    assert said[1] == f"{bundle.name}: removed 1 loose file already in the bundle"
    members = bundle_members(bundle)
    assert [m.name for m, _ in members] == expected_order(list(table))
    assert {m.name: sha(d) for m, d in members} == table
    for member, _ in members:  # the old members keep their exact mtimes
        if member.name in old_headers:
            assert member.pax_headers["mtime"] == old_headers[member.name]
    assert loose_table(tmp_path) == {}
    assert not list(tmp_path.glob(".*.tmp"))


def test_a_loose_file_that_differs_from_its_member_is_kept(tmp_path: Path) -> None:
    day = TODAY - timedelta(days=6)
    write_days(tmp_path, [day])
    compact_here(tmp_path)
    bundle = tmp_path / bundle_name(day)
    before = bundle.read_bytes()
    name = f"sys_mem_{stamp(day, 16)}.csv"
    (tmp_path / name).write_bytes(b"edited by hand\n")
    late = write_snapshot(tmp_path, stamp(day, 20), rss_mb=9.0)

    report, said, warned = compact_here(tmp_path)

    problem = (
        f"{bundle.name}: {name} differs from the copy in the bundle; both kept"
        " (compare them, then delete the wrong one)"
    )
    assert warned == [problem] and report.problems == [problem] and not report.ok
    assert (tmp_path / name).read_bytes() == b"edited by hand\n"
    assert bundle.read_bytes() != before  # the late pair went in, the edited file did not
    members = dict((m.name, d) for m, d in bundle_members(bundle))
    assert members[name] != b"edited by hand\n"
    assert {p.name for p in late} <= members.keys()
    assert loose_table(tmp_path).keys() == {name}
    assert said[-1].endswith("; 1 problem (see above)")


def test_a_damaged_bundle_leaves_the_day_alone(tmp_path: Path) -> None:
    day = TODAY - timedelta(days=6)
    write_days(tmp_path, [day])
    compact_here(tmp_path)
    bundle = tmp_path / bundle_name(day)
    bundle.write_bytes(bundle.read_bytes()[:-100])  # truncated
    late = write_snapshot(tmp_path, stamp(day, 20))

    report, _, warned = compact_here(tmp_path)

    assert len(warned) == 1 and not report.ok
    assert warned[0].startswith(f"{bundle.name} cannot be read (")
    assert warned[0].endswith("); the day is left as it is")
    assert all(path.exists() for path in late)


# --- Failures -------------------------------------------------------------------------------


@pytest.mark.parametrize("call", ["lstat", "open"])
def test_a_bundle_that_cannot_be_used_is_named_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, call: str
) -> None:
    """One line: the file, the reason and what became of the day, the name not twice."""
    day = TODAY - timedelta(days=6)
    write_days(tmp_path, [day])
    compact_here(tmp_path)
    bundle = tmp_path / bundle_name(day)
    late = write_snapshot(tmp_path, stamp(day, 20))
    module: Any = os if call == "lstat" else builtins
    real = getattr(module, call)

    def refuse(path: Any, *args: Any, **kwargs: Any) -> Any:
        if os.fspath(path) == str(bundle):
            raise OSError(errno.EACCES, os.strerror(errno.EACCES), str(path))
        return real(path, *args, **kwargs)

    monkeypatch.setattr(module, call, refuse)
    report, _, warned = compact_here(tmp_path)

    assert warned == [f"{bundle}: Permission denied; the day is left as it is"]
    assert report.problems == warned
    assert all(path.exists() for path in late)


def test_a_verification_failure_keeps_the_originals(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    bad_day, good_day = TODAY - timedelta(days=6), TODAY - timedelta(days=5)
    write_days(tmp_path, [bad_day, good_day])
    before = loose_table(tmp_path)
    victim = f"process_mem_{stamp(bad_day, 8)}.csv"
    real_read_bundle = read_bundle

    def flip_a_byte(path: Path) -> Generator[tuple[TarMember, IO[bytes]], None, None]:
        for member, data in real_read_bundle(path):
            if path.name.endswith(".tmp") and member.name == victim:
                changed = bytearray(data.read())
                changed[10] ^= 0x01
                yield member, io.BytesIO(bytes(changed))
            else:
                yield member, data

    monkeypatch.setattr(bundle_writer, "read_bundle", flip_a_byte)
    report, said, warned = compact_here(tmp_path)

    assert warned == [
        f"{bundle_name(bad_day)}: verification failed: {victim}: the bytes differ; originals kept"
    ]
    assert not report.ok and report.days_written == 1
    assert not (tmp_path / bundle_name(bad_day)).exists()
    assert (tmp_path / bundle_name(good_day)).exists()  # the next day went on
    assert loose_table(tmp_path) == {n: h for n, h in before.items() if day_of(n) == bad_day}
    assert not list(tmp_path.glob(".*.tmp"))
    assert said[-1].endswith("; 1 problem (see above)")


def fail_writes(monkeypatch: pytest.MonkeyPatch, code: int) -> None:
    """os.open refuses anything but reading, as on a read-only mount; unlink and
    replace fail too."""
    real_open = os.open

    def guarded_open(path: Any, flags: int, mode: int = 0o777, **kwargs: Any) -> int:
        if flags & (os.O_WRONLY | os.O_RDWR | os.O_CREAT):
            raise OSError(code, os.strerror(code), str(path))
        return real_open(path, flags, mode, **kwargs)

    def refuse(path: Any, *args: Any, **kwargs: Any) -> None:
        raise OSError(code, os.strerror(code), str(path))

    monkeypatch.setattr(os, "open", guarded_open)
    monkeypatch.setattr(os, "unlink", refuse)
    monkeypatch.setattr(os, "replace", refuse)


@pytest.mark.parametrize("lock_file_exists", [False, True])
def test_a_read_only_dumps_dir_is_one_line(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    lock_file_exists: bool,
) -> None:
    write_days(tmp_path, [utc_today() - timedelta(days=6), utc_today() - timedelta(days=5)])
    if lock_file_exists:
        (tmp_path / compaction.LOCK_NAME).touch()
    before = dir_state(tmp_path)
    fail_writes(monkeypatch, errno.EROFS)

    status = cd.main(["--dumps-dir", str(tmp_path)])

    out, err = capsys.readouterr()
    assert status == 1 and out == ""
    assert err == (
        f"compact_dumps: cannot write in the dumps dir: {tmp_path / compaction.LOCK_NAME}:"
        " Read-only file system\n"
    )
    monkeypatch.undo()
    assert dir_state(tmp_path) == before


def test_a_full_disk_is_one_line_per_day_and_the_originals_stay(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    days = [utc_today() - timedelta(days=6), utc_today() - timedelta(days=5)]
    write_days(tmp_path, days)
    (tmp_path / compaction.LOCK_NAME).touch()
    before = dir_state(tmp_path)

    def no_space(fd: int) -> None:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(os, "fsync", no_space)
    status = cd.main(["--dumps-dir", str(tmp_path)])

    out, err = capsys.readouterr()
    assert status == 1
    pid = os.getpid()
    assert err.splitlines() == [
        f"compact_dumps: {bundle_name(day)}: {tmp_path / f'.{bundle_name(day)}.{pid}.tmp'}:"
        " No space left on device; originals kept"
        for day in days
    ]
    assert "Traceback" not in err
    assert out.splitlines() == ["nothing compacted; 2 problems (see above)"]
    assert dir_state(tmp_path) == before


def test_a_missing_dumps_dir_is_one_line(tmp_path: Path) -> None:
    result = run_script(NAME, "--dumps-dir", str(tmp_path / "nowhere"))
    assert result.returncode == 1
    assert result.stdout == ""
    assert result.stderr == (
        f"compact_dumps: the dumps dir {tmp_path / 'nowhere'} does not exist\n"
    )


def test_a_bug_is_one_line_and_exit_70(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    def broken(*args: object) -> None:
        raise RuntimeError("something\nodd")

    monkeypatch.setattr(compaction, "scan", broken)
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    dumps = tmp_path / "dumps"
    dumps.mkdir()

    status = cd.main(["--dumps-dir", str(dumps)])

    _, err = capsys.readouterr()
    assert status == 70
    [line] = err.splitlines()
    match = re.fullmatch(
        r"compact_dumps: internal error: RuntimeError: something odd;"
        r" please report it with the command line; traceback in (.*)",
        line,
    )
    assert match is not None, line
    assert "RuntimeError" in Path(match.group(1)).read_text(encoding="utf-8")


@pytest.mark.parametrize(
    "flags",
    [
        ["--older-than-days", "-1"],
        ["--older-than-days", "two"],
        ["--keep-days", "0"],
        ["--keep-days", "2"],  # not more than the default --older-than-days 2
        ["--older-than-days", "5", "--keep-days", "5"],
        ["--older-than-days", "99999999999"],  # dates would go out of range
        ["--dumps"],
    ],
)
def test_bad_flags_are_usage_errors(flags: list[str], tmp_path: Path) -> None:
    result = run_script(NAME, "--dumps-dir", str(tmp_path), *flags)
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert re.match(r"compact_dumps: error: ", result.stderr.strip().splitlines()[-1])
    assert list(tmp_path.iterdir()) == []


# --- Leftover temporaries, retention, dry run, lock ---------------------------------------


def test_leftover_temporaries_of_dead_runs_are_removed(tmp_path: Path) -> None:
    pid_max = int(Path("/proc/sys/kernel/pid_max").read_text())
    dead = tmp_path / f".mem_20261101.tar.xz.{pid_max + 1}.tmp"
    live = tmp_path / ".mem_20261102.tar.xz.1.tmp"  # pid 1 is always running
    other = tmp_path / ".mem_20261102.tar.xz.tmp"  # not a name this script uses
    for path in (dead, live, other):
        path.write_bytes(b"half a bundle")

    report, _, _ = compact_here(tmp_path)

    assert report.temps_removed == 1
    assert not dead.exists() and live.exists() and other.exists()


def test_removing_a_leftover_temporary_is_said(tmp_path: Path) -> None:
    pid_max = int(Path("/proc/sys/kernel/pid_max").read_text())
    dead = tmp_path / f".mem_20261101.tar.xz.{pid_max + 1}.tmp"
    dead.write_bytes(b"half a bundle")

    _, said, warned = compact_here(tmp_path)

    assert warned == [] and not dead.exists()
    assert said[0] == f"removed {dead.name}, left by a run that was stopped"  # as a dry run says


def test_retention_deletes_only_old_bundles_and_says_which(tmp_path: Path) -> None:
    old_days = [TODAY - timedelta(days=back) for back in (40, 32, 31)]
    kept_days = [TODAY - timedelta(days=back) for back in (30, 29, 10)]
    for day in old_days + kept_days:
        (tmp_path / bundle_name(day)).write_bytes(b"a bundle")
    # A file that differs from its member stays loose, even on a day that goes.
    write_days(tmp_path, [TODAY - timedelta(days=33)], per_day=1)
    compact_here(tmp_path)
    loose_kept = tmp_path / f"sys_mem_{stamp(TODAY - timedelta(days=33))}.csv"
    loose_kept.write_bytes(b"differs\n")
    recent = write_snapshot(tmp_path, stamp(TODAY - timedelta(days=1)))

    report, said, warned = compact_here(tmp_path, keep_days=30)

    doomed = sorted([*old_days, TODAY - timedelta(days=33)])
    assert said[0] == (
        f"deleting 4 bundles older than 30 days: {', '.join(d.isoformat() for d in doomed)}"
    )
    assert report.bundles_deleted == doomed
    assert re.fullmatch(r"4 old bundles deleted in \d+\.\d s; 1 problem \(see above\)", said[1])
    assert sorted(p.name for p in tmp_path.glob("mem_*")) == sorted(
        bundle_name(day) for day in kept_days
    )
    assert loose_kept.read_bytes() == b"differs\n"
    assert all(path.exists() for path in recent)
    assert len(warned) == 1  # the differing file


def test_nothing_to_do_says_so(tmp_path: Path) -> None:
    write_days(tmp_path, [TODAY - timedelta(days=2), TODAY])
    report, said, warned = compact_here(tmp_path)
    assert said == ["nothing to compact: no loose files of days up to 2026-11-22"]
    assert warned == [] and report.ok


def test_without_keep_days_no_bundle_is_ever_deleted(tmp_path: Path) -> None:
    ancient = tmp_path / bundle_name(TODAY - timedelta(days=3000))
    ancient.write_bytes(b"a bundle")
    report, _, _ = compact_here(tmp_path)
    assert ancient.exists() and report.bundles_deleted == []


def test_dry_run_changes_nothing(tmp_path: Path) -> None:
    today = utc_today()
    bundled, loose = today - timedelta(days=8), today - timedelta(days=6)
    write_days(tmp_path, [bundled])
    compact_here(tmp_path, today=today)
    with tarfile.open(tmp_path / bundle_name(bundled)) as tar:  # copies already in it
        tar.extractall(tmp_path, filter="tar")
    write_days(tmp_path, [loose], per_day=2)
    (tmp_path / bundle_name(today - timedelta(days=100))).write_bytes(b"old")
    pid_max = int(Path("/proc/sys/kernel/pid_max").read_text())
    stale = f".mem_20260101.tar.xz.{pid_max + 1}.tmp"
    (tmp_path / stale).write_bytes(b"left over")
    before = dir_state(tmp_path)

    result = run_script(NAME, "--dumps-dir", str(tmp_path), "--dry-run", "--keep-days", "30")

    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    assert dir_state(tmp_path) == before
    old_day = (today - timedelta(days=100)).isoformat()
    assert result.stdout.splitlines()[:-1] == [
        f"would remove {stale}, left by a run that was stopped",
        f"would remove 6 loose files already in {bundle_name(bundled)}",
        f"would write {bundle_name(loose)}: 4 files, {decimal_size(loose_bytes(tmp_path, loose))}",
        f"would delete 1 bundle older than 30 days: {old_day}",
    ]
    assert result.stdout.splitlines()[-1] == (
        f"dry run: would write 1 bundle (4 files, {decimal_size(loose_bytes(tmp_path, loose))})"
        " and remove 10 loose files; nothing changed"
    )


def loose_bytes(dumps: Path, day: date) -> int:
    return sum(
        path.stat().st_size
        for path in dumps.iterdir()
        if day_compaction.dump_key(path.name) is not None and day_of(path.name) == day
    )


def test_a_second_run_exits_0_while_the_lock_is_held(tmp_path: Path) -> None:
    write_days(tmp_path, [utc_today() - timedelta(days=9)])
    lock_fd = os.open(tmp_path / compaction.LOCK_NAME, os.O_RDWR | os.O_CREAT, 0o640)
    try:
        fcntl.flock(lock_fd, fcntl.LOCK_EX)
        before = dir_state(tmp_path)
        result = run_script(NAME, "--dumps-dir", str(tmp_path))
    finally:
        os.close(lock_fd)
    assert result.returncode == 0
    assert result.stdout == ""
    assert result.stderr == (
        f"compact_dumps: another compact_dumps run holds {tmp_path / compaction.LOCK_NAME}; nothing done\n"
    )
    assert dir_state(tmp_path) == before


def test_a_dry_run_takes_no_lock_file_and_waits_for_no_run(tmp_path: Path) -> None:
    write_days(tmp_path, [utc_today() - timedelta(days=9)])
    result = run_script(NAME, "--dumps-dir", str(tmp_path), "--dry-run")
    assert result.returncode == 0 and result.stderr == ""
    assert not (tmp_path / compaction.LOCK_NAME).exists()
    lock_fd = os.open(tmp_path / compaction.LOCK_NAME, os.O_RDWR | os.O_CREAT, 0o640)
    try:
        fcntl.flock(lock_fd, fcntl.LOCK_EX)  # a run is busy: a dry run would misreport
        result = run_script(NAME, "--dumps-dir", str(tmp_path), "--dry-run")
    finally:
        os.close(lock_fd)
    assert result.returncode == 0 and result.stdout == ""
    assert "another compact_dumps run holds" in result.stderr


def test_two_runs_at_once_do_not_corrupt_anything(
    tmp_path: Path, small_days: tuple[Path, set[date]]
) -> None:
    pristine, eligible = small_days
    dumps = tmp_path / "dumps"
    link_copy(pristine, dumps)
    originals = loose_table(dumps)
    command = [sys.executable, str(SCRIPT), "--dumps-dir", str(dumps)]
    procs = [
        subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for _ in range(2)
    ]
    outputs = [proc.communicate(timeout=120) for proc in procs]
    assert [proc.returncode for proc in procs] == [0, 0], outputs
    check_final(dumps, originals, eligible)


@pytest.mark.parametrize(
    ("signum", "status", "message"),
    [(signal.SIGTERM, 143, "stopped by SIGTERM"), (signal.SIGINT, 130, "interrupted")],
)
def test_a_signal_stops_cleanly(
    tmp_path: Path,
    small_days: tuple[Path, set[date]],
    signum: int,
    status: int,
    message: str,
) -> None:
    pristine, eligible = small_days
    dumps = tmp_path / "dumps"
    link_copy(pristine, dumps)
    originals = loose_table(dumps)
    proc = subprocess.Popen(
        [sys.executable, str(SCRIPT), "--dumps-dir", str(dumps)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    first = proc.stdout.readline()  # the first day is done; stop it in the second
    time.sleep(0.01)
    proc.send_signal(signum)
    _, err = proc.communicate(timeout=30)
    assert first.startswith("mem_")
    assert proc.returncode == status, err
    assert err == (
        f"compact_dumps: {message}; the day in progress is left as it was, and the next run"
        " carries on\n"
    )
    seen = check_invariant(dumps, originals, eligible)
    assert seen.temps == 0
    done = run_script(NAME, "--dumps-dir", str(dumps))
    assert done.returncode == 0, done.stderr
    check_final(dumps, originals, eligible)


# --- Footprint -------------------------------------------------------------------------------


def peak_rss_kib(command: list[str]) -> int:
    """Peak RSS of one command, measured by a fresh wrapper so nothing else counts."""
    wrapper = (
        "import resource, subprocess, sys; subprocess.run(sys.argv[1:], check=True,"
        " stdout=subprocess.DEVNULL, timeout=300);"
        " print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)"
    )
    out = subprocess.run(
        [sys.executable, "-c", wrapper, *command],
        capture_output=True,
        text=True,
        check=True,
        timeout=320,
    )
    return int(out.stdout)


@pytest.mark.slow
def test_compacting_two_busy_days_stays_under_60_mib(tmp_path: Path) -> None:
    today = datetime.combine(utc_today(), datetime.min.time(), tzinfo=UTC)
    generate_dumps(tmp_path, snapshots=288, processes=500, start=today - timedelta(days=10))
    loose_bytes = sum(path.stat().st_size for path in tmp_path.iterdir())
    peak = peak_rss_kib([sys.executable, str(SCRIPT), "--dumps-dir", str(tmp_path)])
    bundles = list(tmp_path.glob("mem_*.tar.xz"))
    assert len(bundles) == 2
    assert peak < 60 * 1024, f"peak RSS {peak / 1024:.1f} MiB"
    assert loose_bytes / sum(path.stat().st_size for path in bundles) > 20


def test_the_script_imports_only_the_standard_library() -> None:
    probe = (
        "import json, sys; sys.path.insert(0, sys.argv[1]); before = set(sys.modules);"
        " import compact_dumps; mods = set(sys.modules) - before;"
        " std = sys.stdlib_module_names;"
        " print(json.dumps(sorted(m for m in mods if m.split('.')[0] not in std)))"
    )
    out = subprocess.run(
        [sys.executable, "-S", "-s", "-E", "-c", probe, str(SCRIPT.parent)],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    # Our own modules may be loaded (each must be standard library only, which the
    # absence of anything else proves): no numpy, no pandas, nothing from site-packages.
    ours = [name for name in json.loads(out.stdout) if name.split(".")[0] != "utils"]
    assert ours == ["compact_dumps"], out.stdout


def test_it_runs_without_site_packages(tmp_path: Path) -> None:
    write_days(tmp_path, [utc_today() - timedelta(days=4)])
    result = subprocess.run(
        [sys.executable, "-S", "-s", "-E", str(SCRIPT), "--dumps-dir", str(tmp_path)],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert len(list(tmp_path.glob("mem_*.tar.xz"))) == 1
