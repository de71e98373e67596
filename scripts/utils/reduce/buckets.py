"""The UTC buckets the floors are kept in: 6 hours at level 0, halved at each finer level.

A bucket at one level is exactly two at the next finer one, and every level's buckets are
aligned to UTC midnight, so floors kept per bucket merge across batches and across days.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from utils.core.units import HOUR_S

IntArray = npt.NDArray[np.int64]

# The floors of a long collection: the lowest value per 6 hours, aligned to UTC.
BUCKET_S = 6 * HOUR_S
# Floors finer than BUCKET_S / 2**MAX_LEVEL (a third of a second) are never needed.
MAX_LEVEL = 16


def bucket_index(times_s: npt.NDArray[np.int64], level: int) -> IntArray:
    """The bucket of each epoch second at a level: buckets of BUCKET_S / 2**level seconds,
    aligned to UTC, so that a bucket at a level is exactly two at the next finer one."""
    index: IntArray = (np.asarray(times_s, dtype=np.int64) << level) // BUCKET_S
    return index
