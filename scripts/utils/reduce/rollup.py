"""The roll-up: the process records folded over the leading closed days, kept as one file
beside the day summaries, so that an hourly run loads one file instead of a year of them and
folds only what comes after.

Like a day summary it is a cache, never a source of truth. It holds the records' fold
(utils.reduce.records_state) after exactly the leading days it names, each with the
fingerprint of its files, and the warnings said while reading them. A run uses it only when
all of these hold, else it folds those days as before (from their day summaries):

- the run reads the whole collection: no --since, no --until, no --match;
- it was made by the same code, for the same reading (the day summaries' key and fit);
- its days are the run's first days, each closed, with the same fingerprint;
- every day summary its rows and group totals are left in is the very file it was made
  with (inode, size, mtime): a summary recomputed since makes it stale;
- it reads back whole (CRC-checked like a summary): otherwise one warning line, and the days
  are folded from their summaries.

A run writes it once, when its fold has passed the leading closed days (all kept in day
summaries): when it loaded none, or when the days added to it were read from their day
summaries. So the hourly run that reads a newly closed day raw does not write it; the next
run extends it by that day's summary.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date
from io import BufferedReader
from pathlib import Path
from typing import Any

from utils.core.atomic_files import PRIVATE_FILE_MODE, temp_path
from utils.parser import Warn
from utils.reduce import summary_file
from utils.reduce.day_summaries import FOLDER_MODE, DayPlan, SummaryStore, canonical
from utils.reduce.process_records import ProcessRecords
from utils.reduce.records_state import (
    COLD_FIELDS,
    HOT_FIELDS,
    STATE_RECORDS,
    NotStoredError,
    RecordsState,
    StoredFloors,
    referenced,
    restore,
    state_of,
)
from utils.reduce.summary_codec import CodecError, Sink, decode, encode

ROLLUP_FORMAT = "pid-memory-inspector roll-up"
ROLLUP_VERSION = 1
ROLLUP_NAME = "{kind}rollup_{key}.summary"
# A roll-up is kept only for a collection of at least this many closed days: below that,
# reading their day summaries costs little, and writing the fold again each day more.
ROLLUP_MIN_DAYS = 28


def worth_saving(store: SummaryStore, plans: Sequence[DayPlan], covered: int, target: int) -> bool:
    """Whether a run writes its roll-up: the days it adds to the one it loaded (covered of
    the target leading closed plans) are all kept in day summaries, and, when it extends
    one, were read from them (days read raw in this run: the next run extends it instead)."""
    added = [plan.day for plan in plans[covered:target]]
    kept = store.loaded | store.saved
    if not added or not all(day in kept for day in added):
        return False
    return not covered or all(day in store.loaded for day in added)


def _identity(path: Path) -> tuple[int, int, int] | None:
    try:
        status = os.stat(path, follow_symlinks=False)
    except OSError:
        return None
    return status.st_ino, status.st_size, status.st_mtime_ns


@dataclass
class Rollup:
    """The roll-up of one way of reading the process files (the store's key and fit) into
    `records`: loaded before the days are folded, written once the fold passes the leading
    closed days."""

    records: ProcessRecords
    store: SummaryStore | None = None
    plans: Sequence[DayPlan] = ()
    covered: int = 0  # leading plans the loaded roll-up holds
    target: int = 0  # leading closed plans: where the fold is saved
    warnings: list[tuple[Path, str]] = field(default_factory=list)
    done: bool = False

    def path(self) -> Path:
        store = self._store()
        whole = canonical({"key": dict(store.key), "fit": dict(store.fit)})
        key = hashlib.sha256(whole.encode()).hexdigest()[:8]
        return store.folder / ROLLUP_NAME.format(kind=store.kind, key=key)

    def _store(self) -> SummaryStore:
        if self.store is None:
            raise RuntimeError("a roll-up used before begin")
        return self.store

    def begin(self, plans: Sequence[DayPlan], store: SummaryStore, warn: Warn) -> int:
        """Restore the roll-up into the records if it fits these plans, and say its days'
        warnings again; how many leading plans it covers (0: none)."""
        self.store, self.plans = store, plans
        self.target = next(
            (at for at, plan in enumerate(plans) if plan.fingerprint is None), len(plans)
        )
        if self.target < ROLLUP_MIN_DAYS:
            self.target = 0  # neither used nor kept
            return 0
        self.covered = self._load()
        for path, reason in self.warnings:
            warn(path, reason)
        return self.covered

    def _load(self) -> int:
        store = self._store()
        path = self.path()
        try:
            handle = summary_file.open_summary(path)
        except (FileNotFoundError, NotADirectoryError, PermissionError):
            return 0
        except Exception as err:  # a cache file, whatever is wrong with it: see SummaryStore
            store.unreadable.append(f"{path.name} ({type(err).__name__}: {err})")
            return 0
        try:
            days, fresh, warnings = self._read(handle, path)
        except Exception as err:
            handle.close()
            reason = str(err) if isinstance(err, CodecError) else f"{type(err).__name__}: {err}"
            store.unreadable.append(f"{path.name} ({reason})")
            return 0
        if fresh is None:
            handle.close()
            return 0
        if not fresh._floors and not fresh._foot_floors:
            handle.close()
        vars(self.records).update(vars(fresh))
        self.warnings = warnings
        return days

    def _read(
        self, handle: BufferedReader, path: Path
    ) -> tuple[int, ProcessRecords | None, list[tuple[Path, str]]]:
        """The days the roll-up covers and the records it holds (None: it does not fit these
        plans); its floors are left in its cold part, read through `handle` when taken."""
        store = self._store()
        meta, hot = summary_file.read(handle)
        days = self._covered_days(meta)
        if days == 0:
            return 0, None, []
        layout = meta["layout"]
        fields = layout["fields"]
        empty = {"t": "list", "items": []}
        hot_layout = {**layout, "fields": {**fields, **dict.fromkeys(COLD_FIELDS, empty)}}
        state: RecordsState = decode(hot_layout, hot, STATE_RECORDS)
        if referenced(state) != self._files(meta):
            raise CodecError("a roll-up whose references are not its own")
        fresh = ProcessRecords(
            self.records.match,
            self.records.level,
            group_by=self.records.group_by,
            read_users=self.records.read_users,
        )
        restore(fresh, state, store.folder)
        # The floors are read later, for the judged instances: a damaged cold part is found
        # now, while the days can still be folded from their summaries instead.
        summary_file.check_region(handle, meta, "cold")
        cold = summary_file.cold_part(meta)
        floors, foot = (
            [StoredFloors(handle, cold, keys, path)] if keys else []
            for keys in (_cold_keys(fields[name]) for name in COLD_FIELDS)
        )
        fresh._floors, fresh._foot_floors = list(floors), list(foot)
        warnings = [(store._full_path(str(item[0])), str(item[1])) for item in meta["warnings"]]
        return days, fresh, warnings

    def _covered_days(self, meta: dict[str, Any]) -> int:
        """How many leading plans the roll-up's meta covers (0: it does not fit them)."""
        store = self._store()
        fits = (
            meta.get("format") == ROLLUP_FORMAT
            and meta.get("version") == ROLLUP_VERSION
            and meta.get("code") == store.code
            and meta.get("kind") == store.kind
            and meta.get("key") == json.loads(canonical(store.key))
            and meta.get("fit") == json.loads(canonical(store.fit))
        )
        days = meta.get("days")
        if not fits or not isinstance(days, list) or not 0 < len(days) <= self.target:
            return 0
        mine = [[plan.day.isoformat(), plan.fingerprint] for plan in self.plans[: len(days)]]
        if days != mine:
            return 0
        for name, identity in self._files(meta).items():
            if _identity(store.folder / name) != identity:
                return 0
        return len(days)

    @staticmethod
    def _files(meta: dict[str, Any]) -> dict[str, tuple[int, int, int]]:
        files = meta.get("files")
        if not isinstance(files, dict):
            raise CodecError("a roll-up that names no files")
        return {str(name): (int(ids[0]), int(ids[1]), int(ids[2])) for name, ids in files.items()}

    def before(self, day: date) -> None:
        """A batch of `day` is about to be folded: the fold is saved first if it has just
        passed the leading closed days."""
        if not self.done and self.target and day > self.plans[self.target - 1].day:
            self._save()

    def finish(self) -> None:
        """Every batch is folded: the fold is saved if it was not yet."""
        if not self.done and self.target:
            self._save()

    def _save(self) -> None:
        self.done = True
        store = self._store()
        if not worth_saving(store, self.plans, self.covered, self.target):
            return
        added = [plan.day for plan in self.plans[self.covered : self.target]]
        try:
            state = state_of(self.records)
        except NotStoredError:
            return
        warnings = [
            *self.warnings,
            *(warning for day in added for warning in store.warnings_of.get(day, [])),
        ]
        self._write(state, warnings)

    def _write(self, state: RecordsState, warnings: list[tuple[Path, str]]) -> None:
        store = self._store()
        covered = self.plans[: self.target]
        arrays = Sink(HOT_FIELDS)
        layout = encode(state, arrays)
        meta = {
            "format": ROLLUP_FORMAT,
            "version": ROLLUP_VERSION,
            "code": store.code,
            "kind": store.kind,
            "key": dict(store.key),
            "fit": dict(store.fit),
            "days": [[plan.day.isoformat(), plan.fingerprint] for plan in covered],
            "files": {name: list(identity) for name, identity in referenced(state).items()},
            "warnings": [[store._short_path(path), reason] for path, reason in warnings],
            "layout": layout,
        }
        write_whole(store.folder, self.path(), meta, arrays)


def write_whole(folder: Path, path: Path, meta: dict[str, Any], arrays: Sink) -> None:
    """A roll-up written whole (a temporary file, then a rename) or not at all."""
    temporary = temp_path(path)
    try:
        folder.mkdir(mode=FOLDER_MODE, parents=True, exist_ok=True)
        fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, PRIVATE_FILE_MODE)
        with os.fdopen(fd, "wb") as handle:
            summary_file.write(handle, meta, arrays.arrays)
        os.replace(temporary, path)
    except OSError:
        # The day summaries' own writes say once that the folder cannot be written.
        with contextlib.suppress(OSError):
            temporary.unlink()


def _cold_keys(layout: Any) -> list[str]:
    """The names of a kind of floors' arrays in the cold part (none: no floors)."""
    if not isinstance(layout, dict) or layout.get("t") != "list":
        raise CodecError("floors that are not a list of arrays")
    keys = [item.get("key") for item in layout["items"] if isinstance(item, dict)]
    if len(keys) not in (0, 4) or not all(isinstance(key, str) and key[:1] == "c" for key in keys):
        raise CodecError("floors that are not four arrays of the cold part")
    return [str(key) for key in keys]
