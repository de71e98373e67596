"""An earlier commit's scripts, for checking that ours are no slower than they were:
extracted with git archive into the cache, the working tree and the index left alone."""

from __future__ import annotations

import io
import os
import shutil
import subprocess
import tarfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from bench.paths import REPO_ROOT, relative
from bench.sampler import BenchmarkError


@dataclass(frozen=True)
class Reference:
    """The scripts of an earlier commit, extracted from git into the cache."""

    rev: str  # as given
    commit: str  # its full hash
    scripts: Path

    @property
    def short(self) -> str:
        return self.commit[:7]

    def knows(self, option: str) -> bool:
        """Whether its scripts mention a command-line option (an earlier commit may
        predate it, and would refuse it)."""
        return any(option in path.read_text("utf-8") for path in self.scripts.rglob("*.py"))


def resolve_commit(rev: str) -> str:
    """The full hash of commit `rev`. Raises BenchmarkError."""
    try:
        found = subprocess.run(
            ["git", "-C", str(REPO_ROOT), "rev-parse", "--verify", "--quiet", f"{rev}^{{commit}}"],
            capture_output=True,
            text=True,
            timeout=60,
            check=True,
        )
    except (OSError, subprocess.SubprocessError) as err:
        raise BenchmarkError(f"--reference {rev}: not a commit of this repository") from err
    return found.stdout.strip()


def extract_scripts(rev: str, commit: str, target: Path, temp: Path) -> None:
    """git archive the commit's scripts/ into temp, then rename temp to target."""
    shutil.rmtree(temp, ignore_errors=True)
    temp.mkdir(parents=True)
    try:
        archive = subprocess.run(
            ["git", "-C", str(REPO_ROOT), "archive", "--format=tar", commit, "scripts"],
            capture_output=True,
            timeout=120,
            check=True,
        ).stdout
        with tarfile.open(fileobj=io.BytesIO(archive), mode="r:") as tar:
            tar.extractall(temp, filter="data")
        shutil.rmtree(target, ignore_errors=True)
        os.rename(temp, target)
    except (OSError, subprocess.SubprocessError, tarfile.TarError) as err:
        raise BenchmarkError(f"--reference {rev}: cannot extract its scripts: {err}") from err
    finally:
        shutil.rmtree(temp, ignore_errors=True)


def ensure_reference(rev: str, cache_dir: Path, say: Callable[[str], None] = print) -> Reference:
    """The scripts/ folder of commit `rev`, extracted once into the cache.
    Raises BenchmarkError."""
    commit = resolve_commit(rev)
    target = cache_dir / f"bench-reference-{commit[:12]}"
    if not (target / "scripts").is_dir():
        say(f"extracting scripts/ of {commit[:7]} into {relative(target)}...")
        extract_scripts(rev, commit, target, cache_dir / f".bench-reference.tmp-{os.getpid()}")
    return Reference(rev, commit, target / "scripts")
