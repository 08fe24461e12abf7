"""`scv stack`: the local stack as processes.

scv stack up                 # install (cached), start, wait until every service answers
scv stack status --json      # [{"name": ..., "healthy": ..., "endpoint": ..., "pid": ...}, ...]
scv stack logs kafka -n 100
scv stack down
"""

from __future__ import annotations

import json
import time
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from compose.native.exceptions import StackError, StackUpFailed
from compose.native.services import SERVICES, service_by_name
from compose.native.stack import ServiceStatus, Stack
from compose.native.supervisor import log_tail
from scv.config.settings import get_settings

__all__ = ["app"]

app = typer.Typer(help="The local stack (PostgreSQL, Kafka, Connect, registry, Cassandra, Prometheus).",
                  no_args_is_help=True)  # fmt: skip
out = Console()
err = Console(stderr=True)


def _table(statuses: list[ServiceStatus]) -> Table:
    table = Table(title="scv stack")
    for col in ("service", "healthy", "endpoint", "pid"):
        table.add_column(col, overflow="fold")
    for s in statuses:
        table.add_row(
            s.name,
            "[green]yes" if s.healthy else f"[red]no[/red] {s.detail[:80]}",
            s.endpoint,
            str(s.pid or "-"),
        )
    table.caption = "logs: scv stack logs SERVICE"
    return table


@app.command()
def up() -> None:
    """Start every service and wait until each answers a real request (a no-op when already up)."""
    started = time.monotonic()
    stack = Stack(get_settings(), console=err)
    try:
        statuses = stack.up()
    except StackUpFailed as exc:
        for failure in exc.failures:
            err.rule(f"[red]{failure.service} failed")
            err.print(str(failure), markup=False)
            if failure.log_tail:
                err.print(f"--- last lines of {stack.paths.log(failure.service)} ---", markup=False)
                err.print(failure.log_tail, markup=False, highlight=False)
        err.print(
            "\nNext: read the full log with `scv stack logs SERVICE -n 200`, fix the cause (a port in use, "
            "a bad setting), then run `scv stack up` again; `scv stack down` stops what did start."
        )
        raise typer.Exit(1) from exc
    except StackError as exc:
        err.print(f"[red]scv stack up failed:[/red] {exc}")
        raise typer.Exit(1) from exc
    out.print(_table(statuses))
    err.print(f"stack up in {time.monotonic() - started:.1f}s")
    if not all(s.healthy for s in statuses):
        raise typer.Exit(1)


@app.command()
def down() -> None:
    """Stop the services `up` started (pid files; graceful signal, then kill)."""
    stopped = Stack(get_settings(), console=err).down()
    err.print(f"stopped: {', '.join(stopped) if stopped else 'nothing was running'}")


@app.command()
def status(as_json: Annotated[bool, typer.Option("--json", help="machine-readable output")] = False) -> None:
    """Health of every service; exits 1 when any is unhealthy."""
    statuses = Stack(get_settings(), console=err).status()
    if as_json:
        typer.echo(json.dumps([s.as_dict() for s in statuses], indent=2))
    else:
        out.print(_table(statuses))
    if not all(s.healthy for s in statuses):
        raise typer.Exit(1)


@app.command()
def logs(
    service: Annotated[str, typer.Argument(help=f"one of: {', '.join(s.name for s in SERVICES)}")],
    lines: Annotated[int, typer.Option("-n", "--lines", help="how many lines from the end")] = 50,
) -> None:
    """Print the last lines of a service's log."""
    try:
        service_by_name(service)
    except KeyError as exc:
        err.print(f"[red]{exc.args[0]}[/red]")
        raise typer.Exit(2) from exc
    typer.echo(log_tail(Stack(get_settings()).paths, service, lines))
