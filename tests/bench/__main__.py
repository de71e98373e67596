"""Benchmark both analyses against the plain pandas approach on synthetic dumps.

`make bench` (`python tests/bench` without arguments) generates two synthetic months once
(4,320 snapshots x 500 processes each, cached in .cache/): the calm month, and the services
month, where 24 services' RSS random-walks upwards so that the leak finder flags and plots
them; and a compacted copy of the calm month once (scripts/compact_dumps.py, measured;
cached in .cache/bench-month-bundled). Then it runs each command as a whole process, 3
times, alternating: on the calm month the plain approach and ours for each analysis, ours on
the bundles, and scripts/make_report.py; on the services month the plain approach, our first
run, and ours with every day's summary in place (made by an untimed run first) and
--no-plots. Every other run of ours passes --no-summaries. It prints the machine, the exact
commands, and, grouped as "Month: loose files", "Month: bundled", "Services month",
"Compaction", "Report", "Collector" and "Targets": the median wall time, the peak RSS and
the peak PSS of each command's process tree, its phase split, the ratios, and each target's
figure with PASS or MISSED. The peak PSS comes from one more run of each command, not
timed: reading /proc/<pid>/smaps_rollup slows the process it measures. The collector's
section is one snapshot's CPU against the ps run alone, with at least 600 processes on the
host (tests/bench/collector.py spawns idle ones to reach it).

`make bench YEAR=1` (--year) runs our analyses on the calm month and on a synthetic year
(the baseline needs ~8 GB there; --without-baseline skips it), checks that the time grows
linearly from the month, then times the re-run after one new hour: the year's day summaries
made once (cached), the year hard-linked with its last hour copied a day later, each
analysis re-run with the summaries, with --no-plots and with plots.

The plain approach is tests/bench/baseline.py: the tests import it, and the benchmark runs
it as a process of its own: `python tests/bench/baseline.py system|processes DIR`.

The exit status is 0 whenever the benchmark ran, targets met or not (the report says
MISSED); it is 1 only when something failed (a command, the data generation).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

# Run as `python tests/bench`, neither scripts/ nor tests/ is on sys.path.
for _folder in (Path(__file__).resolve().parents[2] / "scripts", Path(__file__).parents[1]):
    if str(_folder) not in sys.path:
        sys.path.insert(0, str(_folder))

from bench.datasets import YEAR  # noqa: E402
from bench.paths import CACHE_DIR  # noqa: E402
from bench.sampler import BenchmarkError  # noqa: E402
from bench.suites import bench_month, bench_year  # noqa: E402
from utils.console import positive_count  # noqa: E402

PROG = "benchmark"


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog=PROG, description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--year",
        action="store_true",
        help=f"benchmark a synthetic year ({YEAR.describe()}) and its growth from the month",
    )
    parser.add_argument(
        "--without-baseline",
        action="store_true",
        help="with --year, skip the baseline on the year (it needs ~8 GB and minutes)",
    )
    parser.add_argument(
        "--reference",
        metavar="REV",
        help="with --year, run the analyses of this earlier commit too (git archive of its"
        " scripts/, cached) and check that ours is no slower on the year",
    )
    parser.add_argument(
        "--repeat",
        type=positive_count,
        metavar="N",
        help="timed runs of each command (default 3 on the month, 1 on the year)",
    )
    args = parser.parse_args(argv)
    if args.reference is not None and not args.year:
        parser.error("--reference goes with --year")
    if args.without_baseline and not args.year:
        parser.error("--without-baseline goes with --year (the month always runs the baseline)")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        if args.year:
            bench_year(
                args.repeat or 1,
                args.repeat or 3,
                not args.without_baseline,
                CACHE_DIR,
                args.reference,
            )
        else:
            bench_month(args.repeat or 3, CACHE_DIR)
    except (BenchmarkError, OSError, ValueError) as err:  # OSError, ValueError: the cache
        print(f"\n{PROG}: error: {err}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"\n{PROG}: interrupted", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
