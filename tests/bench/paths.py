"""Where the benchmark finds things: the repository, its cache, the scripts it runs, and
how a path is shown in a command."""

from __future__ import annotations

import os
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
CACHE_DIR = REPO_ROOT / ".cache"
SCRIPTS_DIR = REPO_ROOT / "scripts"
COMPACT_SCRIPT = SCRIPTS_DIR / "compact_dumps.py"
REPORT_SCRIPT = SCRIPTS_DIR / "make_report.py"
BASELINE_SCRIPT = REPO_ROOT / "tests" / "bench" / "baseline.py"


def relative(path: Path) -> str:
    """A path as shown and passed to commands: relative to the repository if inside it.

    Symbolic links are not resolved: .venv/bin/python must stay the venv's python.
    """
    absolute = Path(os.path.abspath(path))
    try:
        inside = absolute.relative_to(REPO_ROOT)
    except ValueError:
        return str(absolute)
    # With a slash, exec() takes the path as it is instead of looking it up on PATH.
    return str(inside) if len(inside.parts) > 1 else f"./{inside}"
