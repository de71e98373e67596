"""Any bytes in, never a traceback: the readers against hand-picked bad files, and against
Hypothesis (arbitrary bytes, and mutations of real dump files) with an independent oracle.

The oracle below is the dump format written down a second way (Python's csv module and
float(), not pandas): a file it accepts must be read with exactly its values, a file it
rejects must be named in exactly one warning and change nothing else.
"""

from __future__ import annotations

import csv
import io
import math
import os
import subprocess
import sys
import tempfile
from collections.abc import Callable, Sequence
from datetime import datetime
from pathlib import Path
from typing import NamedTuple

import numpy as np
import numpy.typing as npt
import pandas as pd
import pytest
from hypothesis import assume, example, given, settings
from hypothesis import strategies as st

import analyze_processes
import analyze_system
from conftest import SCRIPTS_DIR, bundle_day, run_main
from utils import system_analysis
from utils.collect.snapshot_format import (
    COUNTER_FIELDS,
    MEMINFO_HEADER,
    PROCESS_HEADER,
    PS_HEADER,
    SYS_HEADER,
    TIMESTAMP_FORMAT,
    csv_text,
)
from utils.parser import PROCESS_PREFIX, SYS_PREFIX, TimeWindow, find_dumps, find_sources
from utils.process_analysis import ReadPlan, compute_rss_spread, load_all_records
from utils.read.snapshot_specs import RAW_FIELDS
from utils.reduce.batch_runs import Chunk
from utils.reduce.process_records import ProcessRecords
from utils.system_analysis import SYSTEM_SPEC, load_system_frame

SYS_OPTIONAL = SYSTEM_SPEC.optional  # the fields a sys_mem file may lack, in load order

SCRIPTS = SCRIPTS_DIR
GOOD_STAMPS = ["20260301_000000", "20260301_001000", "20260301_003000", "20260301_004000"]
BAD_STAMP = "20260301_002000"  # between the good ones
BOM = b"\xef\xbb\xbf"


# --- Good dumps ------------------------------------------------------------------------


# The first two snapshots as an older collector wrote them (the original six columns),
# the last two as today's does: the readers take both in one run.
NEW_FROM_STEP = 2


def process_header(step: int) -> tuple[str, ...]:
    return PROCESS_HEADER if step >= NEW_FROM_STEP else PS_HEADER


def process_rows(step: int) -> list[list[str]]:
    rows = [
        ["1", "0", "root", f"{10 + step}.500", "20.000", "/sbin/init splash"],
        ["2", "0", "root", "0.000", "0.000", "[kthreadd]"],
        ["77", "1", "averyverylongusername", f"{100 * (step + 1)}.000", "900.000", 'a "b", c'],
        ["300", "1", "bob", "3.250", "9.000", "python3 -c 'print(1)' --tag=café,日本"],
    ]
    if step < NEW_FROM_STEP:
        return rows
    extra = [
        ["4.000", "0.000", "2026-02-28 23:00:00.25", "/init.scope", "3.125", "0.000"],
        ["", "", "2026-02-28 23:00:00.30", "/", "", ""],  # a kernel thread: no anonymous memory
        [
            f"{90 * (step + 1)}.000",
            "12.500",
            "2026-03-01 00:00:01.00",
            "/system.slice/a,b.service",
            "",
            "",
        ],  # Pss not read
        ["", "", "", "", "", ""],  # gone before its status and cgroup were read
    ]
    return [row + more for row, more in zip(rows, extra, strict=True)]


def sys_header(step: int) -> tuple[str, ...]:
    return SYS_HEADER if step >= NEW_FROM_STEP else MEMINFO_HEADER


def sys_row(step: int) -> list[str]:
    values = {name: f"{10.0 * (index + 1) + step:.3f}" for index, name in enumerate(SYS_HEADER)}
    values["MemTotal_MB"] = "16000.000"
    values["AnonHugePages_MB"] = ""  # a kernel without transparent huge pages
    values["boot_id"] = "3f5a0e4c-2b9d-4c1e-9a77-0d2c5b8e6f10"
    for index, name in enumerate(COUNTER_FIELDS):  # whole numbers, since boot
        values[name] = str(1000 * (index + 1) + 7 * step)
    values["psi_full_total_us"] = ""  # a kernel without it
    # A kill on the last step, of a command whose name holds a comma, a quote and a colon.
    values["oom_victims"] = '812:a,"b:c:40704;9:x:0' if step == 3 else ""
    return [values[name] for name in sys_header(step)]


def process_dump(step: int) -> bytes:
    return csv_text(process_header(step), process_rows(step)).encode()


def sys_dump(step: int) -> bytes:
    return csv_text(sys_header(step), [sys_row(step)]).encode()


def write_good(dumps: Path, prefix: str) -> None:
    for step, stamp in enumerate(GOOD_STAMPS):
        data = process_dump(step) if prefix == PROCESS_PREFIX else sys_dump(step)
        (dumps / f"{prefix}{stamp}.csv").write_bytes(data)


# --- The oracle: the format read a second way ------------------------------------------

PROCESS_NEEDS = {"PID": "whole", "PPID": "whole", "RSS_MB": "number", "CMD": "text"}
PROCESS_KNOWN = {
    "USER": "text",
    "VSZ_MB": "number",
    "ANON_MB": "number or empty",
    "SWAP_MB": "number or empty",
    "STARTED": "time or empty",
    "CGROUP": "text",
    "PSS_MB": "number or empty",
    "SWAP_PSS_MB": "number or empty",
}
SYS_NEEDS = {name: "number" for name in RAW_FIELDS} | {"MemTotal_MB": "positive"}
SYS_KNOWN = (
    {name: "number or empty" for name in MEMINFO_HEADER}
    | {"boot_id": "text", "oom_victims": "victims or empty"}
    | {name: "count or empty" for name in COUNTER_FIELDS}
)


def number(token: str) -> float | None:
    """A plain decimal number, as a person or a spreadsheet writes one; None otherwise."""
    stripped = token.strip(" \t")
    if not stripped or any(char not in "0123456789+-.eE" for char in stripped):
        return None
    try:
        return float(stripped)
    except ValueError:
        return None


def field_value(kind: str, token: str) -> float | str | None:
    """The value of a field of this kind, or None when the file must be refused."""
    if kind == "text":
        return token
    if kind == "time or empty":
        return token if token == "" or utc_time(token) else None
    if kind == "victims or empty":
        return token if victims_ok(token) else None
    if kind in ("number or empty", "count or empty") and token == "":
        return math.nan
    value = number(token)
    if value is None or not math.isfinite(value) or value < 0:
        return None
    if kind == "count or empty":  # exact in a float64
        return value if value == int(value) and value < 2**53 else None
    if kind != "whole" and value >= 2**30:  # a pebibyte: no system reports as much
        return None
    if kind == "whole":
        return value if value == int(value) and value < 2**31 else None
    if kind == "positive" and value == 0:
        return None
    return value


def victims_ok(token: str) -> bool:
    """Empty, or `PID:comm:anon_kB` items joined by ';': the comm is anything but ';'
    between the first and the last ':'."""
    if token == "":
        return True
    for item in token.split(";"):
        head, _, rest = item.partition(":")
        _, colon, tail = rest.rpartition(":")
        digits = [(head, 10), (tail, 20)]  # the parser's bounds on digit counts
        ascii_digits = all(0 < len(p) <= n and set(p) <= set("0123456789") for p, n in digits)
        if not colon or not ascii_digits or int(head) >= 2**31 or int(tail) >= 2**40:
            return False
    return True


def utc_time(token: str) -> bool:
    """`YYYY-MM-DD HH:MM:SS.ss`, a real UTC time since 1970 (datetime's calendar)."""
    digits = [0, 1, 2, 3, 5, 6, 8, 9, 11, 12, 14, 15, 17, 18, 20, 21]
    if len(token) != 22 or any(token[at] not in "0123456789" for at in digits):
        return False
    if [token[at] for at in (4, 7, 10, 13, 16, 19)] != ["-", "-", " ", ":", ":", "."]:
        return False
    try:
        moment = datetime.strptime(token[:19], "%Y-%m-%d %H:%M:%S")
    except ValueError:
        return False
    return moment.year >= 1970


class Verdict(NamedTuple):
    rows: list[dict[str, float | str]] | None  # None: the file must be refused
    cut: bool  # a last line without its newline was dropped


def oracle(data: bytes, needs: dict[str, str], known: dict[str, str]) -> Verdict:
    refused = Verdict(None, False)
    data = data.removeprefix(BOM)
    end = data.find(b"\n")
    if not data.strip() or end < 0:
        return refused
    header = data[:end].decode("utf-8", "replace").rstrip("\r\n")
    names = header.split(",")
    if any(char in header for char in '"\r\0') or len(set(names)) != len(names):
        return refused
    if not set(needs) <= set(names):
        return refused
    body = data[end + 1 :]
    cut = bool(body) and not body.endswith(b"\n")
    body = body[: body.rfind(b"\n") + 1]
    kinds = {name: needs.get(name) or known.get(name) for name in names}
    rows: list[dict[str, float | str]] = []
    # A quote never closed runs to the end of the file: it swallows a last line of ours.
    mark = "<end of file>"
    text = body.decode("utf-8", "replace") + mark + "\n"
    for record in csv.reader(io.StringIO(text, newline="")):
        if record == [mark]:
            break
        if record and mark in record[-1]:
            return refused
        if len(record) <= 1 and not "".join(record).strip():
            continue  # a blank line
        if len(record) != len(names):
            return refused
        row: dict[str, float | str] = {}
        for name, token in zip(names, record, strict=True):
            kind = kinds[name]
            value = token if kind is None else field_value(kind, token)
            if value is None:
                return refused
            row[name] = value
        rows.append(row)
    return Verdict(rows or None, cut)


# --- Running the readers ---------------------------------------------------------------


class Outcome(NamedTuple):
    warnings: list[str]
    result: object  # something comparable with ==


def all_rows(
    records: ProcessRecords,
) -> tuple[npt.NDArray[np.datetime64], npt.NDArray[np.int64], npt.NDArray[np.int64]]:
    """Every kept row as (UTC time, PID, RSS in thousandths of a MiB), grouped by batch,
    then PID: what the records hold, all at once (the analyses never need that)."""
    ranks, pids, rss = [], [], []
    for chunk in records.chunks:
        assert isinstance(chunk, Chunk)  # read without day summaries: every row in memory
        counts = np.diff(chunk.starts)
        ranks.append(chunk.offset.astype(np.int64) + chunk.base)
        pids.append(np.repeat(chunk.pids.astype(np.int64), counts))
        rss.append(chunk.rss_milli.astype(np.int64))
    if not records.chunks:
        empty = np.empty(0, np.int64)
        return records.times[empty], empty, empty
    return (
        records.times[np.concatenate(ranks)],
        np.concatenate(pids),
        np.concatenate(rss),
    )


def process_outcome(dumps: Path, batch_bytes: int) -> Outcome:
    warnings: list[str] = []
    records = load_all_records(
        find_sources(dumps, PROCESS_PREFIX, TimeWindow()),
        lambda path, why: warnings.append(f"{path.name}: {why}"),
        how=ReadPlan(batch_bytes=batch_bytes),
    )
    times, pids, rss_milli = all_rows(records)
    rows = sorted(
        (str(t), int(p), r / 1000) for t, p, r in zip(times, pids, rss_milli, strict=True)
    )
    spreads = compute_rss_spread(records)
    first_cmd = dict(zip(spreads["PID"].tolist(), spreads["CMD"].tolist(), strict=True))
    return Outcome(warnings, (rows, first_cmd, records.snapshots_read))


def sys_outcome(dumps: Path, batch_bytes: int) -> Outcome:
    warnings: list[str] = []
    frame = load_system_frame(
        find_sources(dumps, SYS_PREFIX, TimeWindow()),
        lambda path, why: warnings.append(f"{path.name}: {why}"),
    )
    table = frame.round(3).astype(object).where(frame.notna(), None)
    return Outcome(warnings, (list(frame.index), table.to_numpy().tolist()))


def expected_process(verdict: Verdict) -> object:
    """The good files' result with the oracle's reading of the bad one added."""
    rows: list[tuple[str, int, float]] = []
    first_cmd: dict[int, str] = {}
    steps = [(stamp, process_rows(step)) for step, stamp in enumerate(GOOD_STAMPS)]
    if verdict.rows is not None:
        extra = [
            [str(int(row["PID"])), "", "", str(row["RSS_MB"]), "", str(row["CMD"])]
            for row in verdict.rows
        ]
        steps.insert(2, (BAD_STAMP, extra))
    for stamp, snapshot_rows in steps:
        moment = str(np.datetime64(datetime.strptime(stamp, TIMESTAMP_FORMAT), "s"))
        for row in snapshot_rows:
            rows.append((moment, int(row[0]), round(float(row[3]), 3)))
            first_cmd.setdefault(int(row[0]), row[5])
    return sorted(rows), first_cmd, len(steps)


def run_reader(prefix: str, bad: bytes, batch_bytes: int, bundled: bool = False) -> Outcome:
    with tempfile.TemporaryDirectory() as folder:
        dumps = Path(folder)
        write_good(dumps, prefix)
        (dumps / f"{prefix}{BAD_STAMP}.csv").write_bytes(bad)
        if bundled:  # the day compacted: the same files as members of its bundle
            bundle_day(dumps, BAD_STAMP[:8])
        read = process_outcome if prefix == PROCESS_PREFIX else sys_outcome
        return read(dumps, batch_bytes)


def good_only(prefix: str) -> Outcome:
    with tempfile.TemporaryDirectory() as folder:
        dumps = Path(folder)
        write_good(dumps, prefix)
        read = process_outcome if prefix == PROCESS_PREFIX else sys_outcome
        return read(dumps, 1 << 20)


def check_property(prefix: str, bad: bytes, bundled: bool = False) -> None:
    """The whole contract for one bad (or not so bad) file among good ones, loose or all
    in their day's bundle (where a warning names the bundle and the member)."""
    name = f"{prefix}{BAD_STAMP}.csv"
    if bundled:
        name = f"mem_{BAD_STAMP[:8]}.tar.xz:{name}"
    needs, known = (
        (PROCESS_NEEDS, PROCESS_KNOWN) if prefix == PROCESS_PREFIX else (SYS_NEEDS, SYS_KNOWN)
    )
    verdict = oracle(bad, needs, known)
    if prefix == SYS_PREFIX and verdict.rows is not None and len(verdict.rows) != 1:
        verdict = Verdict(None, False)  # a sys_mem file holds one snapshot
    together = run_reader(prefix, bad, 1 << 20, bundled)
    alone = run_reader(prefix, bad, 1, bundled)  # every loose file parsed on its own
    assert together == alone, "the result depends on how files are batched"
    if verdict.rows is None:
        assert len(together.warnings) == 1, together.warnings
        assert together.warnings[0].startswith(f"{name}: ")
        assert together.warnings[0].endswith("; skipped")
        assert "cannot be parsed" not in together.warnings[0], "the reason is unexplained"
        assert together.result == good_only(prefix).result
        return
    cut_note = f"{name}: last line cut off (no final newline); dropped that line"
    assert together.warnings == ([cut_note] if verdict.cut else [])
    if prefix == PROCESS_PREFIX:
        assert together.result == expected_process(verdict)
    else:
        assert isinstance(together.result, tuple)
        values: list[list[float | None]] = together.result[1]
        assert len(values) == len(GOOD_STAMPS) + 1
        row = verdict.rows[0]
        numbers = [float(row.get(field, math.nan)) for field in (*RAW_FIELDS, *SYS_OPTIONAL)]
        texts = [str(row.get(field, "")) for field in ("boot_id", "oom_victims")]
        assert values[2] == [None if math.isnan(v) else round(v, 3) for v in numbers] + texts


# --- Hand-picked bad files (each once seen in the wild or found by fuzzing) --------------

P_HEADER = b"PID,PPID,USER,RSS_MB,VSZ_MB,CMD\n"
N_HEADER = b"PID,PPID,USER,RSS_MB,VSZ_MB,CMD,ANON_MB,SWAP_MB,STARTED\n"
S_NAMES = "MemTotal_MB,MemFree_MB,Buffers_MB,Cached_MB,SReclaimable_MB,SwapTotal_MB,SwapFree_MB"


def sys_with(**fields: str) -> bytes:
    """A sys_mem file of today's collector, its good row with some fields replaced."""
    row = dict(zip(SYS_HEADER, sys_row(3), strict=True)) | fields
    return csv_text(SYS_HEADER, [list(row.values())]).encode()


@pytest.mark.parametrize(
    ("prefix", "content", "reason"),
    [
        (PROCESS_PREFIX, b"PID,PPID\rX,USER,RSS_MB,VSZ_MB,CMD\n7,1,root,900.0,9.0,app\n", "the header line holds a carriage return; not a dump header"),
        (PROCESS_PREFIX, b'PID,PPID,USER,RSS_MB,VSZ_MB,"CMD\n1,0,root,1.0,2.0,init\n7,1,root,5.0,9.0,"a,b"\n', "the header line holds a quote; not a dump header"),
        (PROCESS_PREFIX, "PID,PPID,USER,RSS_MB,VSZ_MB,CMD\n7,1,root,1.0,2.0,x\n".encode("utf-16"), "the header line holds a NUL byte; not a dump header"),
        (SYS_PREFIX, f"{S_NAMES}\r\nTRUE,0.5,0,0,0,0,0\r\n".encode(), "MemTotal_MB on line 2 is 'TRUE', not a number"),
        (PROCESS_PREFIX, P_HEADER + b"7,1,root,FALSE,9.0,app\n", "RSS_MB on line 2 is 'FALSE', not a number"),
        (PROCESS_PREFIX, P_HEADER + b"7,1,900.0,2.0,app\n", "line 2 has 5 fields, the header has 6"),
        (PROCESS_PREFIX, P_HEADER + b"7,1,root,900.0,2.0,app,x\n", "line 2 has 7 fields, the header has 6"),
        (PROCESS_PREFIX, P_HEADER + b"inf,1,root,1.0,2.0,x\n", "PID on line 2 is 'inf', not a whole number"),
        (PROCESS_PREFIX, P_HEADER + b"1e400,1,root,1.0,2.0,x\n", "PID on line 2 is '1e400', out of range"),
        (PROCESS_PREFIX, P_HEADER + b"4294967296,1,root,1.0,2.0,x\n", "PID on line 2 is '4294967296', out of range"),
        (PROCESS_PREFIX, P_HEADER + b"0x10,1,root,1.0,2.0,x\n", "PID on line 2 is '0x10', not a whole number"),
        (PROCESS_PREFIX, P_HEADER + b"7,1,root,NaN,2.0,x\n", "RSS_MB on line 2 is 'NaN', not a number"),
        (PROCESS_PREFIX, P_HEADER + b'7,1,root,1.0,2.0,"never closed\n', "a quote opened on line 2 is never closed"),
        (PROCESS_PREFIX, P_HEADER + b'7,1,root,1.0,2.0,x\n8,1,root,1.0,2.0,"\n', "a quote opened on line 3 is never closed"),
        (PROCESS_PREFIX, b"junk\n1\n2", "no PID, PPID, RSS_MB, CMD column"),
        (PROCESS_PREFIX, P_HEADER + b"7,1,root,1.0,2.0,a\rb\n", "line 3 has 1 fields, the header has 6"),
        (PROCESS_PREFIX, b"PID,PID,USER,RSS_MB,VSZ_MB,CMD\n7,1,root,1.0,2.0,x\n", "column 'PID' appears twice in the header"),
        (PROCESS_PREFIX, P_HEADER + b"7,1,root,1.0,lots,x\n", "VSZ_MB on line 2 is 'lots', not a number"),
        (PROCESS_PREFIX, N_HEADER + b"7,1,root,1.0,2.0,x,1.0,0.0,2026-02-30 10:00:00.00\n", "STARTED on line 2 is '2026-02-30 10:00:00.00', not a UTC time YYYY-MM-DD HH:MM:SS.ss or empty"),
        (PROCESS_PREFIX, N_HEADER + b"7,1,root,1.0,2.0,x,1.0,0.0,2026-03-01 10:00:00\n", "STARTED on line 2 is '2026-03-01 10:00:00', not a UTC time YYYY-MM-DD HH:MM:SS.ss or empty"),
        (PROCESS_PREFIX, N_HEADER + b"7,1,root,1.0,2.0,x,1e308,0.0,\n", "ANON_MB on line 2 is '1e308', out of range"),
        (PROCESS_PREFIX, N_HEADER + b"7,1,root,1.0,2.0,x,1.0,-2,\n", "SWAP_MB on line 2 is '-2', negative"),
        (PROCESS_PREFIX, N_HEADER + b"7,1,root,1.0,2.0,x,1.0,0.0\n", "line 2 has 8 fields, the header has 9"),
        (SYS_PREFIX, sys_with(oom_kill="12.5"), "oom_kill on line 2 is '12.5', not a whole number"),
        (SYS_PREFIX, sys_with(pgmajfault="many"), "pgmajfault on line 2 is 'many', not a whole number"),
        (SYS_PREFIX, sys_with(psi_some_total_us="9007199254740992"), "psi_some_total_us on line 2 is '9007199254740992', out of range"),
        (SYS_PREFIX, sys_with(oom_victims="812-python"), "oom_victims on line 2 is '812-python', not kills (kind:pid:comm:...) separated by ';' or empty"),
        (SYS_PREFIX, sys_with(oom_victims="812:py:4;"), "oom_victims on line 2 is '812:py:4;', not kills (kind:pid:comm:...) separated by ';' or empty"),
    ],
)  # fmt: skip
def test_each_case_issue_8_found_is_one_line_naming_the_file(
    tmp_path: Path, prefix: str, content: bytes, reason: str
) -> None:
    write_good(tmp_path, prefix)
    bad = tmp_path / f"{prefix}{BAD_STAMP}.csv"
    bad.write_bytes(content)
    read = process_outcome if prefix == PROCESS_PREFIX else sys_outcome
    outcome = read(tmp_path, 1 << 20)
    assert outcome.warnings == [f"{bad.name}: {reason}; skipped"]
    assert outcome.result == read(tmp_path, 1).result
    bad.unlink()
    assert outcome.result == read(tmp_path, 1 << 20).result


def test_a_symlink_to_dev_zero_and_a_fifo_are_refused_unread(tmp_path: Path) -> None:
    write_good(tmp_path, SYS_PREFIX)
    zero = tmp_path / f"{SYS_PREFIX}20260301_002000.csv"
    zero.symlink_to("/dev/zero")
    fifo = tmp_path / f"{SYS_PREFIX}20260301_002500.csv"
    os.mkfifo(fifo)
    outcome = sys_outcome(tmp_path, 1 << 20)
    assert outcome.warnings == [
        f"{zero.name}: not a regular file (a character device); skipped",
        f"{fifo.name}: not a regular file (a FIFO); skipped",
    ]
    assert len(outcome.result[0]) == len(GOOD_STAMPS)  # type: ignore[index]


def test_a_file_far_larger_than_a_dump_is_refused_by_size(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write_good(tmp_path, PROCESS_PREFIX)
    huge = tmp_path / f"{PROCESS_PREFIX}{BAD_STAMP}.csv"
    with open(huge, "wb") as handle:
        handle.truncate(3 * 1024**3)  # sparse: 3 GiB that take no disk
    outcome = process_outcome(tmp_path, 1 << 20)
    assert outcome.warnings == [
        f"{huge.name}: 3.0 GiB, larger than any dump (limit 64.0 MiB); skipped"
    ]


def test_a_name_with_an_impossible_date_is_named(tmp_path: Path) -> None:
    (tmp_path / "sys_mem_20261345_999999.csv").write_bytes(sys_dump(0))
    (tmp_path / "sys_mem_latest.csv").write_bytes(sys_dump(0))
    warnings: list[str] = []
    assert find_dumps(tmp_path, SYS_PREFIX, None, lambda p, why: warnings.append(p.name)) == []
    assert sorted(warnings) == ["sys_mem_20261345_999999.csv", "sys_mem_latest.csv"]


# --- The scripts, end to end -----------------------------------------------------------


class Run(NamedTuple):
    status: int
    stdout: str
    stderr: str
    outputs: dict[str, bytes]


def run_analysis_main(
    main: Callable[[Sequence[str]], int], dumps: Path, out: Path, *extra: str
) -> Run:
    ran = run_main(main, ["--dumps-dir", str(dumps), "--out-dir", str(out), *extra])
    outputs = {p.name: p.read_bytes() for p in sorted(out.iterdir()) if p.suffix == ".csv"}
    return Run(*ran, outputs)


SCRIPT_CASES = [
    (analyze_processes.main, PROCESS_PREFIX, ("--top", "2")),
    (analyze_system.main, SYS_PREFIX, ()),
]


@pytest.mark.slow
@pytest.mark.parametrize(("main", "prefix", "extra"), SCRIPT_CASES, ids=["processes", "system"])
@pytest.mark.parametrize(
    "content",
    [
        b"PID,PPID\rX,USER,RSS_MB,VSZ_MB,CMD\n7,1,root,900.0,9.0,app\n",
        "MemTotal_MB\n1\n".encode("utf-16"),
        b"\x00\xff\xfe" * 100,
        P_HEADER + b"inf,1,root,1.0,2.0,x\n",
        b"junk\n1\n2",
        b"fifo",
    ],
    ids=["cr-header", "utf16", "binary", "inf-pid", "junk", "fifo"],
)
def test_the_scripts_name_a_bad_file_once_and_change_nothing_else(
    tmp_path: Path,
    main: Callable[[Sequence[str]], int],
    prefix: str,
    extra: tuple[str, ...],
    content: bytes,
) -> None:
    dumps = tmp_path / "dumps"
    dumps.mkdir()
    write_good(dumps, prefix)
    clean = run_analysis_main(main, dumps, tmp_path / "clean", *extra)
    bad = dumps / f"{prefix}{BAD_STAMP}.csv"
    if content == b"fifo":
        os.mkfifo(bad)
    else:
        bad.write_bytes(content)
    dirty = run_analysis_main(main, dumps, tmp_path / "dirty", *extra)
    assert clean.status == dirty.status == 0, dirty.stderr
    assert clean.stderr == ""
    (line,) = dirty.stderr.splitlines()
    assert line.startswith(f"{main.__module__}: warning: {bad}: ") and line.endswith("; skipped")
    assert dirty.outputs == clean.outputs
    assert dirty.stdout.replace("dirty", "clean") == clean.stdout


def test_a_bug_is_one_line_exit_70_and_a_traceback_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    dumps = tmp_path / "dumps"
    dumps.mkdir()
    write_good(dumps, SYS_PREFIX)

    def buggy(*args: object) -> object:
        raise ValueError("the impossible happened")

    monkeypatch.setattr(system_analysis, "system_result_of", buggy)
    run = run_analysis_main(analyze_system.main, dumps, tmp_path / "out")
    assert run.status == 70
    (trace,) = (tmp_path / "out").glob("analyze_system-traceback-*.txt")
    assert run.stderr == (
        "analyze_system: internal error: ValueError: the impossible happened;"
        f" please report it with the command line; traceback in {trace}\n"
    )
    assert "Traceback (most recent call last)" in trace.read_text()


@pytest.mark.slow
def test_no_traceback_reaches_a_user_of_the_real_script(tmp_path: Path) -> None:
    (tmp_path / f"{PROCESS_PREFIX}{BAD_STAMP}.csv").write_bytes(b"\xff" * 64)
    result = subprocess.run(
        [sys.executable, str(SCRIPTS / "analyze_processes.py"), "--dumps-dir", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    assert len(result.stderr.splitlines()) == 2  # the file, then "none ... could be used"


# --- Hypothesis: arbitrary bytes and mutations of real dumps ---------------------------

# Examples per property test; the "deep" profile (tests/conftest.py) runs 3,000.
# 150 examples in the default profile, and in proportion in the others.
FUZZ = settings(max_examples=settings().max_examples * 3 // 2)
ODD_NUMBERS = ["TRUE", "FALSE", "true", "1e400", "1e308", "1073741824", "1073741823.999", "0x10", "-0", "NaN", "inf", "-1", "1.5", " 7",
               "+7", "1e3", "", "1_000", "\u0661", "7.0", "007", ".5", "5.", "1e", "--1", "\t3"]  # fmt: skip
ODD_TIMES = ["2026-03-01 00:00:00.0", "2026-03-01T00:00:00.00", "2026-02-29 00:00:00.00",
             "2026-03-01 24:00:00.00", "1969-12-31 23:59:59.99", "0000-01-01 00:00:00.00",
             "2016-12-31 23:59:60.00", "2026-03-01 00:00:00.00 ", "2026-03-01 00:00:00", "\u0662026-03-01 00:00:00.00",
             "1970-01-01 00:00:00.00", "9999-12-31 23:59:59.99", "now"]  # fmt: skip
INSERTS = [b"\r", b"\n", b"\x00", b'"', b",", b"\xff", b"\r\n", b" "]


@st.composite
def mutated_dump(draw: st.DrawFn, prefix: str) -> bytes:
    """A real dump file with one to three things done to it."""
    step = draw(st.integers(0, 3))
    header = list(process_header(step) if prefix == PROCESS_PREFIX else sys_header(step))
    rows = process_rows(step) if prefix == PROCESS_PREFIX else [sys_row(step)]
    data = csv_text(header, rows).encode()
    for _ in range(draw(st.integers(1, 3))):
        operation = draw(
            st.sampled_from(["cut", "insert", "number", "time", "header", "row", "huge"])
        )
        if operation == "cut":
            data = data[: draw(st.integers(0, len(data)))]
        elif operation == "insert":
            at = draw(st.integers(0, len(data)))
            data = data[:at] + draw(st.sampled_from(INSERTS)) + data[at:]
        elif operation == "number":
            rows = [list(row) for row in rows]
            row = draw(st.integers(0, len(rows) - 1))
            column = draw(st.integers(0, len(rows[row]) - 1))
            rows[row][column] = draw(st.sampled_from(ODD_NUMBERS))
            data = csv_text(header, rows).encode()
        elif operation == "time":
            rows = [list(row) for row in rows]
            row = draw(st.integers(0, len(rows) - 1))
            rows[row][-1] = draw(st.sampled_from(ODD_TIMES))
            data = csv_text(header, rows).encode()
        elif operation == "header":
            header = draw(header_surgery(header))
            data = csv_text(header, rows).encode()
        elif operation == "row":
            rows = [list(row) for row in rows]
            row = draw(st.integers(0, len(rows) - 1))
            if draw(st.booleans()):
                rows[row] = rows[row][:-1]
            else:
                rows[row] = [*rows[row], "extra"]
            data = csv_text(header, rows).encode()
        else:
            at = draw(st.integers(0, len(data)))
            data = data[:at] + b"9" * draw(st.integers(1000, 100_000)) + data[at:]
    if draw(st.booleans()):
        data = data.replace(b"\n", b"\r\n")
    if draw(st.booleans()):
        data = BOM + data
    return data


@st.composite
def header_surgery(draw: st.DrawFn, header: list[str]) -> list[str]:
    names = list(header)
    index = draw(st.integers(0, len(names) - 1))
    action = draw(st.sampled_from(["drop", "duplicate", "rename", "swap", "add"]))
    if action == "drop":
        del names[index]
    elif action == "duplicate":
        names.insert(index, names[index])
    elif action == "rename":
        names[index] = draw(st.sampled_from(["pid", "CMD ", "RSS", "X", "", "MemTotal"]))
    elif action == "swap":
        other = draw(st.integers(0, len(names) - 1))
        names[index], names[other] = names[other], names[index]
    else:
        names.append("notes")
    return names


@pytest.mark.slow
@FUZZ
@given(data=st.binary(max_size=600))
def test_arbitrary_bytes_as_a_process_file(data: bytes) -> None:
    check_property(PROCESS_PREFIX, data)


@pytest.mark.slow
@FUZZ
@given(data=st.binary(max_size=600))
def test_arbitrary_bytes_as_a_sys_file(data: bytes) -> None:
    check_property(SYS_PREFIX, data)


@FUZZ
@given(data=mutated_dump(PROCESS_PREFIX))
# Found by the deep profile: a quote opening the last field, never closed.
@example(data=process_dump(0).rsplit(b",", 1)[0] + b',"\n')
# ... a field of 150,000 characters (over the csv module's default limit) and a bare CR
@example(data=process_dump(0).replace(b"averyverylong", b"9" * 150_000 + b"\r", 1))
@example(data=process_dump(0).replace(b"100.000", b"1" * 150_000, 1))
# ... and two bare carriage returns: an empty record in the middle of a row.
@example(data=process_dump(0).replace(b"20.000,", b"20.000,\r\r", 1))
def test_mutated_process_files(data: bytes) -> None:
    check_property(PROCESS_PREFIX, data)


@FUZZ
@given(data=mutated_dump(SYS_PREFIX))
def test_mutated_sys_files(data: bytes) -> None:
    check_property(SYS_PREFIX, data)


@pytest.mark.slow
@FUZZ
@given(data=st.one_of(st.binary(max_size=400), mutated_dump(PROCESS_PREFIX)))
def test_bad_members_of_a_bundle(data: bytes) -> None:
    check_property(PROCESS_PREFIX, data, bundled=True)


@pytest.mark.slow
@FUZZ
@given(data=st.one_of(st.binary(max_size=400), mutated_dump(SYS_PREFIX)))
def test_bad_sys_members_of_a_bundle(data: bytes) -> None:
    check_property(SYS_PREFIX, data, bundled=True)


@settings(max_examples=settings().max_examples * 3 // 5)
@given(data=st.binary(max_size=2000), cut=st.floats(0.0, 1.0))
def test_a_damaged_bundle_is_one_line_and_keeps_the_rest(data: bytes, cut: float) -> None:
    """Arbitrary bytes, or a real bundle cut anywhere, by a bundle's name beside loose files
    of other days: one warning naming it, nothing else lost."""
    with tempfile.TemporaryDirectory() as folder:
        dumps = Path(folder)
        write_good(dumps, PROCESS_PREFIX)  # on 2026-03-01
        expected = process_outcome(dumps, 1 << 20)
        day = dumps / "day"
        day.mkdir()
        write_good(day, PROCESS_PREFIX)
        for file in day.iterdir():  # the same snapshots, a day later, into a bundle
            file.rename(day / file.name.replace("20260301", "20260302"))
        real = bundle_day(day, "20260302").read_bytes()
        bundle = dumps / "mem_20260302.tar.xz"
        bundle.write_bytes(real[: int(len(real) * cut)] if data[:1] == b"\x00" else data)
        got = process_outcome(dumps, 1 << 20)
    assert len(got.warnings) <= 1, got.warnings
    if got.warnings:
        assert got.warnings[0].startswith("mem_20260302.tar.xz: cannot read the bundle: ")
    good_rows = [row for row in got.result[0] if row[0].startswith("2026-03-01")]  # type: ignore[index]
    assert good_rows == expected.result[0]  # type: ignore[index]


@pytest.mark.slow
@settings(max_examples=max(settings().max_examples // 8, 3))
@given(data=st.one_of(st.binary(max_size=300), mutated_dump(PROCESS_PREFIX)))
def test_the_process_script_on_generated_bad_files(data: bytes) -> None:
    assume(oracle(data, PROCESS_NEEDS, PROCESS_KNOWN).rows is None)
    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder)
        dumps = root / "dumps"
        dumps.mkdir()
        write_good(dumps, PROCESS_PREFIX)
        clean = run_analysis_main(analyze_processes.main, dumps, root / "clean", "--top", "1")
        (dumps / f"{PROCESS_PREFIX}{BAD_STAMP}.csv").write_bytes(data)
        dirty = run_analysis_main(analyze_processes.main, dumps, root / "dirty", "--top", "1")
    assert dirty.status == 0
    assert len(dirty.stderr.splitlines()) == 1, dirty.stderr
    assert dirty.outputs == clean.outputs


def test_the_oracle_reads_a_good_file_as_the_reader_does() -> None:
    verdict = oracle(process_dump(0), PROCESS_NEEDS, PROCESS_KNOWN)
    assert verdict.rows is not None and len(verdict.rows) == 4
    assert verdict.rows[2]["CMD"] == 'a "b", c'
    assert np.isnan(float(oracle(sys_dump(0), SYS_NEEDS, SYS_KNOWN).rows[0]["AnonHugePages_MB"]))  # type: ignore[index]
    assert pd.isna(np.nan)
