"""`scv consume` / `python -m consumer`: run the replicator, in one or several processes."""

from __future__ import annotations

import faulthandler
import signal

import structlog
import typer

from consumer.exceptions import ConsumerFenced, ReplicatorError
from consumer.metrics import WORKER_RESTARTS
from consumer.service import Replicator
from consumer.supervisor import Supervisor, WorkerSlot, die_with_parent
from scv.config.logs import configure_logging
from scv.config.settings import get_settings

log = structlog.get_logger(__name__)


def _run_worker(slot: WorkerSlot) -> None:
    """One worker of `--processes N` (consumer/supervisor.py gives it its slot)."""
    die_with_parent()
    if slot.restarts:
        WORKER_RESTARTS.labels(worker=str(slot.index)).inc(slot.restarts)
    else:
        WORKER_RESTARTS.labels(worker=str(slot.index))  # exported at 0 from the start
    _run_one(slot.metrics_port, slot.group_instance_id)


def _run_one(metrics_port: int, group_instance_id: str | None = None) -> None:
    # `kill -USR1 <pid>` prints every thread's stack to stderr: how an operator sees where a
    # replicator that looks stuck is waiting, without stopping it.
    faulthandler.register(signal.SIGUSR1, all_threads=True)
    settings = get_settings()
    if group_instance_id:
        settings.consumer.group_instance_id = group_instance_id
    configure_logging(settings.log_level, settings.log_format)
    replicator = Replicator.from_settings(settings, metrics_port=metrics_port)
    replicator.install_signal_handlers()
    try:
        replicator.run()
    except ConsumerFenced as exc:
        # Not a failure of the process: its consumer is gone for good, a new process rejoins.
        log.warning("replicator_rejoining", reason=str(exc))
        raise SystemExit(ConsumerFenced.REJOIN_EXIT_CODE) from exc
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
    if processes == 1:
        # Its own worker: a crash exits non-zero and the service manager restarts it (compose:
        # restart: unless-stopped).
        _run_one(settings.consumer.metrics_port)
        return
    # Python applies one batch per core at a time; several processes in one consumer group split
    # the partitions, each exporting metrics on its own port (base, base+1, ...), each restarted when
    # it dies (consumer/supervisor.py).
    code = Supervisor(processes, _run_worker, settings.consumer).run()
    if code:
        log.error("replicator_processes_failed")
        raise typer.Exit(code)


def main() -> None:
    typer.run(consume)
