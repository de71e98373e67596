"""The programs that leak in successive lives (utils.judge.program_leaks), wherever the
process analysis shows things: program_leaks.csv, the console lines and the Prometheus
gauges. The report's block is in outputs/report.py, from the same sentence.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import pandas as pd

from utils.core.atomic_files import write_table_csv
from utils.core.units import DAY_S, MIB
from utils.judge.program_leaks import ProgramLeak, program_leak_sentence
from utils.judge.spreads import DECIMALS
from utils.parser import DISPLAY_FORMAT

PROGRAM_LEAKS_CSV = "program_leaks.csv"
Labels = tuple[tuple[str, str], ...]
Samples = list[tuple[Labels, float]]
PROGRAM_LEAK_COLUMNS: tuple[str, ...] = (
    "program",
    "leaking_lives",
    "lives",
    "growth_MB_per_day",
    "min_MB_per_day",
    "max_MB_per_day",
    "restart_every_s",
    "first_seen",
    "last_seen",
    "PIDs",
)


def program_leaks_frame(found: Sequence[ProgramLeak]) -> pd.DataFrame:
    """The rows of program_leaks.csv: exactly PROGRAM_LEAK_COLUMNS, PIDs joined by spaces."""
    return pd.DataFrame(
        {
            "program": [item.program for item in found],
            "leaking_lives": [item.leaking_lives for item in found],
            "lives": [item.lives for item in found],
            "growth_MB_per_day": [item.rate_mb_per_day for item in found],
            "min_MB_per_day": [item.min_rate_mb_per_day for item in found],
            "max_MB_per_day": [item.max_rate_mb_per_day for item in found],
            "restart_every_s": [round(item.restart_every_s) for item in found],
            "first_seen": [f"{item.first_seen:{DISPLAY_FORMAT}}" for item in found],
            "last_seen": [f"{item.last_seen:{DISPLAY_FORMAT}}" for item in found],
            "PIDs": [" ".join(map(str, item.pids)) for item in found],
        },
        columns=list(PROGRAM_LEAK_COLUMNS),
    )


def write_program_leaks_csv(found: Sequence[ProgramLeak], path: Path) -> Path:
    """One row per program leaking in successive lives, fastest median rate first; rates
    with 3 decimals; only the header when there is none."""
    return write_table_csv(path, program_leaks_frame(found), DECIMALS)


def program_leak_lines(found: Sequence[ProgramLeak]) -> list[str]:
    """The console's lines: a heading and one sentence per program (none: no lines)."""
    if not found:
        return []
    return ["", "Leaks across restarts:", *(f"  {program_leak_sentence(f)}" for f in found)]


def program_leak_samples(found: Sequence[ProgramLeak]) -> list[tuple[str, str, Samples]]:
    """The Prometheus families (name without prefix, help, samples labelled by program):
    the median rate of a program's lives and how many of them leak."""
    rate: Samples = [((("program", f.program),), f.rate_mb_per_day * MIB / DAY_S) for f in found]
    lives: Samples = [((("program", f.program),), float(f.leaking_lives)) for f in found]
    return [
        (
            "program_leak_growth_bytes_per_second",
            "Median growth rate of a program's lives that leak, across its restarts.",
            rate,
        ),
        ("program_leak_lives", "Successive lives of a program that leak.", lives),
    ]
