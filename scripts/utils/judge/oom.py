"""Who the OOM killer killed: the victims of each interval with kills, named from the
kernel log where the collector read it (with who killed and why: the kind of kill and the
cgroup whose limit was hit), and inferred from the snapshots where it did not.

Inferred: when oom_kill rose by k between two snapshots, the victims are the k largest
process instances (by anon + swap, else RSS, at their last snapshot) that were in the
snapshot before and in none after. A process that exits normally in another interval is
never named: only an interval with kills is looked at. Across a reboot nothing is
inferred: every process of the old boot is gone, and the kills were of the new one.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

import numpy as np
import numpy.typing as npt
import pandas as pd

from utils.collect.snapshot_format import PS_COMMAND, USERSPACE_KINDS, OomVictim
from utils.reduce.counters import OomInterval
from utils.reduce.limit_hits import unnamed_kind
from utils.reduce.process_records import InstanceTable, ProcessRecords

OOM_CSV = "oom_kills.csv"  # where the outputs write the victims, named in their text
KERNEL_LOG, INFERRED, UNKNOWN = "kernel log", "inferred", "unknown"
SYSTEM_LOG = "system log"  # a userspace killer's own log lines (the journal, syslog)
KERNEL_LOG_FILE = "kernel log file"  # a saved log given with --kernel-log
# The other instances that vanished in an interval with kills, listed with it, at most.
ALSO_GONE = 3
COLLECTOR_PS = " ".join(PS_COMMAND)


@dataclass(frozen=True)
class OomKill:
    """One process the OOM killer ended (or, source UNKNOWN, a kill whose victim the
    snapshots cannot name)."""

    after: datetime  # UTC: the last snapshot before the kill...
    before: datetime  # ... and the first after it
    pid: int | None
    cmd: str
    rss_mb: float | None  # at its last snapshot
    anon_swap_mb: float | None
    source: str  # KERNEL_LOG, INFERRED or UNKNOWN
    kernel_anon_rss_mb: float | None = None  # what the kernel log said it held
    instance: int | None = None  # its number in the records (for the plots)
    kind: str = UNKNOWN  # global, memcg, cpuset, mempolicy, systemd-oomd, earlyoom, unknown
    cgroup: str = ""  # the victim's (for systemd-oomd: the cgroup it killed)
    limit_cgroup: str = ""  # the cgroup whose limit was hit (memcg kills)
    uid: int | None = None

    @property
    def moment(self) -> np.datetime64:
        """The middle of the interval: where the plots mark it."""
        after = np.datetime64(self.after, "s")
        return after + (np.datetime64(self.before, "s") - after) / 2


@dataclass(frozen=True)
class Gone:
    """An instance that vanished in an interval with kills and was not named a victim."""

    pid: int
    cmd: str
    size_mb: float


@dataclass(frozen=True)
class OomFindings:
    """The victims of every interval with kills, and what else vanished there."""

    kills: list[OomKill]
    also_gone: dict[datetime, list[Gone]]  # by interval (its `after`)
    inferable: bool  # False under --match: the other processes were not kept


@dataclass(frozen=True)
class _Candidate:
    instance: int
    pid: int
    cmd: str
    rss_mb: float
    anon_swap_mb: float | None

    @property
    def size_mb(self) -> float:
        return self.rss_mb if self.anon_swap_mb is None else self.anon_swap_mb


def find_victims(
    records: ProcessRecords, table: InstanceTable, ooms: Sequence[OomInterval]
) -> OomFindings:
    """Each kill's victim, interval by interval (see the module's docstring); table is
    records.instances()."""
    inferable = records.match is None
    kills: list[OomKill] = []
    also_gone: dict[datetime, list[Gone]] = {}
    for oom in ooms:
        candidates = [] if oom.reboot else _vanished(records, table, oom)
        named, rest = _named(oom, candidates)
        left = oom.kills - len(named)
        # A cgroup's own limit was hit: its victim is no "largest host process".
        inferred = rest[:left] if inferable and not oom.limit_hits else []
        after, before = _moment(oom.after), _moment(oom.before)
        kills += named
        kills += [_kill(oom, candidate, INFERRED) for candidate in inferred]
        unknown = left - len(inferred)
        kills += [_unnamed(oom, after, before)] * unknown
        gone = rest[len(inferred) :][:ALSO_GONE]
        if gone:
            also_gone[after] = [Gone(c.pid, c.cmd, c.size_mb) for c in gone]
    return OomFindings(kills, also_gone, inferable)


def _unnamed(oom: OomInterval, after: datetime, before: datetime) -> OomKill:
    """A kill no log names and nothing is inferred for: a memcg kill where a cgroup's own
    limit was hit in the interval (the one cgroup, when only one was), else unknown."""
    limit = oom.limit_hits[0] if len(oom.limit_hits) == 1 else ""
    kind = unnamed_kind(oom)
    return OomKill(after, before, None, "", None, None, UNKNOWN, kind=kind, limit_cgroup=limit)


def _moment(moment: np.datetime64) -> datetime:
    return pd.Timestamp(moment).to_pydatetime()


def _vanished(records: ProcessRecords, table: InstanceTable, oom: OomInterval) -> list[_Candidate]:
    """The instances in the last process snapshot at or before `after` (or one between the
    two) and in none from `before` on, largest first (equal sizes: lower PID first)."""
    times = records.times
    last_before = int(np.searchsorted(times, oom.after, side="right")) - 1
    first_after = int(np.searchsorted(times, oom.before, side="left"))
    if last_before < 0 or first_after >= len(times):
        return []  # no process snapshot on one side: nothing can be said to vanish
    ended = (table.last_rank >= last_before) & (table.last_rank < first_after)
    records.read_rows_of(table.pid[ended])
    found = []
    for at in np.flatnonzero(ended).tolist():
        if records.commands[int(table.cmd[at])] == COLLECTOR_PS:
            continue  # the collector's own ps: it always ends
        pid, rank = int(table.pid[at]), int(table.last_rank[at])
        _, rss, foot, _ = records.pid_memory(pid, rank, rank)
        found.append(
            _Candidate(
                instance=int(table.number[at]),
                pid=pid,
                cmd=records.commands[int(table.cmd[at])],
                rss_mb=float(rss[-1]),
                anon_swap_mb=None if np.isnan(foot[-1]) else float(foot[-1]),
            )
        )
    return sorted(found, key=lambda c: (-c.size_mb, c.pid))


def _named(
    oom: OomInterval, candidates: list[_Candidate]
) -> tuple[list[OomKill], list[_Candidate]]:
    """The kernel log's victims (with what the snapshots knew of them), and the candidates
    the log did not name."""
    by_pid = {candidate.pid: candidate for candidate in candidates}
    kills = []
    for victim in [*oom.logged, *oom.filed]:
        known = None if victim.pid is None else by_pid.pop(victim.pid, None)
        kills.append(logged_kill(oom, victim, known))
    rest = [candidate for candidate in candidates if candidate.pid in by_pid]
    return kills, rest


def logged_kill(oom: OomInterval, victim: OomVictim, known: _Candidate | None = None) -> OomKill:
    """A kill a log named, with what the snapshots knew of its victim where they saw it
    (a victim never in a snapshot was born and killed between two)."""
    if any(victim is filed for filed in oom.filed):
        source = KERNEL_LOG_FILE
    else:
        source = SYSTEM_LOG if victim.kind in USERSPACE_KINDS else KERNEL_LOG
    kernel_mb = None if victim.anon_kb is None else victim.anon_kb / 1024
    return OomKill(
        after=_moment(oom.after),
        before=_moment(oom.before),
        pid=victim.pid,
        cmd=known.cmd if known is not None else victim.comm,
        rss_mb=None if known is None else known.rss_mb,
        anon_swap_mb=None if known is None else known.anon_swap_mb,
        source=source,
        kernel_anon_rss_mb=kernel_mb,
        instance=None if known is None else known.instance,
        kind=victim.kind,
        cgroup=victim.cgroup,
        limit_cgroup=victim.limit_cgroup,
        uid=victim.uid,
    )


# Who killed and why, per kind: {who} is "comm (PID n)", {limit} the cgroup whose limit
# was hit, {cgroup} the victim's.
_SENTENCES = {
    "memcg": "memcg limit of {limit} hit: {who} killed",
    "global": "the host ran out of memory: {who} killed",
    "cpuset": "the nodes of its cpuset ran out of memory: {who} killed",
    "mempolicy": "the nodes of its memory policy ran out of memory: {who} killed",
    "systemd-oomd": "systemd-oomd killed {cgroup}",
    "earlyoom": "earlyoom killed {who}",
}


def kill_sentence(kill: OomKill) -> str:
    """Who killed whom and why, in a line: "memcg limit of /kubepods/... hit: java (PID
    24572) killed"."""
    who = _who(kill)
    if kill.kind in _SENTENCES:
        limit, cgroup = kill.limit_cgroup or "a cgroup", kill.cgroup or "a cgroup"
        return _SENTENCES[kill.kind].format(who=who, limit=limit, cgroup=cgroup)
    if kill.source == INFERRED:
        return f"not logged: likely {who}, the largest process gone in the interval"
    if kill.pid is None:
        return "not logged, and no process can be named"
    return f"{who} killed (the log did not say why)"


def _who(kill: OomKill) -> str:
    if not kill.cmd and kill.pid is None:
        return "a process no log named"
    name = kill.cmd.split(" ", 1)[0] if kill.cmd else "?"
    return f"{name} (PID {kill.pid})" if kill.pid is not None else name


def _kill(
    oom: OomInterval, candidate: _Candidate, source: str, kernel_mb: float | None = None
) -> OomKill:
    return OomKill(
        after=_moment(oom.after),
        before=_moment(oom.before),
        pid=candidate.pid,
        cmd=candidate.cmd,
        rss_mb=candidate.rss_mb,
        anon_swap_mb=candidate.anon_swap_mb,
        source=source,
        kernel_anon_rss_mb=kernel_mb,
        instance=candidate.instance,
    )


def host_pressure_kills(kills: Sequence[OomKill]) -> int:
    """The kills that say the host itself ran short: every kill but those at a cgroup's own
    limit (memcg) and the userspace killers'."""
    return sum(kill.kind not in ("memcg", *USERSPACE_KINDS) for kill in kills)


def kill_moments(findings: OomFindings | None) -> dict[int, npt.NDArray[np.datetime64]]:
    """Per victim instance, when it was killed (for its plots)."""
    moments: dict[int, list[np.datetime64]] = {}
    for kill in [] if findings is None else findings.kills:
        if kill.instance is not None:
            moments.setdefault(kill.instance, []).append(kill.moment)
    return {key: np.array(value, dtype="datetime64[s]") for key, value in moments.items()}
