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

from utils.collect.snapshot_format import (
    COUNTER_FIELDS,
    MEMINFO_HEADER,
    PROCESS_HEADER,
    PS_HEADER,
    SYS_HEADER,
    csv_text,
    snapshot_names,
)

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

# (PID, PPID, USER, RSS_MB, VSZ_MB, CMD) of one process, as ps saw it; and with what
# /proc adds: (..., ANON_MB, SWAP_MB, STARTED), None for an empty field.
ProcessRow = tuple[int, int, str, float, float, str]
FullRow = tuple[int, int, str, float, float, str, float | None, float | None, str]
FULL_WIDTH = 9
# ... and its cgroup, as today's collector adds it.
CgroupRow = tuple[int, int, str, float, float, str, float | None, float | None, str, str]


def write_sys(
    dumps: Path,
    stamp: str,
    boot_id: str | None = None,
    victims: str = "",
    **fields: float,
) -> Path:
    """A sys_mem file; meminfo fields by header name without `_MB` (MemTotal=1000.0), 0 if
    not given. With a boot_id, the collector's header of today, with the counters given
    (oom_kill=1; others empty) and the oom_victims text; without, an older collector's."""
    header = MEMINFO_HEADER if boot_id is None else SYS_HEADER
    values = {name.removesuffix("_MB"): 0.0 for name in MEMINFO_HEADER}
    values.update({name: value for name, value in fields.items() if name not in COUNTER_FIELDS})
    row = [
        str(int(values[name])) if not name.endswith("_MB") else f"{values[name[:-3]]:.3f}"
        for name in MEMINFO_HEADER
    ]
    if boot_id is not None:
        counted = [str(int(fields[name])) if name in fields else "" for name in COUNTER_FIELDS]
        row += [boot_id, *counted, victims]
    path = dumps / snapshot_names(stamp)[0]
    path.write_text(csv_text(header, [row]), encoding="utf-8")
    return path


def _optional(value: float | None) -> str:
    return "" if value is None else f"{value:.3f}"


def write_proc(dumps: Path, stamp: str, rows: Sequence[ProcessRow | FullRow | CgroupRow]) -> Path:
    """A process_mem file from (PID, PPID, USER, RSS_MB, VSZ_MB, CMD) tuples, as an older
    collector wrote them; from rows with ANON_MB, SWAP_MB and STARTED, as one before the
    CGROUP column did; from rows with CGROUP too, as today's does."""
    width = max((len(row) for row in rows), default=len(PS_HEADER))
    formatted = []
    for row in rows:
        pid, ppid, user, rss, vsz, cmd = row[:6]
        cells = [str(pid), str(ppid), user, f"{rss:.3f}", f"{vsz:.3f}", cmd]
        if width > len(PS_HEADER):
            anon, swap, started = row[6:9] if len(row) > 6 else (None, None, "")
            cells += [_optional(anon), _optional(swap), str(started)]
        if width > FULL_WIDTH:
            cells.append(str(row[FULL_WIDTH]) if len(row) > FULL_WIDTH else "")
        formatted.append(cells)
    path = dumps / snapshot_names(stamp)[1]
    # As a collector that reads no Pss writes them when cut before PSS_MB.
    header = PROCESS_HEADER[: len(formatted[0])] if formatted else PS_HEADER
    path.write_text(csv_text(header, formatted), encoding="utf-8")
    return path


class FakeProcess(NamedTuple):
    """One process of a fake /proc tree: its status, stat and cgroup text (None: no such
    file)."""

    status: str | None
    stat: str | None
    cgroup: str | None = None


def stat_line(pid: int, comm: str, start_ticks: int) -> str:
    """A /proc/PID/stat line as Linux writes it: 52 fields, starttime the 22nd."""
    after_comm = ["S", "1", str(pid), str(pid), "0", "-1", "4194560"] + ["0"] * 12
    after_comm += [str(start_ticks)] + ["0"] * 30
    return f"{pid} ({comm}) " + " ".join(after_comm) + "\n"


def status_text(name: str, fields_kb: Mapping[str, int]) -> str:
    """A /proc/PID/status with the given `Name:   N kB` lines (and the usual others)."""
    lines = [f"Name:\t{name}", "Umask:\t0022", "State:\tS (sleeping)", "Tgid:\t7"]
    lines += [f"{field}:\t{value:8d} kB" for field, value in fields_kb.items()]
    return "\n".join([*lines, "Threads:\t1", "voluntary_ctxt_switches:\t3"]) + "\n"


def write_fake_proc(
    root: Path,
    processes: Mapping[int, FakeProcess],
    btime: int | None = 1772323200,
    boot_id: str | None = "0b7e6f3a-5c41-4d2e-9f88-1a2b3c4d5e6f",
    own_status: str | None = None,
    vmstat: str | None = "nr_free_pages 1000\npswpin 12\npswpout 34\npgmajfault 56\noom_kill 2\n",
    pressure: str | None = (
        "some avg10=0.00 avg60=0.00 avg300=0.00 total=7000\n"
        "full avg10=0.00 avg60=0.00 avg300=0.00 total=3000\n"
    ),
    mountinfo: str | None = None,
) -> Path:
    """A /proc tree as the collector reads it (the style of psutil's tests): each
    process's status and stat, /proc/stat's btime, the boot_id, self/status (what the
    collector judges the kernel's fields on), vmstat, pressure/memory and self/mountinfo
    (where the cgroup hierarchies are). None leaves a file out."""
    root.mkdir(parents=True, exist_ok=True)
    if vmstat is not None:
        (root / "vmstat").write_text(vmstat)
    if pressure is not None:
        (root / "pressure").mkdir(exist_ok=True)
        (root / "pressure" / "memory").write_text(pressure)
    stat = "cpu  1 2 3 4\nintr 12345 0 0\nctxt 999\n"
    (root / "stat").write_text(stat + (f"btime {btime}\n" if btime is not None else ""))
    if boot_id is not None:
        (root / "sys" / "kernel" / "random").mkdir(parents=True, exist_ok=True)
        (root / "sys" / "kernel" / "random" / "boot_id").write_text(boot_id + "\n")
    (root / "self").mkdir(exist_ok=True)
    own = own_status or status_text("python3", {"VmRSS": 9000, "RssAnon": 6000, "VmSwap": 0})
    (root / "self" / "status").write_text(own)
    if mountinfo is not None:
        (root / "self" / "mountinfo").write_text(mountinfo)
    for pid, process in processes.items():
        folder = root / str(pid)
        folder.mkdir(exist_ok=True)
        for name, text in (
            ("status", process.status),
            ("stat", process.stat),
            ("cgroup", process.cgroup),
        ):
            if text is not None:
                (folder / name).write_text(text)
    return root


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
    """Move every loose snapshot of a day (YYYYMMDD) into mem_<day>.tar.xz: sys_mem first,
    then cgroup_mem, then process_mem."""
    files = [
        path
        for kind in ("sys_mem", "cgroup_mem", "process_mem")
        for path in sorted(dumps.glob(f"{kind}_{day}_*.csv"))
    ]
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
