"""Composed reads: contacts held by several sources appear once, ordered; the profile by precedence."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime

from scv.client.composition import CompositionRules, Holder
from scv.contracts.cells import AttributeValue
from scv.contracts.registration import ContactRule, SourceMapping, TableMapping

EMAIL = ContactRule("email", primary="is_primary", updated="updated_at", normalize=("trim", "casefold"))
RULES = CompositionRules.of(
    [
        SourceMapping.build(
            "crm",
            "crm",
            [
                TableMapping("crm", "public.emails", "email", customer_key="cid", contact=EMAIL),
                TableMapping(
                    "crm",
                    "public.customers",
                    "profile",
                    customer_key="cid",
                    profile=(("birth_date", "born"), ("name", "full_name")),
                ),
            ],
            priority=10,
        ),
        SourceMapping.build(
            "care",
            "care",
            [
                TableMapping("care", "public.emails", "email", customer_key="cid", contact=EMAIL),
                TableMapping(
                    "care", "public.callers", "caller", customer_key="cid", profile=(("name", "name"),)
                ),
            ],
            priority=1,
        ),
    ]
)


def at(day: int) -> datetime:
    return datetime(2026, 1, day, tzinfo=UTC)


@dataclass(frozen=True)
class Entity:
    source: str
    table: str
    id: str
    attributes: dict[str, AttributeValue] = field(default_factory=dict)
    source_ts: datetime = field(default_factory=lambda: at(1))
    ended_at: datetime | None = None


def email(source: str, eid: str, value: str, day: int, primary: bool = False) -> Entity:
    attrs: dict[str, AttributeValue] = {"email": value, "is_primary": primary, "updated_at": at(day)}
    return Entity(source, "public.emails", eid, attrs)


def test_the_same_email_held_by_two_sources_appears_once_with_both() -> None:
    contacts = RULES.contacts(
        [email("crm", "1", "Ada@Example.com", 3), email("care", "9", " ada@example.com", 5)]
    )
    assert len(contacts) == 1
    assert contacts[0].held_by == (Holder("care", "public.emails", "9"), Holder("crm", "public.emails", "1"))
    assert contacts[0].value == " ada@example.com"  # as the most recently updated holder spells it
    assert contacts[0].updated_at == at(5)


def test_primary_first_then_most_recently_updated() -> None:
    contacts = RULES.contacts(
        [
            email("crm", "1", "old@x.it", 1),
            email("crm", "2", "primary@x.it", 2, primary=True),
            email("care", "3", "new@x.it", 9),
        ]
    )
    assert [c.normalized for c in contacts] == ["primary@x.it", "new@x.it", "old@x.it"]
    assert [c.primary for c in contacts] == [True, False, False]


def test_a_contact_is_primary_if_any_holder_says_so() -> None:
    contacts = RULES.contacts([email("crm", "1", "a@x.it", 1, primary=True), email("care", "2", "A@x.it", 2)])
    assert contacts[0].primary is True


def test_ended_entities_are_not_current_contacts() -> None:
    ended = Entity("crm", "public.emails", "1", {"email": "gone@x.it"}, ended_at=at(2))
    assert RULES.contacts([ended]) == []


def test_profile_takes_the_highest_priority_then_the_most_recent() -> None:
    profile = RULES.profile(
        [
            Entity("care", "public.callers", "9", {"name": "A. Lovelace"}, source_ts=at(20)),
            Entity(
                "crm", "public.customers", "7", {"full_name": "Ada Lovelace", "born": None}, source_ts=at(2)
            ),
        ]
    )
    assert profile["name"].value == "Ada Lovelace"  # crm (priority 10) over a newer care value
    assert profile["name"].holder == Holder("crm", "public.customers", "7")
    assert [(a.value, a.holder.source) for a in profile["name"].alternatives] == [("A. Lovelace", "care")]
    assert "birth_date" not in profile  # NULL everywhere: not an attribute of this customer


def test_same_priority_prefers_the_most_recent_value() -> None:
    profile = RULES.profile(
        [
            Entity("care", "public.callers", "1", {"name": "Older"}, source_ts=at(1)),
            Entity("care", "public.callers", "2", {"name": "Newer"}, source_ts=at(5)),
        ]
    )
    assert profile["name"].value == "Newer"
