"""The process analysis's CSVs, each written whole: the spread table, leaks.csv,
program_growth.csv and oom_kills.csv; and the spread tables of another N an earlier run left.
"""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from pathlib import Path

import pandas as pd

from utils.core.atomic_files import write_table_csv
from utils.judge.leaks import Leak
from utils.judge.oom import OOM_CSV, OomKill
from utils.judge.process_result import ProcessResult
from utils.judge.program_growth import PROGRAM_CSV, ProgramFindings
from utils.judge.spreads import DECIMALS, SPREAD_COLUMNS
from utils.parser import DISPLAY_FORMAT

LEAKS_CSV = "leaks.csv"
SPREAD_CSV = "top{top_n}_rss_spread.csv"
_SPREAD_CSV_RE = re.compile(r"top[0-9]+_rss_spread\.csv")
LEAK_COLUMNS: tuple[str, ...] = (
    "PID",
    "first_seen",
    "last_seen",
    "since",
    "growth_MB_per_day",
    "growth_MB",
    "confidence",
    "CMD",
    "basis",
)
PROGRAM_COLUMNS: tuple[str, ...] = (
    "program",
    "instances",
    "max_concurrent",
    "first_total_MB",
    "last_total_MB",
    "growth_MB",
    "growth_pct",
    "CMD_example",
    "basis",
)
OOM_COLUMNS: tuple[str, ...] = (
    "after",
    "before",
    "PID",
    "CMD",
    "RSS_MB",
    "anon_swap_MB",
    "source",
    "kernel_anon_rss_MB",
    "kind",
    "cgroup",
    "limit_cgroup",
    "UID",
)


def write_tables(result: ProcessResult, out_dir: Path) -> list[Path]:
    """Every CSV of a result, in the order the console names them."""
    written = [
        write_spread_csv(result.top, out_dir / SPREAD_CSV.format(top_n=result.options.top_n)),
        write_leaks_csv(result.leaks, out_dir / LEAKS_CSV),
        write_oom_csv(result.ooms.kills if result.ooms else [], out_dir / OOM_CSV),
    ]
    if result.programs is not None:
        written.append(write_program_csv(result.programs, out_dir / PROGRAM_CSV))
    return written


def write_spread_csv(top: pd.DataFrame, path: Path) -> Path:
    """Exactly the columns PID,min_RSS,max_RSS,spread,CMD; MiB with 3 decimals."""
    return write_table_csv(path, top[list(SPREAD_COLUMNS)], DECIMALS)


def leaks_frame(leaks: Sequence[Leak]) -> pd.DataFrame:
    """The rows of leaks.csv: exactly LEAK_COLUMNS, times as text."""
    return pd.DataFrame(
        {
            "PID": [leak.pid for leak in leaks],
            "first_seen": [f"{leak.first_seen:{DISPLAY_FORMAT}}" for leak in leaks],
            "last_seen": [f"{leak.last_seen:{DISPLAY_FORMAT}}" for leak in leaks],
            "since": [f"{leak.since:{DISPLAY_FORMAT}}" for leak in leaks],
            "growth_MB_per_day": [leak.growth_mb_per_day for leak in leaks],
            "growth_MB": [leak.growth_mb for leak in leaks],
            "confidence": [leak.confidence for leak in leaks],
            "CMD": [leak.cmd for leak in leaks],
            "basis": [leak.basis for leak in leaks],
        },
        columns=list(LEAK_COLUMNS),
    )


def write_leaks_csv(leaks: Sequence[Leak], path: Path) -> Path:
    """Exactly LEAK_COLUMNS: times `YYYY-MM-DD HH:MM:SS` UTC, numbers with 3 decimals, CMD
    whole; only the header when nothing is flagged."""
    return write_table_csv(path, leaks_frame(leaks), DECIMALS)


def program_frame(findings: ProgramFindings) -> pd.DataFrame:
    programs = findings.programs
    return pd.DataFrame(
        {
            "program": [p.program for p in programs],
            "instances": [p.instances for p in programs],
            "max_concurrent": [p.max_concurrent for p in programs],
            "first_total_MB": [p.first_total_mb for p in programs],
            "last_total_MB": [p.last_total_mb for p in programs],
            "growth_MB": [p.growth_mb for p in programs],
            "growth_pct": [p.growth_pct for p in programs],
            "CMD_example": [p.cmd_example for p in programs],
            "basis": [p.basis for p in programs],
        },
        columns=list(PROGRAM_COLUMNS),
    )


def write_program_csv(findings: ProgramFindings, path: Path) -> Path:
    """One row per program, largest growth first; MiB and % with 3 decimals."""
    return write_table_csv(path, program_frame(findings))


def oom_frame(kills: Sequence[OomKill]) -> pd.DataFrame:
    """The rows of oom_kills.csv: exactly OOM_COLUMNS."""
    return pd.DataFrame(
        {
            "after": [f"{kill.after:{DISPLAY_FORMAT}}" for kill in kills],
            "before": [f"{kill.before:{DISPLAY_FORMAT}}" for kill in kills],
            "PID": pd.array([kill.pid for kill in kills], dtype="Int64"),
            "CMD": [kill.cmd for kill in kills],
            "RSS_MB": [kill.rss_mb for kill in kills],
            "anon_swap_MB": [kill.anon_swap_mb for kill in kills],
            "source": [kill.source for kill in kills],
            "kernel_anon_rss_MB": [kill.kernel_anon_rss_mb for kill in kills],
            "kind": [kill.kind for kill in kills],
            "cgroup": [kill.cgroup for kill in kills],
            "limit_cgroup": [kill.limit_cgroup for kill in kills],
            "UID": pd.array([kill.uid for kill in kills], dtype="Int64"),
        },
        columns=list(OOM_COLUMNS),
    )


def write_oom_csv(kills: Sequence[OomKill], path: Path) -> Path:
    """One row per killed process, in time order: times `YYYY-MM-DD HH:MM:SS` UTC, MiB with
    3 decimals, empty where unknown; only the header when nothing was killed."""
    return write_table_csv(path, oom_frame(kills))


def stale_tables(out_dir: Path, keep_csv: str) -> list[Path]:
    """The top<N>_rss_spread.csv of another N than keep_csv's, which an earlier run left."""
    return sorted(
        Path(entry.path)
        for entry in os.scandir(out_dir)
        if _SPREAD_CSV_RE.fullmatch(entry.name) is not None and entry.name != keep_csv
    )
