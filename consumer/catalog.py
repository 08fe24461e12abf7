"""Which topics the replicator applies, and how: the registered sources' mappings, refreshed live.

catalog = MappingCatalog(RegistrationStore(session, ks))
if catalog.refresh():          # True when the set of topics changed
    consumer.subscribe([catalog.subscription_pattern()])
catalog.table_for("crm.public.customers")
"""

from __future__ import annotations

import structlog

from consumer.metrics import REGISTERED_TABLES
from scv.contracts.registration import RegistrationError, SourceMapping, TableMapping
from store.registrations import RegistrationStore

__all__ = ["MappingCatalog"]

log = structlog.get_logger(__name__)


class MappingCatalog:
    def __init__(self, registrations: RegistrationStore) -> None:
        self._registrations = registrations
        self._by_topic: dict[str, TableMapping] = {}
        self._fingerprint: tuple[tuple[str, str], ...] = ()
        # Topics of sources removed while this process ran: their records still in flight are
        # dropped with the subscription, not parked as poison (`scv sources remove`).
        self._removed: set[str] = set()

    def refresh(self) -> bool:
        """Reload the registrations; returns True when they changed."""
        registrations = self._registrations.all()
        fingerprint = tuple(sorted((r.name, r.mapping_json) for r in registrations))
        if fingerprint == self._fingerprint:
            return False
        by_topic: dict[str, TableMapping] = {}
        for registration in registrations:
            try:
                mapping = SourceMapping.from_json(registration.mapping_json)
            except RegistrationError as exc:
                # A bad registration must not stop the other sources; `scv sources add` validates, so
                # this means someone wrote the table by hand.
                log.error("registration_unreadable", source=registration.name, error=str(exc))
                continue
            for table_name, table in mapping.tables.items():
                by_topic[mapping.topic_for(table_name)] = table
        self._removed = (self._removed | set(self._by_topic)) - set(by_topic)
        self._by_topic = by_topic
        self._fingerprint = fingerprint
        REGISTERED_TABLES.set(len(by_topic))
        log.info("mappings_loaded", sources=len(registrations), tables=len(by_topic))
        return True

    @property
    def topics(self) -> list[str]:
        return sorted(self._by_topic)

    @property
    def sources(self) -> list[str]:
        return sorted({table.source for table in self._by_topic.values()})

    def removed(self, topic: str) -> bool:
        """True for a topic whose source was registered and has been removed since."""
        return topic in self._removed

    def direct_key_tables(self) -> list[tuple[str, str]]:
        """(source, table) of every table whose customer key is one of its own columns."""
        return sorted((t.source, t.table) for t in self._by_topic.values() if not t.is_via)

    def via_tables(self) -> list[tuple[str, str]]:
        """(source, table) of every table whose rows are placed through another row (they may park)."""
        return sorted((t.source, t.table) for t in self._by_topic.values() if t.is_via)

    def table_for(self, topic: str) -> TableMapping | None:
        return self._by_topic.get(topic)

    def subscription_pattern(self) -> str:
        # A regex subscription (leading ^) also picks up topics created after subscribing, which is
        # how a table's topic that Debezium creates on its first change is consumed without restart.
        # librdkafka matches with POSIX extended regex: no (?:...) groups, and only "." needs escaping
        # in topic names ([a-zA-Z0-9._-]).
        return "^(" + "|".join(topic.replace(".", "\\.") for topic in self.topics) + ")$"
