"""The measured commands and how they are run: rounds of timed runs, alternating, then one
memory run each."""

from __future__ import annotations

import shlex
import shutil
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from bench.datasets import DataSet
from bench.one_hour import KeptSummaries
from bench.paths import BASELINE_SCRIPT, REPO_ROOT, REPORT_SCRIPT, SCRIPTS_DIR, relative
from bench.reference import Reference
from bench.results import NO_PHASES, Measurement, RunResult, mib_text, parse_timings
from bench.sampler import POLL_INTERVAL_S, PSS_INTERVAL_S, BenchmarkError, Execution, measure

# A run of ours reads every snapshot and keeps no day summary unless it is meant to use
# them: a first run, and no summary left in the cached data sets for a later run to find.
NO_SUMMARIES: tuple[str, ...] = ("--no-summaries",)


def command_for(
    label: str,
    analysis: str,
    dumps_dir: Path,
    out_dir: Path,
    reference: Reference | None = None,
    options: Sequence[str] = NO_SUMMARIES,
) -> list[str]:
    """The argv of one measured analysis (ours for any label but "baseline", the
    reference's scripts if one is given, with those of `options` it knows); paths
    relative to the repository (the cwd)."""
    python = relative(Path(sys.executable))
    if label == "baseline":
        return [python, relative(BASELINE_SCRIPT), analysis, relative(dumps_dir)]
    scripts = SCRIPTS_DIR if reference is None else reference.scripts
    known = options if reference is None else [o for o in options if reference.knows(o)]
    return [
        python,
        relative(scripts / f"analyze_{analysis}.py"),
        "--dumps-dir",
        relative(dumps_dir),
        "--out-dir",
        str(out_dir),
        "--timings",
        *known,
    ]


def report_argv(dumps_dir: Path, out_file: Path) -> list[str]:
    python = relative(Path(sys.executable))
    script, dumps = relative(REPORT_SCRIPT), relative(dumps_dir)
    return [python, script, "--dumps-dir", dumps, "--out", str(out_file), *NO_SUMMARIES]


@dataclass(frozen=True)
class Command:
    """One measured command, and the folder its outputs go to (emptied after each run)."""

    label: str  # "baseline", "ours", "bundled" (ours on the bundles) or "reference"
    analysis: str  # "system", "processes" or "report"
    data: DataSet
    argv: tuple[str, ...]
    out_dir: Path
    output: Path | None = None  # a file whose size is reported (the report's page)
    timings: bool = True  # it prints a `timings:` line on stderr
    summaries: KeptSummaries | None = None  # copied afresh for each run
    title: str | None = None  # its name, if not the one made from its label

    @property
    def key(self) -> tuple[str, str]:
        return (self.label, self.analysis)

    @property
    def name(self) -> str:
        if self.title is not None:
            return self.title
        if self.analysis == "report":
            return f"report ({self.data.name})"
        if self.label == "bundled":
            return f"ours {self.analysis} ({self.data.name}, bundled)"
        return f"{self.label} {self.analysis} ({self.data.name})"


def analysis_command(
    label: str,
    analysis: str,
    data: DataSet,
    dumps_dir: Path,
    work_dir: Path,
    reference: Reference | None = None,
    options: Sequence[str] = NO_SUMMARIES,
    title: str | None = None,
) -> Command:
    out_dir = work_dir / f"{data.name}-{label}-{analysis}"
    argv = command_for(label, analysis, dumps_dir, out_dir, reference, options)
    return Command(label, analysis, data, tuple(argv), out_dir, title=title)


def report_command(data: DataSet, dumps_dir: Path, work_dir: Path) -> Command:
    out_dir = work_dir / f"{data.name}-report"
    page = out_dir / "report.html"
    argv = report_argv(dumps_dir, page)
    return Command("ours", "report", data, tuple(argv), out_dir, output=page, timings=False)


def measure_ok(argv: Sequence[str], pss: bool = False) -> Execution:
    """measure() from the repository, raising BenchmarkError unless it exits 0."""
    execution = measure(argv, REPO_ROOT, PSS_INTERVAL_S if pss else POLL_INTERVAL_S, pss)
    if execution.exit_code != 0:
        tail = "\n".join(execution.stderr.strip().splitlines()[-10:])
        raise BenchmarkError(
            f"{shlex.join(argv)} exited with status {execution.exit_code}:\n{tail}"
        )
    return execution


def run_once(command: Command) -> RunResult:
    if command.summaries is not None:
        command.summaries.reset()
    execution = measure_ok(command.argv)
    phases = parse_timings(execution.stderr) if command.timings else NO_PHASES
    if phases is None:
        raise BenchmarkError(f"{shlex.join(command.argv)} printed no timings line on stderr")
    output = command.output
    size = output.stat().st_size if output is not None and output.is_file() else None
    shutil.rmtree(command.out_dir, ignore_errors=True)
    return RunResult(execution.wall_s, execution.peak_bytes, phases, size)


def run_rounds(
    groups: Sequence[Sequence[Command]], repeat: int
) -> dict[tuple[str, str], Measurement]:
    """Run each command `repeat` times, round after round; within a group (one analysis:
    baseline, ours, ours on bundles) alternating, their order flipped every other round,
    so that they share the machine's noise."""
    results = {
        command.key: Measurement(command.label, command.analysis, command.data)
        for group in groups
        for command in group
    }
    for round_index in range(repeat):
        for group in groups:
            order = list(group) if round_index % 2 == 0 else list(reversed(group))
            for command in order:
                print(f"  run {round_index + 1}/{repeat}: {command.name}...", end="", flush=True)
                result = run_once(command)
                results[command.key].runs.append(result)
                print(f" {result.wall_s:.2f} s, {mib_text(result.peak_bytes)}", flush=True)
    return results


def memory_runs(commands: Sequence[Command], results: dict[tuple[str, str], Measurement]) -> None:
    """One more run of each command, untimed, sampling the PSS of its process tree."""
    for command in commands:
        print(f"  memory run: {command.name}...", end="", flush=True)
        if command.summaries is not None:
            command.summaries.reset()
        execution = measure_ok(command.argv, pss=True)
        shutil.rmtree(command.out_dir, ignore_errors=True)
        results[command.key].pss_bytes = execution.pss_bytes
        print(
            f" peak PSS {mib_text(execution.pss_bytes)}"
            f" ({execution.wall_s:.2f} s, slowed by the sampling; not timed)",
            flush=True,
        )
