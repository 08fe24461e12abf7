"""`scv sources ...` and `scv schemas ...`: thin typer commands over the Python API of this package.

    scv sources validate connectors/sources/crm.yaml
    scv sources add connectors/sources/crm.yaml
    scv schemas check crm

Every command exits non-zero on failure and prints what to do next; the work is done by functions
tests call directly (connectors.onboard, connectors.operate, connectors.validate, connectors.schemas).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from connectors.exceptions import SchemaDrift, SourceError, ValidationFailed
from connectors.spec import SourceSpec, load_spec
from scv.settings import get_settings

__all__ = ["app", "schemas_app"]

app = typer.Typer(help="Onboard and operate CDC sources (Debezium connectors).", no_args_is_help=True)
schemas_app = typer.Typer(help="Avro contracts of the project's topics.", no_args_is_help=True)

out = Console()
err = Console(stderr=True)

SpecFile = Annotated[Path, typer.Argument(help="The source spec (YAML), e.g. connectors/sources/crm.yaml")]
Name = Annotated[str, typer.Argument(help="The source name (the spec's `name`)")]


def _fail(message: str, next_step: str | None = None) -> typer.Exit:
    err.print(f"[red]error:[/red] {message}", markup=True, highlight=False)
    if next_step:
        err.print(f"next: {next_step}", highlight=False)
    return typer.Exit(1)


def _load(path: Path) -> SourceSpec:
    try:
        return load_spec(path)
    except SourceError as exc:
        raise _fail(str(exc), f"fix {path} and re-run") from exc


def _problems(exc: ValidationFailed, path: Path) -> typer.Exit:
    err.print(f"[red]{len(exc.problems)} problem(s):[/red]", markup=True)
    for problem in exc.problems:
        err.print(f"  - {problem}", highlight=False, markup=False)
    err.print(f"next: fix the above, then `scv sources validate {path}` again", highlight=False)
    return typer.Exit(1)


@app.command("validate")
def validate_cmd(path: SpecFile) -> None:
    """Check the spec against the live database, Kafka Connect and Kafka; list every problem."""
    from connectors.validate import validate_source

    spec = _load(path)
    try:
        report = validate_source(spec, get_settings(), str(path))
    except SourceError as exc:
        raise _fail(str(exc)) from exc
    for info in report.infos:
        out.print(f"[blue]info:[/blue] {info}", highlight=False)
    if report.problems:
        raise _problems(ValidationFailed(report.problems), path)
    out.print(f"[green]ok:[/green] {path} can be onboarded (`scv sources add {path}`)")


@app.command("grant-sql")
def grant_sql_cmd(path: SpecFile) -> None:
    """Print the least-privilege SQL (role, grants, signal/heartbeat tables, publication) for the DBA."""
    from connectors.grants import grant_sql

    print(grant_sql(_load(path)), end="")


@app.command("add")
def add_cmd(
    path: SpecFile,
    timeout: Annotated[float, typer.Option(help="Seconds to wait for RUNNING and the snapshot")] = 600,
) -> None:
    """Validate, register the connector, wait through the snapshot, register the mapping."""
    from connectors.onboard import onboard_source

    spec = _load(path)
    try:
        result = onboard_source(spec, get_settings(), progress=True, timeout_s=timeout, origin=str(path))
    except ValidationFailed as exc:
        raise _problems(exc, path) from exc
    except SourceError as exc:
        raise _fail(
            str(exc), f"`scv sources status {spec.name}`; `scv sources add {path}` is safe to re-run"
        ) from exc
    for info in result.infos:
        out.print(f"[blue]info:[/blue] {info}", highlight=False)
    out.print(f"[green]added[/green] {result.name}: connector {result.connector} RUNNING, snapshot done")
    for table, rows in result.rows.items():
        out.print(
            f"  {table}: {rows} rows -> {result.records.get(table, 0)} records in {spec.topic_for(table)}"
        )
    if result.compatibility_set:
        out.print(f"  compatibility {spec.compatibility} on {len(result.compatibility_set)} subjects")
    if result.compatibility_pending:
        out.print(
            f"  no schema yet for {', '.join(result.compatibility_pending)} (empty tables): re-run `add` "
            f"after their first change to set compatibility"
        )
    out.print("  mapping registered: running replicators start applying it within seconds")
    out.print(
        f"next: `scv sources status {spec.name}`; `scv schemas export {spec.name}` to check in its contracts"
    )


@app.command("list")
def list_cmd() -> None:
    """Every onboarded source with its connector state."""
    from connectors.operate import list_sources

    try:
        sources = list_sources(get_settings())
    except SourceError as exc:
        raise _fail(str(exc)) from exc
    table = Table("name", "connector", "state", "database", "tables", "registered")
    for s in sources:
        table.add_row(
            s.name, s.connector, s.state, s.database, ", ".join(s.tables), "yes" if s.registered else "NO"
        )
    out.print(table)


@app.command("status")
def status_cmd(name: Name) -> None:
    """Connector/task state (trace on FAILED), slot lag in bytes, last event and heartbeat times."""
    from connectors.operate import source_status

    try:
        status = source_status(name, get_settings())
    except SourceError as exc:
        raise _fail(str(exc)) from exc
    c = status.connector
    out.print(f"{name}: connector {c.name} {c.state} on {c.worker_id}")
    for task in c.tasks:
        out.print(f"  task {task.id}: {task.state}")
        if task.trace:
            out.print(task.trace, markup=False, highlight=False)
    lag = (
        "unknown (database unreachable)"
        if status.slot_lag_bytes is None
        else f"{status.slot_lag_bytes} bytes"
    )
    out.print(f"  slot {status.slot_name}: active={status.slot_active} lag={lag}")
    out.print(
        f"  last event: {status.last_event_at or 'none yet'}; "
        f"last heartbeat: {status.last_heartbeat_at or 'none'}"
    )
    if c.failed_trace or c.state == "FAILED":
        raise _fail(
            f"source {name} FAILED", f"fix the cause above, then `scv sources resume {name}` or re-run add"
        )


@app.command("pause")
def pause_cmd(name: Name) -> None:
    """Pause the connector; the slot keeps the changes (WAL grows until resume)."""
    from connectors.operate import pause_source

    try:
        pause_source(name, get_settings())
    except SourceError as exc:
        raise _fail(str(exc)) from exc
    out.print(f"paused {name}; next: `scv sources resume {name}` (WAL accumulates while paused)")


@app.command("resume")
def resume_cmd(name: Name) -> None:
    """Resume a paused connector; changes made meanwhile stream from the slot."""
    from connectors.operate import resume_source

    try:
        resume_source(name, get_settings())
    except SourceError as exc:
        raise _fail(str(exc)) from exc
    out.print(f"resumed {name}; next: `scv sources status {name}`")


@app.command("resnapshot")
def resnapshot_cmd(
    name: Name,
    tables: Annotated[list[str] | None, typer.Argument(help="schema.table ... (default: all)")] = None,
) -> None:
    """Trigger an incremental snapshot (execute-snapshot signal) of some or all tables."""
    from connectors.operate import resnapshot_source

    try:
        signal_id = resnapshot_source(name, get_settings(), tables or None)
    except SourceError as exc:
        raise _fail(str(exc)) from exc
    out.print(
        f"signalled incremental snapshot {signal_id}; rows are re-emitted as op=r while streaming goes on"
    )


@app.command("remove")
def remove_cmd(
    name: Name,
    yes: Annotated[bool, typer.Option("--yes", help="Do not ask for confirmation")] = False,
    delete_topics: Annotated[bool, typer.Option(help="Also delete the source's topics")] = False,
) -> None:
    """Delete the connector and its offsets, drop slot and publication, delete the registration."""
    from connectors.onboard import remove_source_report

    if not yes and not typer.confirm(
        f"Remove source {name}: connector scv-{name}, its slot and publication, its registration?"
    ):
        raise _fail("not confirmed; nothing was changed", f"`scv sources remove {name} --yes`")
    try:
        result = remove_source_report(name, get_settings(), delete_topics_too=delete_topics)
    except SourceError as exc:
        raise _fail(str(exc)) from exc
    for line in result.done:
        out.print(f"  {line}")
    if result.pending_sql:
        out.print("The source database is not the stack's PostgreSQL; a DBA must run:")
        print("\n".join(result.pending_sql))
    out.print("next: the view keeps this source's data; topics are kept unless --delete-topics")


@schemas_app.command("export")
def export_cmd(
    name: Name,
    directory: Annotated[Path, typer.Option(help="Where the contracts live")] = Path("registry_schemas"),
) -> None:
    """Write the registry's latest key/value schemas of a source's topics under registry_schemas/<name>/."""
    from connectors.schemas import export_schemas

    try:
        written = export_schemas(name, get_settings(), directory)
    except SourceError as exc:
        raise _fail(str(exc)) from exc
    for path in written:
        out.print(f"wrote {path}")
    out.print("next: review and commit them; `scv schemas check` compares them with the registry and tables")


@schemas_app.command("check")
def check_cmd(
    name: Annotated[str | None, typer.Argument(help="A source name (default: every exported source)")] = None,
    directory: Annotated[Path, typer.Option(help="Where the contracts live")] = Path("registry_schemas"),
) -> None:
    """Compare checked-in contracts with the registry and the live tables; report what would be rejected."""
    from connectors.schemas import check_schemas

    try:
        report = check_schemas(get_settings(), directory, name)
    except SchemaDrift as exc:
        err.print(f"[red]{len(exc.problems)} problem(s):[/red]", markup=True)
        for problem in exc.problems:
            err.print(f"  - {problem}", highlight=False, markup=False)
        raise _fail("schema drift", "fix the table or evolve the contract as each line says") from exc
    except SourceError as exc:
        raise _fail(str(exc)) from exc
    for line in report:
        out.print(f"  {line}", highlight=False)
    out.print("[green]ok:[/green] contracts, registry and tables agree")
