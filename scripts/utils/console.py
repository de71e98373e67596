"""The command-line plumbing every script shares: exit statuses, argument types, warnings
and progress on stderr, phase timings, a stdout that ends quietly when piped into `head`,
and run_analysis(), which turns what can go wrong into one line and an exit status.

Standard library only: the collector and the compactor use it too.
"""

from __future__ import annotations

import argparse
import math
import os
import platform
import re
import signal
import sys
import tempfile
import time
import traceback
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from datetime import UTC, datetime, tzinfo
from pathlib import Path
from typing import NamedTuple, TextIO

from utils.core import allocator
from utils.core.defaults import SUMMARY_FOLDER
from utils.core.signals import Stopped, StopSignals
from utils.core.units import DAY_S, HOUR_S, MINUTE_S
from utils.parser import NoDataError, TimeWindow, Where, parse_time_arg
from utils.read.kernel_log import KernelLogs

# A progress line is redrawn at most this often, so it costs nothing.
PROGRESS_EVERY_S = 0.1

# Exit statuses, the same in every script (the README has the table).
EXIT_OK = 0
EXIT_NO_DATA = 1  # nothing to analyse, or the output cannot be written
EXIT_USAGE = 2  # argparse's own status for bad flags
EXIT_ALERT = 3  # an alert condition the user asked about (--fail-on-leak, --alert-*)
EXIT_INTERNAL = 70  # a bug: EX_SOFTWARE in sysexits.h
EXIT_INTERRUPTED = 128 + signal.SIGINT  # 130
EXIT_TERMINATED = 128 + signal.SIGTERM  # 143


class Diagnostics:
    """One-line warnings on stderr, and a progress line only when stderr is a terminal.
    The files skipped are kept too, for a report that lists them."""

    def __init__(self, prog: str, stream: TextIO | None = None, progress: bool | None = None):
        self.prog = prog
        self.stream = sys.stderr if stream is None else stream
        self.show_progress = self.stream.isatty() if progress is None else progress
        # (path, reason) in the order warned, each once: an ordered set.
        self.skipped: dict[tuple[Path, str], None] = {}
        self._drawn = False
        self._last_draw = 0.0

    def _clear(self) -> None:
        if self._drawn:
            self.stream.write("\r\033[K")
            self._drawn = False

    def note(self, message: str) -> None:
        self._clear()
        print(f"{self.prog}: {message}", file=self.stream, flush=True)

    def warn(self, path: Path, reason: str) -> None:
        """A bad input file: name it and say why, on one line; once, if both analyses of
        make_report find the same (a bundle holds both kinds of snapshot)."""
        if (path, reason) in self.skipped:
            return
        self.skipped[path, reason] = None
        self.note(f"warning: {path}: {reason}")

    def reading(self, done: int, total: int) -> None:
        """The progress of reading files (a Progress callback)."""
        self.progress("reading", done, total)

    def progress(self, what: str, done: int, total: int) -> None:
        if not self.show_progress:
            return
        now = time.monotonic()
        if done < total and now - self._last_draw < PROGRESS_EVERY_S:
            return
        self._last_draw = now
        percent = 100 * done // max(total, 1)
        self.stream.write(f"\r\033[K{self.prog}: {what} {done:,}/{total:,} files ({percent}%)")
        self.stream.flush()
        self._drawn = True

    def end_progress(self) -> None:
        self._clear()
        self.stream.flush()


# Times a named phase of the work: PhaseTimer.phase.
Phase = Callable[[str], AbstractContextManager[None]]


class PhaseTimer:
    """Wall time per phase (discovery, reading, computing, plotting), for --timings."""

    PHASES = ("discovery", "reading", "computing", "growth", "plotting")
    # Shown even when they took no time; "growth" only in the analysis that has it.
    ALWAYS = ("discovery", "reading", "computing", "plotting")

    def __init__(self) -> None:
        self.seconds = dict.fromkeys(self.ALWAYS, 0.0)

    @contextmanager
    def phase(self, name: str) -> Iterator[None]:
        began = time.perf_counter()
        try:
            yield
        finally:
            self.seconds[name] = self.seconds.get(name, 0.0) + time.perf_counter() - began

    def summary(self) -> str:
        timed = [name for name in self.PHASES if name in self.seconds]
        parts = ", ".join(f"{name} {self.seconds[name]:.3f} s" for name in timed)
        return f"timings: {parts}"


class Console:
    """stdout for people; if the reader goes away (`| head`), the rest is dropped
    quietly and the analysis still finishes its files."""

    def __init__(self, stream: TextIO | None = None):
        self.stream = sys.stdout if stream is None else stream
        self.closed = False

    def print(self, text: str = "") -> None:
        if self.closed:
            return
        try:
            print(text, file=self.stream, flush=True)
        except BrokenPipeError:
            self.closed = True
            # Point fd 1 at /dev/null so the interpreter's own flush at exit is quiet too.
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, self.stream.fileno())
            os.close(devnull)


def save_traceback(prog: str, error: BaseException, where: Sequence[Path]) -> Path | None:
    """Write the traceback of an unexpected error, with the command line and versions, to
    `<prog>-traceback-<UTC time>.txt` in the first of `where` (then the temp dir) that
    takes it; None if none does."""
    stamp = time.strftime("%Y%m%d_%H%M%S", time.gmtime())
    report = "".join(
        [
            f"command: {' '.join(sys.argv)}\n",
            f"python: {platform.python_version()} on {platform.platform()}\n\n",
            *traceback.format_exception(error),
        ]
    )
    for folder in [*where, Path(tempfile.gettempdir())]:
        path = folder / f"{prog}-traceback-{stamp}.txt"
        try:
            folder.mkdir(parents=True, exist_ok=True)
            path.write_text(report, encoding="utf-8")
        except OSError:
            continue
        return path
    return None


def internal_error_line(error: BaseException, trace: Path | None) -> str:
    """What a user sees of a bug: one line, and where its traceback is."""
    message = " ".join(str(error).split()) or "no message"
    where = f"; traceback in {trace}" if trace is not None else ""
    return (
        f"internal error: {type(error).__name__}: {message};"
        f" please report it with the command line{where}"
    )


class Session(NamedTuple):
    """What an analysis talks to: stderr (warnings, progress), stdout, and the phase clock."""

    diagnostics: Diagnostics
    console: Console
    timer: PhaseTimer


class UsageError(NoDataError):
    """A flag that the data show to be wrong (a --compare period with no snapshot): one
    line, exit status 2, as argparse's own errors."""

    def __str__(self) -> str:
        return f"error: {super().__str__()}"


# Called with the analysis's exit status once it has ended, it returns the final one:
# the Prometheus textfile (utils.outputs.prometheus.Textfile.finish).
Finish = Callable[[int, "Session"], int]


def run_analysis(
    prog: str,
    analysis: Callable[[Session], int | None],
    out_dir: Path,
    timings: bool,
    finish: Finish | None = None,
) -> int:
    """Run an analysis and turn what a user can cause into one line and an exit status:
    0 done, 1 no data or an unwritable out dir, 130 interrupted (Ctrl-C), 143 stopped
    by SIGTERM; temporary files and the plot worker are cleaned up on the way out. A bug
    is one line too, with exit status 70 and its traceback saved to a file. The analysis
    returns its own status (3 for an alert it was asked about), or None for 0. Then
    `finish`, if given, is run with that status (however the analysis ended), guarded
    the same way."""
    diagnostics = Diagnostics(prog)
    timer = PhaseTimer()
    allocator.return_freed_memory()
    allocator.freeze()  # the imported libraries
    guard = StopSignals((signal.SIGTERM,)).install()
    session = Session(diagnostics, Console(), timer)
    try:
        status = _outcome(prog, diagnostics, out_dir, lambda: analysis(session))
        if finish is not None:
            ended = status
            status = _outcome(prog, diagnostics, out_dir, lambda: finish(ended, session))
    finally:
        guard.restore()
        if timings:
            diagnostics.note(timer.summary())
    return status


def _outcome(
    prog: str, diagnostics: Diagnostics, out_dir: Path, run: Callable[[], int | None]
) -> int:
    """run()'s exit status, or the one of what it raised (see run_analysis)."""
    try:
        status = run()
    except NoDataError as err:
        diagnostics.note(str(err))
        return EXIT_USAGE if isinstance(err, UsageError) else EXIT_NO_DATA
    except OSError as err:  # the out dir cannot be created or written
        diagnostics.note(f"cannot write {err.filename or out_dir}: {err.strerror or err}")
        return EXIT_NO_DATA
    except KeyboardInterrupt:
        diagnostics.note("interrupted")
        return EXIT_INTERRUPTED
    except Stopped:
        diagnostics.note("stopped by SIGTERM")
        return EXIT_TERMINATED
    except Exception as err:  # a bug: reported with its traceback, never a wall of Python
        diagnostics.note(internal_error_line(err, save_traceback(prog, err, [out_dir])))
        return EXIT_INTERNAL
    return EXIT_OK if status is None else status


def positive_count(text: str) -> int:
    """An argument type: a whole number of at least 1."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {text}")
    return value


def positive_number(text: str) -> float:
    """An argument type: a finite number above 0."""
    value = _finite_number(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be a finite number above 0, got {text}")
    return value


def non_negative(text: str) -> float:
    """An argument type: a finite number of at least 0."""
    value = _finite_number(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be a finite number >= 0, got {text}")
    return value


def _finite_number(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"must be a finite number, got {text}")
    return value


# Units of a duration argument, in seconds (case-insensitive).
DURATION_UNITS = {
    "s": 1,
    "sec": 1,
    "m": MINUTE_S,
    "min": MINUTE_S,
    "h": HOUR_S,
    "d": DAY_S,
    "w": 7 * DAY_S,
}
# Units of a rate argument, in MiB per day; a bare number is MiB/day.
RATE_UNITS = {unit: DAY_S / seconds for unit, seconds in DURATION_UNITS.items()}
_QUANTITY = re.compile(r"\s*([0-9]*\.?[0-9]+(?:[eE][+-]?[0-9]+)?)\s*([a-zA-Z/]*)\s*")


def duration_arg(text: str) -> float:
    """An argument type: a duration with its unit (`90s`, `10m`, `2h`, `2d`, `1w`), in seconds."""
    match = _QUANTITY.fullmatch(text)
    unit = match.group(2).lower() if match else ""
    if match is None or unit not in DURATION_UNITS:
        raise argparse.ArgumentTypeError(
            f"not a duration with a unit, such as 90s, 10m, 2h or 2d: {text!r}"
        )
    return _finite_number(match.group(1)) * DURATION_UNITS[unit]


def rate_arg(text: str) -> float:
    """An argument type: a rate of growth, `10` (MiB/day), `10MiB/d`, `40MiB/h`, `1MB/min`
    (MB read as MiB, as the dumps' _MB columns are), in MiB per day."""
    match = _QUANTITY.fullmatch(text)
    unit = match.group(2).lower() if match else ""
    per = unit.removeprefix("mib").removeprefix("mb").removeprefix("/")
    if match is None or (unit and (per == unit or per not in RATE_UNITS)):
        raise argparse.ArgumentTypeError(
            f"not a rate, such as 10 (MiB/day), 10MiB/d or 40MiB/h: {text!r}"
        )
    return _finite_number(match.group(1)) * (RATE_UNITS[per] if unit else 1.0)


def add_window_args(parser: argparse.ArgumentParser) -> None:
    """--since and --until: an inclusive UTC window."""
    parser.add_argument(
        "--since",
        type=_since,
        metavar="TIME",
        help="only snapshots at or after TIME, UTC, as YYYY-MM-DD[ HH:MM[:SS]]"
        " (a day or minute means its start)",
    )
    parser.add_argument(
        "--until",
        type=_until,
        metavar="TIME",
        help="only snapshots at or before TIME, UTC, as YYYY-MM-DD[ HH:MM[:SS]]"
        " (a day or minute means its end)",
    )


def add_dumps_dir_arg(parser: argparse.ArgumentParser, dumps_dir: Path) -> None:
    """--dumps-dir, the same in every script that reads the dumps."""
    parser.add_argument(
        "--dumps-dir",
        type=Path,
        default=dumps_dir,
        metavar="DIR",
        help=f"where the snapshots are (default {dumps_dir})",
    )


def add_common_args(parser: argparse.ArgumentParser, dumps_dir: Path, out_dir: Path) -> None:
    """--dumps-dir, --out-dir, --since, --until and --timings, the same in both analyses."""
    add_dumps_dir_arg(parser, dumps_dir)
    parser.add_argument(
        "--out-dir",
        type=Path,
        default=out_dir,
        metavar="DIR",
        help=f"where the CSV and PNGs go, created if missing (default {out_dir})",
    )
    add_window_args(parser)
    parser.add_argument(
        "--timings",
        action="store_true",
        help="print the time spent discovering, reading, computing and plotting on stderr",
    )


def add_plots_arg(parser: argparse.ArgumentParser, plots: bool, answers: str) -> None:
    """--no-plots: the answers without drawing or touching a PNG (an hourly cron run)."""
    parser.add_argument(
        "--no-plots",
        dest="plots",
        action="store_false",
        default=plots,
        help=f"write the answers only ({answers}): no PNG is drawn, and the ones already in"
        " the out dir are left as they are (for an hourly cron run)",
    )


def add_summary_args(
    parser: argparse.ArgumentParser, summary_dir: Path | None, summaries: bool = True
) -> None:
    """--summary-dir and --no-summaries: where the day summaries are kept, or none."""
    shown = "DUMPS_DIR/.summaries" if summary_dir is None else str(summary_dir)
    parser.add_argument(
        "--summary-dir",
        type=Path,
        default=summary_dir,
        metavar="DIR",
        help="where each closed UTC day's summary is kept, a cache that spares later runs"
        f" reading that day again; created if missing (default {shown})",
    )
    parser.add_argument(
        "--no-summaries",
        dest="summaries",
        action="store_false",
        help="read every snapshot and keep no day summary (the answers are the same)",
    )
    parser.set_defaults(summaries=summaries)


def where_from_args(parser: argparse.ArgumentParser, args: argparse.Namespace) -> Where:
    """What --dumps-dir, --since, --until, --out-dir and the summary flags ask for."""
    window = window_from_args(parser, args)
    return Where(args.dumps_dir, window, args.out_dir, summary_dir=summary_dir_from_args(args))


def summary_dir_from_args(args: argparse.Namespace) -> Path | None:
    """The summary folder the flags ask for; None with --no-summaries."""
    if not args.summaries:
        return None
    folder: Path | None = args.summary_dir
    return args.dumps_dir / SUMMARY_FOLDER if folder is None else folder


def _since(text: str) -> datetime:
    return _time_arg(text, end=False)


def _until(text: str) -> datetime:
    return _time_arg(text, end=True)


def _time_arg(text: str, *, end: bool) -> datetime:
    try:
        return parse_time_arg(text, end=end)
    except ValueError as err:
        raise argparse.ArgumentTypeError(str(err)) from None


def window_from_args(parser: argparse.ArgumentParser, args: argparse.Namespace) -> TimeWindow:
    window = TimeWindow(args.since, args.until)
    if window.since is not None and window.until is not None and window.since > window.until:
        parser.error(f"--since {window.since} is after --until {window.until}")
    return window


def add_kernel_log_args(parser: argparse.ArgumentParser) -> None:
    """--kernel-log FILE (repeatable, - for standard input) and --kernel-log-tz ZONE."""
    parser.add_argument(
        "--kernel-log",
        action="append",
        default=[],
        metavar="FILE",
        help="a saved log whose OOM kills (the kernel's, systemd-oomd's, earlyoom's) inside the"
        " window join the others: dmesg (raw or -T), journalctl -k (short, short-iso,"
        " short-precise), /var/log/kern.log or /var/log/messages; - reads standard input;"
        " repeatable",
    )
    parser.add_argument(
        "--kernel-log-tz",
        type=zone_arg,
        default=None,
        metavar="ZONE",
        help="the time zone of --kernel-log times that carry none, such as Europe/Paris or UTC"
        " (default: this machine's local zone)",
    )


def zone_arg(text: str) -> tzinfo:
    """An IANA time zone name (or UTC)."""
    # Imported here: zoneinfo loads sysconfig, which the collector (importing this
    # module for its exit statuses) does without.
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError  # noqa: PLC0415

    if text.upper() == "UTC":
        return UTC
    try:
        return ZoneInfo(text)
    except (ZoneInfoNotFoundError, ValueError) as err:
        raise argparse.ArgumentTypeError(
            f"not a time zone name, such as Europe/Paris: {text!r}"
        ) from err


def kernel_logs_from_args(args: argparse.Namespace) -> KernelLogs:
    return KernelLogs(tuple(args.kernel_log), args.kernel_log_tz)
