"""Small text helpers every script shares: counts, sizes, durations, numbers and aligned tables.

Standard library only: the collector and the compactor use it too.
"""

from __future__ import annotations

from collections.abc import Sequence

from utils.core.units import DAY_S, HOUR_S, MINUTE_S

# Decimal units, as `ls -lh --si` and `df -H` print them.
_DECIMAL_UNITS = ("kB", "MB", "GB")
# Binary units, as the limits of the readers are set.
_BINARY_UNITS = (("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10))


def plural(count: int, word: str, many: str | None = None) -> str:
    """`1 file`, `2 files`, `1,234 files`; `many` where adding an s is wrong."""
    return f"{count:,} {word if count == 1 else many or word + 's'}"


def binary_size(size: int) -> str:
    """`2.1 GiB`, `64.0 MiB`, `512 bytes`: bytes in binary units, as limits are set."""
    for unit, scale in _BINARY_UNITS:
        if size >= scale:
            return f"{size / scale:,.1f} {unit}"
    return f"{size} bytes"


def decimal_size(size: int) -> str:
    """`6.1 MB`, `201 kB`: decimal units, three significant digits or so. The unit is chosen
    after rounding, so 999,999 bytes are 1.0 MB, not 1000 kB, and 99,960 are 100 kB."""
    if size < 1000:
        return f"{size} B"
    value, unit = size / 1000, 0
    while value >= 999.5 and unit < len(_DECIMAL_UNITS) - 1:
        value, unit = value / 1000, unit + 1
    shown = f"{value:.0f}" if value >= 99.95 else f"{value:.1f}"
    return f"{shown} {_DECIMAL_UNITS[unit]}"


def ratio_text(before: int, after: int) -> str:
    """`27.9x`: how many times smaller `after` is; `-` when it is nothing."""
    return f"{before / after:.1f}x" if after else "-"


def format_duration(seconds: float) -> str:
    """`29 d 23 h 50 min`, `2 h 5 min`, `45 s`: as a person says a span."""
    whole = round(seconds)
    days, rest = divmod(whole, DAY_S)
    hours, rest = divmod(rest, HOUR_S)
    minutes, secs = divmod(rest, MINUTE_S)
    parts = [f"{days} d"] if days else []
    if hours or (days and minutes):
        parts.append(f"{hours} h")
    if minutes:
        parts.append(f"{minutes} min")
    if secs and not days:
        parts.append(f"{secs} s")
    return " ".join(parts) or "0 s"


def signed(value: float, decimals: int = 0) -> str:
    """`+1,675`, `-18.0`, `+0`: a change with its sign and thousands separated; one that rounds
    to zero reads `+0`, never `-0` (the z option, PEP 682)."""
    return f"{value:+z,.{decimals}f}"


def short_number(value: float) -> str:
    """One decimal under 10, none from 10, thousands separated: 0.3, 4.5, 45, 1,234."""
    text = f"{value:,.1f}" if abs(value) < 9.95 else f"{value:,.0f}"
    return text.removesuffix(".0")


def days_text(days: float) -> str:
    """`1 day`, `4.5 days`, `82 days`."""
    text = short_number(days)
    return f"{text} day" if text == "1" else f"{text} days"


def short_span(days: float) -> str:
    """A span under a day as a person says it: `5 h`, `30 min`, `8 s`."""
    seconds = round(days * DAY_S)
    if seconds < MINUTE_S:
        return f"{seconds} s"
    hours = days * DAY_S / HOUR_S
    return f"{short_number(hours * 60)} min" if hours < 1 else f"{short_number(hours)} h"


def shorten(text: str, width: int) -> str:
    """Cut a long text (a command line) for display, marking the cut with an ellipsis."""
    return text if len(text) <= width else text[: width - 1] + "…"


def aligned_table(
    header: Sequence[str], rows: Sequence[Sequence[str]], last: str, last_cells: Sequence[str]
) -> list[str]:
    """Lines of a console table: the cells right-aligned under their header, then a last,
    left-aligned column of free text (a command line) that is never padded."""
    widths = [max(len(h), *(len(row[i]) for row in rows)) for i, h in enumerate(header)]
    lines = ["  ".join(h.rjust(w) for h, w in zip(header, widths, strict=True)) + f"  {last}"]
    for cells, text in zip(rows, last_cells, strict=True):
        line = "  ".join(c.rjust(w) for c, w in zip(cells, widths, strict=True))
        lines.append(f"{line}  {text}")
    return lines
