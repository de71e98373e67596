"""The plot worker: half the PNGs drawn in a second process, the same files either way."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import matplotlib
import numpy as np
import numpy.typing as npt
import pytest
from PIL import Image

from utils.outputs.plotting import (
    DPI,
    FIGSIZE_IN,
    Line,
    PlotWorker,
    new_figure,
    plot_series,
    save_figure,
    set_titles,
    style_time_axis,
    style_value_axis,
    tick_decimals,
)


def write_pid(path: Path, text: str) -> Path:
    """A stand-in plot job: writes which process drew it."""
    path.write_text(f"{text} {os.getpid()}\n")
    return path


PARENT = os.getpid()


def refuse_in_worker(path: Path, text: str) -> Path:
    if os.getpid() != PARENT:
        raise OSError(28, "No space left on device", str(path))
    return write_pid(path, text)


@pytest.mark.parametrize("enabled", [True, False])
def test_worker_draws_from_the_front_and_keeps_order(tmp_path: Path, enabled: bool) -> None:
    jobs = [(tmp_path / f"{n}.txt", f"job{n}") for n in range(5)]
    with PlotWorker(enabled) as worker:
        paths = worker.draw([(write_pid, job) for job in jobs])
    assert paths == [path for path, _ in jobs]
    drawers = [int(path.read_text().split()[1]) for path in paths]
    assert [path.read_text().split()[0] for path in paths] == [f"job{n}" for n in range(5)]
    here = os.getpid()
    if enabled:
        # The worker takes the first two at once; this process the last, then its way back.
        assert drawers[0] == drawers[1] != here
        assert drawers[4] == here
        assert set(drawers) == {drawers[0], here}
    else:
        assert set(drawers) == {here}


def test_a_slow_worker_leaves_the_rest_to_this_process(tmp_path: Path) -> None:
    jobs = [(slow_in_worker, (tmp_path / f"{n}.txt", f"job{n}")) for n in range(8)]
    with PlotWorker() as worker:
        paths = worker.draw(jobs)
    drawers = [int(path.read_text().split()[1]) for path in paths]
    assert drawers[:2] == [drawers[0]] * 2 and drawers[0] != os.getpid()
    assert drawers[2:] == [os.getpid()] * 6  # never handed over: the worker stayed busy


def slow_in_worker(path: Path, text: str) -> Path:
    if os.getpid() != PARENT:
        time.sleep(0.5)
    return write_pid(path, text)


def test_an_error_in_the_worker_reaches_the_caller(tmp_path: Path) -> None:
    with PlotWorker() as worker, pytest.raises(OSError, match="No space left on device"):
        worker.draw(
            [(refuse_in_worker, (tmp_path / "a", "x")), (refuse_in_worker, (tmp_path / "b", "y"))]
        )
    assert (tmp_path / "b").exists()  # drawn here
    assert not (tmp_path / "a").exists()  # refused there


def test_a_single_moment_gets_an_hour_wide_axis() -> None:
    times = np.array(["2026-03-01T10:00:00"], dtype="datetime64[s]")
    _figure, axes = new_figure()
    plot_series(axes, Line(times, np.array([5.0]), "x", "black"), None)
    style_time_axis(axes, times)
    low, high = axes.get_xlim()  # in days
    assert round((high - low) * 86400) == 3600


def test_a_png_is_the_drawn_figure_in_rgb_at_its_size(tmp_path: Path) -> None:
    figure, axes = new_figure()
    times = np.array(["2026-01-01T00:00", "2026-01-01T01:00"], dtype="datetime64[s]")
    plot_series(axes, Line(times, np.array([1.0, 2.0]), "x", "#ff0000"), None)
    path = save_figure(figure, tmp_path / "a.png")
    assert [entry.name for entry in tmp_path.iterdir()] == ["a.png"]  # no temporary left
    with Image.open(path) as image:
        assert image.format == "PNG" and image.mode == "RGB"
        assert image.size == (FIGSIZE_IN[0] * DPI, FIGSIZE_IN[1] * DPI)
        assert [round(value) for value in image.info["dpi"]] == [DPI, DPI]
        assert image.getpixel((0, 0)) == (255, 255, 255)  # the figure's white
        pixels = np.asarray(image)
    # The line is drawn: pure red pixels, where the figure canvas put them.
    figure.canvas.draw()
    drawn = np.asarray(figure.canvas.buffer_rgba())[..., :3]  # type: ignore[attr-defined]
    assert np.array_equal(pixels, drawn)
    assert np.any(np.all(pixels == (255, 0, 0), axis=-1))


@pytest.mark.parametrize(
    ("ticks", "decimals"),
    [
        ([0.0, 500.0, 1000.0, 1500.0], 0),
        ([0.0, 0.2, 0.4, 0.6000000000000001, 0.8, 1.0, 1.2], 1),
        ([0.0, 0.25, 0.5, 0.75], 2),
        ([1.0], 0),
        ([], 0),
    ],
)
def test_ticks_get_the_decimals_their_step_needs(ticks: list[float], decimals: int) -> None:
    assert tick_decimals(ticks) == decimals


@pytest.mark.parametrize(
    ("top_mb", "first_labels"), [(1.2, ["0.0", "0.2"]), (8_432.6, ["0", "1,000"])]
)
def test_a_small_process_axis_has_labels_that_differ(
    top_mb: float, first_labels: list[str]
) -> None:
    figure, axes = new_figure()
    times = np.array(["2026-01-01T00:00", "2026-01-01T01:00"], dtype="datetime64[s]")
    plot_series(axes, Line(times, np.array([top_mb * 0.9, top_mb]), "x", "black"), None)
    style_value_axis(axes, "MiB")
    figure.canvas.draw()  # the ticks are placed and formatted at drawing
    labels = [label.get_text() for label in axes.get_yticklabels()]
    assert labels[:2] == first_labels
    assert len(set(labels)) == len(labels)


@pytest.mark.slow
def test_the_worker_does_not_outlive_a_killed_parent() -> None:
    scripts = Path(__file__).resolve().parent.parent / "scripts"
    code = (
        f"import sys, time; sys.path.insert(0, {str(scripts)!r})\n"
        "from utils.outputs.plotting import PlotWorker\n"
        "worker = PlotWorker()\n"
        "print(*worker._pool._processes, flush=True)\n"  # the forked worker's PID
        "time.sleep(60)\n"
    )
    parent = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    assert parent.stdout is not None
    worker_pid = int(parent.stdout.readline())
    parent.kill()  # SIGKILL: no clean-up runs in the parent
    parent.wait(timeout=10)
    deadline = time.monotonic() + 10
    try:
        while alive(worker_pid):
            assert time.monotonic() < deadline, "the plot worker outlived its parent"
            time.sleep(0.1)
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.kill(worker_pid, signal.SIGKILL)  # never leave an orphan behind


def alive(pid: int) -> bool:
    """Running, not a zombie waiting to be reaped."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().split()[2] != "Z"
    except FileNotFoundError:
        return False


@pytest.mark.slow
def test_sigterm_to_the_whole_group_is_one_line_from_the_parent(tmp_path: Path) -> None:
    # timeout, pkill and systemd signal every process of the group, worker included.
    scripts = Path(__file__).resolve().parent.parent / "scripts"
    code = (
        f"import os, signal, sys, time; sys.path.insert(0, {str(scripts)!r})\n"
        "from pathlib import Path\n"
        "from utils.console import run_analysis\n"
        "from utils.outputs.plotting import PlotWorker\n"
        "def analysis(session):\n"
        "    with PlotWorker() as worker:\n"
        "        os.killpg(0, signal.SIGTERM)\n"
        "        time.sleep(5)\n"
        "sys.exit(run_analysis('prog', analysis, Path('.'), False))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        timeout=30,
        start_new_session=True,  # its own group, so killpg reaches only it and the worker
        check=False,
        cwd=tmp_path,  # the out dir '.': nothing written into the repository, whatever happens
    )
    assert result.stderr == "prog: stopped by SIGTERM\n"
    assert result.returncode == 143


def test_a_png_is_the_same_under_a_matplotlibrc_that_makes_figures_transparent(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def drawn(name: str) -> npt.NDArray[np.uint8]:
        figure, axes = new_figure()
        set_titles(axes, "A title", "a subtitle")  # text on the figure's own background
        with Image.open(save_figure(figure, tmp_path / name)) as image:
            return np.asarray(image)

    usual = drawn("usual.png")
    monkeypatch.setitem(matplotlib.rcParams, "figure.facecolor", "none")
    assert np.array_equal(drawn("transparent.png"), usual)
