"""The wander model pooled over a host's services (tests/wander_pooled.py): its estimate, and
the trade docs/leaks.md reports ("What bounds them"): more leakers found where a host's
services share one wander's law, more false alarms among the slow wanderers of a host whose
services do not."""

from __future__ import annotations

import numpy as np
import pytest
from wander_pooled import _sum, _tally, host, host_ar1, lag1, mixed_host, pooled_flags
from wander_services import SPREADS, Tally, ar1

from utils.core.units import DAY_S
from utils.judge.hinge import segments


def test_the_hosts_coefficient_is_the_mean_corrected_for_its_bias() -> None:
    """Kendall's correction, (1 + 3 r) / n, at the mean of the raw coefficients and the
    mean number of floors."""
    got = host_ar1(np.array([0.5, 0.7]), np.array([50.0, 62.0]))
    assert got == pytest.approx(0.6 + (1 + 3 * 0.6) / 56)
    assert host_ar1(np.array([0.99, 0.98]), np.array([30.0, 30.0])) == 1.0


def test_lag1_is_each_services_autocorrelation_around_its_own_line() -> None:
    rng = np.random.default_rng(3)
    sizes = (40, 57)
    t = np.concatenate([np.arange(n) * 0.25 for n in sizes])
    y = np.concatenate([5 + 2 * np.arange(n) * 0.25 + ar1(rng, n, 0.7, 1.0) for n in sizes])
    group = np.repeat(np.arange(2), sizes)
    raw, _ = lag1(t, y, segments(group))
    for k in range(2):
        tk, yk = t[group == k], y[group == k]
        resid = yk - np.polyval(np.polyfit(tk, yk, 1), tk)
        assert raw[k] == pytest.approx(resid[1:] @ resid[:-1] / (resid @ resid), rel=1e-9)


@pytest.mark.slow
def test_pooling_finds_more_where_the_services_share_their_wander() -> None:
    """A day-long wander of 30% on hosts of one wander's law: the pooled coefficient finds
    more of the clear leakers than each service's own, at no more false alarms."""
    before, after = Tally(), Tally()
    for seed in range(3):
        services, floors, spans = host(DAY_S, 0.3, seed)
        rules, pooled = pooled_flags(floors, spans)
        before, after = _sum([before, _tally(services, rules)]), _sum(
            [after, _tally(services, pooled)]
        )
    assert after.clear_found > before.clear_found, (before, after)
    assert after.false_alarms <= before.false_alarms, (before, after)


@pytest.mark.slow
def test_pooling_raises_false_alarms_where_the_services_do_not_share_it() -> None:
    """Hosts whose services wander with time constants of 2 hours to 3 days: the host's
    coefficient is too low for those of a day and more, and more of them are flagged than by
    the rules; among those of 3 days, more than 1 in 100. Why the verdict does not pool."""
    judged = [
        (services, *pooled_flags(floors, spans))
        for spread in SPREADS
        for services, floors, spans in (mixed_host(spread, seed) for seed in range(5))
    ]
    slow = (DAY_S, 3 * DAY_S)
    before = _sum([_tally(s, rules, tau) for s, rules, _ in judged for tau in slow])
    after = _sum([_tally(s, pooled, tau) for s, _, pooled in judged for tau in slow])
    assert after.false_alarms > before.false_alarms, (before, after)
    slowest = _sum([_tally(s, pooled, 3 * DAY_S) for s, _, pooled in judged])
    assert slowest.false_alarms > 0.01 * slowest.wanderers, slowest
