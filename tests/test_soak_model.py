"""Small steady leaks in a soak test, modelled: five processes sampled at 1 s for 3 minutes,
as tests/test_soak.py runs them for real. A leaker of 64 KiB/s (11 MiB in all, on a
process of about 9 MiB) and one of 512 KiB/s are flagged; a start-up ramp, a sawtooth and
a steady process are not. Each series carries a few pages of jitter, as an interpreter's
allocator gives. docs/leaks.md has the rates over 500 seeds
(`.venv/bin/python tests/test_soak_model.py 500`).
"""

from __future__ import annotations

import sys
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "scripts"))  # run as a script
sys.path.insert(0, str(Path(__file__).resolve().parent))

from growth_verdicts import judge
from series_growth import tables_of

from utils.judge.growth import GrowthParams, Rule

FloatArray = npt.NDArray[np.float64]
SECONDS = 180
BASE_MB = 9.0
PAGE_MB = 4 / 1024
T0 = 1_772_323_200
SEEDS = (1, 7, 2026)


def _leak(kib_per_s: float) -> Callable[[FloatArray], FloatArray]:
    return lambda t: kib_per_s / 1024 * t


SHAPES: dict[str, Callable[[FloatArray], FloatArray]] = {
    "leak 64 KiB/s": _leak(64),
    "leak 512 KiB/s": _leak(512),
    "ramp 1 MiB/s for 40 s": lambda t: np.minimum(t, 40.0),
    "sawtooth to 10 MiB every 10 s": lambda t: np.floor(t) % 11,
    "steady": lambda t: 0.0 * t,
}
LEAKERS = {"leak 64 KiB/s", "leak 512 KiB/s"}


def verdict(name: str, seed: int) -> Rule:
    rng = np.random.default_rng(seed)
    start = T0 + int(rng.integers(0, 60))
    times = start + np.arange(SECONDS, dtype=np.int64) + rng.integers(0, 2, SECONDS)
    times = np.maximum.accumulate(times)
    seconds = (times - times[0]).astype(np.float64)
    jitter = rng.integers(0, 8, SECONDS) * PAGE_MB  # up to 7 pages
    mb = np.round((BASE_MB + SHAPES[name](seconds) + jitter) / PAGE_MB) * PAGE_MB
    floors, spans = tables_of([(times, mb)], level=10, collection_s=float(SECONDS))
    return judge(floors, spans, 0, 1.0, GrowthParams()).rule


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("name", sorted(SHAPES))
def test_the_small_leaker_is_flagged_and_no_decoy(name: str, seed: int) -> None:
    assert (verdict(name, seed) is Rule.GROWS) == (name in LEAKERS)


def main() -> None:
    seeds = int(sys.argv[1]) if len(sys.argv) > 1 else 100
    for name in SHAPES:
        rules = Counter(verdict(name, seed).name for seed in range(seeds))
        print(f"{name}: flagged {rules.pop('GROWS', 0)} of {seeds}; the others: {dict(rules)}")


if __name__ == "__main__":
    main()
