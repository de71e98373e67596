"""Who was killed for memory, read from log lines: the kernel's OOM killer in every form
mm/oom_kill.c and mm/memcontrol.c have printed since Linux 2.6.32 (and Red Hat's kernels),
and the two userspace killers, systemd-oomd and earlyoom.

A kernel OOM report is several lines; one kill is one OomVictim:

- `X invoked oom-killer: gfp_mask=...` opens a report.
- `Task in /A killed as a result of limit of /B` (mm/memcontrol.c, mem_cgroup_print_oom_info,
  Linux 3.x to 4.20): a memcg kill; /A is the victim's cgroup, /B the one whose limit was hit.
- `oom-kill:constraint=CONSTRAINT_*,nodemask=...,cpuset=...,mems_allowed=...,oom_memcg=/B,
  task_memcg=/A,task=comm,pid=N,uid=U` (since 5.0: ef8444ea01d7 "mm, oom: reorganize the
  oom report in dump_header", which replaced the Task in line; `,global_oom` stands where
  no memcg limit was hit; pid and uid may be printed padded, "%5d"). The constraint is the
  kind; the newest kernels add CONSTRAINT_BPF, read as memcg or global by its oom_memcg.
- `Out of memory: Kill process N (comm) score S or sacrifice child` (2.6.36, a63d83f427fb
  "oom: badness heuristic rewrite", to 5.0; 2.6.32 printed `kill process ... or a child`),
  with "Memory cgroup out of memory" for a memcg's own OOM: the process first chosen. The
  victim is the one the next line names, which may be a child.
- `Killed process N (comm) total-vm:..kB, anon-rss:..kB, file-rss:..kB` (2.6.32 printed
  only `Killed process N (comm)`; some 2.6.3x kernels `vsz:` for total-vm): the victim.
  `, shmem-rss:..kB` came with 4.5 (eca56ff906bd "mm, shmem: add internal shmem resident
  memory accounting"), `, UID:u` with 5.3 (8ac3f8fe91a2 "mm/oom_kill.c: add task UID to
  info message on an oom kill"), ` pgtables:..kB oom_score_adj:..` with 5.4 (70cb6d267790
  "mm/oom: add oom_score_adj and pgtables to Killed process message"); since 5.1
  (bbbe48029720 "mm, oom: remove 'prefer children over parent' heuristic") the line starts
  with the report's message, `Out of memory: Killed process ...`. Red Hat's 2.6.32 kernels
  (RHEL/CentOS 6) print `Killed process N, UID u, (comm) total-vm:...`, their 3.10 kernels
  (RHEL/CentOS 7) `Killed process N (comm), UID u, total-vm:...`.
- `oom_reaper: reaped process N (comm), now anon-rss:...` (4.6, aac453635549 "mm, oom:
  introduce oom reaper") is what the reaper freed of a victim already counted: no kill.

A command name (comm) may hold anything, spaces, parentheses and commas included: it runs
to the last ")" (or ",pid=") that the rest of the line's shape allows.

systemd-oomd (systemd's src/oom/oomd-manager.c, since v247) logs `Killed /cgroup due to
memory pressure for /cgroup being ...` or `Killed /cgroup due to memory used (...) ...`;
newer releases log `Marked /cgroup for killing due to ...` and kill right after. It kills a
whole cgroup: the kill has a cgroup and no PID. earlyoom (rfjakob/earlyoom's kill.c) logs
`sending SIGTERM to process N uid U "comm": oom_score S, ... VmRSS M MiB...` (`badness`
before v1.8; no `uid` before v1.6); a SIGTERM it escalates to SIGKILL is still one kill.

Pure and standard library only: the collector reads /dev/kmsg with it, the analyses
their saved logs.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import NamedTuple

from utils.collect.snapshot_format import OomVictim

CONSTRAINT_KINDS = {
    "CONSTRAINT_NONE": "global",
    "CONSTRAINT_MEMCG": "memcg",
    "CONSTRAINT_CPUSET": "cpuset",
    "CONSTRAINT_MEMORY_POLICY": "mempolicy",
}
# The message an OOM report's lines start with (mm/oom_kill.c out_of_memory and
# mm/memcontrol.c mem_cgroup_out_of_memory): a memcg's own limit, else the machine's.
_MEMCG_MESSAGE = "Memory cgroup out of memory"
_MESSAGE = r"(Out of memory(?: \(oom_kill_allocating_task\))?|Memory cgroup out of memory)"
_BOUND = 20  # digits at most in a number: int() never meets Python's digit limit
_N = rf"(\d{{1,{_BOUND}}})"
_REPORT_START = re.compile(r" invoked oom-killer: ")
_TASK_IN = re.compile(r"Task in (.*) killed as a result of limit of (.*)")
_CONSTRAINT = re.compile(
    rf"oom-kill:constraint=(CONSTRAINT_[A-Z_]+),(.*),task=(.*),pid= *{_N},uid= *{_N}"
)
_CHOSEN = re.compile(
    rf"{_MESSAGE}: [Kk]ill process {_N} \((.*)\) score -?\d+ or (?:sacrifice child|a child)"
)
# What follows the comm of a Killed process line, in every form above.
_KILLED_TAIL = (
    rf"(?:, UID {_N},)?"  # RHEL 7
    rf"(?: (?:total-vm|vsz):\d+kB, anon-rss:{_N}kB, file-rss:{_N}kB"
    rf"(?:, shmem-rss:{_N}kB)?(?:, UID:{_N})?(?: pgtables:\d+kB)?(?: oom_score_adj:-?\d+)?)?"
)
_KILLED = re.compile(
    rf"(?:{_MESSAGE}: )?Killed process {_N}(?:, UID {_N},)? \((.*)\){_KILLED_TAIL}\s*"
)
_OOMD = re.compile(r"(?:Killed|Marked) (/.*?) (?:for killing )?due to memory (?:pressure|used)")
_EARLYOOM = re.compile(
    rf'sending (SIG[A-Z]+) to process {_N}(?: uid {_N})? "(.*)": (?:badness|oom_score) -?\d+'
)


class Found(NamedTuple):
    """A kill, and the stamp of the line that told it (whatever the caller passed: seconds
    since boot for /dev/kmsg, seconds since 1970 for a saved log)."""

    victim: OomVictim
    stamp: float | None


@dataclass
class _Report:
    """What the lines of the current kernel report said before its Killed line."""

    kind: str = ""
    cgroup: str = ""
    limit_cgroup: str = ""
    pending: Found | None = None  # the constraint line's victim, until its Killed line
    killed: bool = False  # a Killed line was read: a header line after it opens a new report
    group: bool = False  # memory.oom.group: the report's further Killed lines are its own


@dataclass
class KernelOomParser:
    """The kills in a stream of kernel log messages (without their time prefix), fed one at a
    time: a kill is returned on its Killed line, or on the next report (or flush) when
    only the oom-kill: line named it. Nothing raises: a line it does not know is skipped."""

    report: _Report = field(default_factory=_Report)

    def feed(self, message: str, stamp: float | None = None) -> list[Found]:
        text = message.strip()
        if _REPORT_START.search(text):
            return self.flush()
        # dump_header, which prints "invoked oom-killer", is rate-limited: a report may
        # start at its Task in, oom-kill: or Kill process line.
        done = self.flush() if self.report.killed and _opens_report(text) else []
        return done + self._line(text, stamp)

    def _line(self, text: str, stamp: float | None) -> list[Found]:
        if (match := _TASK_IN.fullmatch(text)) is not None:
            self.report.kind = "memcg"
            self.report.cgroup, self.report.limit_cgroup = match[1], match[2]
        elif text.startswith("oom-kill:constraint="):
            self._constraint(text, stamp)
        elif text.endswith("are going to be killed due to memory.oom.group set"):
            self.report.group = True  # mm/oom_kill.c oom_kill_process, since 4.19
        elif (match := _CHOSEN.fullmatch(text)) is not None:
            self.report.kind = self.report.kind or _kind_of_message(match[1])
        elif "Killed process " in text and (match := _KILLED.fullmatch(text)) is not None:
            return [self._killed(match, stamp)]
        return []

    def flush(self) -> list[Found]:
        """The kill only a constraint line named, if any; a new report begins."""
        pending = self.report.pending
        self.report = _Report()
        return [] if pending is None else [pending]

    def _constraint(self, text: str, stamp: float | None) -> None:
        match = _CONSTRAINT.fullmatch(text)
        if match is None:
            return
        report, middle = self.report, match[2]
        oom_memcg = _key(middle, "oom_memcg")
        report.kind = CONSTRAINT_KINDS.get(match[1], "memcg" if oom_memcg else "global")
        report.limit_cgroup = oom_memcg or report.limit_cgroup
        report.cgroup = _key(middle, "task_memcg") or report.cgroup
        victim = OomVictim(
            int(match[4]), match[3], int(match[5]), None, None, None, report.kind,
            report.cgroup, report.limit_cgroup,
        )  # fmt: skip
        self.report.pending = Found(victim, stamp)

    def _killed(self, match: re.Match[str], stamp: float | None) -> Found:
        message, pid, rhel6_uid, comm, rhel7_uid, anon, file_, shmem, uid = match.groups()
        if self.report.killed and not self.report.group:
            # A second kill with no header of its own (dump_header is rate-limited, and
            # since 5.1 the Killed line is all that is always printed): not this report's.
            self.report = _Report()
        report = self.report
        pending, report.pending, report.killed = report.pending, None, True
        known_uid = uid or rhel6_uid or rhel7_uid
        if known_uid is None and pending is not None and pending.victim.pid == int(pid):
            known_uid = str(pending.victim.uid)
        kind = report.kind or (_kind_of_message(message) if message else "unknown")
        victim = OomVictim(
            int(pid), comm, _int(known_uid), _int(anon), _int(file_), _int(shmem), kind,
            report.cgroup, report.limit_cgroup,
        )  # fmt: skip
        return Found(victim, stamp)


def _opens_report(text: str) -> bool:
    return text.startswith(("Task in ", "oom-kill:")) or " score " in text


def _kind_of_message(message: str) -> str:
    return "memcg" if message == _MEMCG_MESSAGE else "global"


def _int(text: str | None) -> int | None:
    return None if text is None else int(text)


def _key(middle: str, name: str) -> str:
    """A `name=value` field of the oom-kill: line between its constraint and its task
    (nodemask, cpuset, mems_allowed, oom_memcg or `global_oom`, task_memcg): the value
    runs to the next of these keys."""
    match = re.search(rf"(?:^|,){name}=(.*?)(?:,(?:{_CONTEXT_KEYS})=|,global_oom|$)", middle)
    return "" if match is None else match[1]


_CONTEXT_KEYS = "nodemask|cpuset|mems_allowed|oom_memcg|task_memcg"


def userspace_kill(message: str) -> OomVictim | None:
    """A kill systemd-oomd or earlyoom logged in this message (the text after the journal's
    or syslog's `name[pid]: `), or None."""
    text = message.strip()
    if (match := _OOMD.match(text)) is not None:
        return OomVictim(None, "", kind="systemd-oomd", cgroup=match[1])
    if (match := _EARLYOOM.match(text)) is not None and match[1] in ("SIGTERM", "SIGKILL"):
        return OomVictim(int(match[2]), match[4], _int(match[3]), kind="earlyoom")
    return None


# /dev/kmsg's record: "priority,sequence,microseconds since boot,flags;message", then
# continuation lines " KEY=value" (Documentation/ABI/testing/dev-kmsg).
_KMSG = re.compile(rb"\d{1,10},\d{1,20},(\d{1,20}),[^;]*;")


def kmsg_message(record: bytes) -> tuple[float | None, str]:
    """A /dev/kmsg record's seconds since boot and its message (its first line); a line
    without the record's prefix is the message itself, time unknown."""
    first = record.split(b"\n", 1)[0]
    match = _KMSG.match(first)
    if match is None:
        return None, first.decode("utf-8", "replace")
    return int(match[1]) / 1e6, first[match.end() :].decode("utf-8", "replace")
