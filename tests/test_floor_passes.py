"""The leak verdict's floors a pass at a time: the passes cover every row once, in whole
instances; the prefilter's rise matches a plain loop; and a survey's verdicts do not depend
on the pass length, nor on the short instances beside the judged ones."""

from __future__ import annotations

import itertools

import numpy as np
import numpy.typing as npt
import pytest
from growth_verdicts import verdicts
from hypothesis import given
from hypothesis import strategies as st
from series_growth import tables_of

from utils.judge import growth
from utils.judge.floor_passes import passes, rise_mb
from utils.judge.growth import GrowthParams, survey

IntArray = npt.NDArray[np.int64]
FloatArray = npt.NDArray[np.float64]
Series = tuple[IntArray, FloatArray]

DAY_S = 86_400
INTERVAL_S = 600
T0 = 1_772_323_200  # 2026-03-01 00:00:00 UTC

sorted_instances = st.lists(st.integers(0, 12), max_size=60).map(
    lambda values: np.array(sorted(values), dtype=np.int64)
)


@given(sorted_instances, st.integers(1, 9))
def test_passes_cover_every_row_once_in_whole_instances(instance: IntArray, per: int) -> None:
    runs = passes(instance, per)
    assert runs[0].start == 0 and runs[-1].stop == instance.size
    for before, after in itertools.pairwise(runs):
        assert before.stop == after.start
        assert instance[before.stop - 1] != instance[after.start]
    assert all(run.stop > run.start for run in runs) or instance.size == 0
    assert len(runs) <= max(1, -(-instance.size // per))


@given(sorted_instances, st.integers(1, 5), st.data())
def test_rise_is_the_last_floors_highest_over_the_lowest(
    instance: IntArray, last: int, data: st.DataObject
) -> None:
    values = st.floats(0, 1e4, allow_nan=False)
    floor_mb = np.array(data.draw(st.lists(values, min_size=instance.size, max_size=instance.size)))
    rise = np.full(13, np.nan)
    rise_mb(instance, floor_mb, last, rise)
    for i in range(13):
        own = floor_mb[instance == i]
        expected = own[-last:].max() - own.min() if own.size else np.nan
        assert rise[i] == pytest.approx(expected, nan_ok=True)


def _series(base_mb: float, rate_mb_per_day: float, days: float, seed: int) -> Series:
    rng = np.random.default_rng(seed)
    times = T0 + np.arange(int(days * DAY_S / INTERVAL_S), dtype=np.int64) * INTERVAL_S
    values = base_mb + rate_mb_per_day * (times - T0) / DAY_S
    return times, values * (1 + 0.01 * rng.standard_normal(times.size))


def test_verdicts_do_not_depend_on_the_pass_length(monkeypatch: pytest.MonkeyPatch) -> None:
    lives = [
        _series(400.0, 40.0, 14, 1),
        _series(50.0, 0.0, 0.2, 2),  # short: never judged
        _series(300.0, 80.0, 14, 3),
        _series(2500.0, 0.0, 14, 4),
        _series(80.0, 300.0, 0.5, 5),  # short
        _series(900.0, 50.0, 10, 6),
    ]
    floors, spans = tables_of(lives, collection_s=14 * DAY_S)
    params = GrowthParams()
    whole = survey(floors, spans, INTERVAL_S, params)
    assert [g.instance for g in whole.growths] == [2, 5, 0]
    assert (whole.judged, whole.instances) == (4, 6)
    # Each instance judged among all of them, short ones included, without passes.
    monkeypatch.setattr(growth, "ROWS_PER_PASS", 1 << 30)
    every = verdicts(floors, spans, INTERVAL_S, params)
    assert sorted(whole.growths, key=lambda g: g.instance) == [v.growth for v in every if v.growth]
    for per in (1, 5, 40):
        monkeypatch.setattr(growth, "ROWS_PER_PASS", per)
        assert survey(floors, spans, INTERVAL_S, params) == whole
