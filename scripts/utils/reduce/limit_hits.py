"""Which memory cgroups hit their own limit in an interval with OOM kills, from the cgroup_mem
files: the kills no log names there were memcg kills, not host pressure.

The evidence is OOM_EVENTS, cgroup v2's `memory.events` `oom` field: the number of times the
cgroup's usage was about to go over `memory.max` and the OOM killer ran for it
(Documentation/admin-guide/cgroup-v2.rst). Since Linux 5.2 the file counts a descendant's
events in every ancestor too (unless mounted with `memory_localevents`), so of the cgroups whose
count rose, only the deepest are named: a slice above them rose because they did.

cgroup v1 has no such counter (its `memory.oom_control` `oom_kill` also counts kills by the
global OOM killer), so on v1 nothing is named here and a kill no log names stays `unknown`.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from utils.reduce.counters import OomInterval


def limit_hits_between(frame: pd.DataFrame, after_s: float, before_s: float) -> tuple[str, ...]:
    """The deepest cgroups whose OOM_EVENTS rose from the last cgroup snapshot at or before
    `after_s` to the first at or after `before_s` (UTC epoch seconds), sorted; `frame` is
    read.cgroup_specs.cgroup_frame's, in time order."""
    if frame.empty or "OOM_EVENTS" not in frame:
        return ()
    times = frame["time"].to_numpy(dtype="float64")
    end = int(np.searchsorted(times, after_s, side="right"))
    start = int(np.searchsorted(times, before_s, side="left"))
    if end == 0 or start == len(times):
        return ()
    first = _events(frame, times, times[end - 1])
    last = _events(frame, times, times[start])
    rose = sorted(path for path, count in last.items() if count > first.get(path, np.inf))
    return tuple(path for path in rose if not any(other.startswith(_below(path)) for other in rose))


def _events(frame: pd.DataFrame, times: np.ndarray, moment: float) -> dict[str, float]:
    """Each cgroup's OOM_EVENTS at one snapshot (its rows are adjacent: the frame is in time
    order)."""
    rows = slice(
        int(np.searchsorted(times, moment, side="left")),
        int(np.searchsorted(times, moment, side="right")),
    )
    kept = frame.iloc[rows][["CGROUP", "OOM_EVENTS"]]
    kept = kept[np.isfinite(kept["OOM_EVENTS"].to_numpy(dtype="float64"))]
    return dict(zip(kept["CGROUP"], kept["OOM_EVENTS"].astype("float64"), strict=True))


def _below(path: str) -> str:
    """The prefix of every path below `path` ("/" for the root's children)."""
    return path if path.endswith("/") else f"{path}/"


def with_limit_hits(
    ooms: list[OomInterval] | None, frame: pd.DataFrame
) -> list[OomInterval] | None:
    """Each interval with the cgroups whose own limit was hit in it."""
    if not ooms:
        return ooms
    if not frame["time"].is_monotonic_increasing:
        frame = frame.sort_values("time", kind="stable")
    return [oom._replace(limit_hits=_hits(oom, frame)) for oom in ooms]


def _hits(oom: OomInterval, frame: pd.DataFrame) -> tuple[str, ...]:
    after = float(oom.after.astype("datetime64[s]").astype("int64"))
    before = float(oom.before.astype("datetime64[s]").astype("int64"))
    return limit_hits_between(frame, after, before)


def unnamed_kills(oom: OomInterval) -> int:
    """The kills in an interval that no log named."""
    return max(oom.kills - len(oom.logged) - len(oom.filed), 0)


def unnamed_kind(oom: OomInterval) -> str:
    """The kind of a kill in `oom` no log names: memcg where a cgroup's own limit was hit in
    it, else unknown (what every output says of it)."""
    return "memcg" if oom.limit_hits else "unknown"
