"""``scv demo``: seed the demo systems of record and drive a change workload into them.

scv demo seed --customers 1000 --seed 42
scv demo workload --rate 500 --duration 60
"""

from __future__ import annotations

import math
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from demo.exceptions import DemoError, PostgresUnavailable
from demo.pgbench import run_pgbench_workload
from demo.seed import SeedReport, seed_demo
from demo.workload import WorkloadProgress, WorkloadStats, run_workload
from scv.config.settings import get_settings

__all__ = ["app"]

app = typer.Typer(
    help="The demo systems of record (crm, core, care): seed them, then keep them busy.", no_args_is_help=True
)
console = Console()
errors = Console(stderr=True)


def _fail(exc: DemoError) -> typer.Exit:
    errors.print(f"[bold red]error:[/] {exc}", highlight=False)
    # 2 for "the stack is not there", 1 for everything else, so scripts can tell them apart.
    return typer.Exit(code=2 if isinstance(exc, PostgresUnavailable) else 1)


def _print_seed(report: SeedReport) -> None:
    table = Table(title=f"demo seed: {report.customers} customers, seed {report.seed}")
    table.add_column("database")
    table.add_column("action")
    table.add_column("table")
    table.add_column("rows", justify="right")
    for db in report.databases:
        action = db.action.replace("_", " ") + (" (database created)" if db.created else "")
        for index, (name, rows) in enumerate(db.rows.items()):
            table.add_row(db.name if index == 0 else "", action if index == 0 else "", name, f"{rows:,}")
        table.add_section()
    console.print(table)
    created = ", ".join(report.roles_created) or "none (existing roles re-aligned)"
    console.print(f"CDC roles created: {created}; passwords in {report.secrets_dir} (0600, not shown)")
    console.print(f"done in {report.elapsed_s:.1f}s")


@app.command()
def seed(
    customers: Annotated[int, typer.Option(min=1, help="Customers to generate.")] = 1000,
    seed: Annotated[int, typer.Option(help="Random seed; the same seed gives identical data.")] = 42,
    reset: Annotated[bool, typer.Option(help="Drop and recreate the demo databases first.")] = False,
) -> None:
    """Create the crm, core and care databases, their CDC roles, and fill them (idempotent)."""
    with Progress(
        TextColumn("[bold]seeding"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("customers"),
        TimeElapsedColumn(),
        console=console,
        transient=True,
    ) as progress:
        task = progress.add_task("seed", total=customers)

        def advance(done: int, total: int) -> None:
            progress.update(task, completed=done, total=total)

        try:
            report = seed_demo(
                get_settings(), customers=customers, seed=seed, reset=reset, on_progress=advance
            )
        except DemoError as exc:
            progress.stop()
            raise _fail(exc) from exc
    _print_seed(report)


def _print_stats(stats: WorkloadStats) -> None:
    table = Table(title="demo workload")
    table.add_column("operation")
    table.add_column("changes", justify="right")
    for name, count in stats.per_operation.items():
        table.add_row(name, f"{count:,}")
    console.print(table)
    requested = "unlimited" if not math.isfinite(stats.requested_rate) else f"{stats.requested_rate:,.0f}/s"
    console.print(
        f"{stats.changes:,} changes in {stats.elapsed_s:.1f}s: {stats.achieved_rate:,.1f}/s achieved "
        f"(requested {requested}, {stats.workers} workers); rows inserted {stats.rows_inserted:,}, "
        f"updated {stats.rows_updated:,}, deleted {stats.rows_deleted:,}; skipped slots {stats.skipped}"
    )


@app.command()
def workload(
    *,
    rate: Annotated[
        float, typer.Option(min=0.1, help="Changes per second across the three databases.")
    ] = 100.0,
    duration: Annotated[float | None, typer.Option(min=0.1, help="Seconds to run.")] = None,
    changes: Annotated[int | None, typer.Option(min=1, help="Stop after this many changes.")] = None,
    seed: Annotated[int, typer.Option(help="Random seed of the operation mix.")] = 0,
    workers: Annotated[
        int | None, typer.Option(min=1, help="Concurrent workers (default: from rate).")
    ] = None,
    report_every: Annotated[float, typer.Option(min=0.5, help="Seconds between progress reports.")] = 5.0,
    pgbench: Annotated[
        bool,
        typer.Option(
            "--pgbench",
            help="Run the same operations server-side, paced by pgbench (Poisson arrivals): the load "
            "costs the machine a tenth of the Python driver. Needs --duration; ignores --changes, "
            "--seed and --workers.",
        ),
    ] = False,
) -> None:
    """Apply a realistic mix of inserts, updates and deletes at a steady rate."""
    if duration is None and changes is None:
        duration = 60.0
    if pgbench:
        if duration is None:
            raise typer.BadParameter(
                "--pgbench runs for a duration: give one in seconds", param_hint="--duration"
            )
        try:
            result = run_pgbench_workload(
                get_settings(), rate=rate, duration_s=duration, on_progress=console.print
            )
        except DemoError as exc:
            raise _fail(exc) from exc
        per_db = ", ".join(f"{db} {tps:,.1f}/s" for db, tps in result.rates.items())
        console.print(
            f"{result.changes:,} operations in {result.elapsed_s:.1f}s: {result.achieved_rate:,.1f}/s "
            f"achieved (requested {rate:,.0f}/s; {per_db})"
        )
        return

    def report(progress: WorkloadProgress) -> None:
        console.print(
            f"[{progress.elapsed_s:6.1f}s] {progress.changes:,} changes, "
            f"{progress.interval_rate:,.1f}/s now, {progress.achieved_rate:,.1f}/s overall",
            highlight=False,
        )

    try:
        stats = run_workload(
            get_settings(),
            rate=rate,
            duration_s=duration,
            max_changes=changes,
            seed=seed,
            workers=workers,
            report_every_s=report_every,
            on_progress=report,
        )
    except DemoError as exc:
        raise _fail(exc) from exc
    _print_stats(stats)
