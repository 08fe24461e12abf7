"""`scv consume` / `python -m consumer`: run the replicator, in one or several processes."""

from __future__ import annotations

import faulthandler
import multiprocessing
import os
import signal
from types import FrameType

import structlog
import typer

from consumer.exceptions import ReplicatorError
from consumer.service import Replicator
from scv.config.logs import configure_logging
from scv.config.settings import get_settings

log = structlog.get_logger(__name__)


def _run_one(metrics_port: int) -> None:
    # `kill -USR1 <pid>` prints every thread's stack to stderr: how an operator sees where a
    # replicator that looks stuck is waiting, without stopping it.
    faulthandler.register(signal.SIGUSR1, all_threads=True)
    settings = get_settings()
    configure_logging(settings.log_level, settings.log_format)
    replicator = Replicator.from_settings(settings, metrics_port=metrics_port)
    replicator.install_signal_handlers()
    try:
        replicator.run()
    except ReplicatorError as exc:
        # A setup problem the operator fixes (the message says how): no traceback, exit 1.
        log.error("replicator_failed", error=str(exc))
        raise SystemExit(1) from exc


def consume(
    processes: int = typer.Option(
        1, "--processes", "-p", min=1, help="Replicator processes in this consumer group (one per core)."
    ),
) -> None:
    """Apply the change topics of every registered source to the view until SIGTERM."""
    settings = get_settings()
    base_port = settings.consumer.metrics_port
    if processes == 1:
        _run_one(base_port)
        return
    # Python applies one batch per core at a time; several processes in one consumer group split
    # the partitions, each exporting metrics on its own port (base, base+1, ...).
    context = multiprocessing.get_context("spawn")
    workers = [
        context.Process(target=_run_one, args=(base_port + i,), name=f"replicator-{i}")
        for i in range(processes)
    ]
    for worker in workers:
        worker.start()

    def forward(signum: int, _frame: FrameType | None) -> None:
        for worker in workers:
            if worker.pid is not None and worker.is_alive():
                os.kill(worker.pid, signum)

    signal.signal(signal.SIGTERM, forward)
    signal.signal(signal.SIGINT, forward)
    for worker in workers:
        worker.join()
    failed = [w.name for w in workers if w.exitcode not in (0, None)]
    if failed:
        log.error("replicator_processes_failed", processes=failed)
        raise typer.Exit(1)


def main() -> None:
    typer.run(consume)
