"""The `scv` console command: one entry point, one sub-command group per capability.

    scv stack up          # the local stack as processes
    scv consume           # the replicator
    scv view get 42 --json

Groups are imported only when they run: `scv view get` should not pay for the schema registry client,
the replicator or the native stack (importing every group cost ~1.2 s of a 1.8 s read). ``--help``
lists the groups from the table below without importing any of them.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import Any

import typer
from typer.core import TyperGroup

__all__ = ["main"]


@dataclass(frozen=True)
class _Group:
    target: str  # "module:attribute": a typer.Typer app, or a function to run as a typer command
    help: str


_GROUPS: dict[str, _Group] = {
    "compose": _Group(
        "compose.cli:app", "The compose stack's config files, rendered like the native stack's."
    ),
    "consume": _Group(
        "consumer.cli:consume", "Apply the change topics of every registered source to the view."
    ),
    "dlq": _Group("consumer.dlq_cli:app", "Dead-letter records: list, show, replay, purge."),
    "exporter": _Group("scv.exporter.cli:exporter", "Pipeline metrics for Prometheus (lag, slots, ...)."),
    "demo": _Group(
        "scv.cli.demo:app", "The demo systems of record: seed, workload, and the whole demo (run)."
    ),
    "serve": _Group("scv.api.cli:serve", "Serve the HTTP read API (customers' views, bearer tokens)."),
    "schemas": _Group("connectors.cli:schemas_app", "Avro contracts of the project's topics."),
    "sources": _Group("connectors.cli:app", "Onboard and operate CDC sources (Debezium connectors)."),
    "status": _Group("scv.exporter.cli:status", "Each source OK/WARN/FAIL, why, and what to run next."),
    "stack": _Group(
        "compose.native.cli:app", "The local stack as processes (PostgreSQL, Kafka, Connect, ...)."
    ),
    "store": _Group("store.cli:app", "The CQL store: schema migrations."),
    "verify": _Group("scv.verify.cli:verify_command", "Reconcile systems of record and view; repair drift."),
    "view": _Group("scv.cli.view:app", "Read the Single Customer View."),
}


def _load(name: str) -> Any:
    module, _, attribute = _GROUPS[name].target.partition(":")
    target: Any = getattr(importlib.import_module(module), attribute)
    if isinstance(target, typer.Typer):
        # A group even when it has one command (`scv view get`): get_command would collapse it.
        command: Any = typer.main.get_group(target)
    else:
        single = typer.Typer()
        single.command(name)(target)
        command = typer.main.get_command(single)
    command.name = name
    return command


class _LazyGroup(TyperGroup):
    def list_commands(self, ctx: Any) -> list[str]:
        return sorted(_GROUPS)

    def get_command(self, ctx: Any, cmd_name: str) -> Any:
        return _load(cmd_name) if cmd_name in _GROUPS else None

    def format_commands(self, ctx: Any, formatter: Any) -> None:
        # From the table, not from the loaded groups: `scv --help` imports none of them.
        with formatter.section("Commands"):
            formatter.write_dl([(name, group.help) for name, group in sorted(_GROUPS.items())])


app = typer.Typer(
    cls=_LazyGroup,
    name="scv",
    help="Single Customer View: CDC from systems of record into customer-keyed wide rows.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
    add_completion=False,
)


@app.callback()
def _root() -> None:
    from scv.config.logs import configure_logging
    from scv.config.settings import get_settings

    settings = get_settings()
    configure_logging(settings.log_level, settings.log_format)


def main() -> None:
    app()
