"""`scv view get` (also `python -m scv.client`): one customer's view, readable or as the JSON contract.

    python -m scv.client 42 --json          # what `scv view get 42 --json` runs
    python -m scv.client 42 --section email

A one-read process, built to start fast (well under 0.5 s): argparse and the read client only (typer
builds a pydantic adapter per option, the service's settings load pydantic-settings: together
~0.25 s of imports); the settings come from the environment (ClientSettings.from_env) unless the
caller passes them; the driver skips schema metadata (token-aware routing is worth nothing for one
read) and runs on its asyncio reactor: libev's exit hook often waits 5 s for its loop thread
(scylladb/python-driver#524). Exit status: 0, 2 for an unknown customer, 1 for any other error.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from dataclasses import replace
from datetime import UTC, datetime
from typing import TextIO

from scv.client.exceptions import CustomerNotFound, ViewClientError
from scv.client.models import CustomerView, EntityView, json_value
from scv.client.settings import ClientSettings
from scv.client.sync import CustomerViewClient

__all__ = ["get_view", "main", "parser", "render_view"]


def parser(prog: str = "scv view get") -> argparse.ArgumentParser:
    cli = argparse.ArgumentParser(prog=prog, description="Print one customer's view.")
    cli.add_argument("customer_id", metavar="CUSTOMER_ID")
    cli.add_argument("--section", metavar="KIND", help="Only this section (kind), e.g. email.")
    cli.add_argument(
        "--json", dest="as_json", action="store_true", help="Print the documented JSON read contract."
    )
    cli.add_argument(
        "--current",
        action="store_true",
        help="Leave out entities the source deleted but the view keeps as history (on_delete: keep).",
    )
    return cli


def one_read(settings: ClientSettings) -> ClientSettings:
    """Settings tuned for a process that reads once and exits (see the module docstring)."""
    return replace(settings, reactor="asyncio", token_aware=False, speculative_attempts=0)


def get_view(
    customer_id: str,
    section: str | None,
    as_json: bool,
    settings: ClientSettings | None = None,
    out: TextIO = sys.stdout,
    err: TextIO = sys.stderr,
    current: bool = False,
) -> int:
    """Read and print one view; returns the exit status."""
    try:
        with CustomerViewClient(one_read(settings or ClientSettings.from_env())) as client:
            view = (
                client.get_view(customer_id, include_ended=not current)
                if section is None
                else _one_section(client, customer_id, section)
            )
    except CustomerNotFound as exc:
        err.write(f"error: {exc}; check the id, or whether its source is onboarded (scv sources list)\n")
        return 2
    except ViewClientError as exc:
        err.write(f"error: {exc}\n")
        return 1
    if as_json:
        json.dump(view.to_json(), out, indent=2, ensure_ascii=False)
        out.write("\n")
    else:
        out.write(render_view(view, datetime.now(UTC)))
    return 0


def main(
    argv: Sequence[str] | None = None, settings: ClientSettings | None = None, prog: str = "scv view get"
) -> int:
    args = parser(prog).parse_args(argv)
    return get_view(args.customer_id, args.section, args.as_json, settings, current=args.current)


def _one_section(client: CustomerViewClient, customer_id: str, section: str) -> CustomerView:
    """The view restricted to one section, read page by page (CustomerNotFound for an unknown
    customer; an empty section of a known one is an empty list)."""
    entities = tuple(client.iter_section(customer_id, section))
    now = datetime.now(UTC)
    return CustomerView(
        customer_id=customer_id,
        sections={section: entities},
        read_at=now,
        last_applied=max((entity.applied_ts for entity in entities), default=now),
        last_source_ts=max((entity.source_ts for entity in entities), default=now),
        version="",
    )


def _count(number: int, one: str, many: str) -> str:
    return f"{number} {one if number == 1 else many}"


def _ago(delta_s: float) -> str:
    for unit, seconds in (("d", 86400), ("h", 3600), ("min", 60)):
        if delta_s >= seconds:
            return f"{delta_s / seconds:.0f} {unit} ago"
    return f"{delta_s:.1f} s ago"


def _value(entity: EntityView, name: str) -> str:
    rendered = json_value(entity.attributes[name], name in entity.documents)
    if isinstance(rendered, dict | list):
        return json.dumps(rendered, ensure_ascii=False)
    return "NULL" if rendered is None else str(rendered)


def _entity_lines(entity: EntityView) -> list[str]:
    ended = f" · ended {entity.ended_at:%Y-%m-%d %H:%M:%S}Z" if entity.ended_at else ""
    lines = [
        f"  {entity.source}/{entity.table} #{entity.id}   "
        f"source {entity.source_ts:%Y-%m-%d %H:%M:%S.%f}Z · "
        f"applied {entity.applied_ts:%Y-%m-%d %H:%M:%S}Z{ended}"
    ]
    width = max((len(name) for name in entity.attributes), default=0)
    lines += [f"      {name:<{width}}  {_value(entity, name)}" for name in sorted(entity.attributes)]
    return lines


def render_view(view: CustomerView, now: datetime) -> str:
    """The readable rendering: a header with the view's age, then each section and its entities."""
    sections = sorted(view.sections.items())
    if not view.entity_count:
        return f"customer {view.customer_id}: no {', '.join(view.sections)} entities\n"
    head = (
        f"customer {view.customer_id}: {_count(view.entity_count, 'entity', 'entities')} in "
        f"{_count(len(sections), 'section', 'sections')}, "
        f"last applied {view.last_applied:%Y-%m-%d %H:%M:%S}Z "
        f"({_ago((now - view.last_applied).total_seconds())})"
    )
    if view.possibly_stale:
        head += "  [possibly stale: answered by fewer replicas than asked for]"
    lines = [head]
    if view.redirected_from is not None:
        lines.append(
            f"(customer {view.redirected_from} was merged into {view.customer_id}: this is its view)"
        )
    profile = view.profile
    if profile:
        lines.append("profile (composed)")
        width = max(len(name) for name in profile)
        for name, chosen in profile.items():
            others = (
                f"   (also: {', '.join(f'{a.value} from {a.holder.source}' for a in chosen.alternatives)})"
            )
            lines.append(
                f"      {name:<{width}}  {chosen.value}   from {chosen.holder.source}"
                + (others if chosen.alternatives else "")
            )
    for kind in view.contact_kinds:
        contacts = view.contacts(kind)
        if contacts:
            lines.append(f"{kind} contacts ({len(contacts)}, primary first, then most recent)")
            for contact in contacts:
                holders = ", ".join(sorted({h.source for h in contact.held_by}))
                mark = " [primary]" if contact.primary else ""
                lines.append(f"      {str(contact.value).strip()}{mark}   held by {holders}")
    for kind, entities in sections:
        lines.append(f"{kind} ({len(entities)})")
        for entity in entities:
            lines += _entity_lines(entity)
    return "\n".join(lines) + "\n"
