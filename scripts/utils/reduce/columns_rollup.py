"""The roll-up of a few columns of the sys_mem files: what the process analysis reads of them
(the OOM fields) over a long collection's leading closed days, as one batch in one file, so
that an hourly run decodes one frame instead of a year of day summaries.

The same rules as the process records' roll-up (utils.reduce.rollup): a cache, used only
when its days are the run's first days with the same fingerprints, code, key, fit and
columns; written once the reading passes the leading closed days, when none was loaded or
the days added were read from their summaries; a damaged one is read again from the day
summaries with one warning line. The batch it holds is every row of those days, their
frames joined: the reader of the batches joins them all the same (snapshot_specs.
system_frame), and asks only for the values (utils.reduce.counters.oom_intervals).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Collection, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from pandas.api.types import is_numeric_dtype

from utils.parser import Warn
from utils.read.csv_batches import Batch
from utils.reduce import rollup, summary_file
from utils.reduce.day_summaries import DayPlan, SummaryStore, canonical
from utils.reduce.summary_codec import CodecError, Sink, decode, encode

COLUMNS_FORMAT = "pid-memory-inspector columns roll-up"
COLUMNS_VERSION = 1
COLUMNS_NAME = "{kind}columns_rollup_{key}.summary"


@dataclass
class ColumnsRollup:
    """The roll-up of `columns` of one kind of parsed batches."""

    columns: Collection[str]
    day_of: Any  # a batch's UTC day
    store: SummaryStore | None = None
    plans: Sequence[DayPlan] = ()
    covered: int = 0
    target: int = 0
    head: Batch | None = None  # the covered days' rows, as one batch
    warnings: list[tuple[Path, str]] = field(default_factory=list)

    def _key(self, store: SummaryStore) -> dict[str, Any]:
        return {"key": dict(store.key), "fit": dict(store.fit), "columns": sorted(self.columns)}

    def path(self, store: SummaryStore) -> Path:
        key = hashlib.sha256(canonical(self._key(store)).encode()).hexdigest()[:8]
        return store.folder / COLUMNS_NAME.format(kind=store.kind, key=key)

    def begin(self, plans: Sequence[DayPlan], store: SummaryStore, warn: Warn) -> int:
        """Load the roll-up if it fits these plans and say its days' warnings; how many
        leading plans it covers (its rows are then self.head)."""
        self.store, self.plans = store, plans
        self.target = next(
            (at for at, plan in enumerate(plans) if plan.fingerprint is None), len(plans)
        )
        if self.target < rollup.ROLLUP_MIN_DAYS:
            self.target = 0
            return 0
        path = self.path(store)
        try:
            with summary_file.open_summary(path) as handle:
                meta, hot = summary_file.read(handle)
            days = self._covered_days(meta, store)
            if days:
                self.head = decode(meta["layout"], hot, {"Batch": Batch})
                self.warnings = [
                    (store._full_path(str(item[0])), str(item[1])) for item in meta["warnings"]
                ]
        except (FileNotFoundError, NotADirectoryError, PermissionError):
            return 0
        except Exception as err:  # a cache file, whatever is wrong with it: see SummaryStore
            reason = str(err) if isinstance(err, CodecError) else f"{type(err).__name__}: {err}"
            store.unreadable.append(f"{path.name} ({reason})")
            self.head = None
            return 0
        if not days or not isinstance(self.head, Batch):
            self.head = None
            return 0
        for where, reason in self.warnings:
            warn(where, reason)
        self.covered = days
        return days

    def _covered_days(self, meta: dict[str, Any], store: SummaryStore) -> int:
        fits = (
            meta.get("format") == COLUMNS_FORMAT
            and meta.get("version") == COLUMNS_VERSION
            and meta.get("code") == store.code
            and meta.get("kind") == store.kind
            and meta.get("key") == json.loads(canonical(self._key(store)))
        )
        days = meta.get("days")
        if not fits or not isinstance(days, list) or not 0 < len(days) <= self.target:
            return 0
        mine = [[plan.day.isoformat(), plan.fingerprint] for plan in self.plans[: len(days)]]
        return len(days) if days == mine else 0

    def batches(self, stream: Iterator[Batch]) -> Iterator[Batch]:
        """The covered days' rows as one batch, then the stream's; the roll-up written once
        the stream passes the leading closed days (if it is to be)."""
        if self.head is not None:
            yield self.head
        kept: list[Batch] = []
        done = not self.target
        last = self.plans[self.target - 1].day if self.target else date.min
        for batch in stream:
            day = self.day_of(batch)
            if not done and day > last:
                self._save(kept)
                done, kept = True, []
            if not done:
                kept.append(batch)
            yield batch
        if not done:
            self._save(kept)

    def _save(self, batches: list[Batch]) -> None:
        store = self.store
        if store is None:
            return
        if not rollup.worth_saving(store, self.plans, self.covered, self.target):
            return
        added = [plan.day for plan in self.plans[self.covered : self.target]]
        try:
            whole = _joined([*([self.head] if self.head is not None else []), *batches])
            arrays = Sink()
            layout = encode(whole, arrays)
        except (TypeError, ValueError):
            return  # columns a summary cannot hold: none kept, the answers are the same
        warnings = [
            *self.warnings,
            *(warning for day in added for warning in store.warnings_of.get(day, [])),
        ]
        covered = self.plans[: self.target]
        meta = {
            "format": COLUMNS_FORMAT,
            "version": COLUMNS_VERSION,
            "code": store.code,
            "kind": store.kind,
            "key": self._key(store),
            "days": [[plan.day.isoformat(), plan.fingerprint] for plan in covered],
            "warnings": [[store._short_path(path), reason] for path, reason in warnings],
            "layout": layout,
        }
        rollup.write_whole(store.folder, self.path(store), meta, arrays)


def _joined(batches: list[Batch]) -> Batch:
    """Batches as one: frames joined as the reader of the batches joins them, and each text
    column that joining left as texts (categories that differ join as texts) made
    categorical again: a summary holds no objects, and the one reader of these columns
    (counters.oom_intervals) takes their values as texts, the same either way."""
    frame = pd.concat([batch.frame for batch in batches], ignore_index=True)
    for name in frame.columns:
        dtype = frame[name].dtype
        if not isinstance(dtype, pd.CategoricalDtype) and not is_numeric_dtype(dtype):
            frame[name] = frame[name].astype("category")
        column = frame[name]
        if isinstance(column.dtype, pd.CategoricalDtype) and not all(
            isinstance(text, str) for text in column.cat.categories
        ):
            raise ValueError(f"column {name} holds values that are not texts")
    snapshot = np.concatenate([batch.snapshot for batch in batches])
    return Batch(frame, snapshot.astype(np.int64))
