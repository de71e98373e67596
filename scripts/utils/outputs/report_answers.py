"""The report's answers first: the short verdict block that opens the page, before what was
analysed. Each answer is one line from the section it links to, in the words that section
(or the console) uses: the leaks (how many, the fastest), the forecast, the OOM kills, the
largest change and the alerts that hold.
"""

from __future__ import annotations

from collections.abc import Sequence

from utils.console import EXIT_ALERT
from utils.core.text import plural, short_number, signed
from utils.judge.alerts import oom_kill_count
from utils.judge.breakdown import LABELS
from utils.judge.process_result import ProcessResult
from utils.judge.program_leaks import program_leak_sentence
from utils.judge.system_metrics import SystemResult
from utils.outputs.report_page import Answer, Answers
from utils.outputs.system_console import describe_forecast
from utils.reduce.programs import program_of

NO_DATA = "no data"


def answers_block(
    system: SystemResult | None,
    processes: ProcessResult | None,
    alerts: Sequence[Sequence[str]],
    oom_section: bool,
) -> Answers:
    """The answers of the analyses that ran (None: no data); `alerts`: the alert table's
    rows (command, exit status, because); `oom_section`: the page has an OOM section."""
    forecast = NO_DATA if system is None else describe_forecast(system.summary.forecast)
    items = [
        Answer("Leaks", leaks_answer(processes), "leaks"),
        Answer("Forecast", forecast, "system"),
        Answer("OOM kills", oom_answer(system, processes), "oom" if oom_section else "system"),
        Answer("Largest change", change_answer(system), "system"),
        Answer("Alerts", alerts_answer(alerts), "alerts"),
    ]
    return Answers(tuple(items))


def leaks_answer(result: ProcessResult | None) -> str:
    if result is None:
        return NO_DATA
    leaks = result.leaks
    if not leaks:
        if not result.survey.judged:
            return "none judged: no process instance was watched long enough"
        return f"none among {plural(result.survey.judged, 'process instance')} judged"
    fastest = max(leaks, key=lambda leak: leak.growth_mb_per_day)
    verb = "leaks" if len(leaks) == 1 else "leak"
    text = (
        f"{plural(len(leaks), 'process instance')} {verb}; the fastest, PID {fastest.pid}"
        f" ({program_of(fastest.cmd)}), grows {short_number(fastest.growth_mb_per_day)} MiB/day"
    )
    return "; ".join([text, *(program_leak_sentence(p) for p in result.program_leaks)])


def oom_answer(system: SystemResult | None, processes: ProcessResult | None) -> str:
    """The kills the process analysis named, else the ones the system analysis counted."""
    if processes is not None and processes.ooms is not None and processes.ooms.kills:
        return plural(len(processes.ooms.kills), "OOM kill") + " in the window"
    if system is not None and system.ooms is not None:
        kills = oom_kill_count(system.ooms)
        return plural(kills, "OOM kill") + " in the window" if kills else "none in the window"
    if processes is not None and processes.ooms is not None:
        return "none in the window"
    return "the dumps carry no OOM counter" if system or processes else NO_DATA


def change_answer(system: SystemResult | None) -> str:
    """The part of memory that changed most between the compared periods, in MiB, with its
    share of the rise where that share means something."""
    if system is None:
        return NO_DATA
    comparison = system.comparison
    changes = [c for c in comparison.changes if c.column != "Free_MB"] if comparison else []
    if comparison is None or not changes:
        return "under two snapshots: nothing to compare"
    top = changes[0]
    share = "" if top.share_pct is None else f", {top.share_pct:z.0f}% of the rise"
    return (
        f"{LABELS[top.column]} {signed(top.change_mb)} MiB{share}"
        f" ({comparison.first.name} against {comparison.last.name})"
    )


def alerts_answer(alerts: Sequence[Sequence[str]]) -> str:
    holding = [row[2] for row in alerts if row[1] == str(EXIT_ALERT)]
    if not holding:
        return "none holds"
    return f"{plural(len(holding), 'alert')} would hold: " + "; ".join(holding)
