"""Per-program totals: the program-name rules against real command lines, a recycled
worker pool that grows while no instance lives long, --group-by user, and --compare."""

from __future__ import annotations

import csv
from datetime import datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import given
from hypothesis import strategies as st

import analyze_processes
from conftest import run_main, write_proc
from utils.judge.breakdown import default_periods
from utils.judge.program_growth import program_growth
from utils.parser import PROCESS_PREFIX, find_dumps
from utils.process_analysis import load_all_records
from utils.reduce.programs import KERNEL_THREADS, NO_COMMAND, program_of, safe_file_part

# Command lines as ps prints them on real hosts, and their programs.
PROGRAMS = [
    ("php-fpm: pool www", "php-fpm"),
    ("php-fpm: master process (/etc/php/8.2/fpm/php-fpm.conf)", "php-fpm"),
    ("postgres: 16/main: checkpointer", "postgres"),
    ("postgres: app orders 10.0.0.7(51234) idle in transaction", "postgres"),
    ("/usr/lib/postgresql/16/bin/postgres -D /var/lib/postgresql/16/main", "postgres"),
    ("nginx: worker process", "nginx"),
    ("python3 train.py --epochs 10", "train.py"),
    ("/usr/bin/python3.11 -u x.py", "x.py"),
    ("python3 -m celery -A app worker", "celery"),
    ("python3 -m http.server 8000", "http"),
    ("/usr/bin/python3 -W ignore -X dev /opt/etl/run.py", "run.py"),
    ("python3 -c import time; time.sleep(9)", "python3"),
    ("python3", "python3"),
    ("java -jar /srv/orders.jar --port 8080", "orders.jar"),
    ("/usr/lib/jvm/java-21/bin/java -Xmx2g -cp /a.jar:/b.jar com.example.Main", "com.example.Main"),
    ("node /srv/app/server.js", "server.js"),
    ("node --max-old-space-size=4096 -r dotenv/config dist/main.js", "main.js"),
    ("/bin/bash /usr/local/bin/backup.sh nightly", "backup.sh"),
    ("sh -c sleep 100", "sh"),
    ("-bash", "-bash"),
    ("env VAR=1 OTHER=2 /usr/bin/redis-server *:6379", "redis-server"),
    ("/usr/bin/env python3 manage.py runserver", "manage.py"),
    ("ruby bin/rails server", "rails"),
    ("perl -I lib script.pl", "script.pl"),
    ("[kworker/0:1-events]", KERNEL_THREADS),
    ("[kthreadd]", KERNEL_THREADS),
    ("", NO_COMMAND),
    ("   ", NO_COMMAND),
    ("/usr/sbin/sshd -D", "sshd"),
    ("sshd: alice@pts/0", "sshd"),
]


@pytest.mark.parametrize(("cmd", "program"), PROGRAMS)
def test_the_program_of_a_real_command_line(cmd: str, program: str) -> None:
    assert program_of(cmd) == program


@given(st.text(max_size=80))
def test_every_command_line_has_a_program_that_names_a_file(cmd: str) -> None:
    program = program_of(cmd)
    assert program and "/" not in program.strip("[]")
    safe = safe_file_part(program)
    assert safe and set(safe) <= set(
        "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-"
    )


START = datetime(2026, 3, 1)
STEP = timedelta(minutes=10)
DAYS = 3
SLOTS = 30  # workers in the pool
LIFE = 12  # snapshots: 2 hours


def write_pool(dumps: Path) -> Path:
    """A php-fpm pool of 30 workers, each recycled after 2 hours with a new PID, born
    0.2 MiB larger than the last of its slot; beside it a big steady database and a
    process of another user."""
    dumps.mkdir()
    for index in range(DAYS * 144):
        rows = [
            (1, 0, "root", 12.0, 20.0, "/sbin/init"),
            (50, 1, "mysql", 2000.0, 2500.0, "/usr/sbin/mysqld"),
            (60, 1, "bob", 100.0 + index * 0.01, 200.0, "python3 report.py"),
        ]
        for slot in range(SLOTS):
            generation = (index + slot) // LIFE  # slots recycle at staggered times
            pid = 1000 + generation * SLOTS + slot
            rss = 30.0 + 0.2 * generation
            rows.append((pid, 100, "www-data", rss, 300.0, "php-fpm: pool www"))
        write_proc(dumps, f"{START + index * STEP:%Y%m%d_%H%M%S}", rows)
    return dumps


def program_rows(path: Path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8", newline="") as file:
        return list(csv.DictReader(file))


@pytest.mark.slow
def test_a_recycled_pool_is_named_first_while_no_instance_lives_two_hours(
    tmp_path: Path,
) -> None:
    dumps = write_pool(tmp_path / "dumps")
    out = tmp_path / "out"
    ran = run_main(analyze_processes.main, ["--dumps-dir", str(dumps), "--out-dir", str(out)])
    assert ran.status == 0, ran.stderr
    rows = program_rows(out / "program_growth.csv")
    assert list(rows[0]) == [
        "program", "instances", "max_concurrent", "first_total_MB", "last_total_MB",
        "growth_MB", "growth_pct", "CMD_example", "basis",
    ]  # fmt: skip
    pool = rows[0]
    assert pool["program"] == "php-fpm" and pool["basis"] == "RSS"
    assert int(pool["max_concurrent"]) == SLOTS
    pids = {(i + s) // LIFE * SLOTS + s for i in range(DAYS * 144) for s in range(SLOTS)}
    assert int(pool["instances"]) == len(pids)
    # Two days apart, each worker is 12 generations (24 h / 2 h) x 0.2 MiB larger, twice.
    assert float(pool["growth_MB"]) == pytest.approx(SLOTS * 0.2 * 24, abs=0.5)
    assert [row["program"] for row in rows] == ["php-fpm", "report.py", "init", "mysqld"]
    assert "No process shows sustained growth" in ran.stdout  # no worker lives 2 days
    assert "Programs by growth, 2026-03-01 against 2026-03-03" in ran.stdout
    assert (out / "program_php-fpm.png").stat().st_size > 10_000
    # Plotted and shown: the programs that grew by 1 MiB or more (init and mysqld did not).
    assert sorted(path.name for path in out.glob("program_*.png")) == [
        "program_php-fpm.png",
        "program_report.py.png",
    ]
    shown = ran.stdout.split("Programs by growth")[1].split("\n\n")[1].splitlines()[1:]
    assert [line.split()[0] for line in shown] == ["php-fpm", "report.py"]
    with_user = run_main(
        analyze_processes.main,
        ["--dumps-dir", str(dumps), "--out-dir", str(tmp_path / "users"), "--group-by", "user"],
    )
    assert with_user.status == 0, with_user.stderr
    users = program_rows(tmp_path / "users" / "program_growth.csv")
    assert [row["program"] for row in users[:2]] == ["www-data", "bob"]


@pytest.mark.slow
def test_compare_outside_the_data_is_one_usage_line(tmp_path: Path) -> None:
    dumps = tmp_path / "dumps"
    dumps.mkdir()
    for index in range(3):
        write_proc(dumps, f"2026030{1 + index}_100000", [(7, 1, "root", 10.0, 20.0, "app")])
    argv = ["--dumps-dir", str(dumps), "--out-dir", str(tmp_path / "out")]
    ran = run_main(analyze_processes.main, [*argv, "--compare", "2026-03-01", "2026-04-01"])
    assert ran.status == 2
    assert ran.stderr == (
        "analyze_processes: error: --compare: 2026-04-01 holds no snapshot; the snapshots are"
        " on 2026-03-01 to 2026-03-03\n"
    )


def test_each_program_example_is_the_command_line_of_its_first_instance(tmp_path: Path) -> None:
    """The example of each program is its earliest instance's command line; of instances
    first seen in one snapshot, the first in the instance table (a plain loop as reference)."""
    start = datetime(2026, 3, 1)
    for index in range(6):
        rows = [(10 + index, 1, "u", 5.0, 9.0, f"worker --n {index}")]
        rows += [(40 + k, 1, "u", 1.0, 2.0, f"pool -w {k}-{index // 2}") for k in (2, 1)]
        write_proc(tmp_path, f"{start + index * timedelta(minutes=10):%Y%m%d_%H%M%S}", rows)
    records = load_all_records(find_dumps(tmp_path, PROCESS_PREFIX), lambda path, why: None)
    table = records.instances()
    periods = default_periods(pd.DatetimeIndex(records.times))
    assert periods is not None
    found = program_growth(records, table, records.group_totals(), periods)
    groups = records.instance_groups()
    expected = {}
    for number in np.argsort(table.first_rank, kind="stable")[::-1].tolist():
        expected[records.group_names[int(groups[number])]] = records.commands[
            int(table.cmd[number])
        ]
    assert {p.program: p.cmd_example for p in found.programs} == expected
    assert expected == {"worker": "worker --n 0", "pool": "pool -w 1-0"}
