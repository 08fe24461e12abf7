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

import functools
import hashlib
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from types import MappingProxyType
from typing import Any, TypeAlias
from uuid import UUID

from scv.client.composition import CompositionRules, Contact, ProfileValue
from scv.client.exceptions import ViewDecodeError
from scv.contracts.cells import CellDecodeError, Json, cell_to_json, decode_value, to_json_compatible

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


def cell_json(value: Any) -> Any:
    """A typed attribute value (as ``EntityView.attributes`` holds it) in the read contract's JSON."""
    return json_value(value)


def _plain(value: Any) -> Value:
    # JSON documents are handed out parsed, numbers with a fraction as Decimal (exact, like NUMERIC).
    if isinstance(value, Json):
        parsed: Value = json.loads(value.text, parse_float=Decimal)
        return parsed
    if isinstance(value, list):
        return [_plain(item) for item in value]
    return value  # type: ignore[no-any-return]


def plain_cells(cells: Mapping[str, str] | None) -> dict[str, str]:
    """The attributes map as a dict. The driver hands a map column out as an OrderedMapSerializedKey,
    whose items() re-serialises every key to look its value up: reading its pair list is ~10x
    cheaper, and was the largest cost of rendering a 1,000-entity view. Any other mapping (another
    driver version without the list) takes the ordinary path."""
    if not cells:
        return {}
    if type(cells) is dict:
        return cells
    pairs = getattr(cells, "_items", None)
    return dict(pairs) if isinstance(pairs, list) else dict(cells.items())


# The entities of one batch (or one source transaction) share their write times: rendering a view
# formats each distinct time once.
@functools.lru_cache(maxsize=4096)
def _utc_from_us(micros: int) -> datetime:
    return datetime.fromtimestamp(micros / 1_000_000, tz=UTC)


@functools.lru_cache(maxsize=4096)
def _utc(naive: datetime) -> datetime:
    return naive.replace(tzinfo=UTC)


@functools.lru_cache(maxsize=4096)
def _iso_from_us(micros: int) -> str:
    return _utc_from_us(micros).isoformat()


@functools.lru_cache(maxsize=4096)
def _iso(naive: datetime) -> str:
    return _utc(naive).isoformat()


class EntityView:
    """One row of one source table in a customer's view, as stored.

    Built straight from the row the store returned: ``attributes`` are decoded on first access (and
    kept), and ``to_json`` renders the stored cells directly (cells.cell_to_json). Decoding every
    cell of a 1,000-entity view up front (Decimal, datetime, UUID, parsed JSON) took ~4x the store's
    own read time in the read benchmark, for channels that mostly re-serialise it as JSON.
    """

    __slots__ = (
        "_applied_at",
        "_attributes",
        "_cells",
        "_source_ts_us",
        "customer_id",
        "ended_at",
        "id",
        "kind",
        "source",
        "table",
    )

    def __init__(
        self,
        customer_id: str,
        kind: str,
        entity_id: str,
        source: str,
        table: str,
        cells: Mapping[str, str],
        source_ts_us: int,
        applied_at: datetime,
        ended_at: datetime | None = None,
    ) -> None:
        self.customer_id = customer_id
        # When the source deleted it, for a table that keeps history (on_delete: keep); else None.
        self.ended_at = (
            ended_at.replace(tzinfo=UTC) if ended_at is not None and ended_at.tzinfo is None else ended_at
        )
        self.kind = kind  # the section it belongs to
        self.id = entity_id
        self.source = source
        self.table = table
        self._cells = cells  # as the driver returned it: made a dict when first used (plain_cells)
        self._source_ts_us = source_ts_us
        self._applied_at = applied_at  # naive, UTC: how CQL timestamps come back
        self._attributes: Mapping[str, Value] | None = None

    @property
    def attributes(self) -> Mapping[str, Value]:
        """One typed value per source column (read-only)."""
        if self._attributes is None:
            decoded: dict[str, Value] = {}
            for name, cell in self._cell_map().items():
                try:
                    decoded[name] = _plain(decode_value(cell))
                except CellDecodeError as exc:
                    raise ViewDecodeError(f"{self._where(name)}: {exc}") from exc
            self._attributes = MappingProxyType(decoded)
        return self._attributes

    @property
    def documents(self) -> frozenset[str]:
        """Attributes holding a JSON document (json/jsonb columns)."""
        return frozenset(name for name, cell in self._cell_map().items() if cell.startswith("j:"))

    @property
    def source_ts(self) -> datetime:
        """Commit time, at the source, of the change that last wrote this entity."""
        return _utc_from_us(self._source_ts_us)

    @property
    def applied_ts(self) -> datetime:
        """When the replicator wrote it."""
        return _utc(self._applied_at)

    def to_json(self) -> dict[str, Any]:
        attributes: dict[str, Any] = {}
        for name, cell in sorted(self._cell_map().items()):
            try:
                attributes[name] = cell_to_json(cell)
            except CellDecodeError as exc:
                raise ViewDecodeError(f"{self._where(name)}: {exc}") from exc
        rendered = {
            "id": self.id,
            "source": self.source,
            "table": self.table,
            "attributes": attributes,
            "source_ts": _iso_from_us(self._source_ts_us),
            "applied_ts": _iso(self._applied_at),
        }
        if self.ended_at is not None:
            rendered["ended_at"] = self.ended_at.isoformat()
        return rendered

    def _cell_map(self) -> dict[str, str]:
        cells = self._cells
        if type(cells) is not dict:
            cells = self._cells = plain_cells(cells)
        return cells

    def _where(self, name: str) -> str:
        entity = f"{self.kind} {self.source}/{self.table}#{self.id}"
        return f"customer {self.customer_id!r}, {entity}, attribute {name!r}"

    def _key(self) -> tuple[Any, ...]:
        return (self.customer_id, self.kind, self.source, self.table, self.id, self._cell_map(),
                self._source_ts_us, self._applied_at)  # fmt: skip

    def __eq__(self, other: object) -> bool:
        return isinstance(other, EntityView) and self._key() == other._key()

    def __hash__(self) -> int:
        return hash((self.customer_id, self.kind, self.source, self.table, self.id))

    def __repr__(self) -> str:
        return f"EntityView({self.kind} {self.source}/{self.table}#{self.id} of {self.customer_id!r})"


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
    # Read as another customer id that the CRM merged into this one: that id (else None).
    redirected_from: str | None = None
    # The sources' composition rules (contacts, profile); None when not read with them.
    rules: CompositionRules | None = field(default=None, compare=False, repr=False)

    @property
    def profile(self) -> dict[str, ProfileValue]:
        """The composed profile: one value per declared attribute, by source priority then recency."""
        if self.rules is None:
            return {}
        return self.rules.profile(entity for entities in self.sections.values() for entity in entities)

    def contacts(self, kind: str) -> list[Contact]:
        """A contact-like section (e-mails, phones, addresses) de-duplicated across sources, ordered."""
        if self.rules is None:
            return []
        return self.rules.contacts(self.sections.get(kind, ()))

    @property
    def contact_kinds(self) -> list[str]:
        if self.rules is None:
            return []
        return sorted(kind for kind, entities in self.sections.items() if self.rules.has_contacts(entities))

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
        """The documented read contract (README, `scv view get --json`). ``redirected_from``,
        ``profile`` and ``contacts`` appear only when there is something to say."""
        rendered: dict[str, Any] = {
            "customer_id": self.customer_id,
            "sections": {
                kind: [entity.to_json() for entity in entities] for kind, entities in self.sections.items()
            },
        }
        if self.redirected_from is not None:
            rendered["redirected_from"] = self.redirected_from
        profile = self.profile
        if profile:
            rendered["profile"] = {
                name: {
                    "value": cell_json(chosen.value),
                    "source": chosen.holder.source,
                    "table": chosen.holder.table,
                    "id": chosen.holder.id,
                    "alternatives": [
                        {"value": cell_json(alt.value), **alt.holder.to_json()} for alt in chosen.alternatives
                    ],
                }
                for name, chosen in profile.items()
            }
        contacts = {kind: self.contacts(kind) for kind in self.contact_kinds}
        if any(contacts.values()):
            rendered["contacts"] = {
                kind: [
                    {
                        "value": cell_json(contact.value),
                        "primary": contact.primary,
                        "updated_at": contact.updated_at.isoformat() if contact.updated_at else None,
                        "held_by": [holder.to_json() for holder in contact.held_by],
                    }
                    for contact in found
                ]
                for kind, found in contacts.items()
            }
        return rendered


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
