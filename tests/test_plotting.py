"""The plot worker: half the PNGs drawn in a second process, the same files either way."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from utils.plotting import PlotWorker


def write_pid(path: Path, text: str) -> Path:
    """A stand-in plot job: writes which process drew it."""
    path.write_text(f"{text} {os.getpid()}\n")
    return path


def refuse(path: Path, text: str) -> Path:
    raise OSError(28, "No space left on device", str(path))


@pytest.mark.parametrize("enabled", [True, False])
def test_worker_draws_every_other_job_and_keeps_order(tmp_path: Path, enabled: bool) -> None:
    jobs = [(tmp_path / f"{n}.txt", f"job{n}") for n in range(5)]
    with PlotWorker(enabled) as worker:
        paths = worker.draw(write_pid, jobs)
    assert paths == [path for path, _ in jobs]
    drawers = [int(path.read_text().split()[1]) for path in paths]
    assert [path.read_text().split()[0] for path in paths] == [f"job{n}" for n in range(5)]
    here = os.getpid()
    if enabled:
        assert drawers[1] == drawers[3] == here
        assert drawers[0] == drawers[2] == drawers[4] != here
    else:
        assert set(drawers) == {here}


def test_an_error_in_the_worker_reaches_the_caller(tmp_path: Path) -> None:
    with PlotWorker() as worker, pytest.raises(OSError, match="No space left on device"):
        worker.draw(refuse, [(tmp_path / "a", "x"), (tmp_path / "b", "y")])
