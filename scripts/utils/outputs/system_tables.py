"""The system analysis's files for other tools: system_metrics.csv (and
memory_breakdown.csv, in the same form) and forecast.json, each written whole."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd

from utils.core.atomic_files import replace_atomically, write_text_atomically
from utils.judge.forecast import Forecast, to_json_dict
from utils.parser import DISPLAY_FORMAT

METRICS_CSV = "system_metrics.csv"
FORECAST_JSON = "forecast.json"
# Rows formatted at a time: every cell becomes a Python float and every row a string, so a
# year's rows at once would cost the run its peak.
CSV_ROWS_AT_ONCE = 4096


def write_metrics_csv(metrics: pd.DataFrame, path: Path) -> Path:
    """`timestamp` (UTC) first, then the original README's metrics, the other definitions
    of "used", then the raw fields; 3 decimals; a missing value is empty."""

    def write(temp: Path) -> None:
        with open(temp, "w", encoding="utf-8") as handle:
            handle.writelines(metrics_csv_parts(metrics))

    return replace_atomically(path, write)


def metrics_csv_text(metrics: pd.DataFrame) -> str:
    """system_metrics.csv as text: byte for byte what `to_csv(index=False,
    float_format="%.3f")` writes with the timestamps as the first column."""
    return "".join(metrics_csv_parts(metrics))


def metrics_csv_parts(metrics: pd.DataFrame) -> Iterator[str]:
    """metrics_csv_text in pieces of CSV_ROWS_AT_ONCE rows. pandas formats every value
    through a Python call and its missing-value checks; here a whole row is one %-format
    (docs/performance.md)."""
    names = [str(name) for name in metrics.columns]
    values = metrics.to_numpy(np.float64)
    index = pd.DatetimeIndex(metrics.index)
    row_format = ",".join(["%s"] + ["%.3f"] * len(names))
    yield ",".join(["timestamp", *names]) + "\n"
    for start in range(0, len(values), CSV_ROWS_AT_ONCE):
        block = values[start : start + CSV_ROWS_AT_ONCE]
        stamps = index[start : start + CSV_ROWS_AT_ONCE].strftime(DISPLAY_FORMAT).tolist()
        lines = list(map(row_format.__mod__, zip(stamps, *block.T.tolist(), strict=True)))
        # A missing value is empty, as pandas writes it ("%.3f" would write nan): only the
        # rows that hold one are formatted value by value.
        for row in np.flatnonzero(np.isnan(block).any(axis=1)).tolist():
            cells = ["" if np.isnan(value) else f"{value:.3f}" for value in block[row].tolist()]
            lines[row] = ",".join([stamps[row], *cells])
        yield "\n".join(lines) + "\n"


def write_forecast_json(forecast: Forecast, path: Path) -> Path:
    """The forecast for other tools (see forecast.to_json_dict)."""
    return write_text_atomically(path, json.dumps(to_json_dict(forecast), indent=2) + "\n")
