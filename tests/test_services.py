"""The Services section: generated cgroup_mem dumps with known truths, the verdicts held to
them, services.csv and the console, bad and bundled cgroup files, and --alert-days."""

from __future__ import annotations

import csv
import math
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from hypothesis import example, given
from hypothesis import strategies as st
from promtext import read_textfile, value
from synthetic_services import KERNEL_MB, ServiceShape, generate_service_dumps

import analyze_processes
from conftest import assert_real_png, bundle_day, run_main, run_script, write_bundle
from utils.judge.growth import GrowthParams
from utils.judge.services import ServiceFindings, find_services, oom_kill_rises, sen_slope
from utils.outputs.service_console import NO_CGROUPS
from utils.outputs.service_tables import SERVICE_COLUMNS
from utils.parser import CGROUP_PREFIX, TimeWindow, find_sources
from utils.read.cgroup_specs import CGROUP_SPEC, cgroup_frame
from utils.read.threaded_reader import Reader

START = datetime(2026, 1, 1, tzinfo=UTC)
SNAPSHOTS = 432  # three days at 10 minutes
DAYS = (SNAPSHOTS - 1) * 600 / 86_400
LEAK_MB_PER_DAY = 40.0
NEAR = ServiceShape("near.service", anon_mb=500, anon_mb_per_day=50, limit_mb=900)
SHAPES = (
    # Leaks as a whole while each of its workers lives 4 hours: no worker is judged.
    ServiceShape("leaky.service", worker_life_s=4 * 3600, anon_mb_per_day=LEAK_MB_PER_DAY),
    ServiceShape("flat.service"),
    # Its page cache grows 200 MiB a day with its I/O: memory grows, anon does not.
    ServiceShape("cache.service", file_mb_per_day=200),
    ServiceShape(
        NEAR.name,
        anon_mb=NEAR.anon_mb,
        anon_mb_per_day=NEAR.anon_mb_per_day,
        limit_mb=NEAR.limit_mb,
        oom_kills_at=(100, 300),
    ),
)


def read_services(dumps: Path, warn: object = None) -> pd.DataFrame:
    said: list[tuple[Path, str]] = []
    sources = find_sources(dumps, CGROUP_PREFIX, TimeWindow(), lambda p, r: said.append((p, r)))
    frame = cgroup_frame(Reader(CGROUP_SPEC, lambda p, r: said.append((p, r))).batches(sources))
    if isinstance(warn, list):
        warn.extend(said)
    else:
        assert said == []
    return frame


@pytest.fixture(scope="module")
def dumps(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("services") / "dumps"
    generate_service_dumps(out, SHAPES, SNAPSHOTS, start=START, seed=3)
    return out


@pytest.fixture(scope="module")
def found(dumps: Path) -> ServiceFindings:
    result = find_services(read_services(dumps), GrowthParams())
    assert result is not None
    return result


def test_the_service_leaking_while_its_workers_recycle_is_flagged_at_its_rate(
    found: ServiceFindings,
) -> None:
    assert [s.service for s in found.leaks] == ["near.service", "leaky.service"]
    leaky = next(s for s in found.leaks if s.service == "leaky.service")
    assert leaky.leak is not None and leaky.basis == "anon+swap"
    assert leaky.leak_mb_per_day == pytest.approx(LEAK_MB_PER_DAY, rel=0.05)
    assert leaky.days_to_limit is None and leaky.limit_mb is None


def test_flat_page_cache_and_the_slice_above_a_leak_are_not_flagged(
    found: ServiceFindings,
) -> None:
    services = {s.service: s for s in found.services}
    assert set(services) == {"system.slice", *(shape.name for shape in SHAPES)}
    for name in ("flat.service", "cache.service", "system.slice"):
        assert services[name].leak is None, name
    # The page cache grew about 600 MiB, and memory with it, yet it is no leak.
    assert services["cache.service"].growth_mb == pytest.approx(200 * DAYS, abs=5)
    assert services["system.slice"].growth_mb > 700  # grows with its children
    assert found.judged == 5


def test_days_to_limit_agree_with_the_truth(found: ServiceFindings) -> None:
    near = next(s for s in found.services if s.service == "near.service")
    assert near.limit_mb == 900 and near.oom_kills == 2
    # The generator's anon: start + rate * t + uniform noise of 0..2 MiB (1 on average).
    pinned_end = NEAR.anon_mb + NEAR.anon_mb_per_day * DAYS + 1.0 + KERNEL_MB
    truth = (900 - pinned_end) / NEAR.anon_mb_per_day
    assert near.days_to_limit == pytest.approx(truth, rel=0.05)
    assert near.days_fast is not None and near.days_slow is not None
    assert near.days_to_limit is not None
    assert near.days_fast <= near.days_to_limit <= near.days_slow
    assert [s.service for s in found.near_limit] == ["near.service"]
    # No limit, or not rising toward it: no time.
    assert all(s.days_to_limit is None for s in found.services if s.service != "near.service")


def test_services_csv_and_the_console(dumps: Path, tmp_path: Path) -> None:
    ran = run_main(
        analyze_processes.main,
        ["--dumps-dir", str(dumps), "--out-dir", str(tmp_path), "--no-plots", "--fail-on-leak"],
    )
    assert ran.status == 3
    assert "2 service(s) leak as a whole: near.service, leaky.service" in ran.stderr
    # No worker is flagged: none lives the 2 days a process is judged on.
    assert "No process shows sustained growth" in ran.stdout
    assert (tmp_path / "leaks.csv").read_text().count("\n") == 1
    with (tmp_path / "services.csv").open() as handle:
        rows = list(csv.reader(handle))
    assert tuple(rows[0]) == SERVICE_COLUMNS
    table = {row[0]: dict(zip(SERVICE_COLUMNS, row, strict=True)) for row in rows[1:]}
    assert table["flat.service"]["leak_MB_per_day"] == ""
    assert table["flat.service"]["days_to_limit"] == table["flat.service"]["limit_MB"] == ""
    assert float(table["leaky.service"]["leak_MB_per_day"]) == pytest.approx(40, rel=0.05)
    assert table["near.service"]["limit_MB"] == "900.000"
    assert table["near.service"]["oom_kills"] == "2"
    assert table["leaky.service"]["cgroup"] == "/system.slice/leaky.service"
    first, last = float(table["cache.service"]["first_MB"]), float(
        table["cache.service"]["last_MB"]
    )
    assert float(table["cache.service"]["growth_MB"]) == pytest.approx(last - first, abs=0.002)
    assert "Services: 5 memory cgroups in 432 cgroup snapshots" in ran.stdout
    assert "near.service (/system.slice/near.service) reaches its limit of 900 MiB" in ran.stdout


@pytest.mark.parametrize(("days", "status"), [("6", 3), ("3", 0)])
def test_alert_days_names_the_service(dumps: Path, tmp_path: Path, days: str, status: int) -> None:
    argv = ["--dumps-dir", str(dumps), "--out-dir", str(tmp_path), "--no-plots"]
    ran = run_main(analyze_processes.main, [*argv, "--alert-days", days])
    assert ran.status == status
    said = "reaches its limit of 900 MiB in about"
    assert (said in ran.stderr and "near.service" in ran.stderr) == (status == 3)
    assert f"within --alert-days {days}" in ran.stderr or status == 0


def test_dumps_without_cgroup_files_say_one_line(tmp_path: Path) -> None:
    dumps = tmp_path / "dumps"
    generate_service_dumps(dumps, SHAPES[:2], 50, cgroups=False)
    ran = run_main(
        analyze_processes.main,
        ["--dumps-dir", str(dumps), "--out-dir", str(tmp_path / "out"), "--no-plots"],
    )
    assert ran.status == 0
    assert ran.stdout.count("Services") == 1 and NO_CGROUPS in ran.stdout
    assert not (tmp_path / "out" / "services.csv").exists()


def test_a_bad_cgroup_file_is_one_line_naming_it(tmp_path: Path) -> None:
    dumps = tmp_path / "dumps"
    stamps = generate_service_dumps(dumps, SHAPES[:2], 40)
    bad = dumps / f"{CGROUP_PREFIX}{stamps[7]}.csv"
    bad.write_text("CGROUP,NAME,MEMORY_MB\n/x,x,lots\n", "utf-8")
    said: list[tuple[Path, str]] = []
    frame = read_services(dumps, said)
    assert [path for path, _ in said] == [bad]
    assert "MEMORY_MB" in said[0][1] and said[0][1].endswith("skipped")
    assert frame["time"].nunique() == 39


def test_bundled_cgroup_files_read_as_loose_ones(tmp_path: Path) -> None:
    loose, bundled = tmp_path / "loose", tmp_path / "bundled"
    for out in (loose, bundled):
        generate_service_dumps(out, SHAPES[:2], 200, seed=1)
    bundle_day(bundled, "20260101")
    assert not list(bundled.glob("cgroup_mem_20260101_*.csv"))
    pd.testing.assert_frame_equal(read_services(loose), read_services(bundled))


def test_a_soak_test_is_judged_on_its_own_time_scale() -> None:
    """Three minutes at 1 s, a service rising 1 MiB/s while its workers are replaced every
    20 s: flagged at its rate, and its time to a limit, in seconds."""
    shape = ServiceShape(
        "soak.service",
        worker_life_s=60,
        anon_mb=100,
        anon_mb_per_day=86_400,
        noise_mb=1.0,
        limit_mb=600,
    )
    frame = pd.DataFrame(list(soak_rows(shape, 180)))
    found = find_services(frame, GrowthParams())
    assert found is not None and [s.service for s in found.leaks] == ["soak.service"]
    soak = found.leaks[0]
    assert soak.leak_mb_per_day == pytest.approx(86_400, rel=0.1)
    truth_s = 600 - (100 + 179 + 0.5 + KERNEL_MB)
    assert soak.days_to_limit is not None
    assert soak.days_to_limit * 86_400 == pytest.approx(truth_s, rel=0.1)


def soak_rows(shape: ServiceShape, seconds: int) -> Iterator[dict[str, object]]:
    rng = np.random.default_rng(0)
    start = int(START.timestamp())
    for t in range(seconds):
        anon = shape.anon_mb + t * shape.anon_mb_per_day / 86_400 + rng.uniform(0, shape.noise_mb)
        yield {
            "time": start + t,
            "CGROUP": shape.cgroup,
            "NAME": shape.name,
            "MEMORY_MB": anon + KERNEL_MB + 5,
            "LIMIT_MB": shape.limit_mb,
            "ANON_MB": anon,
            "FILE_MB": 5.0,
            "SHMEM_MB": 0.0,
            "KERNEL_MB": KERNEL_MB,
            "SWAP_MB": math.nan,
            "OOM_EVENTS": math.nan,
            "OOM_KILLS": 0.0,
            "PSI_SOME_TOTAL_US": math.nan,
        }


def test_sen_slope_of_a_line_and_its_bounds() -> None:
    t = np.arange(10.0)
    assert sen_slope(t, 3 * t + 2) == (3.0, 3.0, 3.0)
    noisy = 3 * t + np.array([0, 1, -1, 0.5, 0, -0.5, 1, 0, -1, 0.2])
    slope, low, high = sen_slope(t, noisy)
    assert low < slope < high and low > 2 and high < 4
    assert all(math.isnan(v) for v in sen_slope(t[:2], t[:2]))


def test_oom_kills_count_every_rise_and_a_restarted_counter() -> None:
    assert oom_kill_rises(np.array([0.0, 0, 2, math.nan, 3, 1, 1])) == 4
    assert oom_kill_rises(np.array([5.0])) == 0


NUMBERS = st.one_of(
    st.just(""),
    st.floats(0, 1e6).map(lambda v: f"{v:.3f}"),
    st.sampled_from(["-1", "nan", "inf", "1e400", "x", "9" * 30]),
)


@example(rows=[("/", ["0.000"] * 10)] * 2, cut=177)  # cut right after the first row
@given(
    rows=st.lists(
        st.tuples(
            st.sampled_from(["/", "/a.slice", "/a.slice/b.service", "", '/q"x,y', "/\u00e9"]),
            st.lists(NUMBERS, min_size=10, max_size=10),
        ),
        max_size=5,
    ),
    cut=st.integers(0, 400),
)
def test_any_cgroup_file_is_read_whole_or_named_once(rows: list[Any], cut: int) -> None:
    import tempfile  # noqa: PLC0415

    from utils.collect.snapshot_format import CGROUP_HEADER, csv_text  # noqa: PLC0415

    with tempfile.TemporaryDirectory() as folder:
        dumps = Path(folder)
        text = csv_text(CGROUP_HEADER, [[path, "n", *numbers] for path, numbers in rows])
        data = text.encode()[: cut or None]
        (dumps / f"{CGROUP_PREFIX}20260101_000000.csv").write_bytes(data)
        said: list[tuple[Path, str]] = []
        frame = read_services(dumps, said)
        assert len(said) <= 1
        # Cut at the end of a line, the file is a whole one of fewer rows: nothing tells them
        # apart, so the rows it holds are the ones expected.
        expected = data.count(b"\n") - 1 if data.endswith(b"\n") else len(rows)
        if expected == 0:  # a header alone (or less): no row, and at most one line says so
            assert frame.empty
        else:
            assert (len(said) == 1) != (len(frame) == expected)
        find_services(frame, GrowthParams())  # never raises


@pytest.mark.slow
def test_service_plots_are_drawn_for_the_flagged_and_largest(dumps: Path, tmp_path: Path) -> None:
    (tmp_path / "service_gone.service.png").write_bytes(b"an earlier run's")
    argv = ["--dumps-dir", str(dumps), "--out-dir", str(tmp_path), "--top", "1"]
    ran = run_main(analyze_processes.main, argv)
    assert ran.status == 0
    drawn = sorted(path.name for path in tmp_path.glob("service_*.png"))
    # The flagged two, and the largest (the slice); the earlier run's plot is gone.
    assert drawn == [
        "service_leaky.service.png",
        "service_near.service.png",
        "service_system.slice.png",
    ]
    for name in drawn:
        assert_real_png(tmp_path / name)
    assert "Wrote 3 service plots" in ran.stdout


def test_the_textfile_has_the_services_bounded(dumps: Path, tmp_path: Path) -> None:
    prom = tmp_path / "p.prom"
    argv = ["--dumps-dir", str(dumps), "--out-dir", str(tmp_path), "--no-plots"]
    argv += ["--prometheus-textfile", str(prom), "--prometheus-top", "1"]
    assert run_main(analyze_processes.main, argv).status == 0
    samples = read_textfile(prom)
    assert value(samples, "pmi_services", analysis="processes") == 5
    assert value(samples, "pmi_leaking_services", analysis="processes") == 2
    memory = {
        dict(labels)["service"] for name, labels in samples if name == "pmi_service_memory_bytes"
    }
    # The largest, and the two that matter; the flat and the page-cache ones stay out.
    assert memory == {"system.slice", "near.service", "leaky.service"}
    rate = value(
        samples,
        "pmi_service_leak_growth_bytes_per_second",
        analysis="processes",
        service="leaky.service",
        cgroup="/system.slice/leaky.service",
    )
    assert rate == pytest.approx(40 * 1024 * 1024 / 86_400, rel=0.05)
    near = {"service": "near.service", "cgroup": "/system.slice/near.service"}
    seconds = value(samples, "pmi_service_seconds_to_limit", analysis="processes", **near)
    assert 4.5 * 86_400 < seconds < 4.8 * 86_400
    assert value(samples, "pmi_service_limit_bytes", analysis="processes", **near) == 900 * 2**20


@pytest.mark.slow
def test_the_report_has_a_services_section(dumps: Path, tmp_path: Path) -> None:
    out = tmp_path / "report.html"
    ran = run_script("make_report.py", "--dumps-dir", str(dumps), "--out", str(out))
    assert ran.returncode == 0, ran.stderr
    text = out.read_text(encoding="utf-8")
    body = text.split('<section id="services">', 1)[1].split("</section>", 1)[0]
    assert "near.service (/system.slice/near.service) reaches its limit of 900 MiB" in body
    assert body.count("<tr") == 1 + 5  # the header and every service
    assert body.count("service_leaky.service.png") >= 1  # its plot, as a thumbnail
    alerts = text.split('<section id="alerts">', 1)[1]
    assert "services leak as a whole: near.service, leaky.service" in alerts
    assert "analyze_processes.py --alert-days D" in alerts and "3 for D ≥ 4." in alerts
    analysed = text.split('<section id="analysed">', 1)[1].split("</section>", 1)[0]
    assert "cgroup_mem" in analysed  # the cgroup snapshots read, beside the other kinds


@pytest.mark.parametrize(
    "order",
    [("sys_mem", "cgroup_mem", "process_mem"), ("sys_mem", "process_mem", "cgroup_mem")],
    ids=["cgroup-before-process", "cgroup-last"],
)
def test_each_reader_of_a_bundle_takes_its_kind_and_passes_the_others_in_silence(
    tmp_path: Path, order: tuple[str, ...]
) -> None:
    from utils.collect.bundles import Skipped, snapshot_members  # noqa: PLC0415

    members = [
        (f"{kind}_20260101_0000{second:02d}.csv", f"{kind} {second}\n".encode())
        for kind in order
        for second in range(3)
    ]
    bundle = write_bundle(tmp_path / "mem_20260101.tar.xz", members)
    day = START.date()
    for kind in ("sys_mem", "cgroup_mem", "process_mem"):
        with bundle.open("rb") as handle:
            got = list(snapshot_members(handle, f"{kind}_", day, lambda _: True))
        assert not [item for item in got if isinstance(item, Skipped)], kind
        names = [item.name for item in got]
        expected = [name for name, _ in members if name.startswith(kind)]
        assert names == expected, kind


@given(
    rows=st.lists(
        st.tuples(
            st.integers(0, 3),
            st.integers(0, 10 * 86_400),
            st.one_of(st.floats(0, 1e4), st.just(math.nan)),
        ),
        max_size=40,
    ),
    level=st.integers(0, 6),
)
def test_floor_table_is_the_lowest_per_instance_and_bucket(
    rows: list[tuple[int, int, float]], level: int
) -> None:
    """Against the plain way: a dict of the lowest value and the count per key."""
    from utils.judge.services import floor_table  # noqa: PLC0415
    from utils.reduce.buckets import BUCKET_S  # noqa: PLC0415

    plain: dict[tuple[int, int], tuple[float, int]] = {}
    for instance, at, number in rows:
        if math.isnan(number):
            continue
        key = (instance, at * 2**level // BUCKET_S)
        low, count = plain.get(key, (math.inf, 0))
        plain[key] = (min(low, number), count + 1)
    table = floor_table(
        np.array([r[0] for r in rows], np.int64),
        np.array([r[1] for r in rows], np.int64),
        np.array([r[2] for r in rows], np.float64),
        level,
    )
    got = {
        (int(i), int(b)): (float(v), int(n))
        for i, b, v, n in zip(
            table.instance, table.bucket, table.floor_mb, table.samples, strict=True
        )
    }
    assert got == plain
    assert list(got) == sorted(got)  # by instance, then bucket


def test_a_cgroup_without_anon_is_judged_on_its_memory_and_says_so(dumps: Path) -> None:
    frame = read_services(dumps)
    cache = frame["CGROUP"] == "/system.slice/cache.service"
    frame.loc[cache, "ANON_MB"] = math.nan
    found = find_services(frame, GrowthParams())
    assert found is not None
    services = {s.service: s for s in found.services}
    assert services["cache.service"].basis == "memory"
    # Its page cache grows 200 MiB a day: on memory alone that is a leak, said as judged so.
    assert services["cache.service"].leak_mb_per_day == pytest.approx(200, rel=0.05)
    assert services["flat.service"].basis == "anon+swap"
