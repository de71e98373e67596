"""End to end with the real servers: Debian's prometheus-node-exporter serves the textfiles
the analyses write, prometheus scrapes it on 127.0.0.1 every second with the alert rules
loaded, and its HTTP API gives back the leak rate and the time to zero the analyses printed.
Every process started here is stopped at teardown, whatever happens."""

from __future__ import annotations

import contextlib
import json
import re
import shutil
import signal
import socket
import subprocess
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest
from promtext import read_textfile
from test_prometheus import RULES, rule_count, write_host

import analyze_processes
import analyze_system
from conftest import run_main

NODE_EXPORTER = shutil.which("prometheus-node-exporter") or shutil.which("node_exporter")
PROMETHEUS = shutil.which("prometheus")
UP_TIMEOUT_S = 60.0
STOP_TIMEOUT_S = 10.0

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        NODE_EXPORTER is None or PROMETHEUS is None,
        reason="needs Prometheus and node_exporter: apt-get install prometheus"
        " prometheus-node-exporter (.ci/run installs them)",
    ),
]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextlib.contextmanager
def server(argv: Sequence[str], log: Path) -> Iterator[subprocess.Popen[bytes]]:
    """A server in a session of its own; SIGTERM at the end, then SIGKILL if it lingers."""
    with open(log, "wb") as out:
        process = subprocess.Popen(
            argv, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
    try:
        yield process
    finally:
        with contextlib.suppress(ProcessLookupError):
            process.send_signal(signal.SIGTERM)
        try:
            process.wait(STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(STOP_TIMEOUT_S)


def get(url: str) -> bytes | None:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return bytes(response.read())
    except OSError:
        return None


def query(base: str, expr: str) -> list[dict[str, Any]]:
    body = get(f"{base}/api/v1/query?" + urllib.parse.urlencode({"query": expr}))
    if body is None:
        return []
    answer = json.loads(body)
    assert answer["status"] == "success", answer
    return list(answer["data"]["result"])


def wait_for(
    expr: str, base: str, process: subprocess.Popen[bytes], log: Path
) -> list[dict[str, Any]]:
    """The query's result once it has one (the first scrapes take a second or two)."""
    deadline = time.monotonic() + UP_TIMEOUT_S
    while time.monotonic() < deadline:
        assert process.poll() is None, log.read_text(errors="replace")[-2000:]
        result = query(base, expr)
        if result:
            return result
        time.sleep(0.5)
    raise AssertionError(
        f"no {expr} within {UP_TIMEOUT_S:g} s: {log.read_text(errors='replace')[-2000:]}"
    )


def test_prometheus_scrapes_the_verdicts_the_analyses_printed(tmp_path: Path) -> None:
    assert NODE_EXPORTER is not None and PROMETHEUS is not None
    dumps = write_host(tmp_path / "dumps")
    textfiles = tmp_path / "textfiles"
    textfiles.mkdir()
    printed = {}
    for name, main in (("system", analyze_system.main), ("processes", analyze_processes.main)):
        argv = ["--dumps-dir", str(dumps), "--out-dir", str(tmp_path / name)]
        ran = run_main(main, [*argv, "--prometheus-textfile", str(textfiles / f"pmi_{name}.prom")])
        assert ran.status == 0, ran.stderr
        printed[name] = ran.stdout
        read_textfile(textfiles / f"pmi_{name}.prom")  # promtool check metrics: no problem
    days = re.search(r"zero in about ([0-9,]+) days", printed["system"])
    leak = re.search(r"^4242 +\S+ \S+ +([0-9.,]+) ", printed["processes"], re.MULTILINE)
    assert days is not None and leak is not None, printed

    exporter_port, prometheus_port = free_port(), free_port()
    config = tmp_path / "prometheus.yml"
    config.write_text(
        "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n"
        f"rule_files:\n  - {RULES}\n"
        "scrape_configs:\n  - job_name: node\n    static_configs:\n"
        f"      - targets: ['127.0.0.1:{exporter_port}']\n",
        encoding="utf-8",
    )
    exporter_argv = [
        NODE_EXPORTER,
        "--collector.disable-defaults",
        "--collector.textfile",
        f"--collector.textfile.directory={textfiles}",
        f"--web.listen-address=127.0.0.1:{exporter_port}",
    ]
    prometheus_argv = [
        PROMETHEUS,
        f"--config.file={config}",
        f"--storage.tsdb.path={tmp_path / 'tsdb'}",
        f"--web.listen-address=127.0.0.1:{prometheus_port}",
    ]
    base = f"http://127.0.0.1:{prometheus_port}"
    with (
        server(exporter_argv, tmp_path / "node_exporter.log") as exporter,
        server(prometheus_argv, tmp_path / "prometheus.log") as prometheus,
    ):
        log = tmp_path / "prometheus.log"
        rate = wait_for("pmi_leak_growth_bytes_per_second", base, prometheus, log)
        assert exporter.poll() is None
        assert len(rate) == 1
        labels = rate[0]["metric"]
        assert (labels["pid"], labels["program"], labels["user"]) == ("4242", 'we\\ird"srv', "svc")
        assert labels["analysis"] == "processes" and labels["job"] == "node"
        mib_per_day = float(rate[0]["value"][1]) * 86_400 / 2**20
        assert f"{mib_per_day:.1f}" == leak.group(1)
        zero = wait_for("pmi_memavailable_time_to_zero_seconds", base, prometheus, log)
        assert f"{float(zero[0]['value'][1]) / 86_400:.0f}" == days.group(1).replace(",", "")
        errors = wait_for("node_textfile_scrape_error", base, prometheus, log)
        assert float(errors[0]["value"][1]) == 0
        success = query(base, "pmi_analysis_success")
        assert sorted(r["metric"]["analysis"] for r in success) == ["processes", "system"]
        assert all(float(r["value"][1]) == 1 for r in success)
        rules = json.loads(get(f"{base}/api/v1/rules") or b"{}")
        loaded = [rule for group in rules["data"]["groups"] for rule in group["rules"]]
        assert len(loaded) == rule_count()
        assert all(rule["health"] in ("ok", "unknown") for rule in loaded), loaded
    assert exporter.returncode is not None and prometheus.returncode is not None
