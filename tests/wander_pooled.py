"""The wander model pooled over a host's services, measured on the model in
tests/wander_services.py against the verdict's own rules: what it finds, and where it fails.
A measurement, not the verdict (docs/leaks.md, "What bounds them", says why).

The verdict judges each service's wander by an AR(1) coefficient from its own floors alone
(rule 6, utils.judge.hinge). The pooled rule estimates one coefficient for the host: the mean
of the lag-1 autocorrelations around their own lines of the services that reach the fit
(rules 1 to 3 passed) with MIN_WANDER_FLOORS floors or more, corrected for the small-sample
bias (Kendall 1954) at their mean number of floors. Rules 1 to 5 and 7 stay the
verdict's; rule 6 becomes: the rate stands POOLED_Z standard errors above zero by
Prais-Winsten with that coefficient, and the growth at least WANDER_GROWTH_NOISE times the
floors' noise. Where the host's coefficient is MAX_AR1 or more, the growth must be
MIN_GROWTH_NOISE times the noise and the rate WALK_Z standard errors above zero at MAX_AR1;
a service with under MIN_WANDER_FLOORS floors keeps the plain rule. POOLED_Z was chosen on
seeds 0 to 9 alone.

A host (one batch) of wander_services holds services of one time constant and spread: the
case pooling is made for. A mixed host holds MIXED_WANDERERS wanderers and MIXED_LEAKERS
leakers of each of the four time constants at one spread: the case it fails on.

    .venv/bin/python tests/wander_pooled.py 10                     # seeds 0 to 9
    .venv/bin/python tests/wander_pooled.py 20 --first-seed 100    # seeds 100 to 119
    .venv/bin/python tests/wander_pooled.py 10 --mixed             # hosts of mixed wanders
    .venv/bin/python tests/wander_pooled.py 10 --guard agree       # per-service guards
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import numpy.typing as npt

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "scripts"))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from series_growth import tables_of
from wander_services import DAY_S, DAYS, INTERVAL_S, SPREADS, TAUS_S, Service, Tally, draw, series

from utils.judge import growth
from utils.judge.growth import FloorTable, GrowthParams, InstanceSpans, Rule
from utils.judge.hinge import (
    MAX_AR1,
    MIN_WANDER_FLOORS,
    Segments,
    _line_residuals,
    _prais_winsten_z,
)

FloatArray = npt.NDArray[np.float64]
BoolArray = npt.NDArray[np.bool_]

POOLED_Z = 3.5
MIXED_WANDERERS = 25
MIXED_LEAKERS = 10
# The guards' width, in standard errors of a service's own coefficient.
GUARD_SE = 2.0


def lag1(t: FloatArray, y: FloatArray, seg: Segments) -> tuple[FloatArray, BoolArray]:
    """Each segment's lag-1 autocorrelation of its residuals around its own line (no bias
    correction), and which rows follow a row of their own segment."""
    resid = _line_residuals(t, y, seg)
    follows = np.r_[False, seg.of_row[1:] == seg.of_row[:-1]]
    lagged = np.r_[0.0, resid[:-1]] * follows
    with np.errstate(divide="ignore", invalid="ignore"):
        raw = np.add.reduceat(resid * lagged, seg.start) / np.add.reduceat(resid * resid, seg.start)
    return np.nan_to_num(raw), follows


def host_ar1(raw: FloatArray, floors: FloatArray) -> float:
    """The host's AR(1) coefficient: the mean of the services' raw ones, corrected for the
    bias of an estimate on their mean number of floors (Kendall 1954), within 0..1."""
    mean = float(np.mean(raw))
    return min(1.0, max(0.0, mean + (1 + 3 * mean) / float(np.mean(floors))))


def service_ar1(raw: FloatArray, floors: FloatArray, guard: str) -> tuple[FloatArray, BoolArray]:
    """Each service's coefficient under the pooled rule, and whether the pooled rule judges it
    (else the verdict's own rule 6). guard "none": the host's for all; "agree": the host's
    where the service's own (bias-corrected) is within GUARD_SE standard errors of it, else
    the verdict's rule; "bound": the host's, but never under the own one's lower bound,
    GUARD_SE standard errors below it."""
    rho = host_ar1(raw[floors >= MIN_WANDER_FLOORS], floors[floors >= MIN_WANDER_FLOORS])
    own = np.clip(raw + (1 + 3 * raw) / floors, 0.0, 1.0)
    host_rho = np.full(raw.size, rho)
    if guard == "agree":
        return host_rho, np.abs(own - rho) <= GUARD_SE * np.sqrt((1 - rho * rho) / floors)
    if guard == "bound":
        lower = own - GUARD_SE * np.sqrt((1 - own * own) / floors)
        return np.maximum(host_rho, lower), np.ones(raw.size, bool)
    return host_rho, np.ones(raw.size, bool)


def pooled_flags(
    floors: FloorTable, spans: InstanceSpans, guard: str = "none"
) -> tuple[set[int], set[int]]:
    """The services the verdict flags, and those the pooled rule flags."""
    found = growth._assess(floors, spans, INTERVAL_S, GrowthParams())
    rules = set(np.flatnonzero(found.rule == Rule.GROWS).tolist())
    table = growth.coarsened(floors, found.scale.bucket_s)
    rows = found.screen.keep & found.trend.fitted[table.instance]
    if not rows.any():
        return rules, rules
    points = growth._points(table, spans, found.scale, rows, INTERVAL_S)
    raw, follows = lag1(points.t, points.y, points.seg)
    m = (points.seg.end - points.seg.start).astype(np.float64)
    if not np.any(m >= MIN_WANDER_FLOORS):
        return rules, rules
    rho, use = service_ar1(raw, m, guard)
    z = _prais_winsten_z(points.t, points.y, rho, points.seg, follows)
    ids, trend = points.instance, found.trend
    growth_mb, noise_mb = trend.growth_mb[ids], trend.noise_mb[ids]
    walk = (growth_mb >= growth.MIN_GROWTH_NOISE * noise_mb) & (z >= growth.WALK_Z)
    wander = (z >= POOLED_Z) & (growth_mb >= growth.WANDER_GROWTH_NOISE * noise_mb)
    plain = found.rule[ids] != Rule.NOISE
    passes = np.where(use & (m >= MIN_WANDER_FLOORS), np.where(rho >= MAX_AR1, walk, wander), plain)
    judged = np.isin(found.rule[ids], (Rule.NOISE, Rule.FIT, Rule.GROWS))
    grows = judged & passes & (trend.r2[ids] >= growth.MIN_FIT_R2)
    pooled = (rules - set(ids.tolist())) | set(ids[grows].tolist())
    return rules, pooled


def host(tau_s: float, spread: float, seed: int) -> tuple[list[Service], FloorTable, InstanceSpans]:
    """The batch wander_services.judge_config draws: 100 wanderers and 40 leakers."""
    rng = np.random.default_rng([seed, int(tau_s), int(spread * 100)])
    services = [draw(rng, tau_s, spread, False) for _ in range(100)]
    services += [draw(rng, tau_s, spread, True) for _ in range(40)]
    floors, spans = tables_of([series(s, rng) for s in services], collection_s=DAYS * DAY_S)
    return services, floors, spans


def mixed_host(spread: float, seed: int) -> tuple[list[Service], FloorTable, InstanceSpans]:
    """A host whose services wander with each of the four time constants, at one spread."""
    rng = np.random.default_rng([seed, int(spread * 100), 4])
    services = [
        draw(rng, tau_s, spread, leaks)
        for tau_s in TAUS_S
        for leaks in (False, True)
        for _ in range(MIXED_LEAKERS if leaks else MIXED_WANDERERS)
    ]
    floors, spans = tables_of([series(s, rng) for s in services], collection_s=DAYS * DAY_S)
    return services, floors, spans


def _tally(services: list[Service], flagged: set[int], tau_s: float | None = None) -> Tally:
    chosen = [i for i, s in enumerate(services) if tau_s is None or s.tau_s == tau_s]
    tally = Tally()
    tally.add([services[i] for i in chosen], {k for k, i in enumerate(chosen) if i in flagged})
    return tally


def _sum(tallies: list[Tally]) -> Tally:
    total = Tally()
    for one in tallies:
        for name in total.__dataclass_fields__:
            setattr(total, name, getattr(total, name) + getattr(one, name))
    return total


def _cells(t: Tally) -> str:
    share = f" ({100 * t.clear_found / t.clear:.1f}%)" if t.clear_found < t.clear else ""
    return f"{t.false_alarms} of {t.wanderers} | {t.clear_found} of {t.clear}{share}"


def _label(tau_s: float) -> str:
    return f"{tau_s / 3600:g} h" if tau_s < DAY_S else f"{tau_s / DAY_S:g} d"


def rows(seeds: range, mixed: bool, guard: str) -> list[tuple[float, float, Tally, Tally]]:
    """Per time constant and spread: the verdict's tally and the pooled rule's."""
    if not mixed:
        return [_config(tau_s, spread, seeds, guard) for tau_s in TAUS_S for spread in SPREADS]
    out: list[tuple[float, float, Tally, Tally]] = []
    for spread in SPREADS:
        hosts = (mixed_host(spread, seed) for seed in seeds)
        judged = [(s, *pooled_flags(f, p, guard)) for s, f, p in hosts]
        for tau_s in TAUS_S:
            before = _sum([_tally(s, rules, tau_s) for s, rules, _ in judged])
            after = _sum([_tally(s, pooled, tau_s) for s, _, pooled in judged])
            out.append((tau_s, spread, before, after))
    return out


def _config(
    tau_s: float, spread: float, seeds: range, guard: str
) -> tuple[float, float, Tally, Tally]:
    before, after = [], []
    for seed in seeds:
        services, floors, spans = host(tau_s, spread, seed)
        rules, pooled = pooled_flags(floors, spans, guard)
        before.append(_tally(services, rules))
        after.append(_tally(services, pooled))
    return tau_s, spread, _sum(before), _sum(after)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("seeds", nargs="?", type=int, default=5, help="hosts per configuration")
    parser.add_argument("--first-seed", type=int, default=0, help="the first host's seed")
    parser.add_argument("--mixed", action="store_true", help="hosts of the four time constants")
    parser.add_argument(
        "--guard", choices=("none", "agree", "bound"), default="none", help="see service_ar1"
    )
    args = parser.parse_args()
    seeds = range(args.first_seed, args.first_seed + args.seeds)
    print(
        "| time constant | spread | the rules: wanderers flagged | clear leakers found"
        " | pooled: wanderers flagged | clear leakers found |"
    )
    print("| --- | --- | --- | --- | --- | --- |")
    for tau_s, spread, before, after in rows(seeds, args.mixed, args.guard):
        print(f"| {_label(tau_s)} | {spread:.0%} | {_cells(before)} | {_cells(after)} |")


if __name__ == "__main__":
    main()
