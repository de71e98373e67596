#!/usr/bin/env python3
"""Compact every closed UTC day of snapshots into one xz-compressed tar per day.

The collector writes two small CSV files every 10 minutes and never deletes any, so a
month of a busy host is thousands of files and a few hundred MB. This turns each closed
UTC day older than --older-than-days into `mem_<YYYYMMDD>.tar.xz` in the same dir: a
plain tar of that day's original files, unchanged (`tar -xJf` gives them back byte for
byte), about 30x smaller. It is meant to run from cron or a systemd timer, next to the
collector, so it imports nothing beyond the standard library.

Crash-safe: a bundle is written under a hidden temporary name, fsynced, read back and
compared with the files on disk, renamed into place, and only then are the originals
deleted (utils.collect.day_compaction). Killed at any instant, a day is either still all loose
files, or a verified bundle plus some originals that the next run removes.
"""

from __future__ import annotations

import argparse
import signal
import sys
from collections.abc import Callable, Sequence
from datetime import UTC, datetime

from utils.collect.compaction import CompactError, LockHeldError, RunSettings, compact
from utils.collect.day_compaction import reason_text
from utils.console import (
    EXIT_INTERNAL,
    EXIT_INTERRUPTED,
    EXIT_NO_DATA,
    EXIT_OK,
    EXIT_TERMINATED,
    Console,
    add_dumps_dir_arg,
    internal_error_line,
    save_traceback,
)
from utils.core import defaults
from utils.core.signals import Stopped, StopSignals

PROG = "compact_dumps"

# --- Defaults; every one of them can be overridden by a flag -----------------
OLDER_THAN_DAYS = defaults.COMPACT_OLDER_THAN_DAYS  # the last two closed days stay loose
KEEP_DAYS: int | None = None  # None: never delete a bundle (retention is opt-in)
DUMPS_DIR = defaults.DUMPS_DIR

# --- Fixed behaviour ----------------------------------------------------------
MAX_DAYS = 36_500  # a century: more would take dates out of range


# --- Command line --------------------------------------------------------------------


def _days(minimum: int) -> Callable[[str], int]:
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"not a whole number of days: {text!r}") from None
        if not minimum <= value <= MAX_DAYS:
            raise argparse.ArgumentTypeError(
                f"must be from {minimum} to {MAX_DAYS:,} days, got {text}"
            )
        return value

    return parse


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=PROG, description=__doc__.split("\n\n")[0])
    add_dumps_dir_arg(parser, DUMPS_DIR)
    parser.add_argument(
        "--older-than-days",
        type=_days(0),
        default=OLDER_THAN_DAYS,
        metavar="N",
        help="compact the UTC days that ended more than N days ago, in days; 0: every day"
        f" up to yesterday (default {OLDER_THAN_DAYS})",
    )
    parser.add_argument(
        "--keep-days",
        type=_days(1),
        default=KEEP_DAYS,
        metavar="M",
        help="then delete the bundles of days that ended more than M days ago, in days;"
        " must be more than N (default: keep every bundle)",
    )
    parser.add_argument(
        "--dry-run",
        action="store_true",
        help="say what would be compacted and deleted, and change nothing",
    )
    return parser


def note(message: str) -> None:
    print(f"{PROG}: {message}", file=sys.stderr, flush=True)


def parse_settings(argv: Sequence[str] | None = None) -> RunSettings:
    """The run the command line asks for (argparse exits 2 on bad flags)."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.keep_days is not None and args.keep_days <= args.older_than_days:
        parser.error(
            f"--keep-days {args.keep_days} must be more than --older-than-days"
            f" {args.older_than_days}, or the bundles would be deleted as they are written"
        )
    return RunSettings(
        args.dumps_dir,
        datetime.now(UTC).date(),
        older_than_days=args.older_than_days,
        keep_days=args.keep_days,
        dry_run=args.dry_run,
        say=Console().print,
        warn=note,
    )


def main(argv: Sequence[str] | None = None) -> int:
    run = parse_settings(argv)
    guard = StopSignals((signal.SIGTERM, signal.SIGINT)).install()
    try:
        report = compact(run)
    except LockHeldError as err:
        note(str(err))
        return EXIT_OK
    except CompactError as err:
        note(str(err))
        return EXIT_NO_DATA
    except OSError as err:  # the disk failing outside a day (EIO on the dir, say)
        note(f"cannot use the dumps dir: {reason_text(err, run.dumps_dir)}")
        return EXIT_NO_DATA
    except (Stopped, KeyboardInterrupt) as stop:
        by_sigint = isinstance(stop, KeyboardInterrupt) or stop.signum == signal.SIGINT
        left = "; the day in progress is left as it was, and the next run carries on"
        note(("interrupted" if by_sigint else "stopped by SIGTERM") + left)
        return EXIT_INTERRUPTED if by_sigint else EXIT_TERMINATED
    except Exception as err:  # a bug: one line, the traceback in a file
        note(internal_error_line(err, save_traceback(PROG, err, [])))
        return EXIT_INTERNAL
    finally:
        guard.restore()
    return EXIT_OK if report.ok else EXIT_NO_DATA


if __name__ == "__main__":
    sys.exit(main())
