"""--prometheus-textfile: the text format written exactly, label values escaped, the metrics
equal to what the analyses print and write, a failed analysis still written (success 0),
and every file and the alert rules passed by Prometheus's own promtool."""

from __future__ import annotations

import argparse
import csv
import dataclasses
import io
import json
import os
import signal
import subprocess
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pandas as pd
import pytest
from hypothesis import given
from hypothesis import strategies as st
from promtext import (
    PROMTOOL,
    names,
    needs_promtool,
    parse,
    promtool_problems,
    read_textfile,
    value,
)

import analyze_processes
import analyze_system
import make_report
from conftest import run_main, write_proc, write_sys
from utils.console import Console, Diagnostics, PhaseTimer, Session, run_analysis
from utils.core.units import DAY_S, MIB
from utils.judge.forecast import Forecast, ForecastStatus
from utils.judge.leaks import Leak
from utils.outputs.prometheus import (
    Metric,
    Sample,
    Textfile,
    forecast_metrics,
    leak_metrics,
    render,
    textfile_arg,
)
from utils.reduce.programs import program_of

ROOT = Path(__file__).resolve().parent.parent
RULES = ROOT / "docs" / "prometheus" / "pmi-alerts.yml"


def rule_count() -> int:
    """The alert rules the file defines, as a reader of it counts them."""
    return RULES.read_text(encoding="utf-8").count("- alert: ")


RULE_TESTS = Path(__file__).resolve().parent / "prometheus" / "pmi-alerts.test.yml"

START = datetime(2026, 3, 1)
STEP = timedelta(minutes=30)
SNAPSHOTS = 336  # a week: the forecast's window
BOOT = "1b4e28ba-2fa1-11d2-883f-0016d3cca427"
# A leaker whose program name holds a backslash and a double quote, and whose command line
# holds a secret that must never reach a label.
LEAKER_CMD = '/opt/bin/we\\ird"srv --token=hunter2'
LEAKER_PROGRAM = 'we\\ird"srv'
STARTED = "2026-02-28 12:00:00.00"
KILL_AT = 300


def write_host(dumps: Path, kill_at: int | None = KILL_AT) -> Path:
    """A week: MemAvailable falls 200 MiB a day from 10,000 MiB; PID 4242 leaks 50 MiB
    a day of anon memory; sshd stays flat; one OOM kill (of a 900 MiB batch job) between
    snapshots kill_at - 1 and kill_at."""
    dumps.mkdir()
    for index in range(SNAPSHOTS):
        stamp = f"{START + index * STEP:%Y%m%d_%H%M%S}"
        days = index * STEP / timedelta(days=1)
        available = 10_000.0 - 200.0 * days
        write_sys(
            dumps,
            stamp,
            BOOT,
            MemTotal=16_000.0,
            MemFree=available - 1_000.0,
            MemAvailable=available,
            Cached=1_500.0,
            Shmem=100.0,
            SwapTotal=2_000.0,
            SwapFree=1_900.0,
            oom_kill=int(kill_at is not None and index >= kill_at),
            psi_some_total_us=index * 18_000_000,  # 1% of every 1,800 s
            psi_full_total_us=index * 1_800_000,
        )
        leak = 100.0 + 50.0 * days
        rows = [
            (10, 1, "root", 20.0, 40.0, "/usr/sbin/sshd -D", 5.0, 0.0, STARTED),
            (4242, 1, "svc", leak + 10, 2 * leak, LEAKER_CMD, leak, 0.0, STARTED),
        ]
        if kill_at is not None and index < kill_at:
            rows.append((77, 1, "batch", 900.0, 1800.0, "/usr/bin/batchjob", 890.0, 0.0, STARTED))
        write_proc(dumps, stamp, rows)
    return dumps


@pytest.fixture(scope="module")
def host(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_host(tmp_path_factory.mktemp("prom") / "dumps")


# --- The format ------------------------------------------------------------------------


def sample_line(labels: tuple[tuple[str, str], ...], number: float) -> str:
    """The one sample line render writes for one sample of pmi_t."""
    return render([Metric("pmi_t", "T.", (Sample(labels, number),))]).split("\n")[2]


def test_label_values_escape_backslash_quote_and_line_feed() -> None:
    assert sample_line((("v", 'a\\b"c\nd'),), 1.0) == 'pmi_t{v="a\\\\b\\"c\\nd"} 1.0'
    assert sample_line((("v", "plain/ünïcode"),), 1.0) == 'pmi_t{v="plain/ünïcode"} 1.0'
    assert sample_line((("v", "lone \udcff surrogate"),), 1.0) == 'pmi_t{v="lone ? surrogate"} 1.0'


def test_render_writes_help_type_and_samples_exactly() -> None:
    metrics = [
        Metric("pmi_x_bytes", "Help with a \\ and\na line feed.", (Sample((), 1024.0),)),
        Metric("pmi_y", "Y.", (Sample((("a", 'q"\\\n'),), 0.5), Sample((("a", "b"),), 2.0))),
        Metric("pmi_y", "Y.", (Sample((("a", "b"),), 3.0),)),  # merged; a repeat dropped
        Metric("pmi_empty", "No samples: left out.", ()),
    ]
    assert render(metrics) == (
        "# HELP pmi_x_bytes Help with a \\\\ and\\na line feed.\n"
        "# TYPE pmi_x_bytes gauge\n"
        "pmi_x_bytes 1024.0\n"
        "# HELP pmi_y Y.\n"
        "# TYPE pmi_y gauge\n"
        'pmi_y{a="q\\"\\\\\\n"} 0.5\n'
        'pmi_y{a="b"} 2.0\n'
    )
    assert render([Metric("pmi_empty", "E.", ())]) == ""


def test_a_family_whose_samples_differ_in_label_names_is_a_bug() -> None:
    metric = Metric("pmi_t", "T.", (Sample((("a", "1"),), 1.0), Sample((("b", "1"),), 1.0)))
    with pytest.raises(ValueError, match="different label names"):
        render([metric])


# prometheus_client's spelling (Go's): always a decimal point or an exponent, an exponent for a
# positive value of 10^6 or more; Prometheus reads every one of them.
@pytest.mark.parametrize(
    ("number", "text"),
    [(3.0, "3.0"), (0.25, "0.25"), (-2.0, "-2.0"), (1e300, "1e+300"), (float("nan"), "NaN"),
     (float("inf"), "+Inf"), (float("-inf"), "-Inf"), (2.0**60, "1.152921504606847e+18"),
     (17179869184.0, "1.7179869184e+10")],
)  # fmt: skip
def test_values_are_written_as_the_format_spells_them(number: float, text: str) -> None:
    assert sample_line((), number) == f"pmi_t {text}"


@given(st.text())
def test_any_label_value_reads_back_the_same(text: str) -> None:
    metric = Metric("pmi_t", "T.", (Sample((("v", text),), 1.0),))
    rendered = render([metric])
    assert rendered.count("\n") == 3  # no line feed survives unescaped
    assert parse(rendered) == {("pmi_t", frozenset({("v", valid(text))})): 1.0}


def leak(pid: int, cmd: str, rate: float, user: str | None = "svc") -> Leak:
    moment = datetime(2026, 3, 1)
    return Leak(pid, moment, moment, moment, rate, rate, 1.0, cmd, 0, 0, 0, 0.0, 3600.0,
                user=user)  # fmt: skip


def test_leak_labels_are_pid_program_and_user_never_the_command_line() -> None:
    leaks = [
        leak(1, LEAKER_CMD, 86.4),
        leak(2, "/usr/bin/python3 /srv/app.py --password=x", 43.2, user='we"ird\nuser'),
        leak(1, LEAKER_CMD, 8.64),  # the PID reused by the same program: the faster kept
        leak(3, "cron", 1.0, user=None),
    ]
    text = render(leak_metrics(leaks, top=5))
    samples = parse(text)
    rate = "pmi_leak_growth_bytes_per_second"
    assert value(samples, rate, pid="1", program=LEAKER_PROGRAM, user="svc") == 86.4 * MIB / DAY_S
    assert value(samples, rate, pid="2", program="app.py", user='we"ird\nuser') == pytest.approx(
        43.2 * MIB / DAY_S
    )
    assert value(samples, rate, pid="3", program="cron", user="") == pytest.approx(MIB / DAY_S)
    assert len([key for key in samples if key[0] == rate]) == 3
    assert "hunter2" not in text and "password" not in text and "--" not in text
    if PROMTOOL is not None:
        assert promtool_problems(text) == ""
    top = parse(render(leak_metrics(leaks, top=1)))
    assert {dict(labels)["pid"] for _, labels in top} == {"1"}


def valid(text: str) -> str:
    """Text as it reads back: what is not valid UTF-8 (a lone surrogate) as ?."""
    return text.encode("utf-8", "replace").decode("utf-8")


@given(cmd=st.text(), user=st.text() | st.none(), pid=st.integers(1, 4_194_304))
def test_any_command_line_and_user_give_valid_labels_and_no_command_line(
    cmd: str, user: str | None, pid: int
) -> None:
    samples = parse(render(leak_metrics([leak(pid, cmd, 10.0, user)], top=5)))
    labels = {("pid", str(pid)), ("program", valid(program_of(cmd))), ("user", valid(user or ""))}
    assert set(samples) == {
        (name, frozenset(labels))
        for name in (
            "pmi_leak_growth_bytes_per_second",
            "pmi_leak_growth_bytes",
            "pmi_leak_since_timestamp_seconds",
        )
    }


def forecast(status: ForecastStatus, high_days: float | None = 40.0) -> Forecast:
    falling = status is ForecastStatus.FALLING
    return Forecast(
        basis="MemAvailable_MB",
        window_days=7.0,
        status=status,
        falls_mb_per_day=100.0 if falling else -5.0,
        days_to_zero=30.0 if falling else None,
        zero_date=None,
        used_days=7.0,
        level_mb=3000.0,
        samples=1008,
        falls_low_mb_per_day=75.0 if falling else -20.0,
        falls_high_mb_per_day=120.0 if falling else 10.0,
        days_to_zero_low=25.0 if falling else None,
        days_to_zero_high=high_days if falling else None,
        significant=falling,
    )


def test_the_time_to_zero_is_there_only_while_memavailable_falls() -> None:
    falling = parse(render(forecast_metrics(forecast(ForecastStatus.FALLING))))
    assert value(falling, "pmi_memavailable_falling") == 1
    assert value(falling, "pmi_memavailable_fall_bytes_per_second") == pytest.approx(
        100 * MIB / DAY_S
    )
    assert value(falling, "pmi_memavailable_fall_low_bytes_per_second") == pytest.approx(
        75 * MIB / DAY_S
    )
    assert value(falling, "pmi_memavailable_time_to_zero_seconds") == 30 * DAY_S
    assert value(falling, "pmi_memavailable_time_to_zero_low_seconds") == 25 * DAY_S
    assert value(falling, "pmi_memavailable_time_to_zero_high_seconds") == 40 * DAY_S
    never = names(parse(render(forecast_metrics(forecast(ForecastStatus.FALLING, None)))))
    assert "pmi_memavailable_time_to_zero_high_seconds" not in never
    flat = parse(render(forecast_metrics(forecast(ForecastStatus.NOT_FALLING))))
    assert value(flat, "pmi_memavailable_falling") == 0
    assert value(flat, "pmi_memavailable_fall_bytes_per_second") == pytest.approx(-5 * MIB / DAY_S)
    assert not {name for name in names(flat) if "time_to_zero" in name}
    assert forecast_metrics(forecast(ForecastStatus.TOO_LITTLE_DATA)) == []
    # A fall that is not significant has its days to zero in forecast.json, not here: the
    # alert rule reads the metric's presence as the gate.
    unsure = dataclasses.replace(
        forecast(ForecastStatus.NOT_FALLING),
        falls_mb_per_day=20.0,
        days_to_zero=150.0,
        days_to_zero_low=40.0,
    )
    names_unsure = names(parse(render(forecast_metrics(unsure))))
    assert value(parse(render(forecast_metrics(unsure))), "pmi_memavailable_falling") == 0
    assert not {name for name in names_unsure if "time_to_zero" in name}


def test_an_unbounded_side_of_the_rate_is_left_out_not_written_as_inf() -> None:
    flat = dataclasses.replace(
        forecast(ForecastStatus.NOT_FALLING),
        falls_low_mb_per_day=float("-inf"),
        falls_high_mb_per_day=float("inf"),
    )
    found = names(parse(render(forecast_metrics(flat))))
    assert found == {"pmi_memavailable_falling", "pmi_memavailable_fall_bytes_per_second"}


def test_a_failed_run_is_written_with_success_0_and_only_its_own_metrics(tmp_path: Path) -> None:
    textfile = Textfile(tmp_path / "pmi_system.prom", "system")
    textfile.add([Metric("pmi_oom_kills", "K.", (Sample((), 2.0),))])
    stdout, stderr = io.StringIO(), io.StringIO()
    session = Session(Diagnostics("t", stream=stderr), Console(stdout), PhaseTimer())
    assert textfile.finish(70, session) == 70
    assert stdout.getvalue() == stderr.getvalue() == ""
    samples = read_textfile(tmp_path / "pmi_system.prom")
    assert value(samples, "pmi_analysis_success", analysis="system") == 0
    assert value(samples, "pmi_analysis_exit_code", analysis="system") == 70
    assert "pmi_oom_kills" not in names(samples)
    assert textfile.finish(3, session) == 3  # an alert: the analysis itself succeeded
    assert stdout.getvalue() == f"Wrote {tmp_path}/pmi_system.prom\n"
    samples = read_textfile(tmp_path / "pmi_system.prom")
    assert value(samples, "pmi_analysis_success", analysis="system") == 1
    assert value(samples, "pmi_oom_kills", analysis="system") == 2
    assert [path.name for path in tmp_path.iterdir()] == ["pmi_system.prom"]  # no temporary


def test_an_unwritable_textfile_is_one_line_and_exit_1(tmp_path: Path) -> None:
    textfile = Textfile(tmp_path / "missing" / "pmi_system.prom", "system")
    stdout, stderr = io.StringIO(), io.StringIO()
    session = Session(Diagnostics("t", stream=stderr), Console(stdout), PhaseTimer())
    assert textfile.finish(0, session) == 1
    assert textfile.finish(3, session) == 3
    assert stdout.getvalue() == ""
    lines = stderr.getvalue().splitlines()
    assert (
        lines[0] == f"t: cannot write {tmp_path}/missing/pmi_system.prom: No such file or directory"
    )
    assert len(lines) == 2


def test_the_path_must_be_a_prom_file() -> None:
    assert (
        textfile_arg("/var/lib/prometheus/node-exporter/pmi_system.prom").name == "pmi_system.prom"
    )
    for bad in ("pmi.txt", "/tmp/.prom", "pmi.prom.tmp"):
        with pytest.raises(argparse.ArgumentTypeError, match=r"does not end in \.prom"):
            textfile_arg(bad)


# --- The scripts -------------------------------------------------------------------------


def test_the_system_textfile_holds_what_the_analysis_wrote(host: Path, tmp_path: Path) -> None:
    prom = tmp_path / "pmi_system.prom"
    argv = ["--dumps-dir", str(host), "--out-dir", str(tmp_path / "out")]
    ran = run_main(analyze_system.main, [*argv, "--prometheus-textfile", str(prom)])
    assert ran.status == 0, ran.stderr
    samples = read_textfile(prom)
    forecast_json = json.loads((tmp_path / "out" / "forecast.json").read_text())
    metrics = pd.read_csv(tmp_path / "out" / "system_metrics.csv").iloc[-1]
    on = {"analysis": "system"}
    assert value(samples, "pmi_analysis_success", **on) == 1
    last = (START + (SNAPSHOTS - 1) * STEP).replace(tzinfo=UTC).timestamp()
    assert value(samples, "pmi_last_snapshot_timestamp_seconds", **on) == last
    for label, column in (("htop", "RAM_Used_MB"), ("memavailable", "RAM_Used_Available_MB")):
        got = value(samples, "pmi_ram_used_bytes", definition=label, **on)
        assert got == round(metrics[column] * MIB)
    assert value(samples, "pmi_memory_available_bytes", **on) == round(
        metrics["MemAvailable_MB"] * MIB
    )
    rate = value(samples, "pmi_memavailable_fall_bytes_per_second", **on)
    assert rate * DAY_S / MIB == pytest.approx(forecast_json["falls_MB_per_day"], abs=5e-4)
    assert rate * DAY_S / MIB == pytest.approx(200.0, rel=1e-3)
    days = value(samples, "pmi_memavailable_time_to_zero_seconds", **on) / DAY_S
    assert days == pytest.approx(forecast_json["days_to_zero"], abs=0.05)  # 1 decimal there
    last_days = (SNAPSHOTS - 1) * STEP / timedelta(days=1)
    assert days == pytest.approx((10_000 - 200 * last_days) / 200, rel=1e-3)
    assert f"{days:.0f} days" in ran.stdout or f"{days:.1f} days" in ran.stdout
    assert value(samples, "pmi_oom_kills", kind="unknown", **on) == 1
    assert value(samples, "pmi_oom_kills", kind="memcg", **on) == 0
    kill_seen = (START + KILL_AT * STEP).replace(tzinfo=UTC).timestamp()
    assert value(samples, "pmi_oom_last_kill_timestamp_seconds", **on) == kill_seen
    assert value(samples, "pmi_memory_pressure_some_ratio", **on) == pytest.approx(0.01)
    assert value(samples, "pmi_memory_pressure_full_ratio", **on) == pytest.approx(0.001)


@pytest.mark.slow
def test_the_process_textfile_holds_the_leaks_of_leaks_csv(host: Path, tmp_path: Path) -> None:
    prom = tmp_path / "pmi_processes.prom"
    argv = ["--dumps-dir", str(host), "--out-dir", str(tmp_path / "out")]
    ran = run_main(analyze_processes.main, [*argv, "--prometheus-textfile", str(prom)])
    assert ran.status == 0, ran.stderr
    leaks = pd.read_csv(tmp_path / "out" / "leaks.csv")
    assert list(leaks["PID"]) == [4242]
    samples = read_textfile(prom)
    on = {"analysis": "processes", "pid": "4242", "program": LEAKER_PROGRAM, "user": "svc"}
    rate = value(samples, "pmi_leak_growth_bytes_per_second", **on) * DAY_S / MIB
    assert rate == pytest.approx(leaks["growth_MB_per_day"][0], abs=5e-4)
    assert rate == pytest.approx(50.0, rel=1e-3)
    assert value(samples, "pmi_leaking_processes", analysis="processes") == 1
    assert value(samples, "pmi_oom_kills", analysis="processes", kind="unknown") == 1
    assert "hunter2" not in prom.read_text(encoding="utf-8")
    # Without the flag the same outputs, and no textfile anywhere.
    plain = run_main(
        analyze_processes.main, ["--dumps-dir", str(host), "--out-dir", str(tmp_path / "o2")]
    )
    assert plain.stdout.replace("o2", "out") + f"Wrote {prom}\n" == ran.stdout
    assert not list(tmp_path.glob("o2/*.prom"))


@pytest.mark.slow
def test_the_report_exports_both_analyses_under_its_own_label(host: Path, tmp_path: Path) -> None:
    prom = tmp_path / "pmi_report.prom"
    argv = ["--dumps-dir", str(host), "--out", str(tmp_path / "r.html"), "--prometheus-top", "1"]
    ran = run_main(make_report.main, [*argv, "--prometheus-textfile", str(prom)])
    assert ran.status == 0, ran.stderr
    samples = read_textfile(prom)
    assert {dict(labels)["analysis"] for _, labels in samples} == {"report"}
    on = {"analysis": "report"}
    for part in ("system", "processes"):
        assert value(samples, "pmi_report_part_available", part=part, **on) == 1
    leak = {"pid": "4242", "program": LEAKER_PROGRAM, "user": "svc", **on}
    rate = value(samples, "pmi_leak_growth_bytes_per_second", **leak) * DAY_S / MIB
    assert rate == pytest.approx(50.0, rel=1e-3)
    kills = [count for (name, _), count in samples.items() if name == "pmi_oom_kills"]
    assert sum(kills) == 1  # once, though both parts count it
    last_days = (SNAPSHOTS - 1) * STEP / timedelta(days=1)
    days = value(samples, "pmi_memavailable_time_to_zero_seconds", **on) / DAY_S
    assert days == pytest.approx((10_000 - 200 * last_days) / 200, rel=1e-3)


@pytest.mark.slow
def test_dumps_without_user_are_read_as_without_the_flag(host: Path, tmp_path: Path) -> None:
    """Dumps of four columns only (PID, PPID, RSS_MB, CMD; no USER): the flag leaves the user label empty and
    every file good, as they are without it."""
    dumps = tmp_path / "dumps"
    dumps.mkdir()
    for path in host.glob("*.csv"):
        with path.open(encoding="utf-8", newline="") as handle:
            table = list(csv.reader(handle))
        if path.name.startswith("process_mem_"):
            table = [[row[0], row[1], row[3], row[5]] for row in table]
        with (dumps / path.name).open("w", encoding="utf-8", newline="") as handle:
            csv.writer(handle, lineterminator="\n").writerows(table)
    prom = tmp_path / "pmi_processes.prom"
    argv = ["--dumps-dir", str(dumps), "--out-dir", str(tmp_path / "out")]
    ran = run_main(analyze_processes.main, [*argv, "--prometheus-textfile", str(prom)])
    assert ran.status == 0, ran.stderr
    assert "warning" not in ran.stderr
    samples = read_textfile(prom)
    on = {"analysis": "processes", "pid": "4242", "program": LEAKER_PROGRAM, "user": ""}
    assert value(samples, "pmi_leak_growth_bytes_per_second", **on) > 0


def test_an_analysis_without_data_still_writes_success_0(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    prom = tmp_path / "pmi_processes.prom"
    argv = ["--dumps-dir", str(tmp_path / "empty"), "--out-dir", str(tmp_path / "out")]
    ran = run_main(analyze_processes.main, [*argv, "--prometheus-textfile", str(prom)])
    assert ran.status == 1
    samples = read_textfile(prom)
    assert value(samples, "pmi_analysis_success", analysis="processes") == 0
    assert value(samples, "pmi_analysis_exit_code", analysis="processes") == 1
    assert names(samples) == {
        "pmi_analysis_success",
        "pmi_analysis_exit_code",
        "pmi_analysis_duration_seconds",
        "pmi_analysis_timestamp_seconds",
    }


def test_a_bug_is_exit_70_and_still_written(
    host: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(*args: object) -> None:
        raise RuntimeError("a bug")

    monkeypatch.setattr(analyze_system, "compute_system", broken)
    prom = tmp_path / "pmi_system.prom"
    argv = ["--dumps-dir", str(host), "--out-dir", str(tmp_path / "out")]
    ran = run_main(analyze_system.main, [*argv, "--prometheus-textfile", str(prom)])
    assert ran.status == 70
    assert "internal error: RuntimeError: a bug" in ran.stderr
    samples = read_textfile(prom)
    assert value(samples, "pmi_analysis_success", analysis="system") == 0
    assert value(samples, "pmi_analysis_exit_code", analysis="system") == 70


def test_a_run_stopped_by_sigterm_is_written_with_its_status(tmp_path: Path) -> None:
    def killed(session: Session) -> None:
        os.kill(os.getpid(), signal.SIGTERM)
        time.sleep(5)  # the handler raises before this ends

    textfile = Textfile(tmp_path / "pmi_processes.prom", "processes")
    status = run_analysis("prog", killed, tmp_path, timings=False, finish=textfile.finish)
    assert status == 143
    samples = read_textfile(textfile.path)
    assert value(samples, "pmi_analysis_success", analysis="processes") == 0
    assert value(samples, "pmi_analysis_exit_code", analysis="processes") == 143


def test_a_path_not_ending_in_prom_is_a_usage_error(tmp_path: Path) -> None:
    with pytest.raises(SystemExit) as exited:
        run_main(analyze_system.main, ["--prometheus-textfile", str(tmp_path / "pmi.txt")])
    assert exited.value.code == 2


# --- The alert rules ---------------------------------------------------------------------


@needs_promtool
def test_the_alert_rules_pass_promtool_check_rules() -> None:
    assert PROMTOOL is not None
    done = subprocess.run(
        [PROMTOOL, "check", "rules", str(RULES)],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert rule_count() >= 7
    assert f"SUCCESS: {rule_count()} rules found" in done.stdout


@needs_promtool
def test_each_alert_fires_exactly_when_it_should() -> None:
    """tests/prometheus/pmi-alerts.test.yml: promtool's unit tests of the rules."""
    assert PROMTOOL is not None
    done = subprocess.run(
        [PROMTOOL, "test", "rules", RULE_TESTS.name],
        cwd=RULE_TESTS.parent,
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert done.returncode == 0, done.stdout + done.stderr
