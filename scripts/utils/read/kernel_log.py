"""Saved logs given with --kernel-log: the kills in them, each at its UTC time.

The forms read, a line at a time (a line in none of them is skipped):

- `dmesg` (raw): `[12345.678901] message`, seconds since boot. They are placed with the
  boot time of the latest boot the dumps show: the earliest STARTED of the latest process
  snapshot, which is kthreadd's (PID 2 starts in the boot's first clock tick, so its
  STARTED is /proc/stat's btime), loose or in the latest day bundle; without one, such
  lines are left out, and said so.
- `dmesg -T`: `[Sun Dec  6 22:20:43 2026] message`, a local time.
- `journalctl -k` short and short-precise, /var/log/kern.log and /var/log/messages:
  `Dec  6 22:20:43[.123456] host kernel: [  123.4] message`, a local time without a year:
  the year is the dumps' (the last snapshot's, or the one before when that would put the
  line more than a day after the dumps end).
- `journalctl -k -o short-iso` (and short-iso-precise, rsyslog's RFC 3339 timestamps):
  `2026-12-06T22:20:43+0000 host kernel: message`, with its zone.

Local times are in the zone --kernel-log-tz names (this machine's by default). Besides the
kernel's lines, the journal's and syslog's lines of systemd-oomd and earlyoom are read.
"""

from __future__ import annotations

import functools
import re
import sys
from collections.abc import Callable, Iterable, Sequence
from datetime import UTC, datetime, timedelta, tzinfo
from pathlib import Path
from typing import NamedTuple

from utils.collect.oom_log import KernelOomParser, userspace_kill
from utils.collect.snapshot_format import OomVictim
from utils.read.bounded_read import BadFileError, read_bytes

STDIN = "-"
# No saved kernel log is this large; a larger file is not one.
MAX_LOG_BYTES = 256 * 1024 * 1024
_RAW = re.compile(r"\[\s*(\d{1,10}\.\d{1,9})\] ?(.*)")
_DMESG_T = re.compile(r"\[([A-Z][a-z]{2} [A-Z][a-z]{2} [ \d]\d \d\d:\d\d:\d\d \d{4})\] ?(.*)")
_HOST_IDENT = r" (\S+) ([^\s:\[]+)(?:\[\d{1,10}\])?: ?(.*)"
_SYSLOG = re.compile(r"([A-Z][a-z]{2}) +(\d{1,2}) (\d\d:\d\d:\d\d)(?:\.\d{1,9})?" + _HOST_IDENT)
_ISO = re.compile(
    r"(\d{4}-\d\d-\d\d[T ]\d\d:\d\d:\d\d)(?:\.\d{1,9})?(Z|[+-]\d\d:?\d\d)?" + _HOST_IDENT
)
_MONTH_NAMES = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]
_MONTHS = {name: at for at, name in enumerate(_MONTH_NAMES, 1)}
_USERSPACE_IDENTS = ("systemd-oomd", "earlyoom")


class KernelLogs(NamedTuple):
    """What --kernel-log and --kernel-log-tz ask: the saved logs, and the zone of their
    times without one."""

    names: tuple[str, ...] = ()
    zone: tzinfo | None = None  # None: this machine's local zone


class LogClock(NamedTuple):
    """What places a line's time: the zone of times without one, the dumps' last snapshot
    (UTC, for the year), and the boot time of raw dmesg lines (UTC), if known."""

    zone: tzinfo | None  # None: this machine's local zone
    last_utc: datetime
    boot_utc: datetime | None


class LogKill(NamedTuple):
    utc: datetime  # naive, UTC, as every time of the dumps
    victim: OomVictim


class LogKills(NamedTuple):
    kills: list[LogKill]
    unplaced: int  # raw dmesg kills without a boot time to place them


def kills_in_text(text: str, clock: LogClock) -> LogKills:
    """The kills a saved log holds, in its order."""
    parser = KernelOomParser()
    found: list[LogKill] = []
    unplaced = 0
    for line in text.splitlines():
        when, ident, message = _split(line, clock)
        if ident in _USERSPACE_IDENTS:
            victim = userspace_kill(message)
            if victim is not None and when is not None:
                found.append(LogKill(when, victim))
            continue
        if ident not in ("", "kernel"):
            continue
        for kill in parser.feed(_RAW_PREFIX.sub("", message, count=1), _stamp(when)):
            unplaced += _add(found, kill.victim, kill.stamp)
    for kill in parser.flush():
        unplaced += _add(found, kill.victim, kill.stamp)
    return LogKills(found, unplaced)


_RAW_PREFIX = re.compile(r"^\[\s*\d{1,10}\.\d{1,9}\] ?")
_EPOCH = datetime(1970, 1, 1)


def _stamp(when: datetime | None) -> float | None:
    return None if when is None else (when - _EPOCH).total_seconds()


def _add(found: list[LogKill], victim: OomVictim, stamp: float | None) -> int:
    if stamp is None:
        return 1
    found.append(LogKill(_EPOCH + timedelta(seconds=stamp), victim))
    return 0


def _split(line: str, clock: LogClock) -> tuple[datetime | None, str, str]:
    """A line's UTC time (None: not placeable), its ident ("" for dmesg) and its message."""
    if (match := _RAW.match(line)) is not None:
        if clock.boot_utc is None:
            return None, "", match[2]
        return clock.boot_utc + timedelta(seconds=float(match[1])), "", match[2]
    if (match := _DMESG_T.match(line)) is not None:
        local = _parse(match[1], "%a %b %d %H:%M:%S %Y")
        return _utc(local, clock.zone), "", match[2]
    if (match := _ISO.match(line)) is not None:
        return _iso_time(match[1], match[2], clock.zone), match[4], match[5]
    if (match := _SYSLOG.match(line)) is not None:
        return _syslog_time(match, clock), match[5], match[6]
    return None, "?", line


def _parse(text: str, shape: str) -> datetime | None:
    try:
        return datetime.strptime(text, shape)
    except ValueError:
        return None


def _utc(local: datetime | None, zone: tzinfo | None) -> datetime | None:
    if local is None:
        return None
    try:
        # A naive time's astimezone() reads it in this machine's zone, its DST included.
        aware = local if zone is None else local.replace(tzinfo=zone)
        return aware.astimezone(UTC).replace(tzinfo=None)
    except (OverflowError, ValueError):
        return None


def _iso_time(text: str, zone_text: str | None, zone: tzinfo | None) -> datetime | None:
    local = _parse(text.replace(" ", "T"), "%Y-%m-%dT%H:%M:%S")
    if local is None or zone_text is None:
        return _utc(local, zone)
    if zone_text == "Z":
        return local
    sign = -1 if zone_text[0] == "-" else 1
    digits = zone_text[1:].replace(":", "")
    offset = timedelta(hours=int(digits[:2]), minutes=int(digits[2:]))
    return local - sign * offset


def _syslog_time(match: re.Match[str], clock: LogClock) -> datetime | None:
    month = _MONTHS.get(match[1])
    if month is None:
        return None
    year = clock.last_utc.year
    for candidate in (year, year - 1):
        local = _parse(
            f"{candidate}-{month:02d}-{int(match[2]):02d} {match[3]}", "%Y-%m-%d %H:%M:%S"
        )
        when = _utc(local, clock.zone)
        if when is not None and when <= clock.last_utc + timedelta(days=1):
            return when
    return None


# --- Reading the files --------------------------------------------------------------------


@functools.cache
def _stdin_bytes() -> bytes:
    """Standard input, read once: make_report.py gives the same `-` to both analyses, and the
    second would read nothing."""
    return sys.stdin.buffer.read(MAX_LOG_BYTES)


def read_log_text(name: str, read_stdin: Callable[[], bytes] | None = None) -> str:
    """A saved log's text; BadFileError (its reason) when it cannot be read or is not text
    (it holds NUL bytes, or is not UTF-8 in most of its lines)."""
    if name == STDIN:
        data = (read_stdin or _stdin_bytes)()
    else:
        data = read_bytes(Path(name), MAX_LOG_BYTES)
    if b"\0" in data[:65536]:
        raise BadFileError("not text (it holds NUL bytes)")
    text = data.decode("utf-8", "replace")
    if text.count("\ufffd") > max(16, len(text) // 100):
        raise BadFileError("not text (not UTF-8)")
    return text


def read_kernel_logs(
    names: Sequence[str], clock: LogClock, warn: Callable[[Path, str], None]
) -> list[LogKill]:
    """The kills of every saved log named, in time order; one warning line per file that
    cannot be read, and one for raw dmesg kills no boot time places."""
    found: list[LogKill] = []
    for name in names:
        shown = Path("(standard input)" if name == STDIN else name)
        try:
            text = read_log_text(name)
        except (BadFileError, OSError) as err:
            reason = err.strerror if isinstance(err, OSError) and err.strerror else str(err)
            warn(shown, f"{reason}; its kills are left out")
            continue
        kills = kills_in_text(text, clock)
        if kills.unplaced:
            warn(
                shown,
                f"{kills.unplaced} kill(s) in raw dmesg time (seconds since boot) left out:"
                " no process snapshot gives the boot time",
            )
        found += kills.kills
    return sorted(found, key=lambda kill: kill.utc)


def started_boot_time(started: Iterable[str]) -> datetime | None:
    """The boot time a process snapshot gives: its earliest STARTED (kthreadd's)."""
    times = [_parse(text[:19], "%Y-%m-%d %H:%M:%S") for text in started if text]
    known = [time for time in times if time is not None]
    return min(known) if known else None
