"""Sustained growth: seeded 10-minute series per scenario, one verdict each.

Each scenario plants a known shape (a leak from a known time at a known rate, or none)
under realistic noise: a fast AR(1) deviation of a few percent, a slow wander over half
a day, a garbage collector's sawtooth, start-up ramps, nightly spikes, outages. The
seeds pinned here are a few of the many a throwaway loop checked.
"""

from __future__ import annotations

import re
from dataclasses import astuple, dataclass, replace

import numpy as np
import numpy.typing as npt
import pytest
from growth_verdicts import find_growth, judge, verdicts
from series_growth import floors_of, series_survey, tables_of

from utils.judge.growth import FloorTable, Growth, GrowthParams, InstanceSpans, Rule
from utils.reduce.buckets import BUCKET_S, MAX_LEVEL

IntArray = npt.NDArray[np.int64]
FloatArray = npt.NDArray[np.float64]
Series = tuple[IntArray, FloatArray]

DAY_S = 86_400
HOUR_S = 3600
INTERVAL_S = 600
T0 = 1_772_323_200  # 2026-03-01 00:00:00 UTC
PAGE_MB = 4 / 1024  # ps counts whole 4 kB pages
SEEDS = (1, 7, 2026)
PARAMS = GrowthParams()
RATE_TOLERANCE = 0.15
FAST_KEEP = 0.9  # per 10 minutes: the fast noise forgets in about 1.5 hours
SLOW_TAU_S = 12 * HOUR_S  # the slow wander forgets in half a day


@dataclass(frozen=True)
class Shape:
    """One process instance's planted RSS, in MiB, before noise."""

    base_mb: float
    days: float = 14.0
    noise: float = 0.03  # fast AR(1) deviation, relative standard deviation
    wander: float = 0.01  # slow AR(1) deviation, relative standard deviation
    leak_mb_per_day: float = 0.0
    leak_from_day: float = 0.0
    saw_mb: float = 0.0  # GC sawtooth: climbs by this much, then drops back
    ramp_mb: float = 0.0  # start-up ramp, reached exponentially
    ramp_tau_h: float = 2.0
    step_mb: float = 0.0
    step_day: float = 0.0
    spike_mb: float = 0.0  # every night 02:00-03:00 UTC
    outage: tuple[float, float] | None = None  # days (from the start) with no samples
    interval_s: int = INTERVAL_S


def ar1(rng: np.random.Generator, size: int, keep: float, sd: float) -> FloatArray:
    """A stationary AR(1) series: x[k] = keep * x[k-1] + step noise, standard deviation sd."""
    steps = rng.normal(0.0, sd * np.sqrt(1 - keep * keep), size)
    lags = int(np.ceil(np.log(1e-9) / np.log(keep))) if keep > 0 else 1
    kernel = keep ** np.arange(lags)
    warm = rng.normal(0.0, sd * np.sqrt(1 - keep * keep), lags)
    full = np.convolve(np.r_[warm, steps], kernel)[lags : lags + size]
    return np.asarray(full, dtype=np.float64)


def series(shape: Shape, rng: np.random.Generator, start_s: int | None = None) -> Series:
    """Snapshots of one instance: a fixed schedule with a few seconds of jitter, starting
    anywhere in a 6-hour bucket, with the planted shape under noise, in whole pages."""
    if start_s is None:
        start_s = T0 + int(rng.integers(0, BUCKET_S))
    count = int(shape.days * DAY_S // shape.interval_s) + 1
    times = start_s + np.arange(count, dtype=np.int64) * shape.interval_s
    times += rng.integers(0, 4, count)
    day = (times - times[0]) / DAY_S
    level = shape.base_mb + shape.leak_mb_per_day * np.maximum(0.0, day - shape.leak_from_day)
    level += shape.ramp_mb * (1 - np.exp(-day * 24 / shape.ramp_tau_h))
    level += shape.step_mb * (day >= shape.step_day)
    fast = ar1(rng, count, FAST_KEEP ** (shape.interval_s / INTERVAL_S), shape.noise)
    slow = ar1(rng, count, float(np.exp(-shape.interval_s / SLOW_TAU_S)), shape.wander)
    rss = level * (1 + fast + slow)
    if shape.saw_mb:
        period_s = rng.uniform(2, 4) * HOUR_S
        rss += shape.saw_mb * (((times + rng.uniform(0, period_s)) / period_s) % 1.0)
    if shape.spike_mb:
        rss += shape.spike_mb * ((times % DAY_S) // HOUR_S == 2)
    rss = np.maximum(PAGE_MB, np.round(rss / PAGE_MB) * PAGE_MB)
    if shape.outage is not None:
        kept = (day < shape.outage[0]) | (day >= shape.outage[1])
        times, rss = times[kept], rss[kept]
    return times, rss


def restarted(shape: Shape, every_days: float, rng: np.random.Generator) -> list[Series]:
    """A service restarted every few days: each life a new instance (a new PID)."""
    lives: list[Series] = []
    start = T0 + int(rng.integers(0, BUCKET_S))
    while start + every_days * DAY_S <= T0 + 14 * DAY_S + BUCKET_S:
        life = replace(shape, days=every_days - INTERVAL_S / DAY_S)
        lives.append(series(life, rng, start))
        start += int(every_days * DAY_S)
    return lives


def tables_of14(series_list: list[Series]) -> tuple[FloorTable, InstanceSpans]:
    """The tables of series from a two-week collection (the scenarios' own span)."""
    return tables_of(series_list, collection_s=14 * DAY_S)


def verdict_of(shape: Shape, seed: int, params: GrowthParams = PARAMS) -> tuple[Rule, str]:
    floors, spans = tables_of14([series(shape, np.random.default_rng(seed))])
    found = judge(floors, spans, 0, shape.interval_s, params)
    return found.rule, found.reason


def growth_of(shape: Shape, seed: int, params: GrowthParams = PARAMS) -> Growth:
    floors, spans = tables_of14([series(shape, np.random.default_rng(seed))])
    found = judge(floors, spans, 0, shape.interval_s, params)
    assert found.flagged, found.reason
    assert found.growth is not None
    assert find_growth(floors, spans, shape.interval_s, params) == [found.growth]
    return found.growth


def assert_rate(growth: Growth, planted: float) -> None:
    assert growth.rate_mb_per_day == pytest.approx(planted, rel=RATE_TOLERANCE)


# --- The scenarios --------------------------------------------------------------------
LINEAR_LEAK = Shape(base_mb=400.0, leak_mb_per_day=40.0)
SAWTOOTH_LEAK = Shape(base_mb=800.0, noise=0.01, saw_mb=300.0, leak_mb_per_day=25.0)
LATE_LEAK = Shape(base_mb=300.0, leak_mb_per_day=60.0, leak_from_day=6.0)
RESTARTED_LEAK = Shape(
    base_mb=250.0, noise=0.02, wander=0.005, leak_mb_per_day=120.0, ramp_mb=100.0, ramp_tau_h=1.0
)
OUTAGE_LEAK = Shape(base_mb=400.0, leak_mb_per_day=40.0, outage=(6.3, 7.3))
STARTUP_RAMP = Shape(base_mb=200.0, ramp_mb=600.0, ramp_tau_h=3.0)
SLOW_STARTUP_RAMP = Shape(base_mb=200.0, ramp_mb=600.0, ramp_tau_h=12.0)
NIGHTLY_SPIKE = Shape(base_mb=500.0, spike_mb=3072.0)
ONE_HOUR = Shape(base_mb=50.0, days=1 / 24, leak_mb_per_day=24_000.0)
DRIFT_IN_NOISE = Shape(base_mb=2500.0, noise=0.04, wander=0.03, leak_mb_per_day=12.0)
BIG_FLAT = Shape(base_mb=2500.0, noise=0.04, wander=0.02)
STEP_PLATEAU = Shape(base_mb=300.0, step_mb=400.0, step_day=6.0)
BASH = Shape(base_mb=5.0, days=2.5, noise=0.005, wander=0.0)
TRAINER = Shape(base_mb=2500.0, days=11.5, noise=0.03)


@pytest.mark.parametrize("seed", SEEDS)
def test_steady_linear_leak_is_flagged_at_its_rate(seed: int) -> None:
    growth = growth_of(LINEAR_LEAK, seed)
    assert_rate(growth, LINEAR_LEAK.leak_mb_per_day)
    assert growth.growth_mb > 400.0


@pytest.mark.parametrize("seed", SEEDS)
def test_sawtooth_with_a_rising_floor_is_flagged(seed: int) -> None:
    assert_rate(growth_of(SAWTOOTH_LEAK, seed), SAWTOOTH_LEAK.leak_mb_per_day)


@pytest.mark.parametrize("seed", SEEDS)
def test_flat_then_leak_is_flagged_from_when_it_starts(seed: int) -> None:
    times, rss = series(LATE_LEAK, np.random.default_rng(seed))
    floors, spans = tables_of14([(times, rss)])
    (growth,) = find_growth(floors, spans, INTERVAL_S, PARAMS)
    assert_rate(growth, LATE_LEAK.leak_mb_per_day)
    planted_s = times[0] + LATE_LEAK.leak_from_day * DAY_S
    assert abs(growth.since_s - planted_s) < DAY_S
    assert growth.start_mb == pytest.approx(LATE_LEAK.base_mb, rel=0.1)
    assert growth.growth_mb == pytest.approx(60.0 * 8, rel=RATE_TOLERANCE)


@pytest.mark.parametrize("seed", SEEDS)
def test_restarted_leaking_service_flags_each_instance(seed: int) -> None:
    lives = restarted(RESTARTED_LEAK, 3.5, np.random.default_rng(seed))
    assert len(lives) == 4
    floors, spans = tables_of14(lives)
    found = find_growth(floors, spans, INTERVAL_S, PARAMS)
    assert sorted(g.instance for g in found) == [0, 1, 2, 3]
    for growth in found:
        assert_rate(growth, RESTARTED_LEAK.leak_mb_per_day)
        assert growth.since_s < spans.first_s[growth.instance] + DAY_S


@pytest.mark.parametrize("seed", SEEDS)
def test_a_day_long_outage_inside_a_leak_keeps_it_and_its_rate(seed: int) -> None:
    times, _ = series(OUTAGE_LEAK, np.random.default_rng(seed))
    assert np.diff(times).max() > 0.9 * DAY_S
    assert_rate(growth_of(OUTAGE_LEAK, seed), OUTAGE_LEAK.leak_mb_per_day)


@pytest.mark.parametrize(
    ("shape", "rules"),
    [
        # The rules seen over 1,000 seeds: where the hinge fits a late wander of the
        # noise as a leak, the noise rule (or the tail) rejects it.
        (STARTUP_RAMP, {Rule.SLOW, Rule.SMALL, Rule.TAIL, Rule.NOISE}),
        (SLOW_STARTUP_RAMP, {Rule.SLOW, Rule.SMALL}),
        (NIGHTLY_SPIKE, {Rule.SLOW, Rule.SMALL, Rule.TAIL, Rule.NOISE}),
        (DRIFT_IN_NOISE, {Rule.SLOW, Rule.SMALL, Rule.TAIL, Rule.NOISE}),
        (BIG_FLAT, {Rule.SLOW, Rule.SMALL, Rule.TAIL, Rule.NOISE}),
        (STEP_PLATEAU, {Rule.TAIL}),
    ],
    ids=[
        "startup-ramp",
        "slow-startup-ramp",
        "nightly-spike",
        "drift-in-noise",
        "big-flat",
        "step",
    ],
)
@pytest.mark.parametrize("seed", SEEDS)
def test_not_a_leak(shape: Shape, rules: set[Rule], seed: int) -> None:
    floors, spans = tables_of14([series(shape, np.random.default_rng(seed))])
    assert find_growth(floors, spans, INTERVAL_S, PARAMS) == []
    found = judge(floors, spans, 0, INTERVAL_S, PARAMS)
    assert not found.flagged
    assert found.growth is None
    assert found.rule in rules, found.reason


@pytest.mark.parametrize("seed", SEEDS)
def test_an_hour_long_process_is_never_judged(seed: int) -> None:
    assert verdict_of(ONE_HOUR, seed) == (Rule.SHORT, "observed 1 h, under 2 days")


@pytest.mark.parametrize("seed", SEEDS)
def test_pid_reuse_gives_two_flat_instances(seed: int) -> None:
    rng = np.random.default_rng(seed)
    bash = series(BASH, rng, T0 + 1234)
    trainer = series(TRAINER, rng, int(bash[0][-1]) + INTERVAL_S)
    floors, spans = tables_of14([bash, trainer])
    assert find_growth(floors, spans, INTERVAL_S, PARAMS) == []
    first, second = verdicts(floors, spans, INTERVAL_S, PARAMS)
    # The bash's floors move by a few pages: the prefilter drops it before any fit.
    assert first.rule is Rule.NO_RISE
    assert re.fullmatch(r"the last floors stand 0\.\d MiB above the lowest, under 5", first.reason)
    assert second.rule in {Rule.SLOW, Rule.SMALL, Rule.TAIL, Rule.NOISE}, second.reason


def test_many_instances_keep_their_numbers_highest_rate_first() -> None:
    rng = np.random.default_rng(5)
    instances = [
        series(BIG_FLAT, rng),
        series(Shape(base_mb=300.0, leak_mb_per_day=30.0), rng),
        series(Shape(base_mb=300.0, leak_mb_per_day=80.0), rng),
        series(ONE_HOUR, rng),
        series(Shape(base_mb=900.0, noise=0.02, leak_mb_per_day=50.0, leak_from_day=4.0), rng),
        series(STEP_PLATEAU, rng),
    ]
    floors, spans = tables_of14(instances)
    found = find_growth(floors, spans, INTERVAL_S, PARAMS)
    assert [g.instance for g in found] == [2, 4, 1]
    for growth, planted in zip(found, (80.0, 50.0, 30.0), strict=True):
        assert_rate(growth, planted)
    every = verdicts(floors, spans, INTERVAL_S, PARAMS)
    assert [v.instance for v in every if v.flagged] == [1, 2, 4]
    # judge sees one instance at a time: the same verdicts, to rounding.
    for one in every:
        alone = judge(floors, spans, one.instance, INTERVAL_S, PARAMS)
        assert (alone.rule, alone.flagged) == (one.rule, one.flagged)
        if one.fitted is not None:
            assert alone.fitted is not None
            assert astuple(alone.fitted) == pytest.approx(astuple(one.fitted))
    assert [v.growth for v in every if v.growth] == sorted(found, key=lambda g: g.instance)


@pytest.mark.parametrize("seed", SEEDS)
def test_confidence_is_higher_for_a_clean_line(seed: int) -> None:
    clean = growth_of(Shape(base_mb=400.0, noise=0.003, wander=0.0, leak_mb_per_day=40.0), seed)
    noisy = growth_of(Shape(base_mb=400.0, noise=0.05, wander=0.015, leak_mb_per_day=40.0), seed)
    assert 0.0 <= noisy.confidence < clean.confidence <= 1.0
    assert clean.confidence > 0.99


def test_min_rate_hides_a_leak() -> None:
    rule, reason = verdict_of(LINEAR_LEAK, 3, GrowthParams(min_rate_mb_per_day=100.0))
    assert rule is Rule.SLOW
    assert re.fullmatch(r"rises 3\d\.\d MiB/day, under 100", reason), reason


def test_min_span_hides_a_short_leak() -> None:
    short = Shape(base_mb=300.0, days=3.0, leak_mb_per_day=100.0)
    growth_of(short, 3)  # flagged with the defaults
    rule, reason = verdict_of(short, 3, GrowthParams(min_span_s=4 * DAY_S))
    assert (rule, reason) == (Rule.SHORT, "observed 3 days, under 4 days")


def test_other_intervals() -> None:
    for interval_s in (300, 3600):
        shape = replace(LINEAR_LEAK, interval_s=interval_s)
        assert_rate(growth_of(shape, 4), LINEAR_LEAK.leak_mb_per_day)


def test_partial_buckets_are_discounted() -> None:
    """A flat process whose last bucket holds two snapshots far above its floor: they are
    too few to stand for a floor, so they do not make it look as if it rose."""
    times = T0 + np.arange(0, 4 * DAY_S, INTERVAL_S, dtype=np.int64)
    rss = np.full(times.size, 100.0)
    end = np.array([T0 + 4 * DAY_S, T0 + 4 * DAY_S + INTERVAL_S], dtype=np.int64)
    floors, spans = tables_of14([(np.r_[times, end], np.r_[rss, 900.0, 900.0])])
    assert list(floors.samples[-2:]) == [36, 2]
    found = judge(floors, spans, 0, INTERVAL_S, PARAMS)
    assert found.rule is Rule.NO_RISE, found.reason
    # Counted as a full bucket, the same two snapshots would pass the prefilter.
    full = FloorTable(
        floors.instance, floors.bucket, floors.floor_mb, np.full(floors.bucket.size, 36)
    )
    assert judge(full, spans, 0, INTERVAL_S, PARAMS).rule is not Rule.NO_RISE


def test_floors_of_by_hand() -> None:
    times = np.array([10, 600, BUCKET_S - 1, BUCKET_S, 3 * BUCKET_S + 5], dtype=np.int64)
    rss = np.array([5.0, 3.0, 4.0, 9.0, 7.0])
    bucket, floor, samples = floors_of(times, rss)
    assert bucket.tolist() == [0, 1, 3]
    assert floor.tolist() == [3.0, 9.0, 7.0]
    assert samples.tolist() == [3, 1, 1]
    empty = floors_of(np.empty(0, np.int64), np.empty(0, np.float64))
    assert [part.size for part in empty] == [0, 0, 0]
    with pytest.raises(ValueError, match="sorted"):
        floors_of(times[::-1].copy(), rss)


def test_reasons_name_the_rule() -> None:
    floors, spans = tables_of14([series(LINEAR_LEAK, np.random.default_rng(2))])
    found = judge(floors, spans, 0, INTERVAL_S, PARAMS)
    pattern = (
        r"grows 3\d\.\d MiB/day since 2026-03-01 \d\d:00 UTC, \d+ MiB in all \(confidence 0\.\d\d\)"
    )
    assert re.fullmatch(pattern, found.reason), found.reason
    rule, reason = verdict_of(STEP_PLATEAU, 2)
    assert rule is Rule.TAIL
    pattern = (
        r"not rising at the end: the last \d+ floors rise -?\d+\.\d MiB/day against \d+\.\d fitted"
    )
    assert re.fullmatch(pattern, reason), reason
    rule, reason = verdict_of(DRIFT_IN_NOISE, 2)
    assert rule is Rule.NOISE
    pattern = r"grows \d+\.\d MiB, under 6 x the floors' noise \(\d+\.\d MiB\)"
    assert re.fullmatch(pattern, reason), reason
    rule, reason = verdict_of(NIGHTLY_SPIKE, 2)
    assert rule is Rule.SLOW
    assert re.fullmatch(r"rises -?\d+\.\d MiB/day, under 10", reason), reason


def test_empty_and_malformed_tables() -> None:
    none = FloorTable(*(np.empty(0, np.int64),) * 2, np.empty(0, np.float64), np.empty(0, np.int64))
    spans = InstanceSpans(*(np.empty(0, np.int64),) * 3)
    assert find_growth(none, spans, INTERVAL_S, PARAMS) == []
    floors, spans = tables_of14([series(LINEAR_LEAK, np.random.default_rng(1))])
    backwards = FloorTable(
        floors.instance, floors.bucket[::-1].copy(), floors.floor_mb, floors.samples
    )
    with pytest.raises(ValueError, match="sorted"):
        find_growth(backwards, spans, INTERVAL_S, PARAMS)
    with pytest.raises(ValueError, match="min_rate"):
        GrowthParams(min_rate_mb_per_day=-1.0)


def test_any_series_gets_the_same_verdicts_as_the_floor_tables() -> None:
    """series_survey, the entry any other judge (a service's anon + swap) calls, gives the
    verdicts the rules give on the same floors."""
    rng = np.random.default_rng(5)
    lives = restarted(RESTARTED_LEAK, 3.5, rng)
    flat = series(BIG_FLAT, rng)
    found = series_survey([*lives, flat], INTERVAL_S, PARAMS, collection_s=14 * DAY_S)
    assert sorted(g.instance for g in found.growths) == [0, 1, 2, 3]
    assert (found.judged, found.instances) == (5, 5)
    floors, spans = tables_of([*lives, flat], level=MAX_LEVEL, collection_s=14 * DAY_S)
    assert found.growths == find_growth(floors, spans, INTERVAL_S, PARAMS)
