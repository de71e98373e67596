"""What each analysis reads of the snapshot files: the columns of the process files, and the
sys_mem files' raw fields with the reader both analyses share for them.

Both analyses read the sys_mem files with one spec, SYSTEM_SPEC, though the process analysis
uses only the kernel's counters (its OOM kills): the same files are bad in both, and one day
summary of them serves both (utils.reduce.day_summaries keys a summary by the spec).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np
import pandas as pd

from utils.collect.snapshot_format import COUNTER_FIELDS, PSS_EXTRA
from utils.parser import Source
from utils.read.threaded_reader import Batch, Kind, Progress, Reader, TableSpec, Warn

# The original README's columns, and what newer dumps add: anon + swap, the start time and
# the proportional share.
PROCESS_SPEC = TableSpec(
    columns=(("PID", Kind.INT), ("PPID", Kind.INT), ("RSS_MB", Kind.FLOAT), ("CMD", Kind.TEXT)),
    optional=("ANON_MB", "SWAP_MB", *PSS_EXTRA),
    optional_text=("STARTED",),
)
# --group-by user reads USER as well (a categorical: one string per user and batch)...
PROCESS_SPEC_WITH_USER = TableSpec(
    columns=(*PROCESS_SPEC.columns, ("USER", Kind.TEXT)),
    optional=PROCESS_SPEC.optional,
    optional_text=PROCESS_SPEC.optional_text,
)
# ... and the Prometheus labels too, but where a file lacks it the label is empty: the flag
# never turns a file the analysis reads into a bad one.
PROCESS_SPEC_USER_LABEL = TableSpec(
    columns=PROCESS_SPEC.columns,
    optional=PROCESS_SPEC.optional,
    optional_text=(*PROCESS_SPEC.optional_text, "USER"),
)

# The meminfo fields the breakdown reads (MiB). MemTotal is required; the rest are optional:
# a kernel that lacks one (SReclaimable and SUnreclaim before 2.6.19, Shmem before 2.6.32)
# leaves it empty, and it counts as 0.
BREAKDOWN_FIELDS: tuple[str, ...] = (
    "MemFree_MB",
    "Buffers_MB",
    "Cached_MB",
    "SwapCached_MB",
    "Shmem_MB",
    "AnonPages_MB",
    "SReclaimable_MB",
    "SUnreclaim_MB",
    "KernelStack_MB",
    "PageTables_MB",
)

# The raw fields the system metrics are computed from (MiB, as the collector writes them).
RAW_FIELDS: tuple[str, ...] = (
    "MemTotal_MB",
    "MemFree_MB",
    "Buffers_MB",
    "Cached_MB",
    "SReclaimable_MB",
    "SwapTotal_MB",
    "SwapFree_MB",
)
# Fields an older kernel lacks (MemAvailable before Linux 3.14, Shmem before 2.6.32): the
# definitions of "used" that need them are empty where they are.
OPTIONAL_FIELDS: tuple[str, ...] = ("MemAvailable_MB", "Shmem_MB")


def process_spec(group_by: str, read_users: bool) -> TableSpec:
    """The process files' columns a run needs: USER as a column for --group-by user, as an
    optional label for the Prometheus textfile."""
    if group_by == "user":
        return PROCESS_SPEC_WITH_USER
    return PROCESS_SPEC_USER_LABEL if read_users else PROCESS_SPEC


def system_spec(more_optional: Sequence[str] = ()) -> TableSpec:
    """The sys_mem files: the raw fields (MemTotal divides: it must be above 0), one row per
    file; the counters since boot, the boot's id and the OOM victims the kernel logged when a
    file has them, with more_optional besides."""
    return TableSpec(
        columns=tuple(
            (name, Kind.POSITIVE if name == "MemTotal_MB" else Kind.FLOAT) for name in RAW_FIELDS
        ),
        rows_per_file=1,
        optional=(
            *OPTIONAL_FIELDS,
            *(name for name in more_optional if name not in (*RAW_FIELDS, *OPTIONAL_FIELDS)),
            *COUNTER_FIELDS,
        ),
        optional_text=("boot_id", "oom_victims"),
    )


# The sys_mem files as both analyses read them: the raw fields, the counters and every
# field the breakdown of MemTotal needs.
SYSTEM_SPEC = system_spec(BREAKDOWN_FIELDS)


def read_system_frame(
    files: Sequence[Source], spec: TableSpec, warn: Warn, progress: Progress | None = None
) -> pd.DataFrame:
    """The spec's fields, one row per readable snapshot, indexed by UTC time in order."""
    return system_frame(Reader(spec, warn, progress).batches(files))


def system_frame(batches: Iterable[Batch]) -> pd.DataFrame:
    """Parsed sys_mem batches (in time order) as one frame indexed by UTC time."""
    kept = list(batches)
    if not kept:
        columns = [*RAW_FIELDS, *OPTIONAL_FIELDS]
        return pd.DataFrame(columns=columns, index=pd.DatetimeIndex([]), dtype="float64")
    raw = pd.concat([batch.frame for batch in kept], ignore_index=True)
    snapshot = np.concatenate([batch.snapshot for batch in kept])
    times = pd.DatetimeIndex(snapshot.astype("datetime64[s]"))
    return raw.set_axis(times, axis=0)
