"""The stages of scripts/utils hold their direction: a lower stage never imports a higher one.

core < collect < read < reduce < judge < outputs, and the facades the entry scripts call
(parser.py and console.py at the read stage; system_analysis.py and process_analysis.py above
every stage). The collector and the compactor run on the system python3, so core and collect
import the standard library only. docs/layout.md names every module, and no module is long
enough to hold two jobs.
"""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

import pytest

UTILS = Path(__file__).resolve().parent.parent / "scripts" / "utils"
LAYOUT_DOC = UTILS.parent.parent / "docs" / "layout.md"
STAGES = ("core", "collect", "read", "reduce", "judge", "outputs")
# The facades at the top of utils/: the file discovery and the run harness sit with the read
# stage (every later stage may use them); the two analyses' facades sit above every stage.
FACADE_RANK = {"parser": 2, "console": 2, "system_analysis": 6, "process_analysis": 6}
STANDARD_LIBRARY_ONLY = ("core", "collect")
# Past about this many lines a module holds two jobs.
MAX_MODULE_LINES = 600


def module_name(path: Path) -> str:
    return ".".join(("utils", *path.relative_to(UTILS).with_suffix("").parts))


def rank(module: str) -> int | None:
    """A utils module's stage rank; None for anything outside utils."""
    parts = module.split(".")
    if parts[0] != "utils" or len(parts) < 2:
        return None
    if parts[1] in STAGES:
        return STAGES.index(parts[1])
    return FACADE_RANK[parts[1]]


def imported_modules(source: str) -> list[str]:
    """Every module a source imports, at any depth (`from utils.core import text` names both
    utils.core and utils.core.text)."""
    found: list[str] = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found.extend(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.append(node.module)
            found.extend(f"{node.module}.{alias.name}" for alias in node.names)
    return found


def upward_imports(path: Path) -> list[str]:
    own = rank(module_name(path))
    assert own is not None
    wrong = []
    for target in imported_modules(path.read_text(encoding="utf-8")):
        target_rank = rank(target)
        if target_rank is not None and target_rank > own and target in ALL_MODULES:
            wrong.append(target)
    return sorted(set(wrong))


MODULES = sorted(p for p in UTILS.rglob("*.py") if p.name != "__init__.py")
ALL_MODULES = {module_name(p) for p in MODULES}


@pytest.mark.parametrize("path", MODULES, ids=module_name)
def test_no_stage_imports_a_later_one(path: Path) -> None:
    assert upward_imports(path) == []


def test_the_direction_rule_sees_an_upward_import() -> None:
    assert rank("utils.judge.growth") == 4 and rank("utils.reduce.process_records") == 3
    source = "from utils.judge.growth import fit\nimport numpy\n"
    assert imported_modules(source) == ["utils.judge.growth", "utils.judge.growth.fit", "numpy"]


def test_core_and_collect_import_only_the_standard_library() -> None:
    # Imported for real, in a fresh interpreter: what loads is what the system python3 needs.
    names = [module_name(p) for p in MODULES if p.parent.name in STANDARD_LIBRARY_ONLY]
    probe = (
        "import sys, json; sys.path.insert(0, sys.argv[1]); before = set(sys.modules)\n"
        "for name in sys.argv[2:]: __import__(name)\n"
        "std = sys.stdlib_module_names | {'utils'}\n"
        "print(json.dumps(sorted(m for m in set(sys.modules) - before"
        " if m.split('.')[0] not in std)))"
    )
    out = subprocess.run(
        [sys.executable, "-c", probe, str(UTILS.parent), *names],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    assert len(names) >= 10 and json.loads(out.stdout) == []


@pytest.mark.parametrize(
    "path", [p for p in MODULES if p.parent.name in STANDARD_LIBRARY_ONLY], ids=module_name
)
def test_core_and_collect_use_no_later_stage(path: Path) -> None:
    stages = {rank(name) for name in imported_modules(path.read_text(encoding="utf-8"))}
    assert stages <= {None, *range(STAGES.index("collect") + 1)}


@pytest.mark.parametrize("path", MODULES, ids=module_name)
def test_docs_layout_names_every_module(path: Path) -> None:
    relative = path.relative_to(UTILS).as_posix()
    assert f"`{relative}`" in LAYOUT_DOC.read_text(encoding="utf-8")


@pytest.mark.parametrize("path", MODULES, ids=module_name)
def test_no_module_holds_two_jobs(path: Path) -> None:
    lines = len(path.read_text(encoding="utf-8").splitlines())
    assert lines <= MAX_MODULE_LINES, f"{lines} lines: split it by job"


def test_the_default_folders_are_the_repositorys_whatever_the_module_depth() -> None:
    # A module moved a folder deeper once sent every output to scripts/plots: the defaults
    # must name the repository's own dumps/time and plots folders.
    from utils.core import defaults  # noqa: PLC0415 (the one test that needs it)

    root = UTILS.parent.parent
    got = (defaults.REPO_ROOT, defaults.DUMPS_DIR, defaults.SYSTEM_OUT_DIR, defaults.REPORT_FILE)
    assert got == (root, root / "dumps/time", root / "plots/system", root / "plots/report.html")
    repository = root
    assert (repository / "dumps" / "time" / ".gitkeep").exists()
