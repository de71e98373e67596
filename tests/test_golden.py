"""The console output and every CSV and JSON of both analyses, pinned byte for byte on three
days of a seeded synthetic host: a refactoring that changes a character of what a user
reads or a tool parses fails here.

After a change meant to alter the outputs: `UPDATE_GOLDEN=1 make test`, then read the diff
of tests/golden/ before committing it.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from pathlib import Path

import pytest

import analyze_processes
import analyze_system
from conftest import run_main
from synthetic import generate_dumps

GOLDEN = Path(__file__).resolve().parent / "golden"
UPDATE = os.environ.get("UPDATE_GOLDEN") == "1"
OUTPUTS = {
    "system": ["system_metrics.csv", "forecast.json"],
    "processes": ["top10_rss_spread.csv", "leaks.csv"],
}


@pytest.fixture(scope="module")
def dumps(tmp_path_factory: pytest.TempPathFactory) -> Path:
    # Three days of 25 processes with a 3-hour outage: the leak, short-lived PIDs,
    # awkward command lines, a gap in the plots.
    out = tmp_path_factory.mktemp("golden") / "dumps"
    generate_dumps(out, snapshots=432, processes=25, seed=11, outage=(200, 18))
    return out


def run(main: Callable[[Sequence[str]], int], dumps: Path, out: Path) -> str:
    ran = run_main(main, ["--dumps-dir", str(dumps), "--out-dir", str(out)])
    assert ran.status == 0
    return ran.stdout.replace(str(out), "<out>")


@pytest.mark.parametrize(
    ("name", "main"),
    [("system", analyze_system.main), ("processes", analyze_processes.main)],
)
def test_outputs_are_byte_identical(
    name: str, main: Callable[[Sequence[str]], int], dumps: Path, tmp_path: Path
) -> None:
    got = {f"{name}.out": run(main, dumps, tmp_path).encode()}
    got |= {file: (tmp_path / file).read_bytes() for file in OUTPUTS[name]}
    for file, data in got.items():
        golden = GOLDEN / file
        if UPDATE:
            golden.parent.mkdir(exist_ok=True)
            golden.write_bytes(data)
        assert data.decode() == golden.read_text(encoding="utf-8"), file
