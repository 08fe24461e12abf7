"""`scv view ...`: read a customer's view, and watch the events announcing its changes.

`scv view get` itself normally never reaches this module: the console entry (scv/__main__.py)
hands it straight to scv/client/cli.py, which starts in a fraction of the time typer needs. The
command is declared here too, with the same options, so `scv view --help` lists it and callers of
``scv.cli.main`` get the same behaviour.
"""

from __future__ import annotations

import typer

app = typer.Typer(help="Read the Single Customer View.", no_args_is_help=True)


@app.command("get")
def get_command(
    customer_id: str,
    section: str | None = typer.Option(None, "--section", help="Only this section (kind), e.g. email."),
    as_json: bool = typer.Option(False, "--json", help="Print the documented JSON read contract."),
) -> None:
    """Print one customer's view."""
    from scv.api.config import configured_client_settings
    from scv.client.cli import get_view

    status = get_view(customer_id, section, as_json, configured_client_settings())
    if status:
        raise typer.Exit(status)
