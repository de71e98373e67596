"""The report's page as data, and the Jinja2 template that lays it out.

A page is sections of blocks: text, paragraphs, headings, tables, figures, a definition
list. utils.outputs.report decides what they say; templates/report.html.j2 decides the
markup, with templates/report.css and report.js inlined so that the page stays one
self-contained file (the plots are data: URIs). Autoescaping is on and nothing here holds
HTML: every piece of text, above all the command lines from the dumps, is escaped where
the template writes it.
"""

from __future__ import annotations

import base64
import struct
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import ClassVar, NamedTuple

import jinja2
import numpy as np
import pandas as pd

from utils.parser import DISPLAY_FORMAT

TEMPLATES = Path(__file__).resolve().parent / "templates"
PAGE_TEMPLATE = "report.html.j2"


# --- Text ----------------------------------------------------------------------------


def when(moment: datetime | pd.Timestamp) -> str:
    return f"{moment:{DISPLAY_FORMAT}}"


def one_decimal(value: float) -> str:
    """As the console's summary: thousands separated, 1 decimal; n/a when empty."""
    return f"{value:,.1f}" if np.isfinite(value) else "n/a"


def three_decimals(value: float) -> str:
    """As the CSVs (3 decimals), with thousands separated."""
    return f"{value:,.3f}"


# --- Images --------------------------------------------------------------------------


class Image(NamedTuple):
    """A PNG embedded in the page: a data: URI, its size in pixels, its alt text."""

    src: str
    width: int
    height: int
    alt: str


def png_size(png: bytes) -> tuple[int, int]:
    """Width and height from the PNG's IHDR chunk (0, 0 if it is not a PNG)."""
    if png[:8] != b"\x89PNG\r\n\x1a\n" or len(png) < 24:
        return 0, 0
    width, height = struct.unpack(">II", png[16:24])
    return int(width), int(height)


def image(name: str, png: bytes, title: str) -> Image:
    """The PNG itself, embedded; its file name and title as the alt text."""
    width, height = png_size(png)
    data = base64.b64encode(png).decode("ascii")
    return Image(f"data:image/png;base64,{data}", width, height, f"{name}: {title}")


# --- Blocks --------------------------------------------------------------------------


@dataclass(frozen=True)
class Text:
    """Plain text, inline (in a definition list's description)."""

    kind: ClassVar[str] = "text"
    text: str


@dataclass(frozen=True)
class Code:
    kind: ClassVar[str] = "code"
    text: str
    css: str = ""


@dataclass(frozen=True)
class Paragraph:
    kind: ClassVar[str] = "paragraph"
    text: str
    css: str = ""


@dataclass(frozen=True)
class Heading:
    """A heading inside a section (h3)."""

    kind: ClassVar[str] = "heading"
    text: str


@dataclass(frozen=True)
class Figure:
    """A plot at the column's width, captioned with its title, a note and its file name."""

    kind: ClassVar[str] = "figure"
    image: Image
    title: str
    note: str
    name: str


def figure(name: str, png: bytes, title: str, note: str = "") -> Figure:
    return Figure(image(name, png, title), title, note, name)


class Column(NamedTuple):
    label: str
    unit: str = ""  # a second, smaller line in the header
    numeric: bool = False  # right-aligned, sorted as numbers (largest first on a click)
    sortable: bool = True


class Cell(NamedTuple):
    text: str
    sort: float | None = None  # the number a numeric column sorts by
    css: str = ""
    day: str = ""  # a time: the day, kept on one line, before the time of day in `text`
    image: Image | None = None  # a thumbnail, with its file name (`text`) under it


def time_cell(moment: datetime | pd.Timestamp) -> Cell:
    """A UTC time that wraps, if it must, between the day and the time of day only."""
    day, clock = when(moment).split(" ")
    return Cell(clock, day=day)


def thumbnail_cell(name: str, png: bytes, title: str) -> Cell:
    """A plot in a table cell, at the cell's width (the whole PNG: full size on a click)."""
    return Cell(name, css="thumb", image=image(name, png, title))


@dataclass(frozen=True)
class Table:
    """A table; sortable by its headers (by the script) unless css says otherwise."""

    kind: ClassVar[str] = "table"
    columns: tuple[Column, ...]
    rows: Sequence[Sequence[Cell]]
    figures: Sequence[Figure] | None = None  # one figure per row, shown under it
    sorted_by: int | None = None  # the column the rows come sorted by, largest first
    css: str = "sortable"


@dataclass(frozen=True)
class Facts:
    """A definition list: each term and the blocks (Text, Code, Table) that describe it."""

    kind: ClassVar[str] = "facts"
    items: tuple[tuple[str, tuple[Block, ...]], ...]


class Swatch(NamedTuple):
    """A definition of a plotted line, in its colour."""

    color: str
    label: str
    column: str
    formula: str
    meaning: str


@dataclass(frozen=True)
class Definitions:
    kind: ClassVar[str] = "definitions"
    items: tuple[Swatch, ...]


class Answer(NamedTuple):
    """One of the page's answers: what it is about, the answer, the section it comes from."""

    label: str
    text: str
    anchor: str


@dataclass(frozen=True)
class Answers:
    """The short verdict block that opens the page, each answer linking to its section."""

    kind: ClassVar[str] = "answers"
    items: tuple[Answer, ...]


Block = Text | Code | Paragraph | Heading | Table | Figure | Facts | Definitions | Answers


# --- The page ------------------------------------------------------------------------


@dataclass(frozen=True)
class Section:
    anchor: str
    title: str
    blocks: tuple[Block, ...]


@dataclass(frozen=True)
class Page:
    title: str
    lead: str  # under the heading: the span of the snapshots
    dumps_dir: str
    sections: tuple[Section, ...]  # each also in the navigation, in this order
    leak_color: str  # the plots' colour for a leak, in the CSS too


def render_page(page: Page) -> str:
    """The whole page, one self-contained HTML document."""
    environment = jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATES),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    return environment.get_template(PAGE_TEMPLATE).render(page=page)
