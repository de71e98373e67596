"""One verdict per program across restarts: a program whose instances leak in successive
lives (a service restarted every few days, each life a new PID) is one finding, with the
range of its lives' rates and how often it was restarted.

leaks.csv keeps one row per instance; this groups those rows by program
(utils.reduce.programs), and counts the program's lives that were judged at all, so that
"in each of its 4 lives" is only said when no judged life was clean. Lives that overlap in
time (a pool of workers) are not successive lives: such a program gets no verdict here.
"""

from __future__ import annotations

import itertools
import statistics
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

import numpy as np

from utils.core.text import plural, short_number
from utils.judge.growth import MIN_JUDGED_SAMPLES, span_text
from utils.judge.leaks import Leak
from utils.reduce.buckets import BUCKET_S
from utils.reduce.process_records import InstanceTable, ProcessRecords
from utils.reduce.programs import program_of

# A program needs this many leaking lives to be one finding: one life is leaks.csv's row.
MIN_LIVES = 2


@dataclass(frozen=True)
class ProgramLeak:
    """A program that leaks in successive lives."""

    program: str
    leaking_lives: int  # its instances flagged as leaking
    lives: int  # its instances judged at all (leaking or not)
    rate_mb_per_day: float  # the median of its lives' rates
    min_rate_mb_per_day: float
    max_rate_mb_per_day: float
    restart_every_s: float  # the median time from one leaking life's start to the next
    first_seen: datetime  # UTC, the first leaking life's first snapshot
    last_seen: datetime  # ... and the last one's last
    pids: tuple[int, ...]  # the leaking lives, in order
    short: bool  # every life judged at a short time scale (rates read per hour)


def judged_lives(
    records: ProcessRecords, table: InstanceTable, min_span_s: float
) -> Mapping[str, int]:
    """Per program, its instances the leak finder judged: watched for at least min_span_s
    in at least MIN_JUDGED_SAMPLES snapshots (its rule 1)."""
    times_s = records.times.astype("datetime64[s]").astype(np.int64)
    span_s = times_s[table.last_rank] - times_s[table.first_rank]
    judged = (span_s >= min_span_s) & (table.samples >= MIN_JUDGED_SAMPLES)
    programs = (program_of(records.commands[int(cmd)]) for cmd in table.cmd[judged])
    return Counter(programs)


def program_leaks(leaks: Sequence[Leak], lives: Mapping[str, int]) -> list[ProgramLeak]:
    """The programs whose instances leak in at least MIN_LIVES successive (non-overlapping)
    lives, fastest median rate first; `lives`: each program's judged instances."""
    by_program: dict[str, list[Leak]] = {}
    for leak in leaks:
        by_program.setdefault(program_of(leak.cmd), []).append(leak)
    found = []
    for program, own in by_program.items():
        own.sort(key=lambda leak: leak.first_seen)
        successive = all(a.last_seen <= b.first_seen for a, b in itertools.pairwise(own))
        if len(own) >= MIN_LIVES and successive:
            found.append(_program_leak(program, own, max(lives.get(program, 0), len(own))))
    found.sort(key=lambda item: (-item.rate_mb_per_day, item.program))
    return found


def _program_leak(program: str, own: list[Leak], lives: int) -> ProgramLeak:
    rates = [leak.growth_mb_per_day for leak in own]
    starts = [leak.first_seen for leak in own]
    gaps = [(b - a).total_seconds() for a, b in itertools.pairwise(starts)]
    return ProgramLeak(
        program=program,
        leaking_lives=len(own),
        lives=lives,
        rate_mb_per_day=statistics.median(rates),
        min_rate_mb_per_day=min(rates),
        max_rate_mb_per_day=max(rates),
        restart_every_s=statistics.median(gaps),
        first_seen=own[0].first_seen,
        last_seen=own[-1].last_seen,
        pids=tuple(leak.pid for leak in own),
        short=all(leak.bucket_s < BUCKET_S for leak in own),
    )


def program_leak_sentence(found: ProgramLeak) -> str:
    """`restarty leaks 99 MiB/day in each of its 4 lives (96 to 102); restarted every 4
    days` (MiB/h when every life was judged at a short time scale)."""
    unit, per_day = ("MiB/h", 24.0) if found.short else ("MiB/day", 1.0)
    rate = short_number(found.rate_mb_per_day / per_day)
    low = short_number(found.min_rate_mb_per_day / per_day)
    high = short_number(found.max_rate_mb_per_day / per_day)
    spread = "" if low == high else f" ({low} to {high})"
    if found.leaking_lives == found.lives:
        lives = f"each of its {plural(found.lives, 'life', 'lives')}"
    else:
        lives = f"{found.leaking_lives:,} of its {plural(found.lives, 'life', 'lives')}"
    every = span_text(found.restart_every_s)
    return f"{found.program} leaks {rate} {unit} in {lives}{spread}; restarted every {every}"
