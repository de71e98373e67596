"""Services that follow their load up and down for hours or days, some of which also leak:
the model tests/test_wander.py judges and docs/leaks.md reports the rates of.

A service is watched for two weeks at 10 minutes. Its memory is its size times one plus a
wander and a fast jitter: the wander a mean-reverting (AR(1)) deviation with a time
constant, whose amplitude (the +- range that holds 95% of its values, twice its standard
deviation) is the spread times the size; the jitter 2% that forgets in about 1.5 hours. A
leaker also grows at a steady rate from a moment in the first half of the two weeks. Its
visibility is its planted growth over the watched span against the wander's amplitude.

    .venv/bin/python tests/wander_services.py   # the table in docs/leaks.md (a few minutes)
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "scripts"))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from growth_verdicts import find_growth

from utils.judge.growth import GrowthParams
from utils.judge.series_growth import tables_of

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


def main() -> None:
    seeds = int(sys.argv[1]) if len(sys.argv) > 1 else 5
    print(
        "| time constant | spread | wanderers flagged | leakers found, growth >= 2 x"
        " amplitude | under that |"
    )
    print("| --- | --- | --- | --- | --- |")
    for tau_s in TAUS_S:
        for spread in SPREADS:
            total = Tally()
            for seed in range(seeds):
                one = judge_config(tau_s, spread, seed, 100, 40, GrowthParams())
                for field in total.__dataclass_fields__:
                    setattr(total, field, getattr(total, field) + getattr(one, field))
            tau = f"{tau_s / HOUR_S:g} h" if tau_s < DAY_S else f"{tau_s / DAY_S:g} d"
            print(
                f"| {tau} | {spread:.0%} | {total.false_alarms} of {total.wanderers} |"
                f" {total.clear_found} of {total.clear} | {total.faint_found} of {total.faint} |",
                flush=True,
            )


if __name__ == "__main__":
    main()
