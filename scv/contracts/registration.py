"""The registration mapping: what `scv sources add` hands the replicator through the store.

    mapping = SourceMapping.build("crm", "crm", [TableMapping("crm", "public.customers", "profile",
                                                             customer_key="customer_id")])
    registrations.put(mapping.name, mapping.to_json())       # connectors/onboard.py
    SourceMapping.from_json(text).tables["public.customers"]  # consumer/catalog.py

Only what the replicator needs travels (kinds, keys, entity ids, NULL policy): never the database
address or credentials. Fields derived from the others (``children``) are computed when the object is
built, so both sides see the same derivation; the JSON carries only what the DBA declared.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any, Literal

from scv.contracts.keys import NORMALIZE_STEPS

__all__ = [
    "ContactRule",
    "DeletePolicy",
    "LookupKey",
    "NullPolicy",
    "RegistrationError",
    "SourceMapping",
    "TableMapping",
]

NullPolicy = Literal["dead_letter", "skip"]
DeletePolicy = Literal["remove", "keep"]


class RegistrationError(ValueError):
    """A registration's JSON does not have the documented shape."""


@dataclass(frozen=True)
class LookupKey:
    """A column other tables may find this table's rows by (``match`` in their ``via``), with the
    rule its values are compared by (scv/contracts/keys.py)."""

    name: str
    column: str
    normalize: tuple[str, ...] = ()


@dataclass(frozen=True)
class ContactRule:
    """How a contact-like kind (e-mail, phone, address) is ordered and de-duplicated when read."""

    value: str  # the column holding the contact (deduplicated by its normalised form)
    primary: str | None = None  # a boolean column: primary contacts first
    updated: str | None = None  # a timestamp column: then most recently updated first
    normalize: tuple[str, ...] = ()


@dataclass(frozen=True)
class TableMapping:
    source: str
    table: str  # schema.table
    kind: str
    customer_key: str | None = None
    # The rule customer ids are compared by: '42' and '42.00' are one customer under `number`.
    customer_key_normalize: tuple[str, ...] = ()
    via_table: str | None = None
    via_column: str | None = None
    # A via into another source (None: this one), matched on one of the target's lookup keys (None:
    # its primary key); the target key's rule travels along so both sides normalise alike.
    via_source: str | None = None
    via_key: str | None = None
    via_normalize: tuple[str, ...] = ()
    entity_id: tuple[str, ...] | None = None
    null_customer_key: NullPolicy = "dead_letter"
    # Lookup keys other tables may match (LookupKey); the replicator indexes their values.
    keys: tuple[LookupKey, ...] = ()
    # A column naming the customer this row's customer was merged into (a CRM merge); NULL: not merged.
    merge_into: str | None = None
    # On a delete at the source: `remove` the entity, or `keep` it marked as ended (history).
    on_delete: DeletePolicy = "remove"
    contact: ContactRule | None = None
    # Composed-profile attribute -> this table's column holding it.
    profile: tuple[tuple[str, str], ...] = ()
    # Which columns reach the view (None: all but ``exclude_columns``), and which arrive hashed or
    # masked by Debezium (present, but not comparable with the source's clear values).
    include_columns: tuple[str, ...] | None = None
    exclude_columns: tuple[str, ...] = ()
    masked_columns: tuple[str, ...] = ()
    # Tables of the same source whose customer is resolved through this one (derived by SourceMapping).
    children: tuple[str, ...] = field(default=(), compare=False)

    @property
    def is_via(self) -> bool:
        return self.via_table is not None

    @property
    def via_source_name(self) -> str:
        """The source of the via target (this table's own source unless it names another)."""
        return self.via_source or self.source

    @property
    def placing_columns(self) -> frozenset[str]:
        """The columns the replicator places rows by: customer key (or via column) and entity id."""
        columns = {self.via_column if self.is_via else self.customer_key, *(self.entity_id or ())}
        return frozenset(c for c in columns if c)

    @property
    def key_columns(self) -> frozenset[str]:
        """Columns the replicator reads beyond placement: lookup keys and the merge column."""
        merge = [self.merge_into] if self.merge_into else []
        return frozenset({*(key.column for key in self.keys), *merge})

    def _declared(self) -> dict[str, Any]:
        declared: dict[str, Any] = {
            "kind": self.kind,
            "customer_key": self.customer_key,
            "via_table": self.via_table,
            "via_column": self.via_column,
            "entity_id": list(self.entity_id) if self.entity_id else None,
            "null_customer_key": self.null_customer_key,
        }
        # Written only when set: registrations written before these existed read the same.
        optional: dict[str, Any] = {
            "customer_key_normalize": list(self.customer_key_normalize),
            "via_source": self.via_source,
            "via_key": self.via_key,
            "via_normalize": list(self.via_normalize),
            "keys": [{"name": k.name, "column": k.column, "normalize": list(k.normalize)} for k in self.keys],
            "merge_into": self.merge_into,
            "on_delete": self.on_delete if self.on_delete != "remove" else None,
            "contact": None
            if self.contact is None
            else {
                "value": self.contact.value,
                "primary": self.contact.primary,
                "updated": self.contact.updated,
                "normalize": list(self.contact.normalize),
            },
            "profile": dict(self.profile),
            "include_columns": list(self.include_columns) if self.include_columns is not None else None,
            "exclude_columns": list(self.exclude_columns),
            "masked_columns": list(self.masked_columns),
        }
        declared.update({k: v for k, v in optional.items() if v})
        return declared


@dataclass(frozen=True)
class SourceMapping:
    name: str
    topic_prefix: str
    tables: Mapping[str, TableMapping] = field(default_factory=dict)
    # Precedence of this source's values in the composed profile (higher first, then most recent).
    priority: int = 0

    def __post_init__(self) -> None:
        children: dict[str, list[str]] = {}
        for name, table in self.tables.items():
            if table.via_table and table.via_source in (None, self.name) and table.via_key is None:
                children.setdefault(table.via_table, []).append(name)
        derived = {
            name: replace(table, children=tuple(sorted(children.get(name, []))))
            for name, table in self.tables.items()
        }
        object.__setattr__(self, "tables", derived)

    @classmethod
    def build(
        cls, name: str, topic_prefix: str, tables: Iterable[TableMapping], priority: int = 0
    ) -> SourceMapping:
        return cls(name, topic_prefix, {table.table: table for table in tables}, priority)

    def topic_for(self, table: str) -> str:
        return f"{self.topic_prefix}.{table}"

    def to_json(self) -> str:
        document: dict[str, Any] = {
            "name": self.name,
            "topic_prefix": self.topic_prefix,
            "tables": {name: t._declared() for name, t in sorted(self.tables.items())},
        }
        if self.priority:
            document["priority"] = self.priority
        return json.dumps(document, sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> SourceMapping:
        """Parse a registration; ``RegistrationError`` names what is wrong."""
        try:
            data = json.loads(text)
            name = data["name"]
            raw_tables: dict[str, dict[str, Any]] = data["tables"]
            tables = [_table(name, table, spec) for table, spec in raw_tables.items()]
            return cls.build(name, data.get("topic_prefix") or name, tables, int(data.get("priority", 0)))
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            raise RegistrationError(f"not a source registration: {exc!r}") from exc


def _table(source: str, table: str, spec: dict[str, Any]) -> TableMapping:
    declared = spec.get("null_customer_key") or "dead_letter"
    if declared not in ("dead_letter", "skip"):
        raise ValueError(f"{table}: null_customer_key {declared!r} is not dead_letter or skip")
    policy: NullPolicy = "skip" if declared == "skip" else "dead_letter"
    on_delete = spec.get("on_delete") or "remove"
    if on_delete not in ("remove", "keep"):
        raise ValueError(f"{table}: on_delete {on_delete!r} is not remove or keep")
    contact = spec.get("contact")
    return TableMapping(
        source=source,
        table=table,
        kind=spec["kind"],
        customer_key=spec.get("customer_key"),
        customer_key_normalize=_steps(spec.get("customer_key_normalize")),
        via_table=spec.get("via_table"),
        via_column=spec.get("via_column"),
        via_source=spec.get("via_source"),
        via_key=spec.get("via_key"),
        via_normalize=_steps(spec.get("via_normalize")),
        entity_id=tuple(spec["entity_id"]) if spec.get("entity_id") else None,
        null_customer_key=policy,
        keys=tuple(
            LookupKey(k["name"], k["column"], _steps(k.get("normalize"))) for k in spec.get("keys") or []
        ),
        merge_into=spec.get("merge_into"),
        on_delete="keep" if on_delete == "keep" else "remove",
        contact=None
        if not contact
        else ContactRule(
            contact["value"], contact.get("primary"), contact.get("updated"), _steps(contact.get("normalize"))
        ),
        profile=tuple(sorted((spec.get("profile") or {}).items())),
        include_columns=tuple(spec["include_columns"]) if spec.get("include_columns") is not None else None,
        exclude_columns=tuple(spec.get("exclude_columns") or ()),
        masked_columns=tuple(spec.get("masked_columns") or ()),
    )


def _steps(raw: Any) -> tuple[str, ...]:
    steps = tuple(raw or ())
    unknown = [step for step in steps if step not in NORMALIZE_STEPS]
    if unknown:
        raise ValueError(f"unknown normalisation step(s) {unknown}; known: {list(NORMALIZE_STEPS)}")
    return steps
