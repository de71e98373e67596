"""Each closed day's fingerprint: a digest of its files' names, sizes and modification times,
which says when a day summary (or a roll-up) no longer matches the files it was made from.

A year of loose files is 105,120 of them, one stat(2) each on every run, and that is most of
what an hourly run over a year does besides importing its libraries. On a host with a second
core the days are split in two: a forked child looks at the later half while this process
looks at the first, and hands its digests back through a pipe. The digests are the same
either way; the child writes nothing, and if it fails in any way its days are looked at here.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import signal
import threading
from collections.abc import Sequence
from pathlib import Path

from utils.parser import Bundle, Source
from utils.read.day_workers import usable_cores

# Below this many files the fork costs more than it saves.
PARALLEL_MIN_FILES = 20_000


class Folder:
    """An open descriptor of the folder the sources are in (None: none given, or it cannot
    be opened: each file is then looked at by its whole path). A name looked up in an open
    folder skips both the Path's text and the kernel's walk of the folder's path for each
    (openat(2), fstatat(2))."""

    def __init__(self, folder: Path | None) -> None:
        self.fd: int | None = None
        if folder is not None:
            with contextlib.suppress(OSError):
                self.fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)

    def __enter__(self) -> Folder:
        return self

    def __exit__(self, *_: object) -> None:
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None

    def lines(self, paths: Sequence[Path]) -> list[str]:
        """Each file's `name NUL size NUL mtime_ns` line (OSError if one cannot be looked
        at). One tight loop: it runs once per file of the year."""
        lines: list[str] = []
        add, stat, fd = lines.append, os.stat, self.fd
        if fd is None:
            for path in paths:
                text = os.fspath(path)
                status = stat(text)
                add(f"{text.rpartition(os.sep)[2]}\0{status.st_size}\0{status.st_mtime_ns}\n")
            return lines
        for path in paths:
            name = path.name
            status = stat(name, dir_fd=fd)
            add(f"{name}\0{status.st_size}\0{status.st_mtime_ns}\n")
        return lines


def _files_of(sources: Sequence[Source]) -> list[Path]:
    files: list[Path] = []
    for source in sources:
        if isinstance(source, Bundle):
            files += [source.path, *(dump.path for dump in source.loose)]
        else:
            files.append(source.path)
    return files


def fingerprint(sources: Sequence[Source], folder: Folder) -> str | None:
    """A digest of the day's files' names, sizes and modification times (in the sources'
    order, which discovery fixes); None if one cannot be looked at (the raw read then says
    why)."""
    try:
        lines = folder.lines(_files_of(sources))
    except OSError:
        return None
    return hashlib.sha256("".join(lines).encode()).hexdigest()[:32]


def fingerprints(days: Sequence[Sequence[Source]], folder: Folder) -> list[str | None]:
    """Each day's fingerprint, in order: the later half looked at by a forked child where
    that pays (many files, a second usable core, no other thread here: a fork copies only
    the calling thread, and a lock another one held would stay held in the child)."""
    files = sum(len(day) for day in days)
    if files < PARALLEL_MIN_FILES or len(days) < 2 or not _may_fork():
        return [fingerprint(day, folder) for day in days]
    half = _split(days)
    child = _Child(days[half:], folder)
    mine = [fingerprint(day, folder) for day in days[:half]]
    later = child.result()
    if later is None:  # the child failed: its days are looked at here
        later = [fingerprint(day, folder) for day in days[half:]]
    return mine + later


def _split(days: Sequence[Sequence[Source]]) -> int:
    """The index that leaves about half the files on each side."""
    total = sum(len(day) for day in days)
    seen = 0
    for index, day in enumerate(days):
        seen += len(day)
        if 2 * seen >= total:
            return index + 1
    return len(days)


def _may_fork() -> bool:
    return usable_cores() > 1 and hasattr(os, "fork") and threading.active_count() == 1


class _Child:
    """A forked child that looks at `days` and writes their digests to a pipe as JSON, then
    ends with os._exit: it never runs this process's exit handlers, prints nothing, and
    ignores the stop signals (this process handles them; the child is over in a moment)."""

    def __init__(self, days: Sequence[Sequence[Source]], folder: Folder) -> None:
        self.pid: int | None = None
        self.reader: int | None = None
        self.count = len(days)
        try:
            reader, writer = os.pipe()
        except OSError:
            return
        try:
            pid = os.fork()
        except OSError:  # a process limit: looked at here
            os.close(reader)
            os.close(writer)
            return
        if pid == 0:
            os.close(reader)
            _serve(days, folder, writer)
        os.close(writer)
        self.pid, self.reader = pid, reader

    def result(self) -> list[str | None] | None:
        """The child's digests; None if it could not start, died or said something else."""
        if self.pid is None or self.reader is None:
            return None
        chunks: list[bytes] = []
        try:
            with open(self.reader, "rb", closefd=True) as pipe:
                chunks = [pipe.read()]
        finally:
            _, status = os.waitpid(self.pid, 0)
        if not os.WIFEXITED(status) or os.WEXITSTATUS(status) != 0:
            return None
        try:
            digests = json.loads(b"".join(chunks))
        except ValueError:
            return None
        if (
            not isinstance(digests, list)
            or len(digests) != self.count
            or not all(digest is None or isinstance(digest, str) for digest in digests)
        ):
            return None
        return digests


def _serve(days: Sequence[Sequence[Source]], folder: Folder, writer: int) -> None:
    status = 1
    try:
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        data = json.dumps([fingerprint(day, folder) for day in days]).encode()
        with open(writer, "wb", closefd=True) as pipe:
            pipe.write(data)
        status = 0
    finally:
        os._exit(status)
