"""Modules imported in a background thread: done by join(), a failure left to the importer,
and in the process analysis only once the reading workers are forked."""

from __future__ import annotations

import sys
import threading
from pathlib import Path

import pytest

import analyze_processes
from synthetic import generate_dumps
from utils.core.preload import Preload
from utils.read import day_workers


def test_the_modules_are_imported_by_join(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delitem(sys.modules, "colorsys", raising=False)
    preload = Preload(["colorsys"])
    preload.start()
    preload.start()  # once
    preload.join()
    assert "colorsys" in sys.modules
    assert threading.active_count() == 1


def test_a_module_that_fails_is_left_to_its_importer() -> None:
    preload = Preload(["utils.no_such_module", "colorsys"])
    preload.start()
    preload.join()  # no error here: whoever needs it meets it
    with pytest.raises(ModuleNotFoundError):
        __import__("utils.no_such_module")


def test_never_started_joins_at_once() -> None:
    Preload(["colorsys"]).join()
    Preload([]).start()
    assert threading.active_count() == 1


@pytest.mark.skipif(day_workers.usable_cores() < 2, reason="no reading workers on one core")
def test_the_plot_modules_are_imported_once_the_workers_are_forked(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    generate_dumps(tmp_path / "dumps", 3 * 48, processes=6, seed=2, interval_s=1800)
    threads_at_fork: list[int] = []
    started: list[tuple[int, ...]] = []
    real_start, real_preload = day_workers.DayWorkers._start, Preload.start

    def start(self: day_workers.DayWorkers) -> None:
        threads_at_fork.append(threading.active_count())
        real_start(self)

    def preload_start(self: Preload) -> None:
        started.append((len(threads_at_fork),))
        real_preload(self)

    monkeypatch.setattr(day_workers.DayWorkers, "_start", start)
    monkeypatch.setattr(Preload, "start", preload_start)
    status = analyze_processes.main(
        ["--dumps-dir", str(tmp_path / "dumps"), "--out-dir", str(tmp_path / "out"),
         "--no-summaries", "--read-workers", "2"]
    )  # fmt: skip
    assert status == 0
    assert threads_at_fork and threads_at_fork[0] == 1  # the workers forked alone
    assert started and started[0][0] >= 1  # the preload after them
    assert list((tmp_path / "out").glob("*.png"))
