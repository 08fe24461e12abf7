"""Delete the benchmark's consumer groups once a run is over.

Every group the cluster keeps (offsets are retained for days) is one more the pipeline exporter
describes and reads offsets for on each scrape.
"""

from __future__ import annotations

from collections.abc import Iterable

from confluent_kafka import KafkaException
from confluent_kafka.admin import AdminClient
from rich.console import Console

from scv.config.settings import Settings

__all__ = ["delete_groups"]


def delete_groups(settings: Settings, groups: Iterable[str], console: Console | None = None) -> None:
    wanted = [g for g in groups if g]
    if not wanted:
        return
    admin = AdminClient({"bootstrap.servers": settings.kafka.bootstrap_servers})
    for group, future in admin.delete_consumer_groups(wanted, request_timeout=30).items():
        try:
            future.result(30)
        except KafkaException as exc:  # already gone, or a member still leaving: harmless here
            (console or Console()).print(f"consumer group {group} not deleted: {exc}", highlight=False)
