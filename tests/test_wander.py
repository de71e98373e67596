"""Leakers among services that follow their load up and down for days, over seeded hosts.

A modelled two-week host (10-minute snapshots) runs 30 services whose memory wanders: a
mean-reverting (AR(1)) deviation of 15-25% of a size between 100 MiB and 2 GiB, with a
time constant of half a day to a day, under a fast 2% jitter; and two services that also
leak, 30 and 60 MiB/day. How visible a leak is depends on its planted growth against its
wander: a 30 MiB/day leak of a 2 GiB service that wanders by 25% (420 MiB over two weeks
against a wander of 500) is not a leak anyone can tell from its own wander.
docs/leaks.md has the rates these tests measure, over more hosts.
"""

from __future__ import annotations

import numpy as np
import pytest
from growth_verdicts import find_growth, tables_of
from test_growth import ar1

from utils.core.units import DAY_S
from utils.judge import growth
from utils.judge.growth import GrowthParams

INTERVAL_S = 600
DAYS = 14
T0 = 1_772_323_200  # 2026-03-01 00:00:00 UTC
WANDERERS = 30
LEAKS_MB_PER_DAY = (30.0, 60.0)


def service(
    rng: np.random.Generator, leak_mb_per_day: float = 0.0
) -> tuple[tuple[np.ndarray, np.ndarray], float]:
    """One service's snapshots, and its planted growth over its wander's standard deviation."""
    count = DAYS * DAY_S // INTERVAL_S + 1
    times = T0 + int(rng.integers(0, 6 * 3600)) + np.arange(count, dtype=np.int64) * INTERVAL_S
    base = float(np.exp(rng.uniform(np.log(100), np.log(2000))))
    sd, tau_s = rng.uniform(0.15, 0.25), rng.uniform(0.5, 1.0) * DAY_S
    wander = ar1(rng, count, float(np.exp(-INTERVAL_S / tau_s)), sd)
    jitter = ar1(rng, count, 0.9, 0.02)
    days = (times - times[0]) / DAY_S
    rss = np.maximum(base * (1 + wander + jitter) + leak_mb_per_day * days, 1.0)
    return (times, rss), leak_mb_per_day * DAYS / (base * sd)


def host(seed: int) -> tuple[list[tuple[np.ndarray, np.ndarray]], list[float]]:
    """A host's series (the wanderers first, then the leakers) and each leaker's visibility."""
    rng = np.random.default_rng(1000 + seed)
    wanderers = [service(rng)[0] for _ in range(WANDERERS)]
    leakers = [service(rng, rate) for rate in LEAKS_MB_PER_DAY]
    return [*wanderers, *(series for series, _ in leakers)], [vis for _, vis in leakers]


class Tally:
    def __init__(self) -> None:
        self.false_alarms = 0
        self.wanderers = 0
        self.found: list[tuple[float, bool]] = []  # (visibility, found)

    def add(self, seed: int) -> None:
        series, visible = host(seed)
        floors, spans = tables_of(series, collection_s=DAYS * DAY_S)
        flagged = {g.instance for g in find_growth(floors, spans, INTERVAL_S, GrowthParams())}
        self.false_alarms += len({i for i in flagged if i < WANDERERS})
        self.wanderers += WANDERERS
        self.found += [(vis, WANDERERS + k in flagged) for k, vis in enumerate(visible)]

    def recall(self, least_visibility: float) -> float:
        found = [hit for vis, hit in self.found if vis >= least_visibility]
        return sum(found) / len(found)


def tally(seeds: range) -> Tally:
    counted = Tally()
    for seed in seeds:
        counted.add(seed)
    return counted


def test_eight_hosts_no_wanderer_is_flagged_and_the_clear_leakers_are() -> None:
    counted = tally(range(8))
    assert counted.false_alarms == 0, f"{counted.false_alarms} of {counted.wanderers}"
    # A leak that grows six times its wander's deviation is found.
    assert counted.recall(6.0) == 1.0, counted.found


@pytest.mark.slow
def test_the_wander_model_finds_more_than_the_noise_rule_alone(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    with_model = tally(range(20))
    monkeypatch.setattr(growth, "WANDER_Z", float("inf"))  # rule 6 as the RMS alone
    without = tally(range(20))
    assert with_model.false_alarms == without.false_alarms == 0
    found = sum(hit for _, hit in with_model.found)
    assert found > sum(hit for _, hit in without.found)


@pytest.mark.slow
def test_forty_hosts_rates() -> None:
    """The rates docs/leaks.md states: 1,200 wanderers, 80 leakers."""
    counted = tally(range(40))
    assert counted.false_alarms == 0
    assert counted.recall(6.0) >= 0.95
    assert counted.recall(0.0) >= 0.55
