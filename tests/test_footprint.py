"""The leak finder on anon + swap: a leak that memory pressure pushes into swap.

Leaked pages are never touched again, so the kernel swaps them out first: RSS stops
rising while the footprint (RssAnon + VmSwap) goes on. Judged on RSS such a leak looks
settled; judged on the footprint it is found. Exact fixtures here; the real kernel's
version of the same leak is in test_soak.py.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import analyze_processes
from conftest import FullRow, ProcessRow, assert_real_png, run_main, write_proc
from utils.judge.spreads import pid_plot
from utils.parser import PROCESS_PREFIX, find_dumps
from utils.process_analysis import load_all_records

START = datetime(2026, 3, 1)
STEP = timedelta(minutes=10)
SNAPSHOTS = 3 * 144
CAP_MB = 300.0  # what the memory cgroup leaves the leaker in RAM
FILE_MB = 40.0  # its file-backed pages: in RSS, never in anon or swap
RATE_MB_PER_DAY = 100.0
STARTED = "2026-02-28 12:00:00.00"


def rows(index: int, old: bool) -> list[ProcessRow | FullRow]:
    days = index / 144
    noise = float(np.random.default_rng(index).normal(0, 0.5))
    anon = 150.0 + RATE_MB_PER_DAY * days + noise  # what the leaker owns, wherever it is
    in_ram = min(anon, CAP_MB - FILE_MB)
    leaker: FullRow = (
        50,
        1,
        "app",
        in_ram + FILE_MB,
        900.0,
        "/srv/leaky",
        in_ram,
        anon - in_ram,
        STARTED,
    )
    # Swapped out once, long ago, and steady since: no leak.
    steady: FullRow = (
        60,
        1,
        "app",
        200.0 + noise,
        500.0,
        "/srv/steady",
        150.0 + noise,
        50.0,
        STARTED,
    )
    # A cache warming up for a few hours, then flat: no leak.
    warm = 400.0 - 300.0 * float(np.exp(-days * 8))
    cache: FullRow = (
        70,
        1,
        "app",
        warm + noise,
        900.0,
        "/srv/cache",
        warm - 20 + noise,
        0.0,
        STARTED,
    )
    full = [leaker, steady, cache]
    return [row[:6] for row in full] if old else list(full)  # fmt: skip


def write_host(dumps: Path, old: bool) -> Path:
    dumps.mkdir()
    for index in range(SNAPSHOTS):
        write_proc(dumps, f"{START + index * STEP:%Y%m%d_%H%M%S}", rows(index, old))
    return dumps


@pytest.mark.slow
@pytest.mark.parametrize("old", [False, True], ids=["anon+swap", "RSS only"])
def test_a_leak_into_swap_is_found_on_anon_plus_swap_and_missed_on_rss(
    tmp_path: Path, old: bool
) -> None:
    dumps = write_host(tmp_path / "dumps", old)
    out = tmp_path / "out"
    ran = run_main(analyze_processes.main, ["--dumps-dir", str(dumps), "--out", str(out)])
    assert ran.status == 0, ran.stderr
    leaks = pd.read_csv(out / "leaks.csv")
    if old:  # RSS rose, then stayed at the cap: the leak reads as a ramp that settled
        assert leaks.empty
        return
    assert leaks["PID"].tolist() == [50]
    assert leaks.loc[0, "basis"] == "anon+swap"
    assert leaks.loc[0, "growth_MB_per_day"] == pytest.approx(RATE_MB_PER_DAY, rel=0.1)
    assert "anon+swap" in ran.stdout
    plots = list(out.glob("leak_50_*.png"))
    assert len(plots) == 1
    assert_real_png(plots[0])


def test_the_per_pid_plot_adds_swap_only_where_some_was_used(tmp_path: Path) -> None:
    dumps = write_host(tmp_path / "dumps", old=False)
    records = load_all_records(find_dumps(dumps, PROCESS_PREFIX), lambda p, why: None)
    leaker, cache = pid_plot(records, 50, "/srv/leaky"), pid_plot(records, 70, "/srv/cache")
    assert cache.swap_mb is None
    assert leaker.swap_mb is not None
    assert leaker.swap_mb[0] == 0.0 and leaker.swap_mb[-1] > 150.0
    assert len(leaker.swap_mb) == len(leaker.series[0]) == SNAPSHOTS
