"""What a test session leaves on the shared local stack, removed when the session ends.

    before = StackInventory.take(settings)     # at session start
    ...tests create sources, topics, consumer groups...
    removed = sweep(settings, before)          # at session end: what exists now and did not before

Tests name their topics, groups and sources at random, and not every test can tidy what it created
(a source's topics outlive `remove_source`, a replicator's group outlives the process). Left behind,
they pile up run after run in the stack's state dir: thousands of partitions made the broker take a
minute to restart, and every consumer group adds to each exporter scrape. So the session removes what
appeared while it ran: the connectors (and so the replication slots they held), the inactive slots,
the consumer groups without members, the keyspaces, and the topics, except the stack's internal
topics and the replicator's default ones, which the stack owns.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass

import psycopg

from connectors.connect import ConnectClient
from scv.config.settings import Settings
from scv.kafka.admin import KafkaAdmin
from store.session import open_session

# Debezium's heartbeat topics start with "__" but belong to their source, not to the stack.
_SOURCE_TOPIC_PREFIX = "__debezium-heartbeat."


@dataclass(frozen=True)
class StackInventory:
    topics: frozenset[str]
    groups: frozenset[str]
    connectors: frozenset[str]
    slots: frozenset[str]
    keyspaces: frozenset[str]

    @classmethod
    def take(cls, settings: Settings) -> StackInventory:
        with KafkaAdmin(settings.kafka.bootstrap_servers, timeout_s=30) as kafka:
            topics, groups = frozenset(kafka.list_topics()), frozenset(kafka.group_ids())
        with ConnectClient(settings.connect.url) as connect:
            connectors = frozenset(connect.connectors())
        return cls(topics, groups, connectors, frozenset(_slots(settings)), frozenset(_keyspaces(settings)))


def sweep(settings: Settings, before: StackInventory) -> list[str]:
    """Remove what appeared since ``before``; returns a line per kind of thing removed."""
    now = StackInventory.take(settings)
    removed: list[str] = []
    connectors = sorted(now.connectors - before.connectors)
    with ConnectClient(settings.connect.url) as connect:
        for name in connectors:
            connect.stop(name)
            connect.delete_offsets(name)
            connect.delete(name)
    if connectors:
        removed.append(f"{len(connectors)} connectors")
    slots = sorted(set(_slots(settings, inactive_only=True)) - before.slots)
    with psycopg.connect(settings.postgres.dsn(), autocommit=True, connect_timeout=10) as admin:
        for slot in slots:
            # Just released by its connector, or taken again: either way not this sweep's to force.
            with contextlib.suppress(psycopg.errors.ObjectInUse, psycopg.errors.UndefinedObject):
                admin.execute("SELECT pg_drop_replication_slot(%s)", (slot,))
    if slots:
        removed.append(f"{len(slots)} replication slots")
    protected = {settings.consumer.dead_letter_topic, settings.consumer.view_events_topic}
    topics = sorted(
        t
        for t in now.topics - before.topics
        if t not in protected and (not t.startswith("_") or t.startswith(_SOURCE_TOPIC_PREFIX))
    )
    with KafkaAdmin(settings.kafka.bootstrap_servers, timeout_s=60) as kafka:
        groups = sorted(now.groups - before.groups)
        busy = kafka.delete_groups(groups)
        kafka.delete_topics(topics)
    if groups:
        removed.append(f"{len(groups) - len(busy)} consumer groups ({len(busy)} still had members)")
    if topics:
        removed.append(f"{len(topics)} topics")
    keyspaces = sorted(now.keyspaces - before.keyspaces)
    with open_session(settings.store) as session:
        for keyspace in keyspaces:
            session.execute(f'DROP KEYSPACE IF EXISTS "{keyspace}"', timeout=120)
    if keyspaces:
        removed.append(f"{len(keyspaces)} keyspaces")
    return removed


def _keyspaces(settings: Settings) -> list[str]:
    with open_session(settings.store) as session:
        rows = session.execute("SELECT keyspace_name FROM system_schema.keyspaces")
        return [str(row.keyspace_name) for row in rows if not str(row.keyspace_name).startswith("system")]


def _slots(settings: Settings, *, inactive_only: bool = False) -> list[str]:
    query = "SELECT slot_name FROM pg_replication_slots"
    if inactive_only:
        query += " WHERE NOT active"
    with psycopg.connect(settings.postgres.dsn(), autocommit=True, connect_timeout=10) as admin:
        return [str(row[0]) for row in admin.execute(query).fetchall()]
