"""What a read returns: typed, immutable, and rendered to the documented JSON read contract.

    view = client.get_view("42")
    view.sections["email"][0].attributes["email"]     # 'ada@example.com'
    view.age                                           # timedelta since the view last applied a change
    view.to_json()                                     # {"customer_id": ..., "sections": {...}}

Attribute values keep their source types: NUMERIC as ``Decimal``, timestamptz as an aware
``datetime`` (timestamp without time zone stays naive: the source never said which zone), date,
time, ``UUID``, bytes, arrays as lists, and JSON documents parsed (dict/list; numbers with a fraction
as ``Decimal``, exact like NUMERIC).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from typing import Any, TypeAlias
from uuid import UUID

from scv.contracts.cells import to_json_compatible

__all__ = ["CustomerView", "EntityView", "SectionPage", "Value"]

Value: TypeAlias = (
    None
    | bool
    | int
    | float
    | Decimal
    | str
    | bytes
    | datetime
    | date
    | time
    | UUID
    | list[Any]
    | dict[str, Any]
)


def _document(value: Any) -> Any:
    # Inside a JSON document a number is a JSON number: Decimal (kept exact in the typed value) goes
    # back to the float `json.loads` would have given, which is what the read contract embeds.
    if isinstance(value, Decimal):
        return float(value)
    if isinstance(value, dict):
        return {key: _document(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_document(item) for item in value]
    return value


def json_value(value: Value, document: bool = False) -> Any:
    """The read contract's JSON form of one attribute value: cells.to_json_compatible for the typed
    cells, embedded JSON for a JSON document (``document``, or any dict: only documents hold them)."""
    if document or isinstance(value, dict):
        return _document(value)
    if isinstance(value, list):
        return [json_value(item) for item in value]
    return to_json_compatible(value)


@dataclass(frozen=True, slots=True)
class EntityView:
    """One row of one source table in a customer's view."""

    kind: str  # the section it belongs to
    id: str
    source: str
    table: str
    attributes: Mapping[str, Value]
    source_ts: datetime  # commit time of the change that last wrote it, at the source
    applied_ts: datetime  # when the replicator wrote it
    # Attributes holding a JSON document (json/jsonb columns): rendered as embedded JSON.
    documents: frozenset[str] = frozenset()

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "source": self.source,
            "table": self.table,
            "attributes": {
                name: json_value(value, name in self.documents)
                for name, value in sorted(self.attributes.items())
            },
            "source_ts": self.source_ts.isoformat(),
            "applied_ts": self.applied_ts.isoformat(),
        }


@dataclass(frozen=True, slots=True)
class CustomerView:
    """A customer's whole view: every entity of every section, as of ``read_at``.

    ``possibly_stale`` is set when the requested consistency could not be met and fewer replicas
    answered (ClientSettings.fallback_consistency). ``version`` is a digest of what the view last
    applied (each entity's key and write times): it changes whenever an entity is written or
    deleted, so it serves as an HTTP ETag.
    """

    customer_id: str
    sections: Mapping[str, tuple[EntityView, ...]]
    read_at: datetime
    last_applied: datetime
    last_source_ts: datetime
    version: str
    possibly_stale: bool = False

    @property
    def age(self) -> timedelta:
        """How long before the read the view last applied a change for this customer."""
        return max(timedelta(0), self.read_at - self.last_applied)

    @property
    def entity_count(self) -> int:
        return sum(len(entities) for entities in self.sections.values())

    def restricted_to(self, sections: Iterable[str]) -> CustomerView:
        """The same view with only ``sections`` (those it has); its version covers only them, so a
        change in a section left out does not show through it."""
        kept = {kind: self.sections[kind] for kind in sections if kind in self.sections}
        if kept.keys() == self.sections.keys():
            return self
        entities = [entity for group in kept.values() for entity in group]
        digest = hashlib.blake2b(b"restricted", digest_size=12)
        for entity in entities:
            digest.update(
                f"{entity.kind}\x1f{entity.source}\x1f{entity.table}\x1f{entity.id}\x1f"
                f"{entity.source_ts.isoformat()}\x1f{entity.applied_ts.isoformat()}\x1e".encode()
            )
        return replace(
            self,
            sections=kept,
            last_applied=max((e.applied_ts for e in entities), default=self.last_applied),
            last_source_ts=max((e.source_ts for e in entities), default=self.last_source_ts),
            version=digest.hexdigest(),
        )

    def to_json(self) -> dict[str, Any]:
        """The documented read contract (README, `scv view get --json`)."""
        return {
            "customer_id": self.customer_id,
            "sections": {
                kind: [entity.to_json() for entity in entities] for kind, entities in self.sections.items()
            },
        }


@dataclass(frozen=True, slots=True)
class SectionPage:
    """One page of one section of a customer's view; ``next_page_token`` is None on the last page.

    The token is opaque and bound to this customer and section (and to the key of the client that
    issued it): handed back for another customer it is refused with InvalidPageToken."""

    customer_id: str
    section: str
    entities: tuple[EntityView, ...]
    next_page_token: str | None
    read_at: datetime
    version: str
    possibly_stale: bool = False

    def to_json(self) -> dict[str, Any]:
        return {
            "customer_id": self.customer_id,
            "section": self.section,
            "entities": [entity.to_json() for entity in self.entities],
            "next_page_token": self.next_page_token,
        }
