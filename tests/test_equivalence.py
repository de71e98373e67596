"""The fast analyses give the plain pandas implementation's results, to the dumps' 3 decimals."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from bench.baseline import plain_rss_spread, plain_system_metrics
from synthetic import generate_dumps
from utils.judge.growth import GrowthParams
from utils.judge.leaks import Judged, find_leaks
from utils.outputs.plotting import usual_interval_s
from utils.outputs.process_tables import write_leaks_csv
from utils.parser import PROCESS_PREFIX, SYS_PREFIX, find_dumps
from utils.process_analysis import ProcessOptions, ReadPlan, compute_rss_spread, load_all_records
from utils.read.threaded_reader import BATCH_BYTES
from utils.system_analysis import load_and_compute_metrics

# Two weeks of snapshots read both ways: many seconds.
pytestmark = pytest.mark.slow


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
    ours = load_and_compute_metrics(find_dumps(dumps, SYS_PREFIX), fail).metrics
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
    records = load_all_records(
        find_dumps(dumps, PROCESS_PREFIX), fail, how=ReadPlan(batch_bytes=64 * 1024)
    )
    ours = compute_rss_spread(records).head(top).reset_index(drop=True)
    plain = plain_rss_spread(dumps, top)
    assert ours["PID"].tolist() == plain["PID"].tolist()
    for column in ["min_RSS", "max_RSS", "spread"]:
        assert ours[column].round(3).tolist() == plain[column].round(3).tolist(), column
    assert ours["CMD"].tolist() == plain["CMD"].astype(str).tolist()
    assert ours["spread"].iloc[0] > 1000  # the leak leads


def test_match_keeps_only_matching_rows(dumps: Path) -> None:
    records = load_all_records(
        find_dumps(dumps, PROCESS_PREFIX), fail, options=ProcessOptions(match="postgres")
    )
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


# The leak table on these two weeks, pinned: changes to how the rows are read and held
# (batch sizes, dtypes, what is kept) must not move it by a digit.
PINNED_LEAKS = (
    "PID,first_seen,last_seen,since,growth_MB_per_day,growth_MB,confidence,CMD,basis\n"
    "131,2026-01-01 00:00:00,2026-01-14 23:50:00,2026-01-01 09:00:00,291.001,3962.865,1.000,"
    '"/usr/bin/python3 /opt/shop/bin/gunicorn shop.wsgi:application --bind=0.0.0.0:8000'
    ' --name ""shop, eu-west""",anon+swap\n'
)


@pytest.mark.parametrize("batch_bytes", [64 * 1024, BATCH_BYTES])
def test_the_leak_table_is_pinned(dumps: Path, tmp_path: Path, batch_bytes: int) -> None:
    records = load_all_records(
        find_dumps(dumps, PROCESS_PREFIX), fail, how=ReadPlan(batch_bytes=batch_bytes)
    )
    judged = Judged.of(records, records.instances())
    survey = find_leaks(records, judged, usual_interval_s(records.times), GrowthParams())
    path = write_leaks_csv(survey.leaks, tmp_path / "leaks.csv")
    assert path.read_text(encoding="utf-8") == PINNED_LEAKS
