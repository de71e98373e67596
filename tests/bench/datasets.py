"""The synthetic data sets (a month, a year) and the cache that keeps them under .cache/."""

from __future__ import annotations

import hashlib
import os
import shutil
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TypeVar

from bench.paths import REPO_ROOT, relative
from synthetic import generate_dumps
from utils.core.atomic_files import write_text_atomically

# What the synthetic dumps depend on: the generator and the collector's CSV formatting.
GENERATOR_SOURCES = (
    REPO_ROOT / "tests" / "synthetic.py",
    REPO_ROOT / "scripts" / "collect_memory.py",
)


def generator_digest(sources: Sequence[Path] = GENERATOR_SOURCES) -> str:
    digest = hashlib.sha256()
    for source in sources:
        digest.update(source.read_bytes())
    return digest.hexdigest()[:16]


@dataclass(frozen=True)
class DataSet:
    """A synthetic data set, cached under `<cache>/bench-<name>`."""

    name: str
    snapshots: int
    processes: int = 500
    seed: int = 0
    interval_s: int = 600
    services: int = 0  # long-lived services whose RSS random-walks upwards (synthetic.py)
    start: datetime = datetime(2026, 1, 1, tzinfo=UTC)  # the first snapshot's time

    def path(self, cache_dir: Path) -> Path:
        return cache_dir / f"bench-{self.name}"

    def marker(self, cache_dir: Path) -> Path:
        return cache_dir / f"bench-{self.name}.done"

    def marker_text(self) -> str:
        """Written after a generation succeeded; the cache is valid only if it matches.

        It names the generator's source too, so a changed generator means new data.
        """
        return (
            f"snapshots={self.snapshots} processes={self.processes} seed={self.seed}"
            f" interval_s={self.interval_s} services={self.services}"
            f" start={self.start:%Y%m%dT%H%M%S} generator={generator_digest()}\n"
        )

    def describe(self) -> str:
        services = f", {self.services} random-walking services" if self.services else ""
        return f"{self.snapshots:,} snapshots x {self.processes:,} processes{services}"


MONTH = DataSet("month", 4_320)
# The same month's size, where enough services random-walk upwards to be flagged (and so
# plotted) by the leak finder: what the month's memory target is held to.
SERVICES_MONTH = DataSet("services-month", 4_320, services=24)
# A year that ends in the past: its days are closed, so its day summaries are kept (a day is
# summarised only once the clock has left it).
YEAR = DataSet("year", 52_560, start=datetime(2025, 1, 1, tzinfo=UTC))


def is_cached(data: DataSet, cache_dir: Path) -> bool:
    marker = data.marker(cache_dir)
    try:
        text = marker.read_text(encoding="utf-8")
    except OSError:
        return False
    return text == data.marker_text() and data.path(cache_dir).is_dir()


def remove_stale_temps(name: str, cache_dir: Path) -> None:
    """Delete the temp folders of interrupted generations (whose process is gone)."""
    for temp in cache_dir.glob(f".bench-{name}.tmp-*"):
        owner = temp.name.rsplit("-", 1)[-1]
        if owner.isdigit() and int(owner) != os.getpid() and _pid_alive(int(owner)):
            continue  # another benchmark is generating right now
        shutil.rmtree(temp, ignore_errors=True)


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


T = TypeVar("T")


def build_cached(
    name: str, cache_dir: Path, build: Callable[[Path], T], marker_text: Callable[[T], str]
) -> T:
    """Make cache_dir/bench-<name> with build(folder), marked valid by bench-<name>.done.

    The old copy and its marker go first; build fills a temp sibling folder (its process id
    in its name, so another run's is left alone) that is renamed into place, and the marker
    is written last: an interrupted build never looks complete."""
    target, marker = cache_dir / f"bench-{name}", cache_dir / f"bench-{name}.done"
    marker.unlink(missing_ok=True)
    if target.exists():
        shutil.rmtree(target)
    remove_stale_temps(name, cache_dir)
    temp = cache_dir / f".bench-{name}.tmp-{os.getpid()}"
    shutil.rmtree(temp, ignore_errors=True)
    try:
        built = build(temp)
        os.rename(temp, target)
    finally:
        shutil.rmtree(temp, ignore_errors=True)
    write_text_atomically(marker, marker_text(built))
    return built


def ensure_dataset(data: DataSet, cache_dir: Path, say: Callable[[str], None] = print) -> Path:
    """The data set's folder, generated first (by build_cached) unless a valid cached copy
    exists."""
    target = data.path(cache_dir)
    shown = relative(target)
    if is_cached(data, cache_dir):
        say(f"using the cached synthetic {data.name}: {data.describe()} ({shown})")
        return target
    say(f"generating a synthetic {data.name}: {data.describe()} (cached in {shown})...")
    cache_dir.mkdir(parents=True, exist_ok=True)
    began = time.perf_counter()
    summary = build_cached(
        data.name,
        cache_dir,
        lambda temp: generate_dumps(
            temp,
            data.snapshots,
            data.processes,
            data.seed,
            data.start,
            data.interval_s,
            services=data.services,
        ),
        lambda _: data.marker_text(),
    )
    say(
        f"  done in {time.perf_counter() - began:.1f} s:"
        f" {summary.bytes_written / 1e6:,.1f} MB in {2 * summary.snapshots:,} files"
    )
    return target


def warm_page_cache(dumps_dir: Path) -> tuple[int, int]:
    """Read every dump and bundle once, so that no command pays for the disk: (files, bytes)."""
    files = total = 0
    for entry in os.scandir(dumps_dir):
        if entry.name.endswith((".csv", ".tar.xz")):
            with open(entry.path, "rb") as handle:
                total += len(handle.read())
            files += 1
    return files, total
