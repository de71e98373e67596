#!/usr/bin/env python3
"""Seeded synthetic dumps, shaped exactly like scripts/collect_memory.py writes them.

Real dumps take weeks to collect and hold other people's command lines, so the tests
(a few dozen snapshots) and the benchmark (a month: 4,320 snapshots x 500 processes,
about 170 MB; or a year) use these instead. The simulated host is a busy one: noisy
long-lived daemons, exactly one leaking process, short-lived processes taking ever
higher PIDs, kernel threads, and the awkward command lines and user names that break
naive CSV handling. The sys_mem rows are derived from the same simulated processes, so
RAM used tracks the summed RSS and the page cache and then swap absorb the leak.

Everything comes from one numpy Generator seeded by `seed`, and draws do not depend on
the outage, so a seed always gives the same bytes, and a run with an outage holds
exactly the files of the full run minus the gap.
"""

from __future__ import annotations

import argparse
import csv
import io
import math
import sys
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import numpy.typing as npt

# Run as `python tests/synthetic.py` (or imported by the benchmark), scripts/ is not
# on sys.path as it is under pytest.
SCRIPTS_DIR = Path(__file__).resolve().parent.parent / "scripts"
if str(SCRIPTS_DIR) not in sys.path:
    sys.path.insert(0, str(SCRIPTS_DIR))

from collect_memory import sys_row  # noqa: E402
from utils.collect.snapshot_format import (  # noqa: E402
    PROCESS_HEADER,
    PSS_EXTRA,
    SYS_HEADER,
    TIMESTAMP_FORMAT,
    csv_text,
    snapshot_names,
)

IntArray = npt.NDArray[np.int64]
FloatArray = npt.NDArray[np.float64]

MIB = 1024  # kB per MiB
GIB = 1024 * MIB  # kB per GiB
PAGE_KB = 4  # ps and /proc/meminfo count whole 4 kB pages
HUGE_PAGE_KB = 2048
DAY_S = 86_400

# --- The process population -------------------------------------------------------
MIN_PROCESSES = 4  # init or a daemon, a kernel thread, the leaker, a short-lived one
KERNEL_SHARE = 0.15
DAEMON_SHARE = 0.60  # the leaker comes on top; short-lived processes take the rest
CPUS = 4  # only shapes the kernel thread names
SHORT_LIFE = (3, 40)  # snapshots a short-lived process is seen in, inclusive
PID_GAP = (1, 8)  # PIDs used up between two spawns we see (shells, pipes, cron...)
# Noisy RSS: an AR(1) deviation around each process's base, capped so that a daemon's
# max-min spread stays under 5 % of its base (40 MB for the biggest), far below the
# leak even over a few hours.
NOISE_KEEP = 0.9
NOISE_STEP = 0.0045
NOISE_CAP = 0.025
DAEMON_MEDIAN_MIB, DAEMON_SIGMA, DAEMON_RANGE_MIB = 6.0, 0.8, (5.0, 800.0)
SHORT_MEDIAN_MIB, SHORT_SIGMA, SHORT_RANGE_MIB = 5.0, 1.0, (1.0, 300.0)
# VSZ stays put until RSS comes near it, then grows in 64 MiB steps like heap arenas.
VSZ_STEP_KB = 64 * MIB
VSZ_BUMP_RATIO = 0.9

# --- The leak -----------------------------------------------------------------------
LEAK_START_KB = 200 * MIB
LEAK_MAX_PER_DAY_KB = 300 * MIB
# A year at 300 MB/day would not fit in any plausible host; long runs leak more slowly
# so that the whole run's growth fits in what is left of RAM plus a little swap.
LEAK_ROOM_SHARE = 0.95

# --- Services that random-walk (only with `services`) ------------------------------
# Long-lived services whose RSS does a multiplicative random walk with an upward drift,
# kept between its start and SERVICE_MAX_GROWTH times it: steady enough over weeks for
# the leak finder to flag them (10 MiB/day and more), noisy enough to look like load.
SERVICE_START_MEDIAN_MIB, SERVICE_START_SIGMA, SERVICE_START_RANGE_MIB = 600.0, 0.3, (400.0, 1500.0)
SERVICE_DRIFT_PER_DAY = (0.025, 0.04)  # of log RSS: 2.5-4 % a day
SERVICE_SIGMA_PER_SQRT_DAY = 0.03  # of log RSS, the walk's noise over a day
SERVICE_MAX_GROWTH = 4.0
SERVICE_SEED_STREAM = 1  # the services draw from a stream of their own: see _Services
SERVICE_USER = "svc"
SERVICE_CMD = "/opt/services/{name}/bin/{name} --config=/etc/services/{name}.toml"
SERVICE_NAMES = ("orders", "search", "cart", "ledger", "mailer", "thumbs", "auth", "quotes")

# --- The host -----------------------------------------------------------------------
MEM_TOTAL_MIN_KB = 16 * GIB  # doubled until the population takes at most BASE_SHARE
BASE_SHARE = 0.35
RESERVED_KB = 2 * GIB  # kernel, slab, buffers, minimal cache and free: kept off the leak
HUGEPAGES_TOTAL = 64
MISC_KERNEL_KB = 120 * MIB  # vmalloc, drivers, percpu: used memory no field explains
SWAP_PRESSURE_AT = 0.25  # swap starts creeping when MemAvailable < 25 % of MemTotal
SWAP_CREEP_MAX_KB_PER_H = 6 * MIB  # at full pressure; per hour, whatever the interval


@dataclass(frozen=True, slots=True)
class GeneratedSummary:
    """What a generation wrote, so callers can check results without rescanning."""

    snapshots: int  # snapshot pairs written (the outage's are not)
    first: datetime  # UTC timestamp of the first pair written
    last: datetime  # UTC timestamp of the last pair written
    bytes_written: int  # both kinds of file together
    leak_pid: int  # the one process whose RSS grows steadily


# --- Command lines ------------------------------------------------------------------
# (user, command line, base RSS in MiB). Given to the first daemons, so even a tiny
# population shows every awkward case in every snapshot: commas, double and single
# quotes, $HOME and $(...), non-ASCII and emoji, 300+ characters, long user names.
_JAVA_CLASSPATH = ":".join(
    f"/opt/billing/lib/{name}.jar"
    for name in (
        "billing-core-4.2.1",
        "billing-api-4.2.1",
        "jackson-databind-2.17.0",
        "jackson-core-2.17.0",
        "netty-all-4.1.108.Final",
        "postgresql-42.7.3",
        "HikariCP-5.1.0",
        "slf4j-api-2.0.12",
        "logback-classic-1.5.3",
    )
)
SPECIAL_DAEMONS: tuple[tuple[str, str, float], ...] = (
    ("root", "/sbin/init splash", 13.0),  # always PID 1, PPID 0
    (
        "averyverylongusername",
        "/usr/bin/python3 /opt/etl/run.py --columns=id,name,email --where=\"status = 'active'\"",
        90.0,
    ),
    (
        "billing",
        "/usr/lib/jvm/java-21-openjdk-amd64/bin/java -Xms512m -Xmx2g -XX:+UseG1GC "
        "-Dfile.encoding=UTF-8 -Duser.timezone=UTC -Dlogging.config=/etc/billing/logback.xml "
        f"-cp {_JAVA_CLASSPATH} com.example.billing.Main --spring.profiles.active=prod,eu",
        760.0,
    ),
    ("postgres", "/usr/lib/postgresql/16/bin/postgres -D /var/lib/postgresql/16/main", 220.0),
    ("postgres-replica", "postgres: 16/replica: walreceiver streaming 0/3A000148", 40.0),
    ("alice", "/usr/bin/vim /home/alice/Notes/Übersicht für José & Zoë.md", 12.0),
    ("bob", "/opt/日本語/bin/サーバー --name=テスト --port=8080", 35.0),
    ("alice", "node /srv/bot/index.js --status=Ready 🚀 --greeting=👋🏽", 110.0),
    (
        "root",
        'sh -c while sleep 60; do echo "$HOME" $(date +%s) >> /var/log/heartbeat; done',
        3.0,
    ),
    ("systemd-resolve", "/lib/systemd/systemd-resolved", 12.0),
)
# (user, command line); "<N>" is replaced by a number so the lines vary.
GENERIC_DAEMONS: tuple[tuple[str, str], ...] = (
    ("root", "/lib/systemd/systemd-journald"),
    ("www-data", "php-fpm: pool www"),
    ("www-data", "nginx: worker process"),
    ("postgres", "postgres: 16/main: app appdb 10.0.0.<N>(51<N>) idle"),
    ("alice", "-bash"),
    ("root", "sshd: alice@pts/<N>"),
    ("celery", "/usr/bin/python3 -m celery -A proj worker -n worker<N>@%h --concurrency=4"),
    ("redis", "/usr/bin/redis-server 127.0.0.1:63<N>"),
    ("root", "/usr/sbin/cron -f -P"),
    (
        "messagebus",
        "/usr/bin/dbus-daemon --system --address=systemd: --nofork --nopidfile "
        "--systemd-activation --syslog-only",
    ),
    ("syslog", "/usr/sbin/rsyslogd -n -iNONE"),
    ("root", "/usr/bin/containerd"),
    ("root", "/usr/bin/dockerd -H fd:// --containerd=/run/containerd/containerd.sock"),
    ("alice", "tmux new -s 'build, test' -n <N>"),
    ("bob", "/usr/bin/python3 /home/bob/notebooks/analyse_<N>_données.py"),
    ("averyverylongusername", "/usr/bin/ssh-agent -s"),
    (
        "alice",
        "/usr/lib/firefox/firefox -contentproc -childID <N> -isForBrowser -prefsLen 31234 "
        "-prefMapSize 244787 -parentBuildID 20260101000000 -appDir /usr/lib/firefox/browser "
        "{3a8c1b2e-0f4d-4c1e-9d7a-2b6e<N>} 2345 true tab",
    ),
    ("postgres-replica", "postgres: 16/replica: startup recovering 00000001000000<N>"),
)
SHORT_LIVED: tuple[tuple[str, str], ...] = (
    ("root", "/bin/sh -c cd / && run-parts --report /etc/cron.hourly"),
    ("alice", "sleep <N>"),
    ("alice", 'grep -rn "TODO, FIXME" /home/alice/src'),
    ("bob", 'curl -s -H "Authorization: Bearer $TOKEN" https://api.example.com/v1/items?ids=<N>,7'),
    ("alice", "/usr/bin/python3 /home/alice/scripts/rapport_été_<N>.py --lang=fr"),
    ("backup", "rsync -a --delete /srv/data/ backup@nas:/backups/$(hostname)/"),
    ("root", "ps -ww --no-headers -eo pid,ppid,user:255,rss,vsz,cmd"),
    ("bob", 'bash -c for f in *.csv; do wc -l "$f"; done'),
    ("alice", "convert 写真_<N>.jpg -resize 50% thumb_😀_<N>.png"),
    ("bob", "git commit -m fix: don't crash, ever"),
    ("bob", "make -j2"),
    ("bob", "/usr/lib/gcc/x86_64-linux-gnu/13/cc1 -quiet -O2 main_<N>.c -o /tmp/cc<N>.s"),
    ("root", 'find / -xdev -name "*.log" -mtime +7'),
    ("postgres-replica", "pg_basebackup -D /var/lib/postgresql/16/replica -X stream -c fast"),
    ("averyverylongusername", 'awk -F, {print $1","$2} /var/log/app/events_<N>.csv'),
    ("alice", "echo $HOME $(whoami)"),
    (
        "bob",
        "/usr/bin/python3 -m pytest -q -p no:cacheprovider "
        + " ".join(f"tests/test_analysis.py::test_case_{k:03d}" for k in range(8)),
    ),
)
LEAKER: tuple[str, str] = (
    "shop",
    "/usr/bin/python3 /opt/shop/bin/gunicorn shop.wsgi:application --bind=0.0.0.0:8000 "
    '--name "shop, eu-west"',
)
KERNEL_SINGLETONS: tuple[str, ...] = (
    "[rcu_preempt]",
    "[kswapd0]",
    "[khugepaged]",
    "[kcompactd0]",
    "[oom_reaper]",
    "[kauditd]",
    "[jbd2/nvme0n1p2-8]",
    "[writeback]",
    "[kdevtmpfs]",
)
KERNEL_PER_CPU: tuple[str, ...] = (
    "[ksoftirqd/{c}]",
    "[migration/{c}]",
    "[cpuhp/{c}]",
    "[kworker/{c}:{n}-events]",
    "[kworker/{c}:{n}H-kblockd]",
    "[kworker/u{w}:{n}-events_unbound]",
    "[idle_inject/{c}]",
)


def _csv_line(fields: list[str]) -> str:
    """One row exactly as the collector's csv.writer (QUOTE_MINIMAL, "\\n") writes it."""
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\n").writerow(fields)
    return buffer.getvalue()


def _row_prefix(pid: int, ppid: int, user: str) -> str:
    """The `PID,PPID,USER,` text before RSS_MB; fixed for a process's whole life."""
    return _csv_line([str(pid), str(ppid), user, ""])[:-1]


def _row_suffix(vsz_kb: int, cmd: str) -> str:
    """The `,VSZ_MB,CMD,` text after RSS_MB; CMD quoted once here, not per snapshot."""
    return _csv_line(["", f"{vsz_kb / 1024:.3f}", cmd, ""])[:-1]


def _pages(kb: float) -> int:
    """A size in kB rounded to whole 4 kB pages, as ps and /proc/meminfo report them."""
    return round(float(kb) / PAGE_KB) * PAGE_KB


def _vsz_for(rss_kb: int) -> int:
    """A VSZ comfortably above a grown RSS, in whole 64 MiB steps."""
    return math.ceil((rss_kb * 1.25 + VSZ_STEP_KB) / VSZ_STEP_KB) * VSZ_STEP_KB


def _kernel_names(count: int) -> list[str]:
    """Kernel thread names; kthreadd first, then singletons and per-CPU threads."""
    names = ["[kthreadd]", *KERNEL_SINGLETONS]
    i = 0
    while len(names) < count:
        family = KERNEL_PER_CPU[i % len(KERNEL_PER_CPU)]
        cpu = (i // len(KERNEL_PER_CPU)) % CPUS
        serial = i // (len(KERNEL_PER_CPU) * CPUS)
        names.append(family.format(c=cpu, n=serial, w=CPUS * 4))
        i += 1
    return names[:count]


class _Services:
    """The random-walking services: the daemon slots they took, and their walks.

    They draw from a generator of their own, so that a host without services draws
    exactly what it drew before services existed (the same seed, the same bytes), and
    one with services differs only in their slots and in the meminfo they move.
    """

    def __init__(self, rng: np.random.Generator, slots: IntArray, interval_s: int):
        self.rng = rng
        self.slots = slots
        low, high = SERVICE_START_RANGE_MIB
        start_mib = rng.lognormal(
            math.log(SERVICE_START_MEDIAN_MIB), SERVICE_START_SIGMA, slots.size
        )
        self.start_kb: FloatArray = np.clip(start_mib, low, high) * MIB
        days_per_step = interval_s / DAY_S
        self.drift: FloatArray = rng.uniform(*SERVICE_DRIFT_PER_DAY, slots.size) * days_per_step
        self.sigma = SERVICE_SIGMA_PER_SQRT_DAY * math.sqrt(days_per_step)
        self.log_cap = math.log(SERVICE_MAX_GROWTH)
        self.log_growth: FloatArray = np.zeros(slots.size)

    def step(self) -> FloatArray:
        """The services' base RSS (kB) at the next snapshot: one step of each walk."""
        noise = self.rng.standard_normal(self.slots.size)
        walked = self.log_growth + self.drift + self.sigma * noise
        self.log_growth = np.clip(walked, 0.0, self.log_cap)
        return self.start_kb * np.exp(self.log_growth)


class _Host:
    """The simulated host: per-process state in numpy arrays, memory state in scalars.

    Slots hold processes; a short-lived slot is refilled by a new process (new PID)
    when its process ends, so every snapshot lists the same number of processes.
    """

    def __init__(
        self,
        rng: np.random.Generator,
        processes: int,
        snapshots: int,
        interval_s: int,
        start_s: int = 0,
        services: int = 0,
        service_rng: np.random.Generator | None = None,
    ):
        self.rng = rng
        self.start_s, self.interval_s = start_s, interval_s
        self.index = 0  # the snapshot being made
        self.building = True  # the processes there from the start are being made
        # The boot: long before the first snapshot, and one id for the whole run.
        self.boot_s = start_s - int(rng.integers(5, 60)) * DAY_S
        self.boot_id = str(uuid.UUID(bytes=rng.bytes(16), version=4))
        n_kernel = max(1, round(processes * KERNEL_SHARE))
        n_daemon = max(1, round(processes * DAEMON_SHARE))
        n_short = processes - n_kernel - n_daemon - 1
        if n_short < 1:
            n_daemon += n_short - 1
            n_short = 1
        self.n_fixed = n_kernel + n_daemon + 1
        size = processes

        self.pid: IntArray = np.zeros(size, dtype=np.int64)
        self.base_kb: FloatArray = np.zeros(size, dtype=np.float64)
        self.vsz_kb: IntArray = np.zeros(size, dtype=np.int64)
        self.dev: FloatArray = np.zeros(size, dtype=np.float64)
        self.life: IntArray = np.zeros(size, dtype=np.int64)  # short-lived slots only
        self.prefix: list[str] = [""] * size
        self.cmd: list[str] = [""] * size
        self.suffix: list[str] = [""] * size
        self.started: list[str] = [""] * size  # STARTED, as the collector writes it
        self.anon_share: FloatArray = np.zeros(size, dtype=np.float64)  # 0: a kernel thread

        # Slot layout: daemons (slot 0 is init), kernel threads, the leaker, short-lived.
        kernel = range(n_daemon, n_daemon + n_kernel)
        self.leak_slot = n_daemon + n_kernel
        # PIDs as on a host up for a while: kthreadd is 2, kernel threads come early,
        # then the daemons (and the leaker among them), then everything started since.
        kernel_draw = rng.choice(3 * n_kernel, n_kernel - 1, replace=False) + 3
        kernel_pids = [2, *sorted(int(p) for p in kernel_draw)]
        first_daemon_pid = kernel_pids[-1] + 50
        daemon_draw = rng.choice(12 * n_daemon, n_daemon, replace=False) + first_daemon_pid
        daemon_pids = [1, *sorted(int(p) for p in daemon_draw)]
        self.leak_pid = daemon_pids.pop(1 + int(rng.integers(n_daemon)))
        self.next_pid = first_daemon_pid + 12 * n_daemon + 2000  # the host has been up a while

        for slot, (name, pid) in enumerate(zip(_kernel_names(n_kernel), kernel_pids, strict=True)):
            self._fill(kernel[slot], pid, 0 if pid == 2 else 2, "root", name, 0.0, 0)

        for slot in range(n_daemon):
            pid = daemon_pids[slot]
            if slot < len(SPECIAL_DAEMONS):
                user, cmd, base_mib = SPECIAL_DAEMONS[slot]
                base_mib *= float(rng.uniform(0.9, 1.1))
            else:
                user, cmd = GENERIC_DAEMONS[int(rng.integers(len(GENERIC_DAEMONS)))]
                cmd = cmd.replace("<N>", str(int(rng.integers(2, 250))))
                base_mib = self._lognormal(DAEMON_MEDIAN_MIB, DAEMON_SIGMA, DAEMON_RANGE_MIB)
            if slot == 0:
                ppid = 0  # init
            elif slot > 1 and rng.random() < 0.3:
                ppid = daemon_pids[int(rng.integers(1, slot))]  # a child of an older daemon
            else:
                ppid = 1
            base_kb = base_mib * MIB
            vsz = _pages(base_kb * float(rng.uniform(1.5, 6.0)) + float(rng.uniform(20, 400)) * MIB)
            self._fill(slot, pid, ppid, user, cmd, base_kb, vsz)
        self.daemon_pids = daemon_pids

        self._fill(self.leak_slot, self.leak_pid, 1, *LEAKER, 0.0, _vsz_for(LEAK_START_KB))

        self.short_slots: IntArray = np.arange(self.n_fixed, size, dtype=np.int64)
        for slot in self.short_slots.tolist():
            self._spawn(slot)
            self.life[slot] = int(rng.integers(1, SHORT_LIFE[1] + 1))  # some already old
        self.dev = np.clip(rng.normal(0.0, NOISE_STEP * 2.3, size), -NOISE_CAP, NOISE_CAP)
        # Every user process has at least a page resident; kernel threads have none.
        self.min_rss: IntArray = np.full(size, PAGE_KB, dtype=np.int64)
        self.min_rss[n_daemon : n_daemon + n_kernel] = 0
        self.services = (
            None
            if services == 0
            else self._make_services(services, service_rng or np.random.default_rng(), n_daemon)
        )

        # Memory: size the host so the population uses at most BASE_SHARE of it.
        short_mean = SHORT_MEDIAN_MIB * math.exp(SHORT_SIGMA**2 / 2) * MIB
        population_kb = float(self.base_kb[: self.n_fixed].sum()) + n_short * short_mean
        population_kb += LEAK_START_KB
        if self.services is not None:  # room for every service at its largest
            population_kb += (SERVICE_MAX_GROWTH - 1.0) * float(self.services.start_kb.sum())
        total = MEM_TOTAL_MIN_KB
        while population_kb > BASE_SHARE * total:
            total *= 2
        self.mem_total = total
        self.swap_total = total // 2
        self.hugetlb_kb = HUGEPAGES_TOTAL * HUGE_PAGE_KB
        room = total - 1.15 * population_kb - RESERVED_KB
        budget = max(0.1 * total, LEAK_ROOM_SHARE * room)
        days = max(snapshots * interval_s / DAY_S, 1e-9)
        self.leak_per_snapshot = min(LEAK_MAX_PER_DAY_KB, budget / days) * interval_s / DAY_S
        self.leak_swapped = 0
        self.n_kernel = n_kernel
        self.swap_creep_max = SWAP_CREEP_MAX_KB_PER_H * interval_s / 3600

        # Slowly wandering kernel-side quantities (kB).
        self.cache_target = 0.45 * total
        self.buffers = 200.0 * MIB
        self.sreclaimable = 400.0 * MIB
        self.sunreclaim = 180.0 * MIB
        self.shmem = 150.0 * MIB
        self.active_share = 0.55
        self.swap_creep = float(_pages(float(rng.uniform(0, 64)) * MIB))
        # /proc/vmstat's and /proc/pressure/memory's counters since boot, as they stood at
        # the first snapshot; they rise with the pressure (no OOM kill on this host). Fixed
        # values, not drawn: a draw here would shift every later draw of the host.
        self.counters = {
            "oom_kill": 0,
            "pswpin": 1_200,
            "pswpout": 24_000,
            "pgmajfault": 90_000,
            "psi_some_total_us": 30_000_000,
            "psi_full_total_us": 18_000_000,
        }
        self._swap_used_kb = 0
        self.huge_in_use = 0
        self.building = False

    def _make_services(self, count: int, rng: np.random.Generator, n_daemon: int) -> _Services:
        """The last `count` generic daemons become services (user SERVICE_USER, a child
        of init, a command line of their own), with walks drawn from rng only."""
        first = n_daemon - count
        if first < len(SPECIAL_DAEMONS):
            most = n_daemon - len(SPECIAL_DAEMONS)
            raise ValueError(f"at most {most} services fit in this population, got {count}")
        services = _Services(rng, np.arange(first, n_daemon, dtype=np.int64), self.interval_s)
        for k, slot in enumerate(services.slots.tolist()):
            name = f"{SERVICE_NAMES[k % len(SERVICE_NAMES)]}{k // len(SERVICE_NAMES) + 1}"
            cmd = SERVICE_CMD.format(name=name)
            start_kb = float(services.start_kb[k])
            self.base_kb[slot] = start_kb
            self.vsz_kb[slot] = _vsz_for(int(start_kb))
            self.prefix[slot] = _row_prefix(int(self.pid[slot]), 1, SERVICE_USER)
            self.cmd[slot] = cmd
            self.suffix[slot] = _row_suffix(int(self.vsz_kb[slot]), cmd)
        return services

    def _lognormal(self, median_mib: float, sigma: float, bounds: tuple[float, float]) -> float:
        return float(np.clip(self.rng.lognormal(math.log(median_mib), sigma), *bounds))

    def _fill(
        self, slot: int, pid: int, ppid: int, user: str, cmd: str, base_kb: float, vsz_kb: int
    ) -> None:
        self.pid[slot] = pid
        self.base_kb[slot] = base_kb
        self.vsz_kb[slot] = vsz_kb
        self.dev[slot] = 0.0
        self.prefix[slot] = _row_prefix(pid, ppid, user)
        self.cmd[slot] = cmd
        self.suffix[slot] = _row_suffix(vsz_kb, cmd)
        # A process started at boot (the ones there from the start), or during the interval
        # before the snapshot that first lists it; to the collector's clock ticks.
        if self.building:
            born = self.boot_s if slot < self.n_fixed else self.start_s - self.interval_s
        else:
            born = self.start_s + self.index * self.interval_s  # first listed at index + 1
        hundredths = born * 100 + int(self.rng.integers(0, self.interval_s * 100))
        stamp = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(hundredths // 100))
        self.started[slot] = f"{stamp}.{hundredths % 100:02d}"
        # A kernel thread has no anonymous memory; a leaker's growth is all anonymous.
        kernel = cmd.startswith("[") and cmd.endswith("]")
        share = 0.97 if slot == self.leak_slot else float(self.rng.uniform(0.55, 0.95))
        self.anon_share[slot] = 0.0 if kernel else share

    def _spawn(self, slot: int) -> None:
        """A new short-lived process in `slot`, with the next free (higher) PID."""
        rng = self.rng
        self.next_pid += int(rng.integers(PID_GAP[0], PID_GAP[1] + 1))
        user, cmd = SHORT_LIVED[int(rng.integers(len(SHORT_LIVED)))]
        cmd = cmd.replace("<N>", str(int(rng.integers(1, 10_000))))
        ppid = self.daemon_pids[int(rng.integers(len(self.daemon_pids)))]
        base_kb = self._lognormal(SHORT_MEDIAN_MIB, SHORT_SIGMA, SHORT_RANGE_MIB) * MIB
        vsz = _pages(base_kb * float(rng.uniform(1.5, 4.0)) + float(rng.uniform(5, 120)) * MIB)
        self._fill(slot, self.next_pid, ppid, user, cmd, base_kb, vsz)
        self.life[slot] = int(rng.integers(SHORT_LIFE[0], SHORT_LIFE[1] + 1))

    def _walk(self, value: float, step: float, noise: float, low: float, high: float) -> float:
        """A multiplicative random walk kept within bounds."""
        return min(max(value * math.exp(step * noise), low), high)

    def step(self, index: int) -> tuple[IntArray, dict[str, int]]:
        """Advance to snapshot `index`: every process's RSS (kB) and the meminfo values."""
        self.index = index
        rng = self.rng
        if self.services is not None:
            self.base_kb[self.services.slots] = self.services.step()
        noise = rng.standard_normal(self.pid.size)
        self.dev = np.clip(NOISE_KEEP * self.dev + NOISE_STEP * noise, -NOISE_CAP, NOISE_CAP)
        rss = np.rint(self.base_kb * (1.0 + self.dev) / PAGE_KB).astype(np.int64) * PAGE_KB
        np.maximum(rss, self.min_rss, out=rss)
        leak_dev = float(self.dev[self.leak_slot])
        demand = LEAK_START_KB * (1.0 + leak_dev) + self.leak_per_snapshot * index
        rss[self.leak_slot] = _pages(demand) - self.leak_swapped

        values = self._meminfo(rss)

        bumped = np.flatnonzero(rss > VSZ_BUMP_RATIO * self.vsz_kb)
        for slot in bumped.tolist():
            self.vsz_kb[slot] = _vsz_for(int(rss[slot]))
            self.suffix[slot] = _row_suffix(int(self.vsz_kb[slot]), self.cmd[slot])
        return rss, values

    def _meminfo(self, rss: IntArray) -> dict[str, int]:
        """The /proc/meminfo values (kB; pages for HugePages_*) implied by this RSS.

        RAM used (MemTotal - MemFree - Buffers - Cached - SReclaimable) is the summed RSS
        plus kernel overhead; the page cache fills what is left down to a floor, and
        below that the leaker's cold pages go to swap (its RSS drops accordingly).
        """
        rng = self.rng
        z = rng.standard_normal(8)
        u = rng.random(4)
        total = self.mem_total
        self.cache_target = self._walk(self.cache_target, 0.01, z[0], 0.3 * total, 0.6 * total)
        self.buffers = self._walk(self.buffers, 0.02, z[1], 50.0 * MIB, 600.0 * MIB)
        self.sreclaimable = self._walk(self.sreclaimable, 0.02, z[2], 150.0 * MIB, 1200.0 * MIB)
        self.sunreclaim = self._walk(self.sunreclaim, 0.01, z[3], 100.0 * MIB, 400.0 * MIB)
        self.shmem = self._walk(self.shmem, 0.02, z[4], 50.0 * MIB, 600.0 * MIB)
        self.active_share = min(max(self.active_share + 0.005 * float(z[5]), 0.4), 0.7)
        if u[0] < 0.05:
            self.huge_in_use = int(rng.integers(0, 17))

        n_user = int(self.pid.size - self.n_kernel)
        kernel_stack = (n_user * 4 + self.n_kernel) * 16
        buffers = _pages(self.buffers)
        sreclaimable = _pages(self.sreclaimable)
        sunreclaim = _pages(self.sunreclaim)
        shmem = _pages(self.shmem)
        free_min = _pages(0.008 * total * (1.0 + 0.2 * float(u[1])))
        cache_floor = shmem + 256 * MIB

        def used_by(rss_sum: int) -> int:
            page_tables = _pages(rss_sum / 256)
            return (
                rss_sum
                + sunreclaim
                + kernel_stack
                + page_tables
                + MISC_KERNEL_KB
                + (self.hugetlb_kb)
            )

        rss_sum = int(rss.sum())
        used = used_by(rss_sum)
        room = total - used - buffers - sreclaimable - free_min
        if room < cache_floor:
            leak_rss = int(rss[self.leak_slot])
            excess = min(_pages(cache_floor - room + PAGE_KB), max(leak_rss - 64 * MIB, 0))
            self.leak_swapped += excess
            rss[self.leak_slot] = leak_rss - excess
            rss_sum -= excess
            used = used_by(rss_sum)
            room = total - used - buffers - sreclaimable - free_min
        cached = max(min(_pages(self.cache_target), room), 0)
        mem_free = max(total - used - buffers - cached - sreclaimable, 0)
        watermark = _pages(0.004 * total)
        pagecache = max(cached + buffers - shmem, 0)
        available = (
            mem_free
            - watermark
            + pagecache
            - min(pagecache // 2, watermark)
            + sreclaimable
            - min(sreclaimable // 2, watermark)
        )
        available = min(max(_pages(available), 0), total)

        pressure = min(max((SWAP_PRESSURE_AT - available / total) / SWAP_PRESSURE_AT, 0.0), 1.0)
        self.swap_creep += pressure * float(u[2]) * self.swap_creep_max
        swap_used = min(_pages(self.swap_creep) + self.leak_swapped, self.swap_total)
        self._count(pressure, swap_used, float(u[1]))
        anon = _pages(rss_sum * 0.8)
        lru = anon + cached + buffers
        active = _pages(lru * self.active_share)
        hugetlb_pages = HUGEPAGES_TOTAL
        values = {
            "MemTotal": total,
            "MemFree": mem_free,
            "MemAvailable": available,
            "Buffers": buffers,
            "Cached": cached,
            "SwapCached": _pages(swap_used / 25),
            "Active": active,
            "Inactive": lru - active,
            "SwapTotal": self.swap_total,
            "SwapFree": self.swap_total - swap_used,
            "Dirty": _pages(abs(float(z[6])) * 6 * MIB),
            "Writeback": _pages(float(u[3]) * 40 * MIB) if u[3] < 0.05 else 0,
            "AnonPages": anon,
            "Mapped": min(_pages(rss_sum * 0.15 + shmem / 2), cached),
            "Shmem": shmem,
            "Slab": sreclaimable + sunreclaim,
            "SReclaimable": sreclaimable,
            "SUnreclaim": sunreclaim,
            "KernelStack": kernel_stack,
            "PageTables": _pages(rss_sum / 256),
            "CommitLimit": self.swap_total + (total - self.hugetlb_kb) // 2,
            "Committed_AS": _pages(anon * 1.7 + shmem + (600 + 50 * float(z[7])) * MIB),
            "AnonHugePages": int(anon * 0.06) // HUGE_PAGE_KB * HUGE_PAGE_KB,
            "HugePages_Total": hugetlb_pages,
            "HugePages_Free": hugetlb_pages - self.huge_in_use,
        }
        return values

    def _count(self, pressure: float, swap_used_kb: int, draw: float) -> None:
        """The counters over one interval: pages swapped out as swap use grows (and a few
        read back), major faults, and memory stalls that grow with the pressure."""
        grown_pages = max(swap_used_kb - self._swap_used_kb, 0) // PAGE_KB
        self._swap_used_kb = swap_used_kb
        counters = self.counters
        counters["pswpout"] += grown_pages + int(draw * 4)
        counters["pswpin"] += int(draw * 3 + pressure * 50)
        counters["pgmajfault"] += int(20 + draw * 200 + pressure * 2000)
        stalled_us = int(self.interval_s * 1e6 * (0.0005 * draw + 0.05 * pressure**2))
        counters["psi_some_total_us"] += stalled_us
        counters["psi_full_total_us"] += stalled_us * 3 // 5

    def process_text(self, rss: IntArray) -> str:
        """The whole process_mem file, rows in PID order like ps; only numbers formatted.
        A kernel thread has no RssAnon or VmSwap; the leaker's swap is what pressure took
        of it, so its anon + swap goes on rising when its RSS stops."""
        order = np.argsort(self.pid, kind="stable").tolist()
        rss_mib = (rss / 1024).tolist()
        anon_kb = np.rint(rss * self.anon_share / PAGE_KB) * PAGE_KB
        swap_kb = np.zeros(rss.size)
        swap_kb[self.leak_slot] = self.leak_swapped
        anon, swap = (anon_kb / 1024).tolist(), (swap_kb / 1024).tolist()
        prefix, suffix, started, kernel = self.prefix, self.suffix, self.started, self.anon_share
        # CGROUP: a kernel thread is in the root cgroup, the rest in system.slice.
        rows = [
            (
                f"{prefix[i]}{rss_mib[i]:.3f}{suffix[i]}{anon[i]:.3f},{swap[i]:.3f},{started[i]}"
                f",{SYSTEM_CGROUP}\n"
                if kernel[i]
                else f"{prefix[i]}{rss_mib[i]:.3f}{suffix[i]},,{started[i]},/\n"
            )
            for i in order
        ]
        return _PROCESS_HEADER_TEXT + "".join(rows)

    def age(self) -> None:
        """End the short-lived processes whose time is up; new ones take their slots."""
        short = self.short_slots
        self.life[short] -= 1
        for slot in short[self.life[short] <= 0].tolist():
            self._spawn(slot)


# As a collector that reads no Pss (--pss-budget-ms 0, or before it could) writes them:
# the process files end before PSS_MB, so that the golden outputs pin that reading.
SYNTHETIC_PROCESS_HEADER = tuple(name for name in PROCESS_HEADER if name not in PSS_EXTRA)
_PROCESS_HEADER_TEXT = csv_text(SYNTHETIC_PROCESS_HEADER, [])
SYSTEM_CGROUP = "/system.slice"


def _validate(
    snapshots: int, processes: int, interval_s: int, outage: tuple[int, int] | None
) -> range:
    """The indices of the missing snapshots, after checking every argument (but the
    services: whether they fit in the population is the host's to say)."""
    if snapshots < 1:
        raise ValueError(f"snapshots must be at least 1, got {snapshots}")
    if processes < MIN_PROCESSES:
        raise ValueError(f"processes must be at least {MIN_PROCESSES}, got {processes}")
    if interval_s < 1:
        raise ValueError(f"interval_s must be at least 1 (names are per second), got {interval_s}")
    if outage is None:
        return range(0)
    first, missing = outage
    if first < 0 or missing < 0 or first + missing > snapshots:
        raise ValueError(f"outage {outage} does not fit in {snapshots} snapshots")
    if missing >= snapshots:
        raise ValueError("the outage covers every snapshot; nothing would be written")
    return range(first, first + missing)


def generate_dumps(
    out_dir: Path,
    snapshots: int,
    processes: int = 500,
    seed: int = 0,
    start: datetime = datetime(2026, 1, 1, tzinfo=UTC),
    interval_s: int = 600,
    outage: tuple[int, int] | None = None,
    services: int = 0,
) -> GeneratedSummary:
    """Write `snapshots` sys_mem/process_mem pairs `interval_s` apart into out_dir.

    Snapshot i is stamped start + i * interval_s (a naive `start` is taken as UTC).
    `outage=(first_index, n_missing)` writes no files for those indices, as if the
    collector had been down; the host keeps running meanwhile. `services` long-lived
    daemons random-walk upwards (see _Services), enough for the leak finder to flag them
    over weeks; with none, the bytes are those of a host without them. Refuses a directory that
    already holds dumps, since mixing two runs would silently corrupt any analysis.
    """
    gap = _validate(snapshots, processes, interval_s, outage)
    if services < 0:
        raise ValueError(f"services must be at least 0, got {services}")
    start = start.replace(tzinfo=UTC) if start.tzinfo is None else start.astimezone(UTC)
    out_dir.mkdir(parents=True, exist_ok=True)
    for pattern in snapshot_names("*"):
        clash = next(out_dir.glob(pattern), None)
        if clash is not None:
            raise FileExistsError(f"{out_dir} already holds dumps ({clash.name}); use a new dir")

    start_s = int(start.timestamp())
    service_rng = np.random.default_rng((seed, SERVICE_SEED_STREAM))
    host = _Host(
        np.random.default_rng(seed),
        processes,
        snapshots,
        interval_s,
        start_s,
        services,
        service_rng,
    )
    sys_header = ",".join(SYS_HEADER) + "\n"
    written = 0
    total_bytes = 0
    first: datetime | None = None
    last = start
    for index in range(snapshots):
        rss, values = host.step(index)
        if index not in gap:
            stamp = start + timedelta(seconds=index * interval_s)
            sys_name, process_name = snapshot_names(stamp.strftime(TIMESTAMP_FORMAT))
            row = sys_row(values, host.boot_id, host.counters)
            sys_bytes = (sys_header + ",".join(row) + "\n").encode()
            process_bytes = host.process_text(rss).encode("utf-8")
            (out_dir / sys_name).write_bytes(sys_bytes)
            (out_dir / process_name).write_bytes(process_bytes)
            total_bytes += len(sys_bytes) + len(process_bytes)
            written += 1
            first = stamp if first is None else first
            last = stamp
        host.age()
    assert first is not None  # _validate guarantees one written snapshot
    return GeneratedSummary(written, first, last, total_bytes, host.leak_pid)


def main(argv: list[str] | None = None) -> int:
    """Generate dumps from the command line, e.g. the benchmark's month, and say what."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("out_dir", type=Path, metavar="OUT_DIR")
    parser.add_argument(
        "--snapshots",
        type=int,
        default=4320,
        metavar="N",
        help="snapshot pairs, including any outage (default 4320: a month)",
    )
    parser.add_argument(
        "--processes",
        type=int,
        default=500,
        metavar="P",
        help="processes in every snapshot (default 500)",
    )
    parser.add_argument("--seed", type=int, default=0, metavar="S", help="default 0")
    parser.add_argument(
        "--interval",
        type=int,
        default=600,
        metavar="SECONDS",
        help="seconds between snapshots (default 600)",
    )
    parser.add_argument(
        "--outage",
        type=int,
        nargs=2,
        default=None,
        metavar=("FIRST", "COUNT"),
        help="leave COUNT snapshots out from FIRST",
    )
    parser.add_argument(
        "--services",
        type=int,
        default=0,
        metavar="N",
        help="long-lived services whose RSS random-walks upwards (default 0)",
    )
    args = parser.parse_args(argv)
    outage = None if args.outage is None else (args.outage[0], args.outage[1])
    began = time.perf_counter()
    try:
        summary = generate_dumps(
            args.out_dir,
            args.snapshots,
            args.processes,
            args.seed,
            interval_s=args.interval,
            outage=outage,
            services=args.services,
        )
    except (ValueError, OSError) as err:
        print(f"synthetic: {err}", file=sys.stderr)
        return 1
    took = time.perf_counter() - began
    print(
        f"{args.out_dir}: {summary.snapshots} snapshot pairs, "
        f"{summary.first:%Y-%m-%d %H:%M:%S} to {summary.last:%Y-%m-%d %H:%M:%S} UTC, "
        f"{summary.bytes_written / 1e6:.1f} MB, leaking PID {summary.leak_pid}, {took:.1f} s"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
