"""What the process analysis reads of the cgroup_mem files: every column, as the collector
writes it (docs/services.md), into one small frame of all rows.

A cgroup_mem file holds one row per memory cgroup that holds a process, plus each top-level
slice: tens of rows a snapshot, so all of them are kept (a year at 10 minutes with 50 cgroups
is 2.6 million rows of a few numbers each).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from types import MappingProxyType

import numpy as np
import pandas as pd

from utils.collect.snapshot_format import CGROUP_COUNT_FIELDS, CGROUP_HEADER, CGROUP_MB_FIELDS
from utils.read.threaded_reader import Batch, Kind, TableSpec

# Sizes in MiB, empty where the kernel has no such number (LIMIT_MB: no limit); counters since
# the cgroup was made, empty where the kernel has none (OOM_EVENTS and PSI: cgroup v2 only).
SIZE_FIELDS = CGROUP_MB_FIELDS
COUNT_FIELDS = CGROUP_COUNT_FIELDS
CGROUP_KINDS: Mapping[str, Kind] = MappingProxyType(
    {
        "CGROUP": Kind.TEXT,
        "NAME": Kind.TEXT,
        **dict.fromkeys(SIZE_FIELDS, Kind.FLOAT_OR_EMPTY),
        **dict.fromkeys(COUNT_FIELDS, Kind.COUNT_OR_EMPTY),
    }
)
assert set(CGROUP_KINDS) == set(CGROUP_HEADER), "a cgroup_mem column without its kind"

# The path names the cgroup, the name is what a person knows it by; every number may be empty.
CGROUP_SPEC = TableSpec(
    columns=(("CGROUP", Kind.TEXT), ("NAME", Kind.TEXT)),
    known=CGROUP_KINDS,
    optional=(*SIZE_FIELDS, *COUNT_FIELDS),
)


def cgroup_frame(batches: Iterable[Batch]) -> pd.DataFrame:
    """Parsed cgroup_mem batches (in time order) as one frame of every row, with `time`
    (UTC epoch seconds of the snapshot) and CGROUP and NAME as plain strings."""
    kept = list(batches)
    columns = ["time", "CGROUP", "NAME", *SIZE_FIELDS, *COUNT_FIELDS]
    if not kept:
        return pd.DataFrame({name: pd.Series(dtype="float64") for name in columns})
    frame = pd.concat([batch.frame for batch in kept], ignore_index=True)
    frame["time"] = np.concatenate([batch.snapshot for batch in kept])
    for name in ("CGROUP", "NAME"):
        frame[name] = frame[name].astype(str)
    return frame[columns]
