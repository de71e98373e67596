"""Services that follow their load up and down for hours or days, some of which also leak:
the model tests/test_wander.py judges and docs/leaks.md reports the rates of.

A service is watched for two weeks at 10 minutes. Its memory is its size times one plus a
wander and a fast jitter: the wander a mean-reverting (AR(1)) deviation with a time
constant, whose amplitude (the +- range that holds 95% of its values, twice its standard
deviation) is the spread times the size; the jitter 2% that forgets in about 1.5 hours. A
leaker also grows at a steady rate from a moment in the first half of the two weeks. Its
visibility is its planted growth over the watched span against the wander's amplitude.

    .venv/bin/python tests/wander_services.py 10          # the table in docs/leaks.md
    .venv/bin/python tests/wander_services.py 20 --first-seed 100   # other seeds
    .venv/bin/python tests/wander_services.py 10 --bound  # what knowing the wander's law finds

The bound: a test told each configuration's wander law finds the leakers the data hold. The
AR(1) coefficient of the floors is pooled over the configuration's wanderers, and each
service's statistic is the largest t statistic of a hinge's slope over every knot, by
generalised least squares with AR(1) errors (Prais and Winsten 1954). Its level is the 99th
percentile of that statistic over the wanderers: 1 false alarm in 100 by construction.
"""

from __future__ import annotations

import argparse
import math
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "scripts"))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from growth_verdicts import find_growth
from series_growth import floors_of, tables_of

from utils.judge.growth import GrowthParams

FloatArray = npt.NDArray[np.float64]
Series = tuple[npt.NDArray[np.int64], FloatArray]

DAY_S = 86_400
HOUR_S = 3600
INTERVAL_S = 600
DAYS = 14
T0 = 1_772_323_200  # 2026-03-01 00:00:00 UTC
SIZE_MB = (50.0, 4096.0)
LEAK_MB_PER_DAY = (20.0, 100.0)
JITTER = 0.02
JITTER_KEEP = 0.9
# The configurations the rates are reported for: time constants and spreads.
TAUS_S = (2 * HOUR_S, 12 * HOUR_S, DAY_S, 3 * DAY_S)
SPREADS = (0.10, 0.20, 0.30)
# The least visibility the rules are held to (recall >= 95% from it on).
CLEAR = 2.0
# The bound's floors: 6-hour ones, the first left out (the rules' warm-up), none under half
# full; a hinge's growing part holds at least 4 of them; its level (false alarms).
BOUND_BUCKET_S = 6 * HOUR_S
BOUND_MIN_FLOORS_AFTER_KNOT = 4
BOUND_FALSE_ALARMS = 0.01


@dataclass(frozen=True)
class Service:
    tau_s: float
    spread: float  # the wander's amplitude over the size
    size_mb: float
    leak_mb_per_day: float = 0.0
    leak_from_day: float = 0.0

    @property
    def visibility(self) -> float:
        """The planted growth over the watched span, over the wander's amplitude."""
        growth = self.leak_mb_per_day * (DAYS - self.leak_from_day)
        return growth / (self.spread * self.size_mb)


def ar1(rng: np.random.Generator, size: int, keep: float, sd: float) -> FloatArray:
    """A stationary AR(1) series of standard deviation sd, started in its stationary law."""
    steps = rng.normal(0.0, sd * np.sqrt(1 - keep * keep), size)
    out = np.empty(size)
    out[0] = rng.normal(0.0, sd)
    for k in range(1, size):
        out[k] = keep * out[k - 1] + steps[k]
    return out


def draw(rng: np.random.Generator, tau_s: float, spread: float, leaks: bool) -> Service:
    size = float(np.exp(rng.uniform(*np.log(SIZE_MB))))
    if not leaks:
        return Service(tau_s, spread, size)
    rate = float(rng.uniform(*LEAK_MB_PER_DAY))
    return Service(tau_s, spread, size, rate, float(rng.uniform(0, DAYS / 2)))


def series(service: Service, rng: np.random.Generator) -> Series:
    count = DAYS * DAY_S // INTERVAL_S + 1
    times = T0 + int(rng.integers(0, 6 * HOUR_S)) + np.arange(count, dtype=np.int64) * INTERVAL_S
    keep = float(np.exp(-INTERVAL_S / service.tau_s))
    wander = ar1(rng, count, keep, service.spread / 2)
    jitter = ar1(rng, count, JITTER_KEEP, JITTER)
    days = (times - times[0]) / DAY_S
    leak = service.leak_mb_per_day * np.maximum(0.0, days - service.leak_from_day)
    rss = np.maximum(service.size_mb * (1 + wander + jitter) + leak, 1.0)
    return times, rss


@dataclass
class Tally:
    """Found, missed and false alarms of one configuration."""

    wanderers: int = 0
    false_alarms: int = 0
    clear: int = 0  # leakers of visibility >= CLEAR
    clear_found: int = 0
    faint: int = 0
    faint_found: int = 0

    def add(self, services: list[Service], flagged: set[int]) -> None:
        for i, service in enumerate(services):
            hit = i in flagged
            if not service.leak_mb_per_day:
                self.wanderers += 1
                self.false_alarms += hit
            elif service.visibility >= CLEAR:
                self.clear += 1
                self.clear_found += hit
            else:
                self.faint += 1
                self.faint_found += hit


def judge_config(
    tau_s: float, spread: float, seed: int, wanderers: int, leakers: int, params: GrowthParams
) -> Tally:
    """One batch of a configuration: the wanderers and the leakers, judged together."""
    rng = np.random.default_rng([seed, int(tau_s), int(spread * 100)])
    services = [draw(rng, tau_s, spread, False) for _ in range(wanderers)]
    services += [draw(rng, tau_s, spread, True) for _ in range(leakers)]
    floors, spans = tables_of([series(s, rng) for s in services], collection_s=DAYS * DAY_S)
    flagged = {g.instance for g in find_growth(floors, spans, INTERVAL_S, params)}
    tally = Tally()
    tally.add(services, flagged)
    return tally


def sup_hinge_z(t_days: FloatArray, floor_mb: FloatArray, rho: float) -> float:
    """The largest t statistic of the slope b of `floor = c + b * max(0, t - knot)` over every
    knot leaving BOUND_MIN_FLOORS_AFTER_KNOT floors, by generalised least squares with AR(1)
    errors of coefficient rho: Prais and Winsten's transform, the sums over the rows after
    each knot as suffix sums."""
    q = math.sqrt(1 - rho * rho)
    one = np.r_[q, np.full(t_days.size - 1, 1 - rho)]
    ty = np.r_[q * floor_mb[0], floor_mb[1:] - rho * floor_mb[:-1]]
    u = np.r_[q * t_days[0], t_days[1:] - rho * t_days[:-1]]

    def after(values: FloatArray) -> FloatArray:  # each row's sum over the rows after it
        tail: FloatArray = np.cumsum(values[::-1])[::-1] - values
        return tail

    # After a knot at t_k, the transformed hinge is u_i - (1 - rho) t_k.
    shift = (1 - rho) * t_days
    count, su, sy = after(np.ones_like(u)), after(u), after(ty)
    s1x = (1 - rho) * (su - shift * count)
    sxx = after(u * u) - 2 * shift * su + shift * shift * count
    sxy = after(u * ty) - shift * sy
    s11, s1y, syy = float(one @ one), float(one @ ty), float(ty @ ty)
    det = s11 * sxx - s1x * s1x
    room = (np.arange(t_days.size) <= t_days.size - BOUND_MIN_FLOORS_AFTER_KNOT) & (det > 1e-9)
    det = np.where(room, det, 1.0)
    b = (s11 * sxy - s1x * s1y) / det
    c = (sxx * s1y - s1x * sxy) / det
    sse = syy - 2 * b * sxy - 2 * c * s1y + b * b * sxx + 2 * b * c * s1x + c * c * s11
    se = np.sqrt(np.maximum(sse, 1e-12) / (t_days.size - 2) * s11 / det)
    return float(np.max(np.where(room, b / se, -np.inf)))


def bound_floors(service: Service, rng: np.random.Generator) -> tuple[FloatArray, FloatArray]:
    """A service's 6-hour floors as the bound judges them: days since the first sample, MiB."""
    times, values = series(service, rng)
    bucket, floor, samples = floors_of(times, values)
    full = samples * INTERVAL_S >= BOUND_BUCKET_S / 2
    full[0] = False
    t_days: FloatArray = (bucket[full] * BOUND_BUCKET_S - times[0]) / DAY_S
    return t_days, floor[full]


def bound(tau_s: float, spread: float, seeds: range) -> tuple[float, int, int]:
    """The known-law test's AR(1) coefficient and the clear leakers it finds, of so many, at
    its level, over the batches judge_config draws (the same services)."""
    floors: list[tuple[Service, tuple[FloatArray, FloatArray]]] = []
    for seed in seeds:
        rng = np.random.default_rng([seed, int(tau_s), int(spread * 100)])
        services = [draw(rng, tau_s, spread, False) for _ in range(100)]
        services += [draw(rng, tau_s, spread, True) for _ in range(40)]
        floors += [(s, bound_floors(s, rng)) for s in services]
    lagged = total = 0.0
    for service, (_, y) in floors:
        if not service.leak_mb_per_day:
            d = y - y.mean()
            lagged, total = lagged + float(d[1:] @ d[:-1]), total + float(d @ d)
    size = float(np.mean([y.size for _, (_, y) in floors]))
    rho = lagged / total + (1 + 3 * lagged / total) / size  # Kendall's small-sample bias
    z = np.array([sup_hinge_z(t, y, rho) for _, (t, y) in floors])
    still = np.array([not s.leak_mb_per_day for s, _ in floors])
    clear = np.array([bool(s.leak_mb_per_day) and s.visibility >= CLEAR for s, _ in floors])
    level = float(np.quantile(z[still], 1 - BOUND_FALSE_ALARMS))
    return rho, int(np.count_nonzero(clear & (z > level))), int(np.count_nonzero(clear))


def _label(tau_s: float) -> str:
    return f"{tau_s / HOUR_S:g} h" if tau_s < DAY_S else f"{tau_s / DAY_S:g} d"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("seeds", nargs="?", type=int, default=5, help="batches per configuration")
    parser.add_argument("--first-seed", type=int, default=0, help="the first batch's seed")
    parser.add_argument("--bound", action="store_true", help="the known-law test instead")
    args = parser.parse_args()
    seeds = range(args.first_seed, args.first_seed + args.seeds)
    if args.bound:
        print("| time constant | spread | AR(1) of the floors | clear leakers found |")
        print("| --- | --- | --- | --- |")
    else:
        print(
            "| time constant | spread | wanderers flagged | leakers found, growth >= 2 x"
            " amplitude | under that |"
        )
        print("| --- | --- | --- | --- | --- |")
    for tau_s in TAUS_S:
        for spread in SPREADS:
            print(f"| {_label(tau_s)} | {spread:.0%} | {_row(tau_s, spread, seeds, args.bound)} |")


def _row(tau_s: float, spread: float, seeds: range, known_law: bool) -> str:
    if known_law:
        rho, found, clear = bound(tau_s, spread, seeds)
        return f"{rho:.2f} | {found} of {clear}"
    total = Tally()
    for seed in seeds:
        one = judge_config(tau_s, spread, seed, 100, 40, GrowthParams())
        for field in total.__dataclass_fields__:
            setattr(total, field, getattr(total, field) + getattr(one, field))
    return (
        f"{total.false_alarms} of {total.wanderers} | {total.clear_found} of {total.clear}"
        f" | {total.faint_found} of {total.faint}"
    )


if __name__ == "__main__":
    main()
