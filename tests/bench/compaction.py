"""The bundled month: scripts/compact_dumps.py measured on a copy of the month, cached with
its measurement; and what the month takes on disk, loose and bundled."""

from __future__ import annotations

import json
import os
import shlex
import shutil
import sys
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from bench.datasets import MONTH, DataSet, build_cached, generator_digest
from bench.paths import COMPACT_SCRIPT, SCRIPTS_DIR, relative
from bench.results import mib_text
from bench.runs import measure_ok
from bench.sampler import BenchmarkError

BUNDLED_NAME = f"{MONTH.name}-bundled"
# What the bundles depend on, besides the month: the compactor and the collect stage (the
# snapshot format, the bundle format and the compaction engine).
COMPACTOR_SOURCES = (COMPACT_SCRIPT, *sorted((SCRIPTS_DIR / "utils" / "collect").glob("*.py")))


@dataclass(frozen=True)
class DiskUsage:
    """The files directly in a folder (hidden ones aside) and what they take on disk."""

    files: int
    allocated_bytes: int  # st_blocks x 512, as du counts: a 500-byte file takes 4 KiB
    apparent_bytes: int  # st_size, as ls shows


def disk_usage(folder: Path) -> DiskUsage:
    files = allocated = apparent = 0
    for entry in os.scandir(folder):
        if entry.name.startswith(".") or not entry.is_file(follow_symlinks=False):
            continue  # the compactor's lock file, temporaries
        st = entry.stat(follow_symlinks=False)
        files += 1
        allocated += st.st_blocks * 512  # st_blocks counts 512-byte units, whatever the fs
        apparent += st.st_size
    return DiskUsage(files, allocated, apparent)


@dataclass(frozen=True)
class CompactionRun:
    """How scripts/compact_dumps.py did on a copy of the month (kept with the cache)."""

    argv: tuple[str, ...]
    wall_s: float  # the timed run
    peak_bytes: int  # peak RSS of the timed run
    pss_bytes: int | None  # peak PSS of the memory run, on a second copy
    measured_at: str  # when (UTC): the cache is made once, so these may be older

    def to_json(self) -> str:
        return json.dumps(
            {
                "argv": list(self.argv),
                "wall_s": self.wall_s,
                "peak_bytes": self.peak_bytes,
                "pss_bytes": self.pss_bytes,
                "measured_at": self.measured_at,
            }
        )

    @classmethod
    def from_json(cls, text: str) -> CompactionRun:
        """Raises ValueError (json's errors are ValueErrors) or KeyError, TypeError."""
        values = json.loads(text)
        pss = values["pss_bytes"]
        return cls(
            tuple(str(part) for part in values["argv"]),
            float(values["wall_s"]),
            int(values["peak_bytes"]),
            None if pss is None else int(pss),
            str(values["measured_at"]),
        )


def compact_argv(dumps_dir: Path) -> list[str]:
    """Every closed day (--older-than-days 0: the synthetic days are long past) bundled.

    The venv's python runs it: the same interpreter as the system python3, without a
    version manager's shim in front (the compactor imports the standard library only).
    """
    python = relative(Path(sys.executable))
    script, dumps = relative(COMPACT_SCRIPT), relative(dumps_dir)
    return [python, script, "--dumps-dir", dumps, "--older-than-days", "0"]


def bundled_key(month: DataSet = MONTH) -> str:
    """The first line of the bundled month's marker: the month's own key (the generator's
    digest) and the compactor's digest; a change to either means compacting again."""
    return f"{month.marker_text().strip()} compactor={generator_digest(COMPACTOR_SOURCES)}"


def cached_compaction(cache_dir: Path, key: str) -> CompactionRun | None:
    """The compaction recorded in the marker, if the cached bundled month is valid."""
    marker = cache_dir / f"bench-{BUNDLED_NAME}.done"
    try:
        first, _, rest = marker.read_text(encoding="utf-8").partition("\n")
        run = CompactionRun.from_json(rest)
    except (OSError, ValueError, KeyError, TypeError):
        return None
    if first != key or not (cache_dir / f"bench-{BUNDLED_NAME}").is_dir():
        return None
    return run


def compact_copy(month_dir: Path, temp: Path, second: Path) -> CompactionRun:
    """Copy the month to temp and compact it there, timed; then compact a second copy
    (deleted after) in a memory run, for the peak PSS."""
    argv = compact_argv(temp)
    shutil.copytree(month_dir, temp)  # copy2: mtimes kept, as the bundles record them
    timed = measure_ok(argv)
    left = [name for name in os.listdir(temp) if name.endswith(".csv")]
    if left:
        raise BenchmarkError(f"{shlex.join(argv)} left {len(left):,} loose files")
    try:
        shutil.copytree(month_dir, second)
        memory = measure_ok(compact_argv(second), pss=True)
    finally:
        shutil.rmtree(second, ignore_errors=True)
    now = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    return CompactionRun(tuple(argv), timed.wall_s, timed.peak_bytes, memory.pss_bytes, now)


def ensure_bundled(
    month_dir: Path, cache_dir: Path, say: Callable[[str], None] = print
) -> tuple[Path, CompactionRun]:
    """The bundled month's folder and how its compaction went, compacted first unless a
    valid cached copy exists (the marker, holding both, is written last)."""
    target = cache_dir / f"bench-{BUNDLED_NAME}"
    key = bundled_key()
    cached = cached_compaction(cache_dir, key)
    if cached is not None:
        say(f"using the cached bundled month ({relative(target)}, compacted {cached.measured_at})")
        return target, cached
    say(f"compacting a copy of the month into {relative(target)} (measured; cached)...")
    second = cache_dir / f".bench-{BUNDLED_NAME}.tmp-pss-{os.getpid()}"
    run = build_cached(
        BUNDLED_NAME,
        cache_dir,
        lambda temp: compact_copy(month_dir, temp, second),
        lambda done: f"{key}\n{done.to_json()}\n",
    )
    say(f"  done: {run.wall_s:.1f} s, peak RSS {mib_text(run.peak_bytes)}")
    return target, run
