"""`scv dlq list | show | replay | purge`: the dead-letter topic for operators (consumer/dlq.py).

scv dlq list --source crm
scv dlq show 3:41 --json
scv dlq replay --source crm          # after fixing the cause
scv dlq purge 3:41 --yes
"""

from __future__ import annotations

import functools
import json
from collections.abc import Callable
from typing import Annotated, ParamSpec, TypeVar

import typer
from rich.console import Console
from rich.table import Table

from consumer.dlq import DeadLetters, DlqError, ParkedView
from scv.config.settings import get_settings
from scv.kafka.admin import KafkaUnavailable

__all__ = ["app"]

app = typer.Typer(
    help="Parked records of the dead-letter topic: list, show, replay, purge.", no_args_is_help=True
)
out = Console()
err = Console(stderr=True, soft_wrap=True)

P = ParamSpec("P")
R = TypeVar("R")

Source = Annotated[str | None, typer.Option("--source", help="Only this source's records")]
AsJson = Annotated[bool, typer.Option("--json", help="Machine-readable output")]
Ids = Annotated[list[str] | None, typer.Argument(help="Record ids (PARTITION:OFFSET, from `scv dlq list`)")]
All = Annotated[bool, typer.Option("--all", help="Every parked record")]


def _reports_errors(command: Callable[P, R]) -> Callable[P, R]:
    @functools.wraps(command)
    def run(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return command(*args, **kwargs)
        except (DlqError, KafkaUnavailable) as exc:
            err.print(f"[red]error:[/red] {exc}", markup=True, highlight=False)
            raise typer.Exit(1) from exc

    return run


def _print_json(data: object) -> None:
    print(json.dumps(data, indent=2, ensure_ascii=False, default=str))


def _table(records: list[ParkedView]) -> Table:
    table = Table("id", "source", "table", "op", "key", "reason", "error", "when", "status")
    for r in records:
        table.add_row(
            r.id, r.source, r.table, r.op, r.key_text[:40], r.reason, r.error[:60], r.failed_at[:19], r.status
        )
    return table


@app.command("list")
@_reports_errors
def list_cmd(source: Source = None, as_json: AsJson = False) -> None:
    """Parked records: source, table, op, key, error, when (oldest first per partition)."""
    queue = DeadLetters(get_settings())
    records = queue.records(source=source)
    if as_json:
        _print_json([r.summary() for r in records])
        return
    out.print(_table(records))
    parked = sum(r.status == "parked" for r in records)
    out.print(f"{len(records)} record(s) in {queue.topic}, {parked} not replayed")
    if parked:
        out.print("next: `scv dlq show ID`; after fixing the cause, `scv dlq replay --source NAME`")


@app.command("show")
@_reports_errors
def show_cmd(
    record_id: Annotated[str, typer.Argument(help="PARTITION:OFFSET")], as_json: AsJson = False
) -> None:
    """One parked record with its headers, key and value decoded where possible."""
    shown = DeadLetters(get_settings()).show(record_id)
    data = shown.as_dict()
    if as_json:
        _print_json(data)
        return
    for name in ("id", "source", "table", "op", "reason", "error", "failed_at", "status", "topic",
                 "partition", "offset"):  # fmt: skip
        out.print(f"{name}: {data[name]}", highlight=False, markup=False)
    out.print(f"key: {json.dumps(data['decoded_key'], default=str)}", highlight=False, markup=False)
    if shown.decode_error:
        out.print(f"value: not decodable ({shown.decode_error})", highlight=False, markup=False)
    else:
        out.print(
            f"value: {json.dumps(data['decoded_value'], indent=2, default=str)}",
            highlight=False,
            markup=False,
        )


@app.command("replay")
@_reports_errors
def replay_cmd(
    ids: Ids = None, source: Source = None, everything: All = False, as_json: AsJson = False
) -> None:
    """Produce parked records to their original topic and partition (after fixing the cause).

    Harmless if a change was applied or superseded meanwhile: writes carry their source commit time.
    A record that fails again is parked again, with a new id."""
    queue = DeadLetters(get_settings())
    chosen = queue.select(ids or [], source=source, everything=everything, include_replayed=bool(ids))
    replayed = queue.replay(chosen)
    if as_json:
        _print_json({"replayed": [r.id for r in replayed]})
        return
    out.print(f"replayed {len(replayed)} record(s) to their original topics")
    out.print("next: the replicator applies them within seconds; `scv dlq list` shows any parked again")


@app.command("purge")
@_reports_errors
def purge_cmd(
    ids: Ids = None,
    source: Source = None,
    everything: All = False,
    yes: Annotated[bool, typer.Option("--yes", help="Do not ask for confirmation")] = False,
    as_json: AsJson = False,
) -> None:
    """Forget parked records (ids, --source NAME, or --all, which also deletes them from the topic)."""
    queue = DeadLetters(get_settings())
    chosen = queue.select(ids or [], source=source, everything=everything, include_replayed=True)
    if not chosen:
        if as_json:
            _print_json({"purged": []})
        else:
            out.print("nothing to purge")
        return
    what = f"{len(chosen)} parked record(s)" + (f" of source {source}" if source else "")
    if not yes and not typer.confirm(f"Purge {what} from {queue.topic}? They cannot be replayed afterwards"):
        err.print("not confirmed; nothing was purged", highlight=False)
        raise typer.Exit(1)
    queue.purge(chosen)
    deleted = queue.purge_all() if everything and not ids and source is None else 0
    if as_json:
        _print_json({"purged": [r.id for r in chosen], "deleted_from_topic": deleted})
        return
    out.print(f"purged {what}" + (f"; deleted {deleted} record(s) from the topic" if deleted else ""))
