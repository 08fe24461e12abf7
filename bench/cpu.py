"""Where the machine's cores went during a measurement, by component (read from /proc, Linux only).

    with CpuSampler() as cpu:
        run_workload(...)
    cpu.shares()   # {"replicator": 0.27, "cassandra": 0.31, ..., "idle": 0.41}  (1.0 = one core)
    cpu.waits()    # {"replicator": 0.22, ...}: its threads runnable but waiting for a core
    cpu.pressure() # 0.86: share of the window in which some task waited for a core (PSI)

On a small box the benchmark shares its cores with the whole stack and the workload generator, so a
latency figure is only readable next to what everything else was doing. Processes are grouped by
their command line (a multiprocessing worker by its parent's); a process that starts and ends
between two readings (one a second) is not seen.

Use says what each component got; wait says what it asked for and did not get. A replicator that
used 0.35 cores and waited 0.30 ran at about half the speed it would have alone: every batch phase
(decode included, pure CPU) took twice as long, which is what a freshness tail under load is made
of. Waits come from each thread's run-queue time (/proc/PID/task/TID/schedstat, read at the start
and the end: threads that ended inside the window are not counted), the machine's pressure from
/proc/pressure/cpu (None where the kernel has no PSI).
"""

from __future__ import annotations

import os
import threading
import time
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

__all__ = [
    "CpuSampler",
    "TreeUsage",
    "component_of",
    "merge_reading",
    "pressure_total_us",
    "pressure_us",
    "tree_usage",
]

_TICKS = os.sysconf("SC_CLK_TCK")

# First match wins: (component, substrings of the command line, any of which identifies it).
_COMPONENTS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("replicator", ("scv consume", "-m consumer")),
    ("load generator (pgbench)", ("pgbench",)),
    # The peer's Connect worker (bench/peer/worker.py): its temporary folder is on its command line.
    ("peer sink (Connect)", ("scv-bench-peer-",)),
    ("connect", ("ConnectDistributed",)),
    ("cassandra", ("CassandraDaemon",)),
    ("kafka", ("kafka.Kafka",)),
    ("registry", ("apicurio", "quarkus")),
    ("postgres walsenders", ("postgres: walsender",)),
    ("postgres", ("postgres:", "bin/postgres")),
    ("pipeline exporter", ("scv.exporter", "scv exporter")),
    ("prometheus", ("prometheus",)),
)


def component_of(cmdline: str, own_pid_group: bool = False, parent: str = "") -> str:
    """``parent``: the parent's command line, which names a ``multiprocessing`` worker's component
    (``scv consume --processes N`` spawns its workers that way)."""
    if own_pid_group:
        return "benchmark + workload"
    for name, needles in _COMPONENTS:
        if any(needle in cmdline for needle in needles):
            return name
    if "multiprocessing" in cmdline and parent:
        return component_of(parent)
    return "other"


def _ticks_by_pid() -> dict[int, tuple[str, int, int]]:
    """pid -> (command line, parent pid, CPU ticks so far)."""
    found: dict[int, tuple[str, int, int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue  # ended while being read
        # ppid, utime and stime: fields 4, 14 and 15 of /proc/PID/stat (2, 12, 13 after the ") ").
        found[int(entry.name)] = (cmdline, int(fields[1]), int(fields[11]) + int(fields[12]))
    return found


def merge_reading(last: dict[int, tuple[str, int, int]], reading: dict[int, tuple[str, int, int]]) -> None:
    """Fold a new /proc reading into ``last``, keeping a process's known command line when it now
    reads empty: an exited process not yet reaped (a zombie) has no command line left, and a
    PostgreSQL backend that pgbench just closed would otherwise count as "other"."""
    for pid, (cmdline, ppid, ticks) in reading.items():
        known = last.get(pid)
        last[pid] = (cmdline or (known[0] if known else ""), ppid, ticks)


def _run_queue_ns(pid: int) -> int:
    """Nanoseconds the process's live threads have spent runnable, waiting for a core."""
    total = 0
    try:
        tasks = list(Path(f"/proc/{pid}/task").iterdir())
    except OSError:
        return 0
    for task in tasks:
        try:
            total += int((task / "schedstat").read_text().split()[1])
        except (OSError, IndexError, ValueError):
            continue  # ended while being read, or no schedstat in this kernel
    return total


def _waits_by_pid(pids: Iterable[int]) -> dict[int, int]:
    return {pid: _run_queue_ns(pid) for pid in pids}


def pressure_total_us(text: str) -> int | None:
    """The ``some`` line's total of /proc/pressure/cpu: microseconds in which at least one runnable
    task waited for a core."""
    for line in text.splitlines():
        if line.startswith("some "):
            for field in line.split():
                if field.startswith("total="):
                    return int(field.removeprefix("total="))
    return None


def pressure_us() -> int | None:
    """The ``some`` total of /proc/pressure/cpu now (None without PSI)."""
    try:
        return pressure_total_us(Path("/proc/pressure/cpu").read_text())
    except OSError:
        return None


def _machine_ticks() -> tuple[int, int]:
    values = [int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    return sum(values), values[3] + values[4]  # total, idle + iowait


class CpuSampler:
    """CPU used by each component between ``__enter__`` and ``__exit__``, in cores.

    /proc is read every ``every_s`` in a thread: a process that ends inside the window (a pgbench
    run's PostgreSQL backends, say) is counted up to its last reading instead of vanishing."""

    def __init__(self, every_s: float = 1.0) -> None:
        self._own = os.getpid()
        self._every_s = every_s
        self._start: dict[int, tuple[str, int, int]] = {}
        self._last: dict[int, tuple[str, int, int]] = {}
        self._machine: tuple[tuple[int, int], tuple[int, int]] = ((0, 0), (0, 0))
        self._wall = 0.0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._waits: tuple[dict[int, int], dict[int, int]] = ({}, {})
        self._pressure: tuple[int | None, int | None] = (None, None)

    def _poll(self) -> None:
        while not self._stop.wait(self._every_s):
            merge_reading(self._last, _ticks_by_pid())

    def __enter__(self) -> CpuSampler:
        self._start = _ticks_by_pid()
        self._last = dict(self._start)
        self._machine = (_machine_ticks(), (0, 0))
        self._waits = (_waits_by_pid(self._start), {})
        self._pressure = (pressure_us(), None)
        self._wall_start = time.monotonic()
        self._thread = threading.Thread(target=self._poll, name="cpu-sampler", daemon=True)
        self._thread.start()
        return self

    def __exit__(
        self, _type: type[BaseException] | None, _exc: BaseException | None, _tb: TracebackType | None
    ) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        merge_reading(self._last, _ticks_by_pid())
        self._machine = (self._machine[0], _machine_ticks())
        self._waits = (self._waits[0], _waits_by_pid(self._last))
        self._pressure = (self._pressure[0], pressure_us())
        self._wall = time.monotonic() - self._wall_start

    def shares(self) -> dict[str, float]:
        """Cores used per component (largest first), and ``idle`` for what nobody used."""
        used: Counter[str] = Counter()
        for pid, (cmdline, ppid, ticks) in self._last.items():
            before = self._start.get(pid, ("", 0, 0))[2]  # 0: started inside the window
            parent = self._last.get(ppid, ("", 0, 0))[0]
            used[component_of(cmdline, own_pid_group=pid == self._own, parent=parent)] += ticks - before
        seconds = max(self._wall, 1e-9)
        shares = {name: ticks / _TICKS / seconds for name, ticks in used.most_common() if ticks > 0}
        (total_a, idle_a), (total_b, idle_b) = self._machine
        cores = os.cpu_count() or 1
        if total_b > total_a:
            shares["idle"] = cores * (idle_b - idle_a) / (total_b - total_a)
        return shares

    def _component(self, pid: int) -> str:
        cmdline, ppid, _ticks = self._last.get(pid, ("", 0, 0))
        parent = self._last.get(ppid, ("", 0, 0))[0]
        return component_of(cmdline, own_pid_group=pid == self._own, parent=parent)

    def waits(self) -> dict[str, float]:
        """Per component, the average number of its threads that were runnable but had no core
        (seconds waited per second of the window), largest first."""
        before, after = self._waits
        waited: Counter[str] = Counter()
        for pid, ns in after.items():
            waited[self._component(pid)] += max(0, ns - before.get(pid, 0))
        seconds = max(self._wall, 1e-9)
        return {name: ns / 1e9 / seconds for name, ns in waited.most_common() if ns > 0}

    def pressure(self) -> float | None:
        """Share of the window in which at least one runnable task waited for a core (PSI "some")."""
        start, end = self._pressure
        if start is None or end is None or self._wall <= 0:
            return None
        return min(1.0, (end - start) / 1e6 / self._wall)


@dataclass(frozen=True)
class TreeUsage:
    """CPU seconds and peak resident memory of a process and its descendants (a supervisor's workers)."""

    cpu_seconds: float
    peak_rss_bytes: int  # summed over the processes: what the deployment needs in memory at once
    processes: int


def _peak_rss(pid: int) -> int:
    # VmHWM: the process's resident high-water mark since it started (kB).
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    return 0


def tree_usage(root: int) -> TreeUsage:
    """CPU and peak RSS of ``root`` and every live descendant, read now from /proc."""
    readings = _ticks_by_pid()
    children: dict[int, list[int]] = {}
    for pid, (_cmdline, ppid, _ticks) in readings.items():
        children.setdefault(ppid, []).append(pid)
    pending, ticks, rss, count = [root], 0, 0, 0
    while pending:
        pid = pending.pop()
        if pid not in readings:
            continue
        try:
            rss += _peak_rss(pid)
        except OSError:
            continue  # ended while being read
        ticks += readings[pid][2]
        count += 1
        pending.extend(children.get(pid, []))
    return TreeUsage(ticks / _TICKS, rss, count)
