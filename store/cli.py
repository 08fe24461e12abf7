"""`scv store ...`: the schema. (Reads are the read client's: scv/client, `scv view`.)"""

from __future__ import annotations

import typer

from scv.config.settings import get_settings
from store.exceptions import StoreError
from store.migrate import migrate
from store.session import open_session

app = typer.Typer(help="The CQL store: schema migrations.", no_args_is_help=True)


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
