"""One verdict per program across restarts: the leaking lives of a program grouped, with the
range of their rates and how often it was restarted, in exact words."""

from __future__ import annotations

from datetime import datetime, timedelta

from utils.judge.leaks import Leak
from utils.judge.program_leaks import program_leak_sentence, program_leaks
from utils.outputs.program_leak_outputs import program_leak_lines, program_leaks_frame
from utils.reduce.buckets import BUCKET_S

START = datetime(2026, 9, 1)
DAY = timedelta(days=1)


def life(pid: int, start_day: float, days: float, rate: float, cmd: str, bucket_s: float) -> Leak:
    first = START + start_day * DAY
    return Leak(
        pid=pid,
        first_seen=first,
        last_seen=first + days * DAY,
        since=first,
        growth_mb_per_day=rate,
        growth_mb=rate * days,
        confidence=0.9,
        cmd=cmd,
        instance=pid,
        first_rank=0,
        last_rank=1,
        start_mb=100.0,
        bucket_s=bucket_s,
    )


def lives(
    rates: list[float], every_days: float = 4.0, cmd: str = "/usr/bin/restarty -d"
) -> list[Leak]:
    return [
        life(100 + k, k * every_days, every_days - 0.01, rate, cmd, BUCKET_S)
        for k, rate in enumerate(rates)
    ]


def test_a_program_leaking_in_each_of_its_lives_is_one_sentence() -> None:
    (found,) = program_leaks(lives([96.0, 99.0, 100.0, 102.0]), {"restarty": 4})
    assert (found.leaking_lives, found.lives, found.pids) == (4, 4, (100, 101, 102, 103))
    assert (found.min_rate_mb_per_day, found.max_rate_mb_per_day) == (96.0, 102.0)
    assert program_leak_sentence(found) == (
        "restarty leaks 100 MiB/day in each of its 4 lives (96 to 102); restarted every 4 days"
    )
    assert program_leak_lines([found]) == [
        "",
        "Leaks across restarts:",
        "  restarty leaks 100 MiB/day in each of its 4 lives (96 to 102); restarted every 4 days",
    ]
    frame = program_leaks_frame([found])
    assert frame.loc[0, "PIDs"] == "100 101 102 103"
    assert frame.loc[0, "restart_every_s"] == 4 * 86_400


def test_a_clean_life_is_counted_and_said() -> None:
    (found,) = program_leaks(lives([99.0, 99.0, 99.0]), {"restarty": 4})
    assert program_leak_sentence(found) == (
        "restarty leaks 99 MiB/day in 3 of its 4 lives; restarted every 4 days"
    )


def test_one_life_or_overlapping_lives_are_not_a_program_verdict() -> None:
    assert program_leaks(lives([99.0]), {"restarty": 1}) == []
    pool = [life(200 + k, 0.1 * k, 3.0, 50.0, "gunicorn: worker", BUCKET_S) for k in range(3)]
    assert program_leaks(pool, {"gunicorn": 3}) == []
    assert program_leak_lines([]) == []


def test_programs_are_kept_apart_and_fastest_first() -> None:
    leaks = [*lives([10.0, 12.0]), *lives([300.0, 310.0], 2.0, "python3 /srv/app.py")]
    found = program_leaks(leaks, {})
    assert [f.program for f in found] == ["app.py", "restarty"]
    assert [f.lives for f in found] == [2, 2]  # never fewer lives than leak


def test_a_soak_test_says_its_rates_per_hour() -> None:
    short = [life(300 + k, k / 24, 1 / 24 - 0.001, 2400.0, "svc", BUCKET_S / 64) for k in range(3)]
    (found,) = program_leaks(short, {"svc": 3})
    assert program_leak_sentence(found) == (
        "svc leaks 100 MiB/h in each of its 3 lives; restarted every 1 h"
    )
