"""The defaults that more than one script shares, defined once.

Each entry script names its defaults as constants at its top (and a flag overrides each);
where two scripts share one (the dumps dir, the process analysis' limits, which the
report uses too), both take it from here. Standard library only: the collector and the
compactor read their dumps dir from here too.
"""

from __future__ import annotations

from pathlib import Path

# The repository: this file is scripts/utils/core/defaults.py, three folders below it.
# Every path is relative to it, whatever the working directory.
REPO_ROOT = Path(__file__).resolve().parents[3]
DUMPS_DIR = REPO_ROOT / "dumps" / "time"
PLOTS_DIR = REPO_ROOT / "plots"
SYSTEM_OUT_DIR = PLOTS_DIR / "system"
PROCESS_OUT_DIR = PLOTS_DIR / "processes"
REPORT_FILE = PLOTS_DIR / "report.html"

# The system analysis: the forecast's longest window, days before the last snapshot. It
# looks at the days since MemAvailable's last level shift, at most these: four weeks hold
# every day of the week four times, and more days make the test surer.
TREND_DAYS = 28.0

# The process analysis (and the report's process part).
TOP_N = 10
PROMETHEUS_TOP = 5  # leaks in the Prometheus textfile, fastest first
# The leak finder: below this rate a rise is never called a leak. 10 MiB/day is 300 MiB a
# month: a leak that takes a host down within months; slower rises are mostly allocator
# fragmentation and caches that settle, and flagging them would bury the real leaks.
LEAK_MIN_RATE_MB_PER_DAY = 10.0
# ... and, on a collection of days, an instance observed for less than this is not judged:
# after the 6-hour warm-up it leaves 1.5 days (6 floors) to tell a leak from a start-up ramp
# or a step. A shorter collection judges the instances watched for most of it.
LEAK_MIN_SPAN_DAYS = 2.0
# The least growth a leak reaches over the time it is judged on (the shorter of its span
# and LEAK_MIN_SPAN_DAYS): at 2 days, the 10 MiB/day above; over a 30-minute soak test,
# 40 MiB/hour. Less is what allocators, JITs and caches do in any short run.
LEAK_MIN_RISE_MB = 20.0

# The compactor: the closed UTC days that ended more than this many days ago are bundled;
# the last two stay loose, for a quick look.
COMPACT_OLDER_THAN_DAYS = 2
# The day summaries' folder, inside the dumps dir unless --summary-dir says otherwise:
# hidden, and a name no snapshot or bundle has (docs/summaries.md).
SUMMARY_FOLDER = ".summaries"
