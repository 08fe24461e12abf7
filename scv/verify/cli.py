"""`scv verify [--source NAME] [--table T] [--sample N | --all] [--repair] [--json]`.

    scv verify --all                 # every registered table, every row; exit 1 on drift
    scv verify --source crm --sample 500
    scv verify --all --repair        # fix what differs, then verify those rows again

Exit codes: 0 clean (or repaired and clean again), 1 drift remains, 2 the check itself failed (a
source or the store unreachable).
"""

from __future__ import annotations

import json
import sys
import time
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TaskID, TextColumn, TimeElapsedColumn

from connectors.exceptions import SourceError
from scv.config.settings import get_settings
from scv.verify.reconcile import Progress as VerifyProgress
from scv.verify.reconcile import VerifyOptions, VerifyReport, recheck, verify
from scv.verify.repair import repair
from store.exceptions import StoreError
from store.session import open_session

__all__ = ["verify_command"]

err = Console(stderr=True)
out = Console()


class _Bars(VerifyProgress):
    def __init__(self, bars: Progress) -> None:
        self._bars = bars
        self._task: TaskID | None = None

    def phase(self, description: str, total: int | None = None) -> None:
        if self._task is not None:
            self._bars.update(self._task, visible=False)
        self._task = self._bars.add_task(description, total=total)

    def advance(self, amount: int = 1) -> None:
        if self._task is not None:
            self._bars.advance(self._task, amount)


def _print(report: VerifyReport) -> None:
    for table in report.tables:
        note = f", {table.buckets_differing} buckets differ" if table.buckets_differing else ""
        out.print(
            f"  {table.source}/{table.table}: {table.rows_checked:,} rows checked{note}", highlight=False
        )
    for finding in report.findings:
        out.print(f"[red]{finding.describe()}[/red]", highlight=False)


def verify_command(
    source: Annotated[str | None, typer.Option(help="Only this source")] = None,
    table: Annotated[str | None, typer.Option(help="Only this table (schema.table)")] = None,
    sample: Annotated[int | None, typer.Option(help="Check N random rows per table")] = None,
    check_all: Annotated[
        bool, typer.Option("--all", help="Check every row (default: --sample 1000)")
    ] = False,
    fix: Annotated[bool, typer.Option("--repair", help="Repair what differs, then check it again")] = False,
    group: Annotated[str | None, typer.Option(help="The replicator's consumer group")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the report as JSON")] = False,
) -> None:
    """Reconcile systems of record and view: missing, extra and different entities."""
    if check_all and sample is not None:
        err.print("[red]error:[/red] give --sample N or --all, not both")
        raise typer.Exit(2)
    options = VerifyOptions(source, table, None if check_all else (sample or 1000), group)
    settings = get_settings()
    bars = Progress(
        TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
        console=err, transient=True, disable=as_json,
    )  # fmt: skip
    try:
        with open_session(settings.store) as session, bars:
            progress = _Bars(bars)
            report = verify(settings, session, options, progress)
            repaired: list[str] = []
            if fix and report.drift:
                actions = repair(settings, session, report)
                repaired = actions.describe()
                # Re-read rows arrive through Debezium and the replicator: check until they land.
                deadline = time.monotonic() + 300
                remaining = report.findings
                while remaining and time.monotonic() < deadline:
                    time.sleep(2)
                    remaining = recheck(settings, session, options, remaining, progress)
                report.findings = [f for f in remaining if f.problem != "removed_source"]
    except (SourceError, StoreError) as exc:
        err.print(f"[red]error:[/red] {exc}", highlight=False)
        err.print("next: `scv stack status` and `scv sources list`; then run `scv verify` again")
        raise typer.Exit(2) from exc
    if as_json:
        json.dump({**report.to_json(), "repaired": repaired}, sys.stdout, indent=2)
        sys.stdout.write("\n")
    else:
        _print(report)
        for line in repaired:
            out.print(f"[green]repaired:[/green] {line}", highlight=False)
        if report.drift:
            err.print(
                f"{len(report.findings)} difference(s); next: `scv verify --repair` (same scope) to fix them"
            )
        else:
            out.print("[green]ok:[/green] the view matches its systems of record")
    if report.drift:
        raise typer.Exit(1)
