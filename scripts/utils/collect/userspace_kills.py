"""What systemd-oomd and earlyoom killed since the snapshot before, from their own log lines.

/proc/vmstat's oom_kill counts the kernel's kills only: a userspace killer's are in its log.
The cheap check, every snapshot, costs nothing the snapshot does not already do: is a
killer in the ps listing (this snapshot's, or the one before, for a killer that exited
since)? Only then is its log read:

- the journal, with `journalctl -t systemd-oomd -t earlyoom -o cat` run like ps (a bounded
  time, its process group killed on a timeout), from a kept cursor (`--after-cursor`, the
  one `--show-cursor` printed last), so that each run reads only what is new;
- else earlyoom's syslog lines (earlyoom logs to stderr, which syslog keeps where systemd
  does not run it), read from where the last read ended.

A killer's lines are read by utils.collect.oom_log. Never raises: a log that cannot be read
names no kills. Standard library only.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time
from collections.abc import Iterable, Sequence
from pathlib import Path

from utils.collect.oom_log import userspace_kill
from utils.collect.snapshot_format import OomVictim

KILLERS = ("systemd-oomd", "earlyoom")
JOURNALCTL_TIMEOUT_S = 5.0
# What one read of the journal or of syslog takes at most: a storm of lines costs no more.
MAX_READ_BYTES = 4 * 1024 * 1024
SYSLOG_FILES = (Path("/var/log/syslog"), Path("/var/log/messages"))
_CURSOR = "-- cursor: "


def killer_running(commands: Iterable[str]) -> bool:
    """Whether a ps listing's command lines hold a userspace OOM killer."""
    return any(_is_killer(command) for command in commands)


def _is_killer(command: str) -> bool:
    program = command.split(" ", 1)[0].rsplit("/", 1)[-1]
    return program in KILLERS


def journal_command(
    cursor: str | None, since_s: float, journalctl: str = "journalctl"
) -> list[str]:
    """The journalctl run that reads the killers' lines after the cursor (or since a time)."""
    where = [f"--after-cursor={cursor}"] if cursor else [f"--since=@{int(since_s)}"]
    names = [flag for killer in KILLERS for flag in ("-t", killer)]
    return [journalctl, "-q", "--no-pager", "-o", "cat", "--show-cursor", *where, *names]


def parse_journal(text: str) -> tuple[list[OomVictim], str | None]:
    """The kills in journalctl's output, and the cursor it printed last (None: none)."""
    kills, cursor = [], None
    for line in text.splitlines():
        if line.startswith(_CURSOR):
            cursor = line[len(_CURSOR) :].strip() or None
        elif (victim := userspace_kill(line)) is not None:
            kills.append(victim)
    return kills, cursor


def syslog_kills(text: str) -> list[OomVictim]:
    """earlyoom's and systemd-oomd's kills in syslog lines: `... host earlyoom[555]: msg`."""
    kills = []
    for line in text.splitlines():
        for killer in KILLERS:
            at = line.find(f" {killer}[")
            end = line.find("]: ", at)
            if at >= 0 and end >= 0 and (victim := userspace_kill(line[end + 3 :])):
                kills.append(victim)
    return kills


class UserspaceKills:
    """The userspace killers' kills since the last call; reads a log only while a killer runs."""

    def __init__(
        self,
        syslog_files: Sequence[Path] = SYSLOG_FILES,
        journalctl: str | None = None,
        timeout_s: float = JOURNALCTL_TIMEOUT_S,
    ) -> None:
        # The journal is read where journalctl and a journal are both there; a test names
        # its own journalctl.
        found = shutil.which("journalctl") if _journal_exists() else None
        self.journalctl = journalctl or found
        self.journal = self.journalctl is not None
        self.timeout_s = timeout_s
        self.syslog = next((path for path in syslog_files if path.is_file()), None)
        self._cursor: str | None = None
        self._since_s = time.time()
        self._offset = _size(self.syslog)
        self._was_running = False

    def kills(self, running: bool) -> list[OomVictim]:
        """The kills logged since the last call; none read while no killer runs."""
        look = running or self._was_running
        self._was_running = running
        if not look:
            self._since_s, self._offset = time.time(), _size(self.syslog)
            return []
        if self.journal:
            return self._from_journal()
        return self._from_syslog()

    def _from_journal(self) -> list[OomVictim]:
        started = time.time()
        command = journal_command(self._cursor, self._since_s, self.journalctl or "journalctl")
        text = run_bounded(command, self.timeout_s)
        kills, cursor = parse_journal(text)
        if cursor is not None:
            self._cursor = cursor
        elif self._cursor is None:
            self._since_s = started
        return kills

    def _from_syslog(self) -> list[OomVictim]:
        if self.syslog is None:
            return []
        size = _size(self.syslog)
        if size < self._offset:  # rotated: the new file from its start
            self._offset = 0
        try:
            with self.syslog.open("rb") as handle:
                handle.seek(self._offset)
                data = handle.read(MAX_READ_BYTES)
        except OSError:
            return []
        self._offset += len(data)
        return syslog_kills(data.decode("utf-8", "replace"))


def _journal_exists() -> bool:
    return any(Path(folder).is_dir() and any(Path(folder).iterdir()) for folder in _JOURNALS)


_JOURNALS = ("/run/log/journal", "/var/log/journal")


def _size(path: Path | None) -> int:
    try:
        return 0 if path is None else path.stat().st_size
    except OSError:
        return 0


def run_bounded(command: Sequence[str], timeout_s: float = JOURNALCTL_TIMEOUT_S) -> str:
    """A command's standard output, "" if it fails or outlasts timeout_s (then its whole
    process group is killed, as the collector's ps)."""
    try:
        process = subprocess.Popen(
            list(command),
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
    except OSError:
        return ""
    try:
        out, _ = process.communicate(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        _kill_group(process)
        return ""
    return out[:MAX_READ_BYTES].decode("utf-8", "replace")


def _kill_group(process: subprocess.Popen[bytes]) -> None:
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except OSError:
        process.kill()
    process.communicate()
