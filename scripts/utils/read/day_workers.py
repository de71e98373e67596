"""The UTC days of a first run read in worker processes, each day parsed and reduced whole.

The parser threads of one process share its GIL, and the per-batch work around pandas' C
tokenizer (splitting, checking, reducing) holds it, so they take turns for much of a batch.
A day is independent of every other (utils.read.threaded_reader never lets a batch span two
UTC days, so a day read alone gives the very batches it gives read with the others), so
forked workers each read whole days, a batch at a time, and hand back each day's reduced
batches and warnings; this process hands them on in time order, exactly as one reader would.
Nothing is written anywhere: a day's results travel back through a pipe (the day summaries,
if any, are still written by this process, from what it is handed).

The workers are forked once, at the first read of several days, and only while no other
thread runs (the process analysis starts its plot worker after the reading). They ignore
the stop signals (this process handles them and ends them on its way out) and leave when it
is gone. A day whose worker died is read again here, with one line saying so; a day that
fails in a worker is read here too, so that a bug shows its own traceback.
"""

from __future__ import annotations

import argparse
import contextlib
import multiprocessing
import os
import signal
import threading
from collections.abc import Callable, Iterator, Sequence
from dataclasses import replace
from datetime import date
from multiprocessing.connection import Connection, wait
from multiprocessing.process import BaseProcess
from multiprocessing.reduction import ForkingPickler
from pathlib import Path
from types import MappingProxyType, TracebackType
from typing import Any, NamedTuple, TypeVar

from utils.console import positive_count
from utils.parser import Bundle, Source
from utils.read.csv_batches import Batch, TableSpec
from utils.read.threaded_reader import Reader

T = TypeVar("T")
Note = Callable[[str], None]

# Days handed to a worker at a time: the one it reads and the next, so it never waits.
QUEUED_PER_WORKER = 2
# Each worker holds a day being parsed, and the analysis often runs on the host that is short
# of memory: past a few workers the reading is bound by the disk and the in-order fold, so
# the default stops here (--read-workers asks for more, up to the usable cores).
MAX_DEFAULT_WORKERS = 4
# How often a waiting worker checks that this process is still there, in seconds.
PARENT_CHECK_S = 0.5


def _proxy_of(items: dict[Any, Any]) -> MappingProxyType[Any, Any]:
    return MappingProxyType(items)


def _proxy_reduced(proxy: MappingProxyType[Any, Any]) -> tuple[Any, tuple[dict[Any, Any]]]:
    return _proxy_of, (dict(proxy),)


# A TableSpec's column kinds are a read-only mapping, which pickle cannot take as it is: the
# pipes to the workers send it as a fresh one over a copy.
ForkingPickler.register(MappingProxyType, _proxy_reduced)


def usable_cores() -> int:
    """The cores this process may run on: its affinity mask, which a container's cpuset or
    taskset narrows, not every core of the host (sched_getaffinity(2))."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def default_read_workers() -> int:
    """One worker per usable core, at most MAX_DEFAULT_WORKERS (one: none, the days are
    read in this process)."""
    return min(usable_cores(), MAX_DEFAULT_WORKERS)


def add_read_workers_arg(parser: argparse.ArgumentParser, default: int, from_mb: float) -> None:
    """--read-workers: how many processes read the days not summarised (None when not
    given: the default, for reads of at least from_mb)."""
    parser.add_argument(
        "--read-workers",
        type=positive_count,
        default=None,
        metavar="N",
        help="processes that read and reduce the snapshots a day at a time, at most one per"
        " usable core; 1 reads them in the analysis' own process (default: one per core, at"
        f" most {MAX_DEFAULT_WORKERS}, here {default}, for a read of {from_mb:g} MB or more)",
    )


# A bundle's members take about this many times its own size (xz on a day of CSV text
# compresses 20-30 fold): its decompression is part of what the workers share out.
BUNDLE_FACTOR = 10
# Files looked at to estimate a read's size.
SIZE_SAMPLE = 8


def estimated_bytes(files: Sequence[Source]) -> float:
    """About how many bytes a read parses: a few files' sizes, spread over the read, scaled
    to all of them (0 when none can be looked at)."""
    step = max(1, len(files) // SIZE_SAMPLE)
    sizes = []
    for source in files[::step][:SIZE_SAMPLE]:
        try:
            size = os.stat(source.path).st_size
        except OSError:
            continue
        sizes.append(size * (BUNDLE_FACTOR if isinstance(source, Bundle) else 1))
    return sum(sizes) / len(sizes) * len(files) if sizes else 0.0


class DayJob(NamedTuple):
    """What a worker reads: one day's sources, with the reading that parses and reduces."""

    spec: TableSpec
    batch_bytes: int
    sources: tuple[Source, ...]
    reduce: Callable[[Batch], Any]


class DayDone(NamedTuple):
    """A day read by a worker: its reduced batches and its warnings, in the reader's order;
    failed: the job raised (the day is then read again in the parent)."""

    results: list[Any]
    warnings: list[tuple[Path, str]]
    failed: bool = False


def days_of(sources: Sequence[Source]) -> list[tuple[Source, ...]]:
    """The sources, in order, cut at each UTC day (a bundle is one day)."""
    days: list[tuple[Source, ...]] = []
    current: list[Source] = []
    last: date | None = None
    for source in sources:
        day = source.day if isinstance(source, Bundle) else source.timestamp.date()
        if current and day != last:
            days.append(tuple(current))
            current = []
        current.append(source)
        last = day
    if current:
        days.append(tuple(current))
    return days


def read_day(job: DayJob, threads: int = 0) -> DayDone:
    """One day read as the single-process reader reads it, with `threads` parser threads
    (none in a worker, which reads a batch at a time: the other cores are the other
    workers'; and it keeps its freed heap for the next day)."""
    warnings: list[tuple[Path, str]] = []
    reader = Reader(job.spec, lambda path, reason: warnings.append((path, reason)), None,
                    job.batch_bytes, threads=threads, trim=threads > 0)  # fmt: skip
    return DayDone(list(reader.reduced(job.sources, job.reduce)), warnings)


def _serve(conn: Connection, parent: int) -> None:
    """A worker's loop: a job in, its DayDone out, until told to stop or the parent is gone.
    Whatever happens here ends in os._exit: a worker never prints, nor runs the parent's
    exit handlers."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    try:
        while os.getppid() == parent:
            if not conn.poll(PARENT_CHECK_S):
                continue
            job = conn.recv()
            if job is None:
                break
            conn.send_bytes(_answer(job))
    finally:
        os._exit(0)


def _answer(job: DayJob) -> bytes:
    """The day read, pickled; on any failure a DayDone that says so, and the parent reads
    the day itself (a bug then shows its own traceback there)."""
    try:
        return bytes(ForkingPickler.dumps(read_day(job)))
    except Exception:  # not hidden: the parent reads the day again and meets it there
        return bytes(ForkingPickler.dumps(DayDone([], [], failed=True)))


class _Worker:
    def __init__(self, process: BaseProcess, conn: Connection) -> None:
        self.process = process
        self.conn = conn
        self.queued: list[int] = []  # the jobs sent, in order


class DayWorkers:
    """Worker processes that read whole days; `count` 1 (or no fork here) starts none, and
    the days are read in this process as before. A context manager: on exit the workers
    are ended, whatever happened."""

    def __init__(self, count: int, note: Note, min_bytes: float = 0) -> None:
        self.note = note
        # Below this, the forks and the hand-over cost more than the workers save.
        self._min_bytes = min_bytes
        self._workers: list[_Worker] = []
        # More than one per core would only take turns on the cores.
        self._wanted = min(count, usable_cores())
        self._started = False

    @property
    def count(self) -> int:
        """The workers running (none before the first read of several days)."""
        return len(self._workers)

    def _start(self) -> None:
        """Fork the workers, once: only while this process runs no other thread (a fork
        copies no thread but the caller, and a lock another one held would stay held in
        the worker), else the days are read here."""
        if self._started or self._wanted < 2 or threading.active_count() > 1:
            return
        self._started = True
        try:
            context = multiprocessing.get_context("fork")
        except ValueError:
            return  # no fork here: read in this process
        parent = os.getpid()
        for _ in range(self._wanted):
            ours, theirs = context.Pipe()
            process = context.Process(target=_serve, args=(theirs, parent), daemon=True)
            try:
                process.start()
            except OSError:  # a process limit: fewer workers
                ours.close()
                theirs.close()
                break
            theirs.close()
            self._workers.append(_Worker(process, ours))

    def close(self) -> None:
        """End the workers: an idle one is told to stop, one still reading (the reading was
        stopped or failed) is killed, since it writes nothing; and one that has not stopped
        within a moment."""
        for worker in self._workers:
            if worker.queued:
                worker.process.kill()
                continue
            with contextlib.suppress(OSError, ValueError):
                worker.conn.send(None)
        for worker in self._workers:
            worker.process.join(timeout=2 * PARENT_CHECK_S)
            if worker.process.is_alive():
                worker.process.kill()
                worker.process.join()
            worker.conn.close()
        self._workers = []

    def __enter__(self) -> DayWorkers:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        self.close()

    def reduced(
        self, reader: Reader, files: Sequence[Source], reduce: Callable[[Batch], T]
    ) -> Iterator[T]:
        """As reader.reduced(files, reduce) without workers: the same results and warnings
        in the same order, the days read by the workers, forked at the first read of two
        days or more (a day whose worker failed or died is read in this process)."""
        days = days_of(files)
        if len(days) > 1 and (not self._min_bytes or estimated_bytes(files) >= self._min_bytes):
            self._start()
        if not self._workers:
            yield from replace(reader, workers=None).reduced(files, reduce)
            return
        jobs = [DayJob(reader.spec, reader.batch_bytes, day, reduce) for day in days]
        sources_done = 0
        for index, answer in self._in_order(jobs):
            done = read_day(jobs[index], reader.threads) if answer.failed else answer
            for path, reason in done.warnings:
                reader.warn(path, reason)
            sources_done += len(jobs[index].sources)
            if reader.progress is not None:
                reader.progress(sources_done, len(files))
            yield from done.results

    def _in_order(self, jobs: Sequence[DayJob]) -> Iterator[tuple[int, DayDone]]:
        """Each job's DayDone in job order, the workers reading ahead (at most
        QUEUED_PER_WORKER days each past the one awaited); once no worker is left, the
        rest is marked failed (read in this process)."""
        finished: dict[int, DayDone] = {}
        next_job = 0
        for wanted in range(len(jobs)):
            while wanted not in finished:
                if not self._workers:
                    finished[wanted] = DayDone([], [], failed=True)
                    break
                limit = min(len(jobs), wanted + QUEUED_PER_WORKER * len(self._workers))
                next_job = self._hand_out(jobs, next_job, limit)
                self._collect(finished)
            yield wanted, finished.pop(wanted)

    def _hand_out(self, jobs: Sequence[DayJob], next_job: int, limit: int) -> int:
        """Send jobs from next_job (up to limit) to the workers with room, one each in turn;
        the next job not sent."""
        sent = True
        while sent and next_job < limit:
            sent = False
            for worker in self._workers:
                if next_job < limit and len(worker.queued) < QUEUED_PER_WORKER:
                    try:
                        worker.conn.send(jobs[next_job])
                    except (OSError, ValueError):
                        continue  # a dead worker: _collect finds it
                    worker.queued.append(next_job)
                    next_job += 1
                    sent = True
        return next_job

    def _collect(self, finished: dict[int, DayDone]) -> None:
        """Wait for the workers' next answers (or ends), and take them."""
        busy = {worker.conn: worker for worker in self._workers if worker.queued}
        for conn in wait(list(busy)):
            worker = busy[conn]  # type: ignore[index]
            try:
                finished[worker.queued.pop(0)] = worker.conn.recv()
            except (EOFError, OSError):
                self._lost(worker, finished)

    def _lost(self, worker: _Worker, finished: dict[int, DayDone]) -> None:
        """A worker died: its days are read in this process, and it is given no more."""
        worker.process.join(timeout=PARENT_CHECK_S)
        code = worker.process.exitcode
        how = f"signal {-code}" if code is not None and code < 0 else f"status {code}"
        self.note(f"a reading worker ended ({how}); its days are read in the main process")
        self._workers.remove(worker)
        worker.conn.close()
        for index in worker.queued:
            finished[index] = DayDone([], [], failed=True)
