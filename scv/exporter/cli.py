"""`scv exporter` (the pipeline exporter process) and `scv status` (the screen a human reads first).

scv exporter                       # /metrics on 127.0.0.1:9390 until SIGTERM
scv status                         # exit 1 when any source is FAIL
scv status --json | jq .sources
scv status --watch --every 2       # refreshed in place until Ctrl-C
"""

from __future__ import annotations

import json
import time
from typing import Annotated

import structlog
import typer
from rich.console import Console
from rich.live import Live

from scv.config.logs import configure_logging
from scv.config.settings import get_settings
from scv.exporter.exceptions import ExporterError
from scv.exporter.gather import gather
from scv.exporter.screen import render
from scv.exporter.server import Exporter

__all__ = ["exporter", "main", "status"]

log = structlog.get_logger(__name__)


def exporter() -> None:
    """Export what no single process sees (lag from outside, connectors, slots, probes) to Prometheus."""
    settings = get_settings()
    runner = Exporter(settings)
    runner.install_signal_handlers()
    try:
        runner.run()
    except ExporterError as exc:
        log.error("exporter_failed", error=str(exc))
        raise typer.Exit(1) from exc


def status(
    as_json: Annotated[bool, typer.Option("--json", help="machine-readable output")] = False,
    watch: Annotated[bool, typer.Option("--watch", help="refresh in place until Ctrl-C")] = False,
    every: Annotated[
        float, typer.Option("--every", min=0.5, help="seconds between refreshes (--watch)")
    ] = 2.0,
    group: Annotated[
        str | None,
        typer.Option("--group", help="the replicators' consumer group (default: SCV_CONSUMER__GROUP_ID)"),
    ] = None,
) -> None:
    """Each source OK/WARN/FAIL with the reason and the next command; exits 1 on any FAIL."""
    settings = get_settings()
    chosen = group or settings.consumer.group_id
    if not watch:
        report = gather(settings, chosen)
        if as_json:
            typer.echo(json.dumps(report.as_dict(), indent=2))
        else:
            Console().print(render(report))
        raise typer.Exit(report.exit_code)
    console = Console()
    report = gather(settings, chosen)
    try:
        with Live(render(report), console=console, screen=False, auto_refresh=False) as live:
            while True:
                time.sleep(every)
                report = gather(settings, chosen)
                live.update(render(report), refresh=True)
    except KeyboardInterrupt:
        pass
    raise typer.Exit(report.exit_code)


def main() -> None:
    """`python -m scv.exporter`: run the exporter with the settings' logging."""
    settings = get_settings()
    configure_logging(settings.log_level, settings.log_format)
    typer.run(exporter)
