"""`scv store ...` (schema) and `scv view ...` (reads)."""

from __future__ import annotations

import json
import sys

import typer

from scv.config.settings import get_settings
from store.exceptions import CustomerNotFound, StoreError
from store.migrate import migrate
from store.reader import ViewReader
from store.session import open_session

app = typer.Typer(help="The CQL store: schema migrations.", no_args_is_help=True)
view_app = typer.Typer(help="Read the Single Customer View.", no_args_is_help=True)


@app.command("migrate")
def migrate_command() -> None:
    """Create the keyspace and apply pending migrations (idempotent)."""
    settings = get_settings().store
    try:
        with open_session(settings) as session:
            applied = migrate(session, settings.keyspace, settings.replication_factor, settings.local_dc)
    except StoreError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from exc
    if applied:
        for migration in applied:
            typer.echo(f"applied {migration.version:04d}_{migration.name}")
    else:
        typer.echo(f"keyspace {settings.keyspace} is up to date")


@view_app.command("get")
def get_command(
    customer_id: str,
    as_json: bool = typer.Option(False, "--json", help="Print the documented JSON read contract."),
) -> None:
    """Print one customer's view."""
    settings = get_settings().store
    try:
        with open_session(settings) as session:
            view = ViewReader(session, settings.keyspace).get(customer_id)
    except CustomerNotFound as exc:
        typer.echo(
            f"error: {exc}; check the id, or whether its source is onboarded (scv sources list)", err=True
        )
        raise typer.Exit(2) from exc
    except StoreError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from exc
    if as_json:
        json.dump(view.to_json(), sys.stdout, indent=2, ensure_ascii=False)
        sys.stdout.write("\n")
        return
    for kind, entities in sorted(view.sections.items()):
        typer.echo(f"{kind} ({len(entities)})")
        for entity in entities:
            attrs = ", ".join(f"{k}={v!r}" for k, v in sorted(entity.to_json()["attributes"].items()))
            typer.echo(f"  {entity.source}/{entity.table}#{entity.id}: {attrs}")
