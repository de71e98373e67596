"""What the tests share: Hypothesis profiles, running a script, and dump files made by hand.

Test modules import the helpers by name (`from conftest import run_script, write_proc`).

Hypothesis: `make test` uses the default profile; `HYPOTHESIS_PROFILE=deep` runs the
property tests with 20x the examples, to hunt for rare inputs before a release, and
`make test-fast` uses the `fast` profile (an eighth of the examples) for an edit loop.

Markers (registered in pyproject.toml): `slow` for tests that take many seconds or
minutes of wall time (real processes sampled for a minute, SIGKILL at random instants, a
two-week equivalence run), `browser` for the report in headless Chromium. `make test`
runs every test; `make test-fast` leaves both out.
"""

from __future__ import annotations

import contextlib
import io
import os
import subprocess
import sys
import tarfile
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import NamedTuple

import matplotlib.image
import numpy as np
from hypothesis import HealthCheck, settings

from utils.dump_format import PROCESS_HEADER, SYS_HEADER, csv_text, snapshot_names

settings.register_profile(
    "default", deadline=None, suppress_health_check=[HealthCheck.too_slow], print_blob=True
)
settings.register_profile(
    "deep", deadline=None, suppress_health_check=[HealthCheck.too_slow], max_examples=3000
)
settings.register_profile(
    "fast", deadline=None, suppress_health_check=[HealthCheck.too_slow], max_examples=12
)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "default"))

TESTS_DIR = Path(__file__).resolve().parent
REPO_ROOT = TESTS_DIR.parent
SCRIPTS_DIR = REPO_ROOT / "scripts"
# A script run as a process never takes near this here; a hung one fails its test.
SCRIPT_TIMEOUT_S = 300.0


# --- Running the scripts -------------------------------------------------------------


def script_path(name: str) -> Path:
    """scripts/<name>, for a test that builds its own command line."""
    return SCRIPTS_DIR / name


def run_script(
    name: str,
    *args: str,
    timeout: float = SCRIPT_TIMEOUT_S,
    env: Mapping[str, str] | None = None,
    python_flags: Sequence[str] = (),
) -> subprocess.CompletedProcess[str]:
    """`python3 scripts/<name> args...` as a process of its own, its output captured as
    text; never raises for the exit status (the test asserts it)."""
    return subprocess.run(
        [sys.executable, *python_flags, str(script_path(name)), *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
        env=None if env is None else dict(env),
    )


class Ran(NamedTuple):
    """A script's main() run in this process: its exit status and what it printed."""

    status: int
    stdout: str
    stderr: str


def run_main(main: Callable[[Sequence[str]], int], argv: Sequence[str]) -> Ran:
    """main(argv) with stdout and stderr captured (faster than a process: no imports)."""
    stdout, stderr = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(stdout), contextlib.redirect_stderr(stderr):
        status = main(list(argv))
    return Ran(status, stdout.getvalue(), stderr.getvalue())


# --- Dump files and bundles, as the collector and the compactor write them -----------

# (PID, PPID, USER, RSS_MB, VSZ_MB, CMD) of one process, as ps saw it.
ProcessRow = tuple[int, int, str, float, float, str]


def write_sys(dumps: Path, stamp: str, **fields_mb: float) -> Path:
    """A sys_mem file; fields by header name without `_MB` (MemTotal=1000.0), 0 if not given."""
    values = {name.removesuffix("_MB"): 0.0 for name in SYS_HEADER}
    values.update(fields_mb)
    row = [
        str(int(values[name])) if not name.endswith("_MB") else f"{values[name[:-3]]:.3f}"
        for name in SYS_HEADER
    ]
    path = dumps / snapshot_names(stamp)[0]
    path.write_text(csv_text(SYS_HEADER, [row]), encoding="utf-8")
    return path


def write_proc(dumps: Path, stamp: str, rows: Sequence[ProcessRow]) -> Path:
    """A process_mem file from (PID, PPID, USER, RSS_MB, VSZ_MB, CMD) tuples."""
    formatted = [
        [str(pid), str(ppid), user, f"{rss:.3f}", f"{vsz:.3f}", cmd]
        for pid, ppid, user, rss, vsz, cmd in rows
    ]
    path = dumps / snapshot_names(stamp)[1]
    path.write_text(csv_text(PROCESS_HEADER, formatted), encoding="utf-8")
    return path


def write_bundle(path: Path, members: Sequence[tuple[str, bytes]]) -> Path:
    """A day bundle as compact_dumps.py writes it: an xz-compressed tar of bare names, in the
    order given (the compactor puts the sys_mem files first, then the process_mem ones)."""
    with tarfile.open(path, "w:xz") as tar:
        for name, data in members:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            info.mode = 0o640
            tar.addfile(info, io.BytesIO(data))
    return path


def bundle_day(dumps: Path, day: str) -> Path:
    """Move every loose snapshot of a day (YYYYMMDD) into mem_<day>.tar.xz, sys_mem first."""
    files = sorted(dumps.glob(f"sys_mem_{day}_*.csv")) + sorted(
        dumps.glob(f"process_mem_{day}_*.csv")
    )
    bundle = write_bundle(dumps / f"mem_{day}.tar.xz", [(f.name, f.read_bytes()) for f in files])
    for file in files:
        file.unlink()
    return bundle


# --- What the analyses draw ------------------------------------------------------------


def assert_real_png(path: Path) -> None:
    """A PNG that decodes, has the expected size and is not blank."""
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", f"{path} is not a PNG"
    pixels = matplotlib.image.imread(path)
    assert pixels.shape[0] >= 600 and pixels.shape[1] >= 1200, pixels.shape
    rgb = pixels[:, :, :3]
    not_white = np.any(rgb < 0.95, axis=2).mean()
    assert 0.01 < not_white < 0.6, f"{path}: {not_white:.1%} of pixels drawn"
    colours = {tuple(c) for c in (rgb.reshape(-1, 3)[::97] * 255).astype(int).tolist()}
    assert len(colours) > 10, f"{path}: only {len(colours)} colours"
