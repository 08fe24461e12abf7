"""`scv serve`: the HTTP read API."""

from __future__ import annotations

import typer

from scv.api.auth import AuthConfigurationError
from scv.client import ClientConfigurationError
from scv.config.settings import get_settings


def serve() -> None:
    """Serve the read API over HTTP (settings: SCV_API__*, SCV_READ__*, SCV_STORE__*)."""
    from scv.api.server import serve as run

    try:
        run(get_settings())
    except (AuthConfigurationError, ClientConfigurationError) as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from exc
