"""Checked-in Avro contracts of a source's topics vs the registry vs the live tables.

    export_schemas("crm", settings, Path("registry_schemas"))      # writes sources/crm/*.avsc
    check_schemas(settings, Path("registry_schemas"), "crm")       # raises SchemaDrift with each fix

`check` predicts the value/key schema Debezium would register for the table as it is *now* (the
contract with every column change applied, see connectors/avro_types.py) and asks the registry's
compatibility endpoint whether it would accept it, so a DBA's DDL is caught before the connector
fails on it in production. It also names what the replicator would reject (a customer key or
entity id column dropped or retyped, a primary-key change) whatever the registry says.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import structlog

from connectors.avro_types import avro_type_for, same_type
from connectors.connect import ConnectClient
from connectors.database import TableFacts, read_table
from connectors.exceptions import SchemaDrift, SourceError, SourceNotFound
from connectors.operate import captured_tables, connect_as_source
from connectors.registry import RegistryClient
from scv.config.settings import Settings
from scv.contracts.naming import SourceNames
from scv.contracts.registration import SourceMapping

__all__ = ["check_schemas", "contract_dir", "export_schemas", "predict_value_schema"]

log = structlog.get_logger(__name__)


def contract_dir(directory: Path, name: str) -> Path:
    return directory / "sources" / name


def _dump(schema: dict[str, Any]) -> str:
    return json.dumps(schema, indent=2) + "\n"


def export_schemas(name: str, settings: Settings, directory: Path) -> list[Path]:
    """Write the registry's latest ``<topic>-key.avsc`` / ``<topic>-value.avsc`` of every captured table."""
    names = SourceNames(name)
    with ConnectClient(settings.connect.url) as connect:
        config = connect.get_config(names.connector)
    if config is None:
        raise SourceNotFound(f"no connector {names.connector}; onboard the source first (`scv sources add`)")
    target = contract_dir(directory, name)
    target.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    missing: list[str] = []
    with RegistryClient(settings.registry.url) as registry:
        for table in captured_tables(config):
            for role in ("key", "value"):
                subject = names.subject(table, role)
                schema = registry.latest_schema(subject)
                if schema is None:
                    missing.append(subject)
                    continue
                path = target / f"{subject}.avsc"
                path.write_text(_dump(schema))
                written.append(path)
    if missing:
        log.warning("schemas.not_registered", source=name, subjects=missing)
    return written


def _row_record(value_schema: dict[str, Any]) -> dict[str, Any]:
    """The row record (``...Value``) defined inside the envelope's ``before`` field."""
    for field in value_schema.get("fields", []):
        if field["name"] == "before":
            for branch in field["type"] if isinstance(field["type"], list) else [field["type"]]:
                if isinstance(branch, dict) and branch.get("type") == "record":
                    return branch
    raise SourceError(f"{value_schema.get('name')}: not a Debezium envelope (no before record)")


def _nullable(schema: Any) -> bool:
    return isinstance(schema, list) and "null" in schema


def _field_for(column: str, facts: TableFacts) -> dict[str, Any]:
    col = facts.columns[column]
    avro = avro_type_for(col.type)
    if not col.not_null:
        return {"name": column, "type": ["null", avro], "default": None}
    return {"name": column, "type": avro}


def predict_value_schema(contract: dict[str, Any], facts: TableFacts) -> tuple[dict[str, Any], list[str]]:
    """The contract with the live table's column changes applied, and a description of each change."""
    predicted = copy.deepcopy(contract)
    record = _row_record(predicted)
    changes: list[str] = []
    fields: list[dict[str, Any]] = []
    for field in record["fields"]:
        column = field["name"]
        if column not in facts.columns:
            changes.append(f"dropped:{column}")
            continue
        live = facts.columns[column]
        if not same_type(field["type"], avro_type_for(live.type)):
            changes.append(f"type:{column}:{live.type}")
            fields.append(_field_for(column, facts))
        elif _nullable(field["type"]) and live.not_null:
            changes.append(f"not_null:{column}")
            fields.append(_field_for(column, facts))
        elif not _nullable(field["type"]) and not live.not_null:
            changes.append(f"nullable:{column}")
            fields.append(_field_for(column, facts))
        else:
            fields.append(field)
    known = {f["name"] for f in record["fields"]}
    for column in facts.columns:
        if column not in known:
            changes.append(f"added:{column}")
            fields.append(_field_for(column, facts))
    record["fields"] = fields
    return predicted, changes


def _key_fields(key_schema: dict[str, Any]) -> tuple[str, ...]:
    return tuple(f["name"] for f in key_schema.get("fields", []))


def _mapping_columns(settings: Settings, name: str) -> dict[str, set[str]]:
    """Per table, the columns the replicator needs (customer key / via column / entity id)."""
    try:
        from store.registrations import RegistrationStore
        from store.session import open_session

        with open_session(settings.store) as session:
            regs = {r.name: r for r in RegistrationStore(session, settings.store.keyspace).all()}
    except Exception as exc:  # the registry/table checks still run; the report says what was skipped
        log.warning("schemas.registrations_unavailable", error=str(exc))
        return {}
    if name not in regs:
        return {}
    mapping = SourceMapping.from_json(regs[name].mapping_json)
    return {table: set(t.placing_columns) for table, t in mapping.tables.items()}


def _describe(
    table: str, change: str, field_default: bool, needed: set[str], compat: str
) -> tuple[str, bool]:
    """Human text for one change and whether it is a problem by itself (registry aside)."""
    kind, column, *rest = change.split(":")
    where = f"{table}.{column}"
    if kind == "dropped":
        if column in needed:
            return (
                f"{where} was dropped but the replicator places rows by it (customer key / entity id); "
                f"restore the column or change the source spec first",
                True,
            )
        if not field_default:
            return (
                f"{where} was dropped and has no default in the contract: consumers still reading with the "
                f"contract fail on new records (FORWARD/FULL). Fix: first make it nullable (ALTER TABLE "
                f"{table} ALTER COLUMN {column} DROP NOT NULL), release and re-export, then drop it",
                True,
            )
        return f"{where} was dropped (it has a default in the contract: readers keep working)", False
    if kind == "type":
        needed_note = " and the replicator keys rows by it" if column in needed else ""
        return (
            f"{where} changed type to {rest[0]}{needed_note}; Debezium will register a new {compat} "
            f"schema only if the registry accepts it. Fix: add a new column of the new type and "
            f"migrate, instead of ALTER COLUMN ... TYPE",
            column in needed,
        )
    if kind == "not_null":
        return (
            f"{where} became NOT NULL: its Avro type loses null, which old records have "
            f"(BACKWARD-incompatible). Fix: ALTER TABLE {table} ALTER COLUMN {column} DROP NOT NULL, or "
            f"evolve the contract with a compatibility change agreed with consumers",
            False,
        )
    if kind == "nullable":
        return f"{where} became nullable (compatible for new readers)", False
    return f"{where} was added; re-export the contract after the change (`scv schemas export`)", False


def check_schemas(settings: Settings, directory: Path, name: str | None = None) -> list[str]:
    """Return info lines when all is well; raise SchemaDrift listing every problem and its fix."""
    roots = [contract_dir(directory, name)] if name else sorted((directory / "sources").glob("*"))
    problems: list[str] = []
    infos: list[str] = []
    for root in roots:
        if not root.is_dir():
            raise SourceNotFound(f"no contracts under {root}; run `scv schemas export {root.name}` first")
        problems_here, infos_here = _check_source(settings, root.name, root)
        problems.extend(problems_here)
        infos.extend(infos_here)
    if problems:
        raise SchemaDrift(problems)
    return infos


def _check_source(settings: Settings, name: str, root: Path) -> tuple[list[str], list[str]]:
    problems: list[str] = []
    infos: list[str] = []
    names = SourceNames(name)
    with ConnectClient(settings.connect.url) as connect:
        config = connect.get_config(names.connector)
    if config is None:
        return [
            f"{root}: no connector {names.connector}; the contracts describe a source that is not onboarded"
        ], []
    needed = _mapping_columns(settings, name)
    with (
        RegistryClient(settings.registry.url) as registry,
        connect_as_source(config, settings.connect, name) as conn,
    ):
        for table in captured_tables(config):
            subject, key_subject = names.subject(table, "value"), names.subject(table, "key")
            value_path, key_path = root / f"{subject}.avsc", root / f"{key_subject}.avsc"
            if not value_path.exists():
                infos.append(f"{table}: no checked-in contract ({value_path}); `scv schemas export {name}`")
                continue
            contract = json.loads(value_path.read_text())
            latest = registry.latest_schema(subject)
            if latest is not None and latest != contract:
                ok, messages = registry.is_compatible(subject, contract)
                problems.append(
                    f"{value_path}: differs from the registry's latest {subject}"
                    f"{'' if ok else ' and would be rejected by it: ' + '; '.join(messages)}; "
                    f"review and `scv schemas export {name}`"
                )
            facts = read_table(conn, table)
            if not facts.exists:
                problems.append(f"{table}: the table no longer exists; restore it or remove it from the spec")
                continue
            predicted, changes = predict_value_schema(contract, facts)
            defaults = {f["name"]: "default" in f for f in _row_record(contract)["fields"]}
            compat = registry.get_compatibility(subject) or "BACKWARD"
            notes: list[str] = []
            for change in changes:
                text, is_problem = _describe(
                    table,
                    change,
                    defaults.get(change.split(":")[1], False),
                    needed.get(table, set()),
                    compat,
                )
                (problems if is_problem else notes).append(text)
            rejected = False
            if changes and latest is not None:
                ok, messages = registry.is_compatible(subject, predicted)
                if not ok:
                    rejected = True
                    problems.append(
                        f"{table}: the registry ({compat}) would REJECT the schema Debezium registers after "
                        f"{', '.join(changes)} ({'; '.join(messages) or 'incompatible'}): the connector "
                        f"would fail on the next change. Revert the DDL or make it compatible: "
                        + " | ".join(notes)
                    )
            if not rejected:
                infos.extend(notes)
            if key_path.exists():
                key_fields = _key_fields(json.loads(key_path.read_text()))
                if key_fields != facts.primary_key:
                    problems.append(
                        f"{table}: primary key changed from {list(key_fields)} to {list(facts.primary_key)}: "
                        f"record keys and the replicator's entity ids change, so existing entities would be "
                        f"orphaned. Restore the primary key, or re-onboard the table and resnapshot"
                    )
            if not changes:
                infos.append(f"{table}: contract, registry and table agree")
    return problems, infos
