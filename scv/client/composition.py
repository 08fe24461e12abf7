"""Compose what several sources say about one customer: ordered contacts and the profile (pure).

    rules = CompositionRules.of(registrations)        # from the sources' registrations
    contacts = rules.contacts("email", entities)      # de-duplicated, primary first, then most recent
    profile = rules.profile(entities)                  # one value per attribute, by source priority

Entities are the view's rows of one customer (anything with ``source``, ``table``, ``id``,
``attributes``, ``source_ts`` and ``ended_at``). Rules come from the source specs, through their
registrations: ``contact:`` (which column holds the contact, which says primary, which says updated,
how values compare) and ``profile:`` (attribute -> column) with the source's ``priority``.

- A contact held by several sources (the same e-mail in the CRM and the contact center) appears once,
  normalised by its rule, listing every holder; primary if any holder says so; ordered primary first,
  then most recently updated (the holder's ``updated`` column, else its source commit time).
- A profile attribute held by several sources takes the value of the highest ``priority``, then the
  most recent; the others are kept as alternatives with their sources. Ended entities (deleted at the
  source, kept as history) take part in neither.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol

from scv.contracts.keys import InvalidKey, normalize
from scv.contracts.registration import ContactRule, SourceMapping

__all__ = [
    "CompositionRules",
    "Contact",
    "Holder",
    "ProfileAlternative",
    "ProfileValue",
    "ViewEntity",
]

_NEVER = datetime.min.replace(tzinfo=UTC)


class ViewEntity(Protocol):
    @property
    def source(self) -> str: ...
    @property
    def table(self) -> str: ...
    @property
    def id(self) -> str: ...
    @property
    def attributes(self) -> Mapping[str, Any]: ...
    @property
    def source_ts(self) -> datetime: ...
    @property
    def ended_at(self) -> datetime | None: ...


@dataclass(frozen=True, slots=True, order=True)
class Holder:
    source: str
    table: str
    id: str

    def to_json(self) -> dict[str, str]:
        return {"source": self.source, "table": self.table, "id": self.id}


@dataclass(frozen=True, slots=True)
class Contact:
    value: Any  # as the most recently updated holder spells it
    normalized: str
    primary: bool
    updated_at: datetime | None
    held_by: tuple[Holder, ...]


@dataclass(frozen=True, slots=True)
class ProfileAlternative:
    value: Any
    holder: Holder
    source_ts: datetime


@dataclass(frozen=True, slots=True)
class ProfileValue:
    value: Any
    holder: Holder
    source_ts: datetime
    alternatives: tuple[ProfileAlternative, ...]


def _aware(value: Any) -> datetime | None:
    if not isinstance(value, datetime):
        return None
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


@dataclass(frozen=True)
class CompositionRules:
    contact_rules: Mapping[tuple[str, str], ContactRule]
    profile_rules: Mapping[tuple[str, str], tuple[tuple[str, str], ...]]
    priorities: Mapping[str, int]

    @classmethod
    def of(cls, mappings: Iterable[SourceMapping]) -> CompositionRules:
        contacts: dict[tuple[str, str], ContactRule] = {}
        profiles: dict[tuple[str, str], tuple[tuple[str, str], ...]] = {}
        priorities: dict[str, int] = {}
        for mapping in mappings:
            priorities[mapping.name] = mapping.priority
            for name, table in mapping.tables.items():
                if table.contact is not None:
                    contacts[(mapping.name, name)] = table.contact
                if table.profile:
                    profiles[(mapping.name, name)] = table.profile
        return cls(contacts, profiles, priorities)

    def has_contacts(self, entities: Iterable[ViewEntity]) -> bool:
        return any((e.source, e.table) in self.contact_rules for e in entities)

    def contacts(self, entities: Sequence[ViewEntity]) -> list[Contact]:
        """The contacts among ``entities`` (one kind), de-duplicated and ordered."""
        groups: dict[str, list[tuple[ViewEntity, ContactRule, Any, datetime]]] = {}
        for entity in entities:
            rule = self.contact_rules.get((entity.source, entity.table))
            if rule is None or entity.ended_at is not None:
                continue
            value = entity.attributes.get(rule.value)
            if value is None:
                continue
            try:
                key = normalize(value, rule.normalize)
            except InvalidKey:
                continue
            updated = _aware(entity.attributes.get(rule.updated)) if rule.updated else None
            groups.setdefault(key, []).append(
                (entity, rule, value, updated or _aware(entity.source_ts) or _NEVER)
            )
        contacts = []
        for key, holders in groups.items():
            newest = max(holders, key=lambda h: h[3])
            primary = any(
                rule.primary and entity.attributes.get(rule.primary) is True for entity, rule, _, _ in holders
            )
            contacts.append(
                Contact(
                    value=newest[2],
                    normalized=key,
                    primary=primary,
                    updated_at=newest[3] if newest[3] != _NEVER else None,
                    held_by=tuple(sorted(Holder(e.source, e.table, e.id) for e, _, _, _ in holders)),
                )
            )
        contacts.sort(key=lambda c: (not c.primary, -(c.updated_at or _NEVER).timestamp(), c.normalized))
        return contacts

    def profile(self, entities: Iterable[ViewEntity]) -> dict[str, ProfileValue]:
        """One value per declared profile attribute: highest source priority, then most recent."""
        candidates: dict[str, list[tuple[int, datetime, Any, Holder]]] = {}
        for entity in entities:
            columns = self.profile_rules.get((entity.source, entity.table))
            if not columns or entity.ended_at is not None:
                continue
            priority = self.priorities.get(entity.source, 0)
            when = _aware(entity.source_ts) or _NEVER
            for attribute, column in columns:
                value = entity.attributes.get(column)
                if value is not None:
                    holder = Holder(entity.source, entity.table, entity.id)
                    candidates.setdefault(attribute, []).append((priority, when, value, holder))
        profile = {}
        for attribute, found in sorted(candidates.items()):
            found.sort(key=lambda c: (c[0], c[1], str(c[3])), reverse=True)
            _priority, when, value, holder = found[0]
            alternatives = tuple(ProfileAlternative(v, h, w) for _p, w, v, h in found[1:])
            profile[attribute] = ProfileValue(value, holder, when, alternatives)
        return profile
