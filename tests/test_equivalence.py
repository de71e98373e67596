"""The fast analyses give the plain pandas implementation's results, to the dumps' 3 decimals."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from benchmark import plain_rss_spread, plain_system_metrics
from synthetic import generate_dumps
from utils.parser import PROCESS_PREFIX, SYS_PREFIX, find_dumps
from utils.process_analysis import compute_rss_spread, load_all_records, top_spreads
from utils.system_analysis import load_and_compute_metrics


@pytest.fixture(scope="module")
def dumps(tmp_path_factory: pytest.TempPathFactory) -> Path:
    # Two weeks of 10-minute snapshots of 120 processes with a 5-hour outage:
    # short-lived PIDs, the leak, awkward command lines, several parse batches.
    out = tmp_path_factory.mktemp("dumps")
    generate_dumps(out, snapshots=2016, processes=120, seed=7, outage=(900, 30))
    return out


def fail(path: Path, reason: str) -> None:
    raise AssertionError(f"{path}: {reason}")


def test_system_metrics_match_the_plain_implementation(dumps: Path) -> None:
    ours = load_and_compute_metrics(find_dumps(dumps, SYS_PREFIX), fail)
    plain = plain_system_metrics(dumps)
    assert len(ours) == len(plain) == 2016 - 30
    for column in ["RAM_Used_MB", "Swap_Used_MB", "RAM_Used_Pct", "MemTotal_MB", "SwapFree_MB"]:
        assert ours[column].round(3).tolist() == plain[column].round(3).tolist(), column
    stamp = "%Y-%m-%d %H:%M:%S"
    assert list(pd.DatetimeIndex(ours.index).strftime(stamp)) == list(
        plain["timestamp"].dt.strftime(stamp)
    )


@pytest.mark.parametrize("top", [10, 200])
def test_rss_spread_matches_the_plain_implementation(dumps: Path, top: int) -> None:
    records = load_all_records(find_dumps(dumps, PROCESS_PREFIX), fail, batch_bytes=64 * 1024)
    ours = top_spreads(compute_rss_spread(records), top)
    plain = plain_rss_spread(dumps, top)
    assert ours["PID"].tolist() == plain["PID"].tolist()
    for column in ["min_RSS", "max_RSS", "spread"]:
        assert ours[column].round(3).tolist() == plain[column].round(3).tolist(), column
    assert ours["CMD"].tolist() == plain["CMD"].astype(str).tolist()
    assert ours["spread"].iloc[0] > 1000  # the leak leads


def test_match_keeps_only_matching_rows(dumps: Path) -> None:
    records = load_all_records(find_dumps(dumps, PROCESS_PREFIX), fail, match="postgres")
    ours = compute_rss_spread(records)
    assert len(ours) > 0
    assert all("postgres" in cmd for cmd in ours["CMD"])
    everything = compute_rss_spread(load_all_records(find_dumps(dumps, PROCESS_PREFIX), fail))
    expected = everything[everything["CMD"].str.contains("postgres", regex=False)]
    # A PID whose every row matches has the same numbers with or without --match.
    pd.testing.assert_frame_equal(
        ours.set_index("PID").loc[expected["PID"]].reset_index(),
        expected.reset_index(drop=True),
        check_dtype=False,
    )
