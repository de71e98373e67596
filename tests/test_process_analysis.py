"""Process analysis: a top-N known by hand, the CSV, the console table, the plots."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from conftest import ProcessRow, assert_real_png, run_script, script_path, write_proc
from utils.core.text import shorten
from utils.judge.spreads import spread_ranking
from utils.outputs.process_console import format_top_table
from utils.outputs.process_plots import stale_plots
from utils.outputs.process_tables import stale_tables
from utils.parser import PROCESS_PREFIX, find_dumps
from utils.process_analysis import ProcessOptions, compute_rss_spread, load_all_records

NAME = "analyze_processes.py"
SCRIPT = script_path(NAME)

LEAKY = '/usr/bin/leaky --name "shop, eu" --log=/var/log/x'
AWKWARD = "python3 -c 'print(\"$HOME\")' --tag=café,日本"
STAMPS = ["20260301_100000", "20260301_101000", "20260301_102000", "20260301_103000"]


def snapshot_rows(step: int) -> list[ProcessRow]:
    """What ps saw at each of the four snapshots (step 0 to 3)."""
    rows: list[ProcessRow] = [
        (1, 0, "root", 10.0, 20.0, "/sbin/init"),  # steady: spread 0
        (2, 0, "root", 0.0, 0.0, "[kthreadd]"),  # kernel thread: spread 0
        (100, 1, "averyverylongusername", 100.0 * (step + 1), 900.0, LEAKY),  # the leak: 300
        (150, 1, "root", 10.0 + 100.0 * (step % 2), 300.0, "/bin/b"),  # spread 100
        (200, 1, "root", 50.0 + 100.0 * (step == 2), 300.0, "/bin/a"),  # spread 100, tie
        (400, 1, "postgres-replica", 5.0 + 0.5 * (step == 3), 9.0, AWKWARD),  # spread 0.5
        (600, 1, "root", 0.3 if step else 0.1, 1.0, "/bin/float-a"),  # 0.3 - 0.1
        (601, 1, "root", 0.2 if step else 0.0, 1.0, "/bin/float-b"),  # 0.2 - 0.0: a tie
    ]
    if step == 0:
        rows.append((500, 1, "root", 1.0, 2.0, "sleep 1"))
    if step == 1:
        rows.append((300, 1, "root", 999.0, 1000.0, "/bin/once"))  # seen once: spread 0
    if step == 3:  # the kernel reused PID 500: the original README's PID key merges them
        rows.append((500, 1, "root", 801.0, 900.0, "java -jar big.jar"))
    return rows


def make_dumps(dumps: Path) -> Path:
    dumps.mkdir(exist_ok=True)
    for step, stamp in enumerate(STAMPS):
        write_proc(dumps, stamp, snapshot_rows(step))
    return dumps


def spreads(dumps: Path, match: str | None = None) -> pd.DataFrame:
    warnings: list[str] = []
    records = load_all_records(
        find_dumps(dumps, PROCESS_PREFIX),
        lambda p, why: warnings.append(why),
        None,
        ProcessOptions(match=match),
    )
    assert warnings == []
    return compute_rss_spread(records)


def test_top_n_known_by_hand(tmp_path: Path) -> None:
    table = spreads(make_dumps(tmp_path))
    assert table["PID"].tolist() == [500, 100, 150, 200, 400, 600, 601, 1, 2, 300]
    assert table["spread"].tolist() == [800.0, 300.0, 100.0, 100.0, 0.5, 0.2, 0.2, 0, 0, 0]
    by_pid = table.set_index("PID")
    assert by_pid.loc[100, "min_RSS"] == 100.0 and by_pid.loc[100, "max_RSS"] == 400.0
    assert by_pid.loc[100, "CMD"] == LEAKY
    assert by_pid.loc[400, "CMD"] == AWKWARD
    assert by_pid.loc[500, "CMD"] == "sleep 1"  # the earliest row of the reused PID
    assert list(by_pid.loc[300, ["min_RSS", "max_RSS"]]) == [999.0, 999.0]
    assert list(table.columns) == ["PID", "min_RSS", "max_RSS", "spread", "CMD"]


def test_match_filters_rows_before_anything_is_computed(tmp_path: Path) -> None:
    table = spreads(make_dumps(tmp_path), match="java")
    assert table.to_dict("records") == [
        {"PID": 500, "min_RSS": 801.0, "max_RSS": 801.0, "spread": 0.0, "CMD": "java -jar big.jar"}
    ]
    assert spreads(tmp_path, match="/bin/")["PID"].tolist() == [100, 150, 200, 600, 601, 300]
    assert spreads(tmp_path, match="Java").empty  # case-sensitive


def test_console_table_is_aligned_and_shortens_only_there() -> None:
    top = pd.DataFrame(
        {
            "PID": [7, 12345],
            "min_RSS": [1.0, 1234.5],
            "max_RSS": [2.0, 1_000_000.25],
            "spread": [1.0, 998_765.75],
            "CMD": ["short", "x" * 100],
        }
    )
    lines = format_top_table(top)
    assert lines == [
        "  PID    min_RSS        max_RSS       spread  CMD",
        "    7      1.000          2.000        1.000  short",
        "12345  1,234.500  1,000,000.250  998,765.750  " + "x" * 59 + "…",
    ]
    assert shorten("abc", 3) == "abc"
    assert shorten("abcd", 3) == "ab…"


def test_stale_outputs_are_removed(tmp_path: Path) -> None:
    names = ["rss_pid_1.png", "rss_pid_2.png", "rss_pid_x.png", "notes.png"]
    names += ["top5_rss_spread.csv", "top10_rss_spread.csv", "top10_rss_spread.csv.bak"]
    for name in names:
        (tmp_path / name).write_bytes(b"")
    names += ["leak_1_20260301_100000.png", "leak_2_20260301_100000.png", "leak_3.png"]
    for name in names:
        (tmp_path / name).write_bytes(b"")
    keep = [tmp_path / "rss_pid_1.png", tmp_path / "leak_2_20260301_100000.png"]
    removed = stale_plots(tmp_path, keep) + stale_tables(tmp_path, "top5_rss_spread.csv")
    for path in removed:
        path.unlink()
    assert [p.name for p in removed] == [
        "leak_1_20260301_100000.png",
        "rss_pid_2.png",
        "top10_rss_spread.csv",
    ]
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "leak_2_20260301_100000.png",
        "leak_3.png",
        "notes.png",
        "rss_pid_1.png",
        "rss_pid_x.png",
        "top10_rss_spread.csv.bak",
        "top5_rss_spread.csv",
    ]


def test_end_to_end(tmp_path: Path) -> None:
    dumps = make_dumps(tmp_path / "dumps")
    bad = dumps / "process_mem_20260301_100500.csv"
    bad.write_text("PID,PPID,USER,RSS_MB,VSZ_MB,CMD\n../../etc/passwd,1,root,1.0,1.0,x\n")
    out = tmp_path / "out"
    out.mkdir()
    (out / "rss_pid_99999.png").write_bytes(b"left over from an earlier run")
    (out / "top10_rss_spread.csv").write_text("left over from an earlier run\n")
    result = run_script(NAME, "--dumps-dir", str(dumps), "--out-dir", str(out), "--top", "5")
    assert result.returncode == 0, result.stderr
    assert result.stderr == (
        f"analyze_processes: warning: {bad}: PID on line 2 is '../../etc/passwd',"
        " not a whole number; skipped\n"
    )
    csv_lines = (out / "top5_rss_spread.csv").read_text(encoding="utf-8").splitlines()
    assert csv_lines == [
        "PID,min_RSS,max_RSS,spread,CMD",
        "500,1.000,801.000,800.000,sleep 1",
        '100,100.000,400.000,300.000,"/usr/bin/leaky --name ""shop, eu"" --log=/var/log/x"',
        "150,10.000,110.000,100.000,/bin/b",
        "200,50.000,150.000,100.000,/bin/a",
        '400,5.000,5.500,0.500,"python3 -c \'print(""$HOME"")\' --tag=café,日本"',
    ]
    stdout = result.stdout.splitlines()
    assert stdout[0] == (
        "Top 5 of 10 PIDs by RSS spread (MiB), 4 snapshots from 2026-03-01 10:00:00"
        " to 2026-03-01 10:30:00 UTC"
    )
    assert stdout[2].split() == ["PID", "min_RSS", "max_RSS", "spread", "CMD"]
    assert stdout[3].split()[:4] == ["500", "1.000", "801.000", "800.000"]
    assert stdout[-1] == "Removed 2 file(s) of an earlier run not in these tables"
    assert (
        "None of the 11 process instances was watched long enough to judge (the minimum span"
        " here is 5 h); nothing judged" in stdout
    )
    assert (out / "leaks.csv").read_text() == (
        "PID,first_seen,last_seen,since,growth_MB_per_day,growth_MB,confidence,CMD,basis\n"
    )
    assert not (out / "top10_rss_spread.csv").exists()
    plots = sorted(p.name for p in out.glob("rss_pid_*.png"))
    assert plots == [f"rss_pid_{pid}.png" for pid in ["100", "150", "200", "400", "500"]]
    for name in plots:
        assert_real_png(out / name)


@pytest.mark.slow
def test_window_and_match_end_to_end(tmp_path: Path) -> None:
    dumps = make_dumps(tmp_path / "dumps")
    out = tmp_path / "out"
    result = run_script(
        NAME,
        "--dumps-dir", str(dumps), "--out-dir", str(out), "--since", "2026-03-01 10:10",
        "--until", "2026-03-01 10:20", "--match", "/bin/", "--top", "3",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    table = pd.read_csv(out / "top3_rss_spread.csv")
    # 10:10 and 10:20 only: PID 200 goes 50 -> 150, PID 100 200 -> 300, PID 150 110 -> 10.
    assert table["PID"].tolist() == [100, 150, 200]
    assert "whose command line contains '/bin/'" in result.stdout


@pytest.mark.slow
@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--match", "no-such-command"], "no command line contains 'no-such-command'"),
        (["--until", "2020-01-01"], "no process_mem_*.csv files in {dumps} between the start and 2020-01-01 23:59:59 UTC"),
        (["--dumps-dir", "{tmp}/missing"], "no dumps dir {tmp}/missing"),
    ],
)  # fmt: skip
def test_no_data_is_one_line_and_exit_1(tmp_path: Path, args: list[str], message: str) -> None:
    dumps = make_dumps(tmp_path / "dumps")
    args = [a.format(tmp=tmp_path) for a in args]
    result = run_script(NAME, "--dumps-dir", str(dumps), "--out-dir", str(tmp_path / "out"), *args)
    assert result.returncode == 1
    assert result.stderr == "analyze_processes: " + message.format(dumps=dumps, tmp=tmp_path) + "\n"


@pytest.mark.slow
def test_bad_top_is_a_usage_error() -> None:
    result = run_script(NAME, "--top", "0")
    assert result.returncode == 2
    assert "argument --top: must be at least 1, got 0" in result.stderr


def test_the_first_rows_are_the_largest_spreads(tmp_path: Path) -> None:
    table = spreads(make_dumps(tmp_path))
    assert table.head(3)["PID"].tolist() == [500, 100, 150]


@pytest.mark.parametrize("n", [1, 3, 10, 50])
def test_the_ranking_made_for_top_n_is_the_whole_tables_head(tmp_path: Path, n: int) -> None:
    records = load_all_records(find_dumps(make_dumps(tmp_path), PROCESS_PREFIX), print)
    whole = compute_rss_spread(records)
    ranking = spread_ranking(records.instances(), records.commands, n)
    assert ranking.pids == len(whole) == 10
    pd.testing.assert_frame_equal(ranking.top, whole.head(n).reset_index(drop=True))
    assert ranking.top["CMD"].tolist()[:3] == ["sleep 1", LEAKY, "/bin/b"][:n]


def test_records_read_whole_take_no_more_batches(tmp_path: Path) -> None:
    """load_all_records ends the reading: the keys only folding needs are let go, and a batch
    added later is refused rather than folded without them."""
    records = load_all_records(find_dumps(make_dumps(tmp_path), PROCESS_PREFIX), print)
    assert records.instances().pid.tolist() == [1, 2, 100, 150, 200, 300, 400, 500, 500, 600, 601]
    with pytest.raises(RuntimeError, match="after end_reading"):
        records.add(None)  # type: ignore[arg-type]


def test_floors_taken_for_some_instances_are_never_given_again_as_whole(tmp_path: Path) -> None:
    """The floors kept for the judged instances only, or let go, are not handed out later as
    if they were every instance's: asking again is an error."""
    records = load_all_records(find_dumps(make_dumps(tmp_path), PROCESS_PREFIX), print)
    whole = records.floors()
    assert records.floors().instance.tolist() == whole.instance.tolist()  # whole: again
    wanted = np.zeros(records.instance_count, dtype=bool)
    wanted[int(whole.instance[0])] = True
    taken = records.floors(wanted)
    assert set(taken.instance.tolist()) == {int(whole.instance[0])}
    assert records.floors(wanted).instance.tolist() == taken.instance.tolist()  # still held
    with pytest.raises(RuntimeError, match="the RSS floors were taken"):
        records.floors()
    other = np.zeros(records.instance_count, dtype=bool)
    other[int(whole.instance[-1])] = True
    with pytest.raises(RuntimeError, match="the RSS floors were taken"):
        records.floors(other)  # let go already
    records.release_floors()
    with pytest.raises(RuntimeError, match="the anon \\+ swap floors were taken"):
        records.foot_floors()
