"""make_report.py: one self-contained HTML page holding both analyses.

The page is read back here as a browser's parser reads it (html.parser): its sections in
order, its tables against the CSVs the analyses write for the same dumps, escaping of text
from the dumps, no external reference; and the script's exit statuses. A real browser
opens it in test_report_browser.py.
"""

from __future__ import annotations

import base64
import csv
import html
import re
import subprocess
from collections.abc import Callable, Sequence
from datetime import datetime
from html.parser import HTMLParser
from pathlib import Path
from typing import NamedTuple

import pytest

import analyze_processes
import analyze_system
import make_report
from conftest import run_main, run_script, script_path, write_proc, write_sys
from synthetic import generate_dumps
from utils.core import defaults
from utils.judge.breakdown import LABELS
from utils.outputs.process_plots import LEAK_COLOR
from utils.outputs.report import Missing, ReportData, render_report
from utils.outputs.report_page import TEMPLATES, png_size
from utils.outputs.system_plots import PLOT_NAMES
from utils.parser import TimeWindow

NAME = "make_report.py"
SCRIPT = script_path(NAME)
SECTIONS = [
    "analysed",
    "system",
    "system-plots",
    "leaks",
    "programs",
    "services",
    "top",
    "alerts",
]
EVIL = "<script>alert(1)</script></table>"
# The CSV each table holds, and its numeric columns (shown with thousands separators).
TABLES = {
    "top": ("processes/top10_rss_spread.csv", {0, 1, 2, 3}),
    "leaks": ("processes/leaks.csv", {0, 4, 5, 6}),
}
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


# --- Reading the page ----------------------------------------------------------------


class Page(HTMLParser):
    """The report as a browser's parser sees it: sections, table rows, every attribute,
    and the text of its <style> and <script> blocks."""

    def __init__(self, text: str) -> None:
        super().__init__()
        self.sections: list[str] = []
        self.headings: list[str] = []
        self.tables: dict[str, list[list[list[str]]]] = {}  # section -> tables -> rows
        self.attributes: list[tuple[str, str, str]] = []  # tag, name, value
        self.tags: list[str] = []
        self.code: list[str] = []  # the contents of <style> and <script>
        self._open: list[str] = []
        self._row: list[str] | None = None
        self._cell: list[str] | None = None
        self._heading: list[str] | None = None
        self.feed(text)
        self.close()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)
        values = {name: value or "" for name, value in attrs}
        self.attributes += [(tag, name, value) for name, value in values.items()]
        if tag in {"style", "script"}:
            self._open.append(tag)
        elif tag == "section":
            self.sections.append(values.get("id", ""))
        elif tag == "h2":
            self._heading = []
        elif tag == "table":
            self.tables.setdefault(self.sections[-1] if self.sections else "", []).append([])
        elif tag == "tr" and "row" in values.get("class", "").split():
            self._row = []
        elif tag == "td" and self._row is not None:
            self._cell = []

    def handle_endtag(self, tag: str) -> None:
        if tag in {"style", "script"} and self._open:
            self._open.pop()
        elif tag == "h2" and self._heading is not None:
            self.headings.append("".join(self._heading))
            self._heading = None
        elif tag == "td" and self._row is not None and self._cell is not None:
            self._row.append("".join(self._cell))
            self._cell = None
        elif tag == "tr" and self._row is not None:
            section = self.sections[-1] if self.sections else ""
            self.tables[section][-1].append(self._row)
            self._row = None

    def handle_data(self, data: str) -> None:
        if self._open:
            self.code.append(data)
        for collecting in (self._cell, self._heading):
            if collecting is not None:
                collecting.append(data)

    def table(self, section: str, number: int = 0) -> list[list[str]]:
        return self.tables[section][number]


def csv_rows(path: Path) -> list[list[str]]:
    with path.open(newline="", encoding="utf-8") as handle:
        return list(csv.reader(handle))[1:]


def as_in_csv(rows: Sequence[Sequence[str]], numeric: set[int], width: int) -> list[list[str]]:
    """A table's rows as the CSV writes them: the first `width` cells, no thousands commas."""
    return [
        [cell.replace(",", "") if index in numeric else cell for index, cell in enumerate(row)]
        for row in (row[:width] for row in rows)
    ]


def external_references(page: Page) -> list[str]:
    """Whatever would make a browser fetch something: every src/href/... that is not
    an anchor or a data: URI, tags that load things, and fetching code or CSS."""
    found = []
    for tag, name, value in page.attributes:
        loads = name in {"src", "href", "srcset", "action", "poster", "data", "formaction"}
        if loads and not value.startswith(("data:", "#")):
            found.append(f"<{tag} {name}={value!r}>")
        if name == "style" and "url(" in value:
            found.append(f"<{tag} style={value!r}>")
    found += [f"<{tag}>" for tag in page.tags if tag in {"link", "iframe", "object", "embed"}]
    found += [f"<{tag}>" for tag in page.tags if tag in {"base", "frame", "audio", "video"}]
    code = "".join(page.code)
    for word in ("http:", "https:", "//", "url(", "@import", "fetch(", "XMLHttpRequest"):
        if word in code:
            found.append(f"{word} in a <style> or <script>")
    return found


# --- Running things --------------------------------------------------------------------


def run_in_process(main: Callable[[Sequence[str]], int], args: Sequence[str]) -> int:
    return run_with_output(main, args)[0]


def run_with_output(main: Callable[[Sequence[str]], int], args: Sequence[str]) -> tuple[int, str]:
    """A script's main() in this process: its exit status and what it printed on stdout."""
    ran = run_main(main, args)
    return ran.status, ran.stdout


def synthetic_dumps(folder: Path) -> Path:
    """Eight days of 12 processes with a 3-hour outage: a leak, short-lived PIDs, awkward
    command lines, a gap, and MemAvailable falling for long enough to be sure of it."""
    generate_dumps(folder, snapshots=8 * 144, processes=12, seed=11, outage=(200, 18))
    return folder


def run_analyses(dumps: Path, out: Path, *extra: str) -> tuple[tuple[int, int], str]:
    """Both analyses with their defaults into out/system and out/processes (`extra` flags
    for the process one): their statuses, and the system summary printed on the console."""
    system, console = run_with_output(
        analyze_system.main, ["--dumps-dir", str(dumps), "--out-dir", str(out / "system")]
    )
    processes = run_in_process(
        analyze_processes.main,
        ["--dumps-dir", str(dumps), "--out-dir", str(out / "processes"), *extra],
    )
    return (system, processes), console


def small_dumps(folder: Path, cmd: str = "/usr/bin/python3 app.py", kinds: str = "sp") -> Path:
    """Three snapshots a minute apart by hand: 's' the sys_mem files, 'p' the process_mem."""
    folder.mkdir(parents=True, exist_ok=True)
    for minute in range(3):
        stamp = f"20260301_10{minute:02d}00"
        if "s" in kinds:
            write_sys(
                folder,
                stamp,
                MemTotal=16000.0,
                MemFree=8000.0 - 100 * minute,
                MemAvailable=10000.0 - 100 * minute,
                Cached=1000.0,
                SwapTotal=2000.0,
                SwapFree=2000.0,
            )
        if "p" in kinds:
            rows = [
                (1, 0, "root", 10.0, 100.0, "/sbin/init"),
                (42, 1, "alice", 200.0 + 5 * minute, 900.0, cmd),
            ]
            write_proc(folder, stamp, rows)
    return folder


class Report(NamedTuple):
    dumps: Path
    html: Path
    page: Page
    text: str
    out: Path  # the analyses' own outputs for the same dumps
    statuses: tuple[int, int]  # theirs: system (plain), processes (--fail-on-leak)
    console: str  # the system analysis's summary
    result: subprocess.CompletedProcess[str]


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory) -> Report:
    folder = tmp_path_factory.mktemp("report")
    dumps = synthetic_dumps(folder / "dumps")
    html_path = folder / "report.html"
    result = run_script(NAME, "--dumps-dir", str(dumps), "--out", str(html_path))
    statuses, console = run_analyses(dumps, folder / "out", "--fail-on-leak")
    text = html_path.read_text(encoding="utf-8")
    return Report(dumps, html_path, Page(text), text, folder / "out", statuses, console, result)


# --- The page ----------------------------------------------------------------------------


@pytest.mark.slow
def test_it_exits_0_and_says_where_the_page_is(report: Report) -> None:
    assert report.result.returncode == 0, report.result.stderr
    assert report.result.stderr == ""
    size = report.html.stat().st_size
    assert report.result.stdout == f"Wrote {report.html} ({size / 1e6:.1f} MB)\n"


@pytest.mark.slow
def test_the_sections_come_in_reading_order(report: Report) -> None:
    assert report.page.sections == SECTIONS
    assert report.page.headings == [
        "What was analysed",
        "System memory",
        "System plots",
        "Leaks: sustained growth",
        "Programs by growth",
        "Services",
        "Top PIDs by RSS spread",
        "What the alerts would give",
    ]
    # What was analysed, in the order a person asks it.
    terms = re.findall(r"<dt>(.*?)</dt>", report.text)
    assert terms == [
        "Dumps dir",
        "Snapshots",
        "Selected",
        "Gaps",
        "Bad files skipped",
        "Made by",
        "Made at",
    ]


@pytest.mark.slow
def test_what_was_analysed(report: Report) -> None:
    snapshots, gaps = report.page.table("analysed", 0), report.page.table("analysed", 1)
    assert snapshots == [
        ["sys_mem", "1,134", "2026-01-01 00:00:00", "2026-01-08 23:50:00", "7 d 23 h 50 min"],
        ["process_mem", "1,134", "2026-01-01 00:00:00", "2026-01-08 23:50:00", "7 d 23 h 50 min"],
    ]
    assert gaps == [["2026-01-02 09:10:00", "2026-01-02 12:20:00", "3 h 10 min"]]
    assert "1 gap longer than 15 min" in report.text
    assert f"{SCRIPT} --dumps-dir {report.dumps} --out {report.html}" in report.text
    made = re.search(r"<dt>Made at</dt><dd>(.*?) UTC</dd>", report.text)
    assert made is not None
    assert abs((datetime.now() - datetime.fromisoformat(made.group(1))).days) <= 1


@pytest.mark.slow
@pytest.mark.parametrize("section", sorted(TABLES))
def test_the_tables_hold_the_csv_rows(report: Report, section: str) -> None:
    name, numeric = TABLES[section]
    expected = csv_rows(report.out / name)
    assert expected, f"{name} is empty: the test dumps should have a row"
    shown = as_in_csv(report.page.table(section), numeric, len(expected[0]))
    assert shown == expected


@pytest.mark.slow
def test_the_programs_table_is_the_top_of_program_growth_csv(report: Report) -> None:
    rows = csv_rows(report.out / "processes" / "program_growth.csv")
    table = report.page.table("programs")
    assert [row[0] for row in table] == [row[0] for row in rows[:10]]
    assert [row[5] for row in table] == [f"{float(row[5]):+,.1f}" for row in rows[:10]]


@pytest.mark.slow
def test_each_pid_row_has_its_plot_beside_it(report: Report) -> None:
    rows = report.page.table("top")
    assert [row[5] for row in rows] == [f"rss_pid_{row[0]}.png" for row in rows]


@pytest.mark.slow
def test_the_plots_are_embedded_pngs_at_full_resolution(report: Report) -> None:
    sources = [
        value for tag, name, value in report.page.attributes if (tag, name) == ("img", "src")
    ]
    leaks = len(report.page.table("leaks"))
    assert len(sources) == len(PLOT_NAMES) + 10 + leaks
    for source in sources:
        prefix, data = source.split(",", 1)
        assert prefix == "data:image/png;base64"
        png = base64.b64decode(data, validate=True)
        assert png.startswith(PNG_SIGNATURE)
        assert png_size(png) == (1500, 750)
    alts = [value for tag, name, value in report.page.attributes if (tag, name) == ("img", "alt")]
    assert alts[:5] == [
        "ram_used_htop.png: RAM used (htop method)",
        "swap_used.png: Swap used",
        "ram_vs_swap.png: RAM vs swap used",
        "ram_used_pct.png: RAM used, % of MemTotal",
        "ram_used_definitions.png: RAM used, three definitions",
    ]
    assert alts[5].startswith("memory_pressure.png: ")
    assert alts[6].startswith("memory_breakdown.png: ")


@pytest.mark.slow
def test_the_system_summary_forecast_and_definitions(report: Report) -> None:
    summary = report.page.table("system")
    assert [row[0] for row in summary] == [
        "RAM used (htop), MiB",
        "RAM used (htop + Shmem), MiB",
        "RAM used (MemTotal - MemAvailable), MiB",
        "RAM used (htop), %",
        "Swap used, MiB",
    ]
    # What changed: every part of the breakdown, largest change first, as the console has it.
    changes = report.page.table("system", 1)
    assert sorted(row[0] for row in changes) == sorted(LABELS.values())
    moved = [abs(float(row[3].replace(",", ""))) for row in changes]
    assert moved == sorted(moved, reverse=True)
    # The same numbers and forecast as the console's summary.
    lines = report.console.splitlines()
    forecast = next(line for line in lines if line.startswith("MemAvailable"))
    assert "MemAvailable falls" in forecast
    assert f'<p class="forecast">{html.escape(forecast)}</p>' in report.text
    summary_lines = lines[: lines.index(forecast)]
    console_rows = [line.split() for line in summary_lines if line.startswith("  RAM used")]
    assert [row[-3:] for row in console_rows] == [row[1:4] for row in summary[:4]]
    for colour in ("#1f6fb4", "#7b3fa0", "#2a8f5a"):  # the plots' colours
        assert f"background:{colour}" in report.text


@pytest.mark.slow  # the system analysis four times
def test_the_alerts_say_what_the_analyses_flags_would_exit(report: Report) -> None:
    alerts = report.page.table("alerts")
    assert alerts[0] == ["analyze_processes.py --fail-on-leak", "3", "1 process instance leaks"]
    assert alerts[1] == ["analyze_processes.py --fail-on-oom", "0", "no OOM kill in the window"]
    assert report.statuses[1] == 3  # analyze_processes --fail-on-leak, on the same dumps
    pct = re.fullmatch(r"3 for P ≤ ([0-9.]+), else 0", alerts[2][1])
    days = re.fullmatch(r"3 for D ≥ ([0-9.]+), else 0", alerts[3][1])
    assert pct is not None and days is not None
    out = report.out / "alerts"
    args = ["--dumps-dir", str(report.dumps), "--out-dir", str(out)]
    bound_pct, bound_days = float(pct.group(1)), float(days.group(1))
    assert run_in_process(analyze_system.main, [*args, "--alert-pct", f"{bound_pct}"]) == 3
    assert run_in_process(analyze_system.main, [*args, "--alert-days", f"{bound_days}"]) == 3
    above, below = f"{bound_pct + 0.01:.2f}", f"{bound_days - 0.1:.1f}"
    assert run_in_process(analyze_system.main, [*args, "--alert-pct", above]) == 0
    assert run_in_process(analyze_system.main, [*args, "--alert-days", below]) == 0


@pytest.mark.slow
def test_nothing_is_fetched_from_anywhere(report: Report) -> None:
    assert external_references(report.page) == []
    # Exactly our own <style> and <script>, with nothing in them from the dumps.
    assert report.page.tags.count("style") == 1 and report.page.tags.count("script") == 1


# --- Text from the dumps --------------------------------------------------------------------


@pytest.mark.slow
def test_a_command_line_with_markup_shows_as_text(tmp_path: Path) -> None:
    dumps = small_dumps(tmp_path / "dumps", cmd=f"/opt/x {EVIL} & 'q' \"dq\"")
    out = tmp_path / "report.html"
    result = run_script(NAME, "--dumps-dir", str(dumps), "--out", str(out), "--match", EVIL)
    assert result.returncode == 0, result.stderr
    text = out.read_text(encoding="utf-8")
    page = Page(text)
    assert page.tags.count("script") == 1  # ours: the one at the end
    assert text.count("<table") == text.count("</table>")
    escaped = "&lt;script&gt;alert(1)&lt;/script&gt;&lt;/table&gt;"
    assert text.count("alert(1)") == text.count(escaped) >= 3  # table, command, filter
    assert page.table("top")[0][4] == f"/opt/x {EVIL} & 'q' \"dq\""
    assert page.sections == SECTIONS  # nothing closed early
    assert external_references(page) == []
    for url in ("http://", "https://", 'src="//', "src='//"):
        assert url not in text


def test_the_renderer_escapes_every_piece_of_text() -> None:
    data = ReportData(
        dumps_dir=Path(f"/data/{EVIL}"),
        window=TimeWindow(),
        system=Missing(f"no sys_mem_*.csv files in /data/{EVIL}"),
        processes=Missing(f"no command line contains '{EVIL}'"),
        skipped=((Path(f"/elsewhere/process_mem_{EVIL}.csv"), f"bad value '{EVIL}'; skipped"),),
        command=f"make_report.py --match '{EVIL}'",
        made_at=datetime(2026, 3, 1, 12, 0, 0),
    )
    text = render_report(data)
    assert "<script>alert" not in text and "</table></table>" not in text
    assert text.count("<script>") == 1 and text.count("alert(1)") >= 5
    page = Page(text)
    assert page.sections == SECTIONS
    assert page.table("analysed") == [
        [f"/elsewhere/process_mem_{EVIL}.csv", f"bad value '{EVIL}'; skipped"]
    ]
    assert "Made at</dt><dd>2026-03-01 12:00:00 UTC" in text


def test_the_style_and_script_files_are_inlined_whole() -> None:
    data = ReportData(
        dumps_dir=Path("/data"),
        window=TimeWindow(),
        system=Missing("no sys_mem_*.csv files in /data"),
        processes=Missing("no process_mem_*.csv files in /data"),
        skipped=(),
        command="make_report.py",
        made_at=datetime(2026, 3, 1, 12, 0, 0),
    )
    page = Page(render_report(data))
    code = "".join(page.code)
    for name in ("report.css", "report.js"):
        assert (TEMPLATES / name).read_text(encoding="utf-8") in code, name
    assert f"--leak: {LEAK_COLOR};" in code  # the plots' colour for a leak
    assert not re.search(r"\{[{%#]|[}%#]\}", code)  # nothing left of the template's syntax


# --- Bad files, missing parts, no data, bad flags -----------------------------------------------


@pytest.mark.slow
def test_a_bad_file_is_listed_with_its_reason(tmp_path: Path) -> None:
    dumps = small_dumps(tmp_path / "dumps")
    bad = dumps / "process_mem_20260301_100300.csv"
    bad.write_text("PID,PPID,USER,RSS_MB,VSZ_MB,CMD\nabc,1,root,1.000,2.000,x\n")
    out = tmp_path / "report.html"
    result = run_script(NAME, "--dumps-dir", str(dumps), "--out", str(out))
    assert result.returncode == 0, result.stderr
    reason = "PID on line 2 is 'abc', not a whole number; skipped"
    assert result.stderr == f"make_report: warning: {bad}: {reason}\n"
    page = Page(out.read_text(encoding="utf-8"))
    assert page.table("analysed", 1) == [[bad.name, reason]]


@pytest.mark.slow
def test_a_bad_bundle_both_analyses_meet_is_named_once(tmp_path: Path) -> None:
    dumps = small_dumps(tmp_path / "dumps")
    bundle = dumps / "mem_20260302.tar.xz"
    bundle.write_bytes(b"not xz at all")
    out = tmp_path / "report.html"
    result = run_script(NAME, "--dumps-dir", str(dumps), "--out", str(out))
    assert result.returncode == 0, result.stderr
    reason = "cannot read the bundle: Input format not supported by decoder; skipped"
    assert result.stderr == f"make_report: warning: {bundle}: {reason}\n"
    assert Page(out.read_text(encoding="utf-8")).table("analysed", 1) == [[bundle.name, reason]]


@pytest.mark.slow
@pytest.mark.parametrize(
    ("kinds", "absent", "sentence", "statuses"),
    [
        (
            "s",
            ["leaks", "programs", "services", "top"],
            "no process_mem_*.csv files in",
            ["1", "1", "3 for P ≤ 45.00, else 0", "0 for any D"],
        ),
        ("p", ["system", "system-plots"], "no sys_mem_*.csv files in", ["0", "0", "1", "1"]),
    ],
    ids=["only-sys_mem", "only-process_mem"],
)
def test_one_kind_of_dump_gives_a_report_that_says_what_is_missing(
    tmp_path: Path, kinds: str, absent: list[str], sentence: str, statuses: list[str]
) -> None:
    dumps = small_dumps(tmp_path / "dumps", kinds=kinds)
    out = tmp_path / "report.html"
    result = run_script(NAME, "--dumps-dir", str(dumps), "--out", str(out))
    assert result.returncode == 0, result.stderr
    assert result.stderr == f"make_report: warning: {sentence} {dumps}; the report says so\n"
    text = out.read_text(encoding="utf-8")
    page = Page(text)
    assert page.sections == SECTIONS
    bodies = {
        section: text.split(f'<section id="{section}">', 1)[1].split("</section>", 1)[0]
        for section in SECTIONS
    }
    for section in SECTIONS[1:7]:
        explained = f"{sentence} {dumps}." in bodies[section]
        assert explained == (section in absent), section
        assert ('class="missing"' in bodies[section]) == (section in absent), section
    assert [row[1] for row in page.table("alerts")] == statuses


@pytest.mark.slow
def test_no_data_at_all_is_exit_1_with_one_line(tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    out = tmp_path / "report.html"
    result = run_script(NAME, "--dumps-dir", str(empty), "--out", str(out))
    assert result.returncode == 1
    assert result.stderr == (
        f"make_report: no sys_mem_*.csv files in {empty}; no process_mem_*.csv files in {empty}\n"
    )
    assert result.stdout == "" and not out.exists()
    missing_dir = tmp_path / "nowhere"
    result = run_script(NAME, "--dumps-dir", str(missing_dir), "--out", str(out))
    assert (result.returncode, result.stderr) == (1, f"make_report: no dumps dir {missing_dir}\n")


@pytest.mark.slow
def test_nothing_in_the_window_is_no_data(tmp_path: Path) -> None:
    dumps = small_dumps(tmp_path / "dumps")
    out = tmp_path / "report.html"
    result = run_script(NAME, "--dumps-dir", str(dumps), "--out", str(out), "--since", "2027-01-01")
    assert result.returncode == 1
    assert len(result.stderr.splitlines()) == 1 and "between 2027-01-01" in result.stderr


@pytest.mark.parametrize(
    "flags",
    [
        ["--top", "0"],
        ["--since", "yesterday"],
        ["--until", "2026-13-01"],
        ["--since", "2026-03-02", "--until", "2026-03-01"],
        ["--out"],
    ],
    ids=["top-0", "since-word", "until-month-13", "since-after-until", "out-no-value"],
)
def test_bad_flags_are_exit_2_with_usage(
    tmp_path: Path, flags: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as stopped:
        make_report.main(["--dumps-dir", str(tmp_path), *flags])
    assert stopped.value.code == 2
    assert capsys.readouterr().err.startswith("usage: make_report")


@pytest.mark.slow
def test_an_unknown_flag_is_exit_2_from_the_command_line(tmp_path: Path) -> None:
    result = run_script(NAME, "--dumps-dir", str(tmp_path), "--frobnicate")
    assert result.returncode == 2
    assert result.stderr.startswith("usage: make_report")
    assert result.stderr.endswith("make_report: error: unrecognized arguments: --frobnicate\n")
    assert result.stdout == ""


@pytest.mark.slow
def test_the_window_top_and_match_flags_reach_the_analyses(tmp_path: Path) -> None:
    dumps = small_dumps(tmp_path / "dumps")
    out = tmp_path / "deep" / "er" / "report.html"
    args = ["--dumps-dir", str(dumps), "--out", str(out), "--top", "1", "--match", "python3"]
    result = run_script(NAME, *args, "--since", "2026-03-01 10:01", "--until", "2026-03-01 10:02")
    assert result.returncode == 0, result.stderr
    page = Page(out.read_text(encoding="utf-8"))
    assert [row[1] for row in page.table("analysed", 0)] == ["2", "2"]
    assert [row[0] for row in page.table("top")] == ["42"]
    text = out.read_text(encoding="utf-8")
    assert "whose command line contains &#39;python3&#39;" in text
    assert "between 2026-03-01 10:01:00 and 2026-03-01 10:02:59 UTC" in text
    # The alerts' commands select the same snapshots and rows, to be pasted as they are.
    window = "--since '2026-03-01 10:01:00' --until '2026-03-01 10:02:59'"
    assert [row[0] for row in page.table("alerts")] == [
        f"analyze_processes.py {window} --match python3 --fail-on-leak",
        f"analyze_processes.py {window} --fail-on-oom",
        f"analyze_system.py {window} --alert-pct P",
        f"analyze_system.py {window} --alert-days D",
    ]


def test_the_defaults_are_the_analyses_constants() -> None:
    options = make_report.options_from_args(make_report.build_parser().parse_args([]))
    assert options.system.trend_days == analyze_system.TREND_DAYS
    assert options.processes.top_n == analyze_processes.TOP_N
    growth = options.processes.growth
    assert growth.min_rate_mb_per_day == analyze_processes.LEAK_MIN_RATE_MB_PER_DAY
    assert growth.min_span_s == analyze_processes.LEAK_MIN_SPAN_S
    assert growth.min_rise_mb == analyze_processes.LEAK_MIN_RISE_MB
    assert not options.processes.fail_on_leak and options.system.alert_pct is None
    assert make_report.OUT_FILE == defaults.REPO_ROOT / "plots" / "report.html"


@pytest.mark.slow
@pytest.mark.parametrize("which", ["long", "short"])
def test_the_leak_section_says_what_was_judged_as_the_console_does(
    report: Report, tmp_path: Path, which: str
) -> None:
    dumps = report.dumps if which == "long" else small_dumps(tmp_path / "dumps")
    page = report.text if which == "long" else ""
    if which == "short":
        html_path = tmp_path / "report.html"
        assert (
            run_in_process(make_report.main, ["--dumps-dir", str(dumps), "--out", str(html_path)])
            == 0
        )
        page = html_path.read_text(encoding="utf-8")
    ran = run_main(
        analyze_processes.main, ["--dumps-dir", str(dumps), "--out-dir", str(tmp_path / "out")]
    )
    sentence = next(
        line
        for line in ran.stdout.splitlines()
        if line.startswith(("Sustained growth", "No process shows", "None of the"))
    )
    assert html.escape(sentence, quote=True) in page
    if which == "short":  # three snapshots a minute apart: nothing can be judged
        assert sentence.startswith("None of the 2 process instances was watched long enough")
