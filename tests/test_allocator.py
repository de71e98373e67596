"""The allocator tuning that keeps the analyses' peak down (utils/allocator.py)."""

from __future__ import annotations

import platform
import subprocess
import sys

import pytest

from conftest import SCRIPTS_DIR
from utils.core import allocator

SCRIPTS = SCRIPTS_DIR


def test_the_tuning_runs_and_is_a_no_op_without_glibc(monkeypatch: pytest.MonkeyPatch) -> None:
    allocator.return_freed_memory()
    allocator.trim()
    monkeypatch.setattr(allocator, "_libc", lambda: None)
    allocator.return_freed_memory()  # musl: nothing to do, and no error
    allocator.trim()


def test_libc_is_found_without_a_subprocess(monkeypatch: pytest.MonkeyPatch) -> None:
    """find_library("c") runs `ldconfig -p`: a fork of an analysis of 100 MiB and more."""

    def no_subprocess(*args: object, **kwargs: object) -> None:
        raise AssertionError("a subprocess was started")

    monkeypatch.setattr(subprocess, "Popen", no_subprocess)
    allocator._libc.cache_clear()
    try:
        libc = allocator._libc()
    finally:
        allocator._libc.cache_clear()
    if platform.libc_ver()[0] == "glibc":
        assert libc is not None


PROBE = """
import sys
sys.path.insert(0, sys.argv[1])
from utils.core import allocator
if sys.argv[2] == "tuned":
    allocator.return_freed_memory()
rss = lambda: int(open("/proc/self/statm").read().split()[1]) * 4096
warm = bytearray(1 << 20)  # freeing a big block raises glibc's mmap threshold
del warm
before = rss()
big, small = [], []
for _ in range(200):  # big blocks with small live ones between them, as a parser leaves
    big.append(bytearray(1 << 20))
    small.append(bytearray(2000))
del big
print((rss() - before) >> 20)
"""


@pytest.mark.parametrize(("mode", "held_mib"), [("tuned", (0, 20)), ("untuned", (150, 250))])
def test_freed_buffers_go_back_to_the_kernel(mode: str, held_mib: tuple[int, int]) -> None:
    # 200 freed blocks of 1 MiB: glibc keeps them all on its heap, unless tuned.
    result = subprocess.run(
        [sys.executable, "-c", PROBE, str(SCRIPTS), mode],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    low, high = held_mib
    assert low <= int(result.stdout) <= high
