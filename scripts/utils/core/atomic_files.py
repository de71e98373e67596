"""Writing files whole or not at all: every output of every script goes through here.

Standard library only: the collector and the compactor use it too.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # the analyses' tables; this module imports no pandas when it runs
    import pandas as pd

# Dumps hold every user's command lines, which can carry secrets.
PRIVATE_FILE_MODE = 0o640
# A file being written: `.<final name>.<pid>.tmp`. The leading dot hides it from every
# pattern the analyses look for (sys_mem_*.csv, mem_*.tar.xz), and the pid keeps two
# writers (cron and a daemon) from ever sharing one, and tells a leftover of a killed run.
_TEMP_NAME = re.compile(r"\.(.+)\.([0-9]+)\.tmp")


def temp_name(final_name: str, pid: int | None = None) -> str:
    """The hidden name a file is written under before it is published as final_name."""
    return f".{final_name}.{os.getpid() if pid is None else pid}.tmp"


def temp_path(path: Path) -> Path:
    """The temporary of path, beside it (a rename then never crosses a file system)."""
    return path.with_name(temp_name(path.name))


def parse_temp_name(name: str) -> tuple[str, int] | None:
    """(the final name, the writer's pid) of a temporary's name; None for any other name."""
    match = _TEMP_NAME.fullmatch(name)
    return None if match is None else (match.group(1), int(match.group(2)))


def replace_atomically(path: Path, write: Callable[[Path], object]) -> Path:
    """write(temp) under a hidden temporary name, then rename it to path: a reader
    (or a crash) never sees half a file, and a failure leaves no temporary behind."""
    temp = temp_path(path)
    try:
        write(temp)
        os.replace(temp, path)
    finally:
        temp.unlink(missing_ok=True)
    return path


def write_text_atomically(path: Path, text: str) -> Path:
    """A whole UTF-8 text file, replacing path at once (see replace_atomically)."""
    return replace_atomically(path, lambda temp: temp.write_text(text, encoding="utf-8"))


def write_table_csv(path: Path, table: pd.DataFrame, decimals: int = 3) -> Path:
    """A table as the analyses' CSVs are: no index, floats with `decimals` decimals, `\n`
    line ends, an empty cell for a missing value; replaced at once."""
    return replace_atomically(
        path,
        lambda temp: table.to_csv(
            temp, index=False, float_format=f"%.{decimals}f", lineterminator="\n"
        ),
    )


def write_private_file(path: Path, text: str, mode: int = PRIVATE_FILE_MODE) -> None:
    """Write text to a new file (never an existing one) that has `mode` whatever the
    umask, and fsync it: the caller then publishes it under its final name."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    try:
        os.fchmod(fd, mode)
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as handle:
            fd = -1  # owned by the file object now
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
    finally:
        if fd >= 0:
            os.close(fd)
