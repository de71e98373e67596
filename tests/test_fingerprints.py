"""The days' fingerprints are the same whether a forked child looks at half of them or not,
and whatever becomes of the child."""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from synthetic import generate_dumps
from utils import parser
from utils.parser import TimeWindow
from utils.read.day_workers import days_of
from utils.reduce import fingerprints
from utils.reduce.fingerprints import Folder, fingerprint

needs_two_cores = pytest.mark.skipif(
    len(os.sched_getaffinity(0)) < 2, reason="the child is forked only with a second core"
)


@pytest.fixture(scope="module")
def dumps(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Four days at 30 minutes."""
    out = tmp_path_factory.mktemp("dumps")
    generate_dumps(out, 4 * 48, processes=4, seed=5, interval_s=1800)
    return out


@pytest.fixture
def days(dumps: Path) -> list[tuple[parser.Source, ...]]:
    return days_of(parser.find_sources(dumps, "process_mem_", TimeWindow()))


@pytest.fixture
def forks(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[int]]:
    """Every file counts as many: the child is forked; the children forked, by pid."""
    monkeypatch.setattr(fingerprints, "PARALLEL_MIN_FILES", 1)
    children: list[int] = []
    real = os.fork

    def fork() -> int:
        pid = real()
        if pid:
            children.append(pid)
        return pid

    monkeypatch.setattr(os, "fork", fork)
    yield children


def one_by_one(days: list[tuple[parser.Source, ...]], dumps: Path) -> list[str | None]:
    with Folder(dumps) as folder:
        return [fingerprint(day, folder) for day in days]


@needs_two_cores
def test_half_looked_at_by_a_child_gives_the_same_digests(
    days: list[tuple[parser.Source, ...]], dumps: Path, forks: list[int]
) -> None:
    with Folder(dumps) as folder:
        got = fingerprints.fingerprints(days, folder)
    assert len(forks) == 1
    assert got == one_by_one(days, dumps) and len(set(got)) == len(days) and None not in got


@needs_two_cores
def test_a_file_gone_in_the_childs_half_is_a_day_without_fingerprint(
    days: list[tuple[parser.Source, ...]], dumps: Path, forks: list[int], tmp_path: Path
) -> None:
    (copy := tmp_path / "dumps").mkdir()
    for day in days:
        for source in day:
            os.link(source.path, copy / source.path.name)
    moved = days_of(parser.find_sources(copy, "process_mem_", TimeWindow()))
    (copy / moved[-1][0].path.name).unlink()
    with Folder(copy) as folder:
        got = fingerprints.fingerprints(moved, folder)
    assert len(forks) == 1
    assert got[-1] is None and got[:-1] == one_by_one(days, dumps)[:-1]


@needs_two_cores
@pytest.mark.parametrize("how", ["exits", "says nonsense", "says too little"])
def test_a_child_that_fails_leaves_its_days_to_this_process(
    days: list[tuple[parser.Source, ...]],
    dumps: Path,
    forks: list[int],
    monkeypatch: pytest.MonkeyPatch,
    how: str,
) -> None:
    def serve(days: object, folder: object, writer: int) -> None:
        said = {"exits": b"", "says nonsense": b"[1, 2", "says too little": b'["x"]'}[how]
        os.write(writer, said)
        os._exit(1 if how == "exits" else 0)

    monkeypatch.setattr(fingerprints, "_serve", serve)
    with Folder(dumps) as folder:
        got = fingerprints.fingerprints(days, folder)
    assert len(forks) == 1
    assert got == one_by_one(days, dumps)


def test_no_child_while_another_thread_runs(
    days: list[tuple[parser.Source, ...]], dumps: Path, forks: list[int]
) -> None:
    """A fork copies only the calling thread: a lock another one held would stay held."""
    stop = threading.Event()
    other = threading.Thread(target=stop.wait)
    other.start()
    try:
        with Folder(dumps) as folder:
            got = fingerprints.fingerprints(days, folder)
    finally:
        stop.set()
        other.join()
    assert forks == [] and got == one_by_one(days, dumps)


def test_the_split_leaves_about_half_the_files_on_each_side(
    days: list[tuple[parser.Source, ...]],
) -> None:
    half = fingerprints._split(days)
    before = sum(len(day) for day in days[:half])
    total = sum(len(day) for day in days)
    assert 0 < half <= len(days) and 2 * before >= total
    assert 2 * (before - len(days[half - 1])) < total
