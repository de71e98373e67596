"""One run of the process analysis computes each thing once: the dumps dir is listed once,
the instance table, the judged floors and the group totals are built once, and the sys_mem
files are read without the system analysis or its forecast. And --no-plots gives the same
answers with no PNG drawn or deleted."""

from __future__ import annotations

import csv
import io
import subprocess
import sys
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

import analyze_processes
from conftest import run_main
from synthetic import generate_dumps
from utils import parser, process_analysis
from utils.console import Console, Diagnostics, PhaseTimer, Session
from utils.judge import leaks
from utils.judge.growth import GrowthParams
from utils.parser import TimeWindow, Where
from utils.process_analysis import ProcessOptions, compute_processes
from utils.reduce.process_records import ProcessRecords

SNAPSHOTS = 288  # two days, 10 minutes apart: the synthetic host's leak is flagged
KILLS_FROM = (150, 200)  # the OOM counter rises by one at each of these snapshots


@pytest.fixture(scope="module")
def dumps(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small generated host whose sys_mem files count two OOM kills."""
    out = tmp_path_factory.mktemp("dumps")
    generate_dumps(out, SNAPSHOTS, processes=25, seed=11)
    for index, path in enumerate(sorted(out.glob("sys_mem_*.csv"))):
        with path.open(encoding="utf-8", newline="") as handle:
            header, row = list(csv.reader(handle))
        row[header.index("oom_kill")] = str(sum(index >= at for at in KILLS_FROM))
        text = io.StringIO()
        csv.writer(text, lineterminator="\n").writerows([header, row])
        path.write_text(text.getvalue(), encoding="utf-8")
    return out


def counting(calls: Counter[str], name: str, function: Callable[..., Any]) -> Callable[..., Any]:
    def counted(*args: Any, **kwargs: Any) -> Any:
        calls[name] += 1
        return function(*args, **kwargs)

    return counted


def test_one_run_computes_each_thing_once(dumps: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    calls: Counter[str] = Counter()
    for owner, name in (
        (ProcessRecords, "instances"),
        (ProcessRecords, "group_totals"),
        (ProcessRecords, "floors"),
        (ProcessRecords, "foot_floors"),
        (leaks, "judged_floors"),
        (leaks, "footprint_judged"),
        (parser, "list_dir"),
        (parser, "find_sources"),
    ):
        monkeypatch.setattr(owner, name, counting(calls, name, getattr(owner, name)))
    # The facade's own names for the two, counted in the same place.
    monkeypatch.setattr(process_analysis, "list_dir", parser.list_dir)
    monkeypatch.setattr(process_analysis, "find_sources", parser.find_sources)
    stdout, stderr = io.StringIO(), io.StringIO()
    session = Session(Diagnostics("t", stream=stderr), Console(stdout), PhaseTimer())
    options = ProcessOptions(top_n=5, growth=GrowthParams(), program_plots=5)
    result = compute_processes(Where(dumps, TimeWindow(), dumps), options, session)
    assert result.leaks and result.ooms is not None and len(result.ooms.kills) == 2
    assert result.plots.leaks and len(result.plots.pids) == 5
    assert calls == {
        "list_dir": 1,  # one listing for the process, sys_mem and cgroup_mem files
        "find_sources": 3,  # one per kind of file, from that listing
        "instances": 1,
        "group_totals": 1,
        "floors": 1,
        "foot_floors": 1,
        "judged_floors": 1,
        "footprint_judged": 1,
    }
    assert stderr.getvalue() == ""


def test_the_process_analysis_loads_neither_the_system_analysis_nor_its_forecast() -> None:
    probe = (
        "import sys; sys.path.insert(0, sys.argv[1]); import utils.process_analysis\n"
        "print(sorted(m for m in ('utils.system_analysis', 'utils.judge.forecast',"
        " 'utils.judge.seasonal') if m in sys.modules))"
    )
    scripts = Path(analyze_processes.__file__).parent
    out = subprocess.run(
        [sys.executable, "-c", probe, str(scripts)],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    assert out.stdout.strip() == "[]"


@pytest.mark.parametrize("script", ["analyze_processes", "analyze_system"])
def test_a_run_without_plots_never_loads_matplotlib(
    dumps: Path, tmp_path: Path, script: str
) -> None:
    # The hourly cron run: importing matplotlib alone costs about a third of a second.
    probe = (
        "import sys; sys.path.insert(0, sys.argv[1]); import importlib\n"
        "main = importlib.import_module(sys.argv[2]).main\n"
        "status = main(['--dumps-dir', sys.argv[3], '--out-dir', sys.argv[4], '--no-plots'])\n"
        "print(status, sorted({m.split('.')[0] for m in sys.modules} & {'matplotlib'}))"
    )
    scripts = Path(analyze_processes.__file__).parent
    argv = [sys.executable, "-c", probe, str(scripts), script, str(dumps), str(tmp_path)]
    out = subprocess.run(argv, capture_output=True, text=True, check=True, timeout=120)
    assert out.stdout.splitlines()[-1] == "0 []"


@pytest.mark.slow
def test_no_plots_writes_the_same_csvs_and_no_png(dumps: Path, tmp_path: Path) -> None:
    drawn, bare = tmp_path / "drawn", tmp_path / "bare"
    bare.mkdir()
    earlier = [bare / "rss_pid_99999.png", bare / "leak_1_20260101_000000.png"]
    for path in [*earlier, bare / "program_old.png", bare / "top3_rss_spread.csv"]:
        path.write_bytes(b"an earlier run's")
    argv = ["--dumps-dir", str(dumps), "--top", "5", "--fail-on-leak", "--fail-on-oom"]
    with_plots = run_main(analyze_processes.main, [*argv, "--out-dir", str(drawn)])
    without = run_main(analyze_processes.main, [*argv, "--out-dir", str(bare), "--no-plots"])
    assert with_plots.status == without.status == 3  # the alerts hold either way
    assert without.stderr == with_plots.stderr
    tables = sorted(path.name for path in drawn.glob("*.csv"))
    assert tables == sorted(path.name for path in bare.glob("*.csv"))  # top3_... removed
    for name in tables:
        assert (bare / name).read_bytes() == (drawn / name).read_bytes(), name
    assert sorted(path.name for path in bare.glob("*.png")) == sorted(
        ["program_old.png", *(path.name for path in earlier)]
    )
    assert len(list(drawn.glob("*.png"))) >= 6  # 5 PIDs and the leak, at least
    drawn_lines = with_plots.stdout.replace(str(drawn), str(bare)).splitlines()
    bare_lines = without.stdout.splitlines()
    assert bare_lines[-1] == "Removed 1 file(s) of an earlier run not in these tables"
    assert [line for line in drawn_lines if ".png" not in line] == bare_lines[:-1]
    assert not any(".png" in line for line in bare_lines)
