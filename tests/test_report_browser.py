"""The report in a real browser: Debian's Chromium, headless, driven by Playwright.

Opened from a file:// URL as a person opens it from their Downloads folder: no console or
page errors, nothing fetched, every plot decoded, the tables holding the CSVs' rows, the
headers sorting them, a plot opening at full size, a full-page screenshot; and without
JavaScript the same tables and plots. Playwright drives /usr/bin/chromium: nothing is
downloaded at run time.
"""

from __future__ import annotations

import csv
import re
from collections.abc import Iterator
from pathlib import Path
from typing import NamedTuple

import pytest
from test_make_report import TABLES, as_in_csv, run_analyses, run_in_process, synthetic_dumps

import make_report
from utils.outputs.report_page import png_size
from utils.outputs.system_plots import PLOT_NAMES

try:
    from playwright.sync_api import Browser, ConsoleMessage, Page, ViewportSize, sync_playwright
except ImportError:  # the dev requirements are not installed: skipped below
    HAVE_PLAYWRIGHT = False
else:
    HAVE_PLAYWRIGHT = True

CHROMIUM = Path("/usr/bin/chromium")
# We run as root (no sandbox then); the rest keeps Chromium off the network it would try
# for updates, sync and field trials.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
VIEWPORT: ViewportSize = {"width": 1366, "height": 800}  # a laptop screen
pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(
        not (HAVE_PLAYWRIGHT and CHROMIUM.exists()),
        reason="needs Chromium: apt-get install chromium"
        " (and pip install -r requirements-dev.txt for playwright)",
    ),
]

ROWS_JS = "rows => rows.map(row => Array.from(row.cells).map(cell => cell.textContent))"
IMAGES_JS = "imgs => imgs.map(img => [img.alt, img.complete, img.naturalWidth, img.naturalHeight])"


class Report(NamedTuple):
    html: Path
    out: Path  # the analyses' CSVs for the same dumps


class Opened(NamedTuple):
    page: Page
    errors: list[str]  # console errors and uncaught exceptions
    requests: list[str]  # every URL the page asked for


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory) -> Report:
    folder = tmp_path_factory.mktemp("browser")
    dumps = synthetic_dumps(folder / "dumps")
    html = folder / "report.html"
    status = run_in_process(make_report.main, ["--dumps-dir", str(dumps), "--out", str(html)])
    assert status == 0
    run_analyses(dumps, folder / "out")
    return Report(html, folder / "out")


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            yield launched
        finally:
            launched.close()


def open_report(browser: Browser, report: Report, javascript: bool = True) -> Iterator[Opened]:
    context = browser.new_context(viewport=VIEWPORT, java_script_enabled=javascript)
    page = context.new_page()
    errors: list[str] = []
    requests: list[str] = []

    def console(message: ConsoleMessage) -> None:
        if message.type == "error":
            errors.append(message.text)

    page.on("console", console)
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.on("request", lambda request: requests.append(request.url))
    page.goto(report.html.as_uri(), wait_until="load")
    try:
        yield Opened(page, errors, requests)
    finally:
        context.close()


@pytest.fixture
def opened(browser: Browser, report: Report) -> Iterator[Opened]:
    yield from open_report(browser, report)


@pytest.fixture
def without_js(browser: Browser, report: Report) -> Iterator[Opened]:
    yield from open_report(browser, report, javascript=False)


def csv_rows(path: Path) -> list[list[str]]:
    with path.open(newline="", encoding="utf-8") as handle:
        return list(csv.reader(handle))[1:]


def table_rows(page: Page, section: str) -> list[list[str]]:
    rows: list[list[str]] = page.eval_on_selector_all(f"#{section} tr.row", ROWS_JS)
    return rows


def images(page: Page) -> list[tuple[str, bool, int, int]]:
    found: list[list[object]] = page.eval_on_selector_all("img", IMAGES_JS)
    return [(str(a), bool(b), int(str(c)), int(str(d))) for a, b, c, d in found]


def test_it_opens_without_errors_and_fetches_nothing(opened: Opened) -> None:
    opened.page.wait_for_timeout(200)  # a late error would show by now
    assert opened.errors == []
    assert [url for url in opened.requests if not url.startswith("data:")] == [
        opened.page.url
    ], "the page asked for something besides itself"
    assert opened.page.url.startswith("file://")


def test_every_plot_is_decoded(opened: Opened, report: Report) -> None:
    leaks = len(csv_rows(report.out / "processes" / "leaks.csv"))
    found = images(opened.page)
    assert len(found) == len(PLOT_NAMES) + 10 + leaks
    for alt, complete, width, height in found:
        assert complete and (width, height) == (1500, 750), alt


@pytest.mark.parametrize("section", sorted(TABLES))
def test_the_tables_hold_the_csv_rows(opened: Opened, report: Report, section: str) -> None:
    name, numeric = TABLES[section]
    expected = csv_rows(report.out / name)
    assert expected
    assert as_in_csv(table_rows(opened.page, section), numeric, len(expected[0])) == expected


def test_the_answers_are_in_the_first_screen_and_lead_to_their_sections(opened: Opened) -> None:
    page = opened.page
    answers = page.locator("#answers ul.answers li")
    assert answers.count() == 5
    box = page.locator("#answers").bounding_box()
    assert box is not None and box["y"] + box["height"] <= VIEWPORT["height"], box
    first = page.locator("section").first
    assert first.get_attribute("id") == "answers"
    assert answers.nth(0).inner_text().startswith("Leaks: 1 process instance leaks")
    answers.nth(0).locator("a").click()
    assert page.evaluate("location.hash") == "#leaks"
    top = page.locator("#leaks").bounding_box()
    # Scrolled to the leaks: at the top of the window, under the navigation bar.
    assert page.evaluate("window.scrollY") > VIEWPORT["height"]
    assert top is not None and 0 <= top["y"] < 150, top


def test_a_click_on_a_header_sorts_the_rows(opened: Opened, report: Report) -> None:
    page = opened.page
    csv_top = csv_rows(report.out / "processes" / "top10_rss_spread.csv")
    by_max = sorted(csv_top, key=lambda row: -float(row[2]))  # stable: ties keep their order
    header = page.locator("#top th").nth(2)
    assert header.inner_text().startswith("max RSS")
    header.click()
    rows = table_rows(page, "top")
    assert [row[0] for row in rows] == [row[0] for row in by_max]
    assert header.get_attribute("aria-sort") == "descending"
    # Each row keeps its plot.
    assert [row[5] for row in rows] == [f"rss_pid_{row[0]}.png" for row in rows]
    header.focus()
    page.keyboard.press("Enter")  # the keyboard sorts too
    rows = table_rows(page, "top")
    assert [row[0] for row in rows] == [row[0] for row in reversed(by_max)]
    assert header.get_attribute("aria-sort") == "ascending"
    # Only one column at a time is marked as the order.
    assert page.locator("#top th[aria-sort]").count() == 1
    page.locator("#top th").nth(0).click()
    pids = [int(row[0]) for row in table_rows(page, "top")]
    assert pids == sorted(pids, reverse=True)
    # The plots' column has nothing to sort by.
    assert page.locator("#top th.sorter").count() == 5


def test_a_plot_opens_at_full_size_and_closes(opened: Opened) -> None:
    page = opened.page
    overlay = page.locator(".overlay")
    assert overlay.is_hidden()
    plot = page.locator("#system-plots img.plot").first
    plot.click()
    assert overlay.is_visible()
    big = overlay.locator("img")
    assert big.get_attribute("src") == plot.get_attribute("src")
    box = big.bounding_box()
    assert box is not None and (box["width"], box["height"]) == (1500, 750)
    page.keyboard.press("Escape")
    assert overlay.is_hidden() and overlay.locator("img").count() == 0
    page.locator("#top img.plot").first.click()  # a thumbnail too
    assert overlay.is_visible()
    overlay.click(position={"x": 5, "y": 5})
    assert overlay.is_hidden()


def test_a_full_page_screenshot(opened: Opened, tmp_path: Path) -> None:
    path = tmp_path / "report.png"
    opened.page.screenshot(path=str(path), full_page=True)
    png = path.read_bytes()
    width, height = png_size(png)
    assert width == VIEWPORT["width"] and height > 4000, (width, height)
    assert len(png) > 200_000


def test_it_reads_the_same_without_javascript(without_js: Opened, report: Report) -> None:
    page = without_js.page
    assert without_js.errors == []
    assert all(complete and width == 1500 for _, complete, width, _ in images(page))
    assert page.locator("th.sorter, th[tabindex]").count() == 0  # headers are plain text
    assert page.locator(".overlay").count() == 0
    name, numeric = TABLES["top"]
    expected = csv_rows(report.out / name)
    assert as_in_csv(table_rows(page, "top"), numeric, len(expected[0])) == expected
    # The plots at the column's width, not wider than the page.
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= VIEWPORT["width"]


def test_it_prints(opened: Opened) -> None:
    page = opened.page
    page.emulate_media(media="print")
    assert page.locator("nav").is_hidden()
    pdf = page.pdf(format="A4")
    assert pdf.startswith(b"%PDF")
    assert len(re.findall(rb"/Type\s*/Page\b(?!s)", pdf)) >= 3  # pages, not one long one
