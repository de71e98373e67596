"""The Makefile's promises that are easy to break: `make clean` never deletes dumps, and
`make clean-dumps` says what it would delete and deletes only with CONFIRM=yes."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
DUMPS = [
    "sys_mem_20260301_100000.csv",
    "process_mem_20260302_101500.csv",
    "cgroup_mem_20260302_101500.csv",
    "mem_20260201.tar.xz",
]


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    """A copy of the Makefile in a tree with dumps, outputs and caches."""
    if shutil.which("make") is None:
        pytest.skip("needs make")
    shutil.copy(REPO / "Makefile", tmp_path)
    for folder in [
        "dumps/time/.summaries",
        "plots/system",
        "plots/processes",
        ".cache/month",
        "scripts",
    ]:
        (tmp_path / folder).mkdir(parents=True)
    for path in [
        *(f"dumps/time/{name}" for name in DUMPS),
        "dumps/time/.gitkeep",
        "dumps/time/notes.txt",
        "plots/system/.gitkeep",
        "plots/system/ram_used_htop.png",
        "plots/processes/rss_pid_1.png",
        "plots/report.html",
        ".cache/month/sys_mem_20260101_000000.csv",
        "dumps/time/.summaries/sys_mem_day_20260101_0123abcd.summary",
    ]:
        (tmp_path / path).write_text("x")
    return tmp_path


def make(tree: Path, *args: str) -> str:
    result = subprocess.run(
        ["make", "--no-print-directory", *args],
        cwd=tree,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return result.stdout


def names(folder: Path) -> list[str]:
    return sorted(path.name for path in folder.iterdir())


def test_clean_deletes_outputs_and_caches_and_keeps_every_dump(tree: Path) -> None:
    assert (tree / "dumps" / "time" / ".summaries").is_dir()
    output = make(tree, "clean")
    assert "the collected snapshots in dumps/time are kept" in output
    assert names(tree / "dumps" / "time") == sorted([*DUMPS, ".gitkeep", "notes.txt"])
    assert names(tree / "plots" / "system") == [".gitkeep"]
    assert names(tree / "plots") == ["processes", "system"]
    assert not (tree / ".cache").exists()


def test_clean_dumps_says_what_it_would_delete_and_waits_for_confirm(tree: Path) -> None:
    output = make(tree, "clean-dumps")
    assert output.splitlines() == [
        "clean-dumps: 4 file(s) in dumps/time, snapshots from 2026-02-01 to 2026-03-02 10:15:00 UTC",
        "clean-dumps: nothing deleted; 'make clean-dumps CONFIRM=yes' deletes them",
    ]
    assert names(tree / "dumps" / "time") == sorted([*DUMPS, ".gitkeep", ".summaries", "notes.txt"])
    output = make(tree, "clean-dumps", "CONFIRM=yes")
    assert output.startswith("clean-dumps: deleted 4 file(s) in dumps/time")
    assert names(tree / "dumps" / "time") == [".gitkeep", "notes.txt"]
    assert make(tree, "clean-dumps") == "clean-dumps: no snapshots in dumps/time\n"
