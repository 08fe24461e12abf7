"""`scv view ...`: read a customer's view, and watch the events announcing its changes.

    scv view get 42 --json
    scv view watch 42            # one line per "customer view changed" event, as they come

`scv view get` itself normally never reaches this module: the console entry (scv/__main__.py)
hands it straight to scv/client/cli.py, which starts in a fraction of the time typer needs. The
command is declared here too, with the same options, so `scv view --help` lists it and callers of
``scv.cli.main`` get the same behaviour.
"""

from __future__ import annotations

import json
import time
import uuid
from typing import Any

import typer

from scv.contracts.view_changed import ViewChanged

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


def render_event(event: ViewChanged) -> str:
    where = ", ".join(f"{p.topic}[{p.partition}]@{p.offset}" for p in event.positions)
    return (
        f"{event.applied_ts:%Y-%m-%d %H:%M:%S.%f}Z customer {event.customer_id}: {', '.join(event.sections)} "
        f"changed (source commit {event.source_ts:%H:%M:%S.%f}Z; batch at {where})"
    )


def event_json(event: ViewChanged) -> dict[str, Any]:
    record = event.to_record()
    record["source_ts"] = event.source_ts.isoformat()
    record["applied_ts"] = event.applied_ts.isoformat()
    return record


@app.command("watch")
def watch_command(
    customer_id: str,
    from_beginning: bool = typer.Option(
        False, "--from-beginning", help="Start with the events still retained, not only new ones."
    ),
    since_s: float = typer.Option(
        0.0, "--since", help="Start with the events of the last this many seconds (0: only new ones)."
    ),
    count: int = typer.Option(0, "--count", help="Exit after this many events (0: until Ctrl-C)."),
    timeout_s: float = typer.Option(
        0.0, "--timeout", help="Exit with status 3 when no event came for this many seconds (0: never)."
    ),
    as_json: bool = typer.Option(False, "--json", help="One JSON object per line."),
) -> None:
    """Tail the "customer view changed" events of one customer (the replicator emits them)."""
    from confluent_kafka import OFFSET_BEGINNING, OFFSET_END, Consumer, TopicPartition
    from confluent_kafka.schema_registry import SchemaRegistryClient
    from confluent_kafka.schema_registry.avro import AvroDeserializer
    from confluent_kafka.serialization import MessageField, SerializationContext

    from scv.config.settings import get_settings

    settings = get_settings()
    topic = settings.consumer.view_events_topic
    consumer = Consumer(
        {
            "bootstrap.servers": settings.kafka.bootstrap_servers,
            "group.id": f"scv-view-watch-{uuid.uuid4().hex[:8]}",  # never committed: a reader, not a member
            "enable.auto.commit": False,
        }
    )
    decode = AvroDeserializer(SchemaRegistryClient({"url": settings.registry.url}))
    try:
        metadata = consumer.list_topics(topic, timeout=10).topics.get(topic)
        if metadata is None or metadata.error is not None or not metadata.partitions:
            typer.echo(
                f"error: topic {topic} does not exist yet; the replicator creates it when it starts "
                f"(scv consume)",
                err=True,
            )
            raise typer.Exit(1)
        # Events are keyed by customer, so one partition holds this customer's; which one depends on
        # the producer's partitioner, so every partition is read and filtered by key.
        if since_s and not from_beginning:
            since_ms = int((time.time() - since_s) * 1000)
            wanted = [TopicPartition(topic, partition, since_ms) for partition in metadata.partitions]
            starts = [
                TopicPartition(topic, tp.partition, tp.offset if tp.offset >= 0 else OFFSET_END)
                for tp in consumer.offsets_for_times(wanted, timeout=10)
            ]
        else:
            start = OFFSET_BEGINNING if from_beginning else OFFSET_END
            starts = [TopicPartition(topic, partition, start) for partition in metadata.partitions]
        consumer.assign(starts)
        key = customer_id.encode()
        seen, idle_since = 0, time.monotonic()
        while not count or seen < count:
            message = consumer.poll(0.5)
            if message is None or message.error() is not None or message.key() != key:
                if timeout_s and time.monotonic() - idle_since > timeout_s:
                    typer.echo(f"no event for customer {customer_id} in {timeout_s:.0f} s", err=True)
                    raise typer.Exit(3)
                continue
            record = decode(message.value(), SerializationContext(topic, MessageField.VALUE))
            event = ViewChanged.from_record(record)
            line = json.dumps(event_json(event), ensure_ascii=False) if as_json else render_event(event)
            print(line, flush=True)
            seen += 1
            idle_since = time.monotonic()
    except KeyboardInterrupt:
        pass
    finally:
        consumer.close()
