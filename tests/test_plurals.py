"""Every count on the console through the one plural rule (utils.core.text.plural): one
snapshot is "1 snapshot", never "1 snapshots"."""

from __future__ import annotations

from pathlib import Path

import analyze_system
from conftest import run_main, write_sys


def test_one_system_snapshot_is_one_snapshot(tmp_path: Path) -> None:
    dumps = tmp_path / "dumps"
    dumps.mkdir()
    write_sys(dumps, "20260301_000000", MemTotal=1000.0, MemFree=400.0, MemAvailable=600.0)
    ran = run_main(
        analyze_system.main,
        ["--dumps-dir", str(dumps), "--out-dir", str(tmp_path / "out"), "--no-plots"],
    )
    assert ran.status == 0, ran.stderr
    assert ran.stdout.splitlines()[0] == "System memory: 1 snapshot (times in UTC)"
    assert "snapshots" not in ran.stdout.splitlines()[0]
