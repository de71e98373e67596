"""Kills read from saved logs (--kernel-log) joined to the intervals the dumps count.

A kill at time t belongs to the interval between the last snapshot at or before t and the
first after it (within a second or two of a snapshot: the neighbouring interval where the
kernel's counter rose, since saved logs print whole seconds); one outside the analysed
snapshots is left out. A kill the dumps already
hold (the collector read it from /dev/kmsg) is not counted again: in its interval, a logged
kill of the same PID (for systemd-oomd, of the same cgroup) is the same kill, and so is a
kill two saved logs both hold. Where the dumps carry no OOM counter, the saved logs' kills
are all there is.
"""

from __future__ import annotations

import csv
import io
import lzma
from collections.abc import Callable, Sequence
from datetime import date, datetime
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pandas as pd

from utils.collect.bundles import BUNDLE_PREFIX, BUNDLE_SUFFIX, parse_bundle_day, read_bundle
from utils.collect.snapshot_format import (
    CSV_SUFFIX,
    PROCESS_PREFIX,
    USERSPACE_KINDS,
    OomVictim,
    parse_name_timestamp,
)
from utils.read.bounded_read import BadFileError, read_bytes
from utils.read.kernel_log import KernelLogs, LogClock, read_kernel_logs, started_boot_time
from utils.reduce.counters import OomInterval, interval_kills

# How far a saved log's time may be from the snapshot it is near (see _place).
SLACK_S = 2


def join_log_kills(
    ooms: list[OomInterval] | None,
    times: npt.NDArray[np.datetime64],
    kills: Sequence[tuple[datetime, OomVictim]],
) -> list[OomInterval] | None:
    """The intervals with kills once the saved logs' kills inside the snapshots' span are
    added (as `filed`); `ooms` itself when none falls inside."""
    stamps = np.asarray(times, dtype="datetime64[s]")
    held = {int(np.searchsorted(stamps, oom.before)): oom for oom in ooms or []}
    placed: dict[int, list[OomVictim]] = {}
    for when, victim in kills:
        at = _place(stamps, np.datetime64(when, "s"), held, victim)
        if 0 < at < len(stamps):
            placed.setdefault(at, []).append(victim)
    if not placed:
        return ooms
    by_before = {oom.before: oom for oom in ooms or []}
    joined = []
    for at in sorted({*placed, *(int(np.searchsorted(stamps, b)) for b in by_before)}):
        before = stamps[at]
        oom = by_before.get(before) or OomInterval(stamps[at - 1], before, 0, [], False)
        new = _new_kills(oom.logged, placed.get(at, []))
        kills_now = interval_kills(oom.counted, [*oom.logged, *new])
        joined.append(oom._replace(kills=kills_now, filed=new))
    return joined


def _place(
    stamps: npt.NDArray[np.datetime64],
    moment: np.datetime64,
    held: dict[int, OomInterval],
    victim: OomVictim,
) -> int:
    """The index of the snapshot after the interval a kill at `moment` belongs to (`held`: the
    dumps' intervals with kills, by that index). dmesg -T, syslog and journalctl's short forms
    print whole seconds, and a raw dmesg time is placed with a boot time known to a second or
    so: a kill that near a snapshot may be on its other side. Within SLACK_S, it goes to an
    interval that already holds the same victim (so it is not counted twice), else, for the
    kernel's kills, to its own interval if the oom_kill counter rose there, else to the nearest
    where it did. A userspace killer's kill is never counted by oom_kill: only the first rule
    moves it."""
    at = int(np.searchsorted(stamps, moment, side="right"))
    slack = np.timedelta64(SLACK_S, "s")
    near = sorted(
        (abs(index - at), index)
        for index in held
        if 0 < index < len(stamps) and stamps[index - 1] - slack <= moment <= stamps[index] + slack
    )
    key = _identity(victim)
    for _, index in near:
        if key in map(_identity, held[index].logged):
            return index
    if victim.kind in USERSPACE_KINDS:
        return at
    counted = [index for _, index in near if held[index].counted]
    if at in counted or not counted:
        return at
    return counted[0]


def _new_kills(logged: Sequence[OomVictim], found: Sequence[OomVictim]) -> list[OomVictim]:
    seen = {_identity(victim) for victim in logged}
    new = []
    for victim in found:
        key = _identity(victim)
        if key not in seen:
            seen.add(key)
            new.append(victim)
    return new


def _identity(victim: OomVictim) -> tuple[object, ...]:
    return (victim.pid, victim.cgroup) if victim.pid is None else (victim.pid,)


def with_kernel_logs(
    ooms: list[OomInterval] | None,
    times: npt.NDArray[np.datetime64],
    logs: KernelLogs,
    dumps_dir: Path,
    warn: Callable[[Path, str], None],
) -> list[OomInterval] | None:
    """The intervals with kills, the saved logs' kills joined (none asked: `ooms`)."""
    if not logs.names or len(times) == 0:
        return ooms
    last = pd.Timestamp(times[-1]).to_pydatetime()
    clock = LogClock(logs.zone, last, latest_boot_time(dumps_dir, last))
    kills = read_kernel_logs(logs.names, clock, warn)
    return join_log_kills(ooms, times, [(kill.utc, kill.victim) for kill in kills])


def latest_boot_time(dumps_dir: Path, last: datetime) -> datetime | None:
    """The boot time of the latest process snapshot at or before `last` (see
    utils.read.kernel_log): a loose one, else the last of the latest day bundle; None
    where there is none."""
    named = []
    for path in dumps_dir.glob(f"{PROCESS_PREFIX}*{CSV_SUFFIX}"):
        stamp = parse_name_timestamp(path.name, PROCESS_PREFIX)
        if stamp is not None and stamp <= last:
            named.append((stamp, path))
    try:
        text = read_bytes(max(named)[1]) if named else _last_bundled(dumps_dir, last)
    except (BadFileError, OSError, EOFError, lzma.LZMAError):
        return None
    if text is None:
        return None
    rows = csv.DictReader(io.StringIO(text.decode("utf-8", "replace")))
    return started_boot_time(row.get("STARTED") or "" for row in rows)


def _last_bundled(dumps_dir: Path, last: datetime) -> bytes | None:
    """The last process snapshot at or before `last` in the latest day bundle up to it (its
    whole day is decompressed: only raw dmesg lines without a loose snapshot ask this)."""
    days = [(day, path) for day, path in _bundle_days(dumps_dir) if day <= last.date()]
    if not days:
        return None
    found: tuple[datetime, bytes] | None = None
    for member, data in read_bundle(max(days)[1]):
        body = data.read()
        stamp = parse_name_timestamp(Path(member.name).name, PROCESS_PREFIX)
        if stamp is not None and stamp <= last and (found is None or stamp >= found[0]):
            found = (stamp, body)
    return None if found is None else found[1]


def _bundle_days(dumps_dir: Path) -> list[tuple[date, Path]]:
    found = []
    for path in dumps_dir.glob(f"{BUNDLE_PREFIX}*{BUNDLE_SUFFIX}"):
        day = parse_bundle_day(path.name)
        if day is not None:
            found.append((day, path))
    return found
