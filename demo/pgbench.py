"""The demo workload driven by pgbench: the operations run server-side (demo/server_ops.py), pgbench
only paces the calls, so the load generator does not compete with the pipeline for the CPU.

    stats = run_pgbench_workload(get_settings(), rate=1000, duration_s=60)
    stats.achieved_rate          # operations/s completed, summed over crm, core and care

Each database gets its share of ``rate`` by the weights of its operations (demo/operations.py), and
pgbench's ``--rate`` schedules calls as a Poisson process at that mean: a steady rate with the
small bursts real traffic has. pgbench comes with the stack's PostgreSQL (the Debian package).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import structlog

from compose.versions import load_versions
from demo.connect import connect
from demo.exceptions import DemoError, WorkloadFailed
from demo.model import database_names
from demo.server_ops import SCHEMA, database_weight, render_functions
from scv.config.settings import Settings

__all__ = ["PgbenchStats", "install_server_ops", "pgbench_path", "run_pgbench_workload"]

log = structlog.get_logger(__name__)

_PROCESSED = re.compile(r"number of transactions actually processed: (\d+)")
_TPS = re.compile(r"tps = ([\d.]+) \(without initial connection time\)")
_FAILED = re.compile(r"number of failed transactions: (\d+)")


@dataclass(frozen=True)
class PgbenchStats:
    requested_rate: float
    elapsed_s: float
    transactions: dict[str, int]  # per demo database (crm, core, care)
    rates: dict[str, float]  # operations/s pgbench reports per database

    @property
    def achieved_rate(self) -> float:
        return sum(self.rates.values())

    @property
    def changes(self) -> int:
        return sum(self.transactions.values())


def pgbench_path() -> Path:
    """pgbench of the stack's PostgreSQL major version (installed with its server package)."""
    bundled = Path(f"/usr/lib/postgresql/{load_versions().postgres}/bin/pgbench")
    if bundled.exists():
        return bundled
    found = shutil.which("pgbench")
    if found is None:
        raise DemoError(f"pgbench not found at {bundled} or on PATH; run `scv stack up`, which installs it")
    return Path(found)


def install_server_ops(settings: Settings, database_prefix: str = "") -> int:
    """(Re)create the server-side operations in the demo databases; returns the highest customer id."""
    names = database_names(database_prefix)
    for source, name in names.items():
        with connect(settings, name) as conn:
            conn.execute(render_functions(source))
    with connect(settings, names["crm"]) as conn:
        row = conn.execute("SELECT max(customer_id) FROM customers").fetchone()
    if row is None or row[0] is None:
        raise DemoError(f"{names['crm']} has no customers; run `scv demo seed` first")
    return int(row[0])


def _read_stderr(
    source: str,
    process: subprocess.Popen[str],
    lines: list[str],
    on_progress: Callable[[str], None] | None,
) -> None:
    assert process.stderr is not None
    for line in process.stderr:
        lines.append(line)
        if on_progress is not None and line.startswith("progress:"):
            on_progress(f"{source}: {line.rstrip()}")


def run_pgbench_workload(
    settings: Settings,
    *,
    rate: float,
    duration_s: float,
    database_prefix: str = "",
    clients: int = 4,
    on_progress: Callable[[str], None] | None = None,
    on_started: Callable[[], None] | None = None,
) -> PgbenchStats:
    """Run ``rate`` operations/s for ``duration_s`` (whole seconds, as pgbench counts them);
    ``on_started`` is called once every pgbench process runs (the server functions are installed
    before, which takes a moment a caller timing the load must not count)."""
    if not rate > 0 or duration_s < 1:
        raise ValueError(f"rate must be positive and duration at least 1 s, got {rate}/s for {duration_s} s")
    max_customer = install_server_ops(settings, database_prefix)
    binary = pgbench_path()
    pg = settings.postgres
    env = {
        **os.environ,
        # Asynchronous commit, as the Python workload: the benchmark measures the pipeline, not fsync.
        "PGOPTIONS": "-c synchronous_commit=off",
        "PGAPPNAME": "scv-demo-pgbench",
    }
    if pg.password.get_secret_value():
        env["PGPASSWORD"] = pg.password.get_secret_value()  # the environment, never the command line
    elif pg.passfile is not None:
        env["PGPASSFILE"] = str(pg.passfile)  # the stack's superuser password (PostgreSQL trusts no TCP)
    names = database_names(database_prefix)
    total_weight = sum(database_weight(source) for source in names)
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="scv-pgbench-") as tmp:
        script = Path(tmp) / "step.sql"
        script.write_text(f"SELECT {SCHEMA}.step(:max_customer);\n")
        runs: dict[str, subprocess.Popen[str]] = {}
        for source, name in names.items():
            share = rate * database_weight(source) / total_weight
            argv = [
                str(binary), "--no-vacuum", "--host", pg.host, "--port", str(pg.port), "--username", pg.user,
                "--client", str(clients), "--jobs", "1", "--rate", f"{share:.3f}",
                "--time", str(round(duration_s)), "--progress", "5",
                "--define", f"max_customer={max_customer}", "--file", str(script), name,
            ]  # fmt: skip
            # A session of its own, so a CPU scheduling group of its own (Linux autogroups): the load
            # stands for the systems of record's users, and must not take its CPU from the group of
            # the process that started it (the benchmark's, which holds the replicator under test).
            runs[source] = subprocess.Popen(
                argv,
                env=env,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
                start_new_session=True,
            )
        log.info("pgbench_workload_started", rate=rate, duration_s=duration_s, max_customer=max_customer)
        try:
            if on_started is not None:
                on_started()
            # pgbench reports progress on stderr every 5 s; read as it comes, so a long run shows it live.
            errors: dict[str, list[str]] = {source: [] for source in runs}
            readers = [
                threading.Thread(target=_read_stderr, args=(source, process, errors[source], on_progress))
                for source, process in runs.items()
            ]
            for reader in readers:
                reader.start()
            outputs: dict[str, tuple[int, str]] = {}
            for source, process in runs.items():
                assert process.stdout is not None
                out = process.stdout.read()
                outputs[source] = (process.wait(), out)
            for reader in readers:
                reader.join()
        finally:
            # Outside the terminal's process group, an interrupted caller's pgbench would run on.
            for process in runs.values():
                if process.poll() is None:
                    process.terminate()
                    process.wait(10)
    elapsed = time.monotonic() - started
    transactions: dict[str, int] = {}
    rates: dict[str, float] = {}
    for source, (code, out) in outputs.items():
        err = "".join(errors[source])
        processed, tps = _PROCESSED.search(out), _TPS.search(out)
        failed = _FAILED.search(out)
        if code != 0 or processed is None or tps is None or (failed and int(failed.group(1))):
            tail = "\n".join((out + err).strip().splitlines()[-8:])
            raise WorkloadFailed(
                f"pgbench against {names[source]} failed (exit {code}); its last lines:\n{tail}\n"
                f"check the database with `scv demo seed` and the server log with `scv stack logs postgres`"
            )
        transactions[source] = int(processed.group(1))
        rates[source] = float(tps.group(1))
    stats = PgbenchStats(rate, elapsed, transactions, rates)
    log.info("pgbench_workload_finished", achieved_rate=round(stats.achieved_rate, 1), changes=stats.changes)
    return stats
