#!/usr/bin/env python3
"""The plain pandas approach that the benchmark measures ours against.

The tests import its functions; the benchmark runs it as a process of its own, as it runs
ours: `python tests/bench/baseline.py system|processes DUMPS_DIR` reads the dumps, computes
the table, writes it to a temp dir (no plots) and prints a `timings:` line on stderr.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

import pandas as pd

# Run as `python tests/bench/baseline.py`, scripts/ is not on sys.path.
_SCRIPTS_DIR = str(Path(__file__).resolve().parents[2] / "scripts")
if _SCRIPTS_DIR not in sys.path:
    sys.path.insert(0, _SCRIPTS_DIR)

from utils.console import PhaseTimer  # noqa: E402

SYS_PREFIX = "sys_mem_"
PROCESS_PREFIX = "process_mem_"
NAME_TIME_FORMAT = "%Y%m%d_%H%M%S"
# The analyses benchmarked; each has its plain counterpart here.
ANALYSES: tuple[str, ...] = ("system", "processes")
TOP_N = 10


def plain_discover(dumps_dir: Path, prefix: str) -> list[Path]:
    return sorted(dumps_dir.glob(f"{prefix}*.csv"))


def plain_read(paths: Sequence[Path], prefix: str) -> pd.DataFrame:
    """One pd.read_csv per file, a timestamp column from the file name, one concat."""
    frames: list[pd.DataFrame] = []
    for path in paths:
        frame = pd.read_csv(path)
        stamp = path.name[len(prefix) : -len(".csv")]
        # strptime, not pd.to_datetime: the latter costs a tenth of a read_csv per file,
        # and the baseline should be plain, not needlessly slow.
        frame["timestamp"] = datetime.strptime(stamp, NAME_TIME_FORMAT).replace(tzinfo=UTC)
        frames.append(frame)
    return pd.concat(frames, ignore_index=True)


def plain_system_compute(data: pd.DataFrame) -> pd.DataFrame:
    data["RAM_Used_MB"] = (
        data["MemTotal_MB"]
        - data["MemFree_MB"]
        - data["Buffers_MB"]
        - data["Cached_MB"]
        - data["SReclaimable_MB"]
    )
    data["Swap_Used_MB"] = data["SwapTotal_MB"] - data["SwapFree_MB"]
    data["RAM_Used_Pct"] = data["RAM_Used_MB"] / data["MemTotal_MB"] * 100
    return data.sort_values("timestamp").reset_index(drop=True)


def plain_rss_compute(data: pd.DataFrame, top: int = TOP_N) -> pd.DataFrame:
    data = data.sort_values("timestamp", kind="stable")
    table = (
        data.groupby("PID")
        .agg(min_RSS=("RSS_MB", "min"), max_RSS=("RSS_MB", "max"), CMD=("CMD", "first"))
        .reset_index()
    )
    table["spread"] = (table["max_RSS"] - table["min_RSS"]).round(3)
    table = table.sort_values(["spread", "PID"], ascending=[False, True], kind="stable")
    return table.head(top)[["PID", "min_RSS", "max_RSS", "spread", "CMD"]].reset_index(drop=True)


def plain_system_metrics(dumps_dir: Path) -> pd.DataFrame:
    """The system metrics, computed the plain way."""
    return plain_system_compute(plain_read(plain_discover(dumps_dir, SYS_PREFIX), SYS_PREFIX))


def plain_rss_spread(dumps_dir: Path, top: int = TOP_N) -> pd.DataFrame:
    """The top PIDs by RSS spread, computed the plain way."""
    paths = plain_discover(dumps_dir, PROCESS_PREFIX)
    return plain_rss_compute(plain_read(paths, PROCESS_PREFIX), top)


def run_baseline(analysis: str, dumps_dir: Path) -> int:
    """The baseline as a process: read, compute, write the table to a temp dir (no plots)."""
    prog = f"baseline_{analysis}"
    watch = PhaseTimer()
    prefix = SYS_PREFIX if analysis == "system" else PROCESS_PREFIX
    try:
        with tempfile.TemporaryDirectory(prefix="bench-baseline-") as out_dir:
            with watch.phase("discovery"):
                paths = plain_discover(dumps_dir, prefix)
            with watch.phase("reading"):
                data = plain_read(paths, prefix)
            with watch.phase("computing"):
                if analysis == "system":
                    table = plain_system_compute(data)
                    out = Path(out_dir) / "system_metrics.csv"
                else:
                    table = plain_rss_compute(data, TOP_N)
                    out = Path(out_dir) / f"top{TOP_N}_rss_spread.csv"
                table.to_csv(out, index=False)
            print(f"{prog}: {len(paths):,} files, wrote {len(table):,} rows to {out.name}")
    except (OSError, ValueError, KeyError) as err:
        print(f"{prog}: error: {err}", file=sys.stderr)
        return 1
    finally:
        print(f"{prog}: {watch.summary()}", file=sys.stderr, flush=True)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="baseline", description=__doc__.split("\n\n")[0])
    parser.add_argument("analysis", choices=ANALYSES, help="the analysis to run the plain way")
    parser.add_argument(
        "dumps_dir", type=Path, metavar="DUMPS_DIR", help="the folder of the dumps to read"
    )
    args = parser.parse_args(argv)
    return run_baseline(args.analysis, args.dumps_dir)


if __name__ == "__main__":
    sys.exit(main())
