"""The test suite's own rules: no subprocess without a timeout, no script without a test."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

TESTS_DIR = Path(__file__).resolve().parent
SCRIPTS_DIR = TESTS_DIR.parent / "scripts"
# Calls that wait for a child: without a timeout, a hung child hangs the whole suite.
WAITING_CALLS = {"run", "call", "check_call", "check_output", "communicate", "wait"}


def calls_without_timeout(source: str) -> list[str]:
    found: list[str] = []
    for node in ast.walk(ast.parse(source)):
        if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)):
            continue
        owner = node.func.value
        name = node.func.attr
        is_subprocess = isinstance(owner, ast.Name) and owner.id == "subprocess"
        waits_on_child = name in {"communicate", "wait"} and not (
            isinstance(owner, ast.Name) and owner.id in {"event", "threading", "asyncio"}
        )
        if name not in WAITING_CALLS or not (is_subprocess or waits_on_child):
            continue
        if name == "wait" and node.args:  # wait(5): the timeout given by position
            continue
        if not any(keyword.arg == "timeout" for keyword in node.keywords):
            found.append(f"line {node.lineno}: {ast.unparse(node.func)}(...)")
    return found


@pytest.mark.parametrize(
    "path", sorted(TESTS_DIR.rglob("*.py")), ids=lambda p: str(p.relative_to(TESTS_DIR))
)
def test_every_wait_on_a_child_process_has_a_timeout(path: Path) -> None:
    assert calls_without_timeout(path.read_text(encoding="utf-8")) == []


def test_the_timeout_rule_sees_a_missing_timeout() -> None:
    source = "import subprocess\nsubprocess.run(['x'])\np.communicate()\np.wait(timeout=1)\n"
    assert calls_without_timeout(source) == [
        "line 2: subprocess.run(...)",
        "line 3: p.communicate(...)",
    ]


@pytest.mark.parametrize("script", sorted(SCRIPTS_DIR.glob("*.py")), ids=lambda p: p.name)
def test_every_script_is_run_by_a_test(script: Path) -> None:
    # A test that runs the script names it (SCRIPTS_DIR / "analyze_system.py").
    runners = [
        path.name
        for path in TESTS_DIR.glob("test_*.py")
        if path.name != "test_hygiene.py" and f'"{script.name}"' in path.read_text("utf-8")
    ]
    assert runners, f"no test runs scripts/{script.name}"


# "About 40 lines": a function longer than this (after its docstring) does several things.
MAX_FUNCTION_LINES = 40


def long_functions(source: str) -> list[str]:
    found = []
    for node in ast.walk(ast.parse(source)):
        if not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            continue
        body = node.body
        docstring = (
            isinstance(body[0], ast.Expr)
            and isinstance(body[0].value, ast.Constant)
            and isinstance(body[0].value.value, str)
        )
        first = body[1] if docstring and len(body) > 1 else body[0]
        end = node.end_lineno or first.lineno
        if end - first.lineno + 1 > MAX_FUNCTION_LINES:
            found.append(f"{node.name} (line {node.lineno}): {end - first.lineno + 1} lines")
    return found


@pytest.mark.parametrize("path", sorted(SCRIPTS_DIR.rglob("*.py")), ids=lambda p: p.name)
def test_no_function_is_longer_than_about_40_lines(path: Path) -> None:
    assert long_functions(path.read_text(encoding="utf-8")) == []


def test_the_length_rule_sees_a_long_function() -> None:
    body = "".join(f"    x{n} = {n}\n" for n in range(41))
    assert long_functions(f'def f():\n    """Doc."""\n{body}') == ["f (line 1): 41 lines"]
