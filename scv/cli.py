"""The `scv` console command: one entry point, one sub-command group per capability.

scv stack up          # local stack as processes
scv consume           # the replicator
scv view get 42 --json
"""

from __future__ import annotations

import typer

from scv.logs import configure_logging
from scv.settings import get_settings

app = typer.Typer(
    name="scv",
    help="Single Customer View: CDC from systems of record into customer-keyed wide rows.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)


def _mount() -> None:
    # Sub-apps are imported here rather than at module top so `scv --help` names every group even
    # while one group's optional imports are broken, and so each package stays free of the CLI root.
    from compose.native.cli import app as stack_app
    from connectors.cli import app as sources_app
    from connectors.cli import schemas_app
    from consumer.cli import consume
    from demo.cli import app as demo_app
    from scv import walkthrough
    from store.cli import app as store_app
    from store.cli import view_app

    app.add_typer(stack_app, name="stack")
    app.add_typer(store_app, name="store")
    app.add_typer(view_app, name="view")
    app.add_typer(sources_app, name="sources")
    app.add_typer(schemas_app, name="schemas")
    demo_app.command("run")(walkthrough.run)
    app.add_typer(demo_app, name="demo")
    app.command("consume")(consume)


@app.callback()
def _root() -> None:
    configure_logging(get_settings())


def main() -> None:
    _mount()
    app()
