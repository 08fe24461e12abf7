"""The declarative source spec a DBA writes, one YAML file per system of record.

    spec = load_spec(Path("connectors/sources/crm.yaml"))
    spec.tables["public.customers"].kind  # 'profile'

Every other name (connector, slot, publication, topics) derives from ``name``: ``spec.names``
(scv/contracts/naming.py).
Errors name the file, the key path and the line, and say how to fix it.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from connectors.exceptions import SpecError
from scv.contracts.keys import NormalizeStep
from scv.contracts.naming import SOURCE_NAME, SourceNames

__all__ = [
    "ContactSpec",
    "DatabaseSpec",
    "KeyColumn",
    "SourceSpec",
    "TableSpec",
    "ViaKey",
    "load_spec",
    "parse_spec",
]

_QUALIFIED = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*\.[A-Za-z_][A-Za-z0-9_]*$")
_SOURCE_QUALIFIED = re.compile(r"^[a-z][a-z0-9_]{0,40}\.[A-Za-z_][A-Za-z0-9_]*\.[A-Za-z_][A-Za-z0-9_]*$")
_KIND = re.compile(r"^[a-z][a-z0-9_]{0,40}$")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


# PostgreSQL truncates identifiers to 63 bytes (NAMEDATALEN - 1): a longer name would silently
# name another database or role.
_MAX_IDENTIFIER_BYTES = 63


def _quotable_name(value: str) -> str:
    """A database or role name grant-sql can quote safely (psycopg's sql.Identifier does the quoting):
    not empty, at most 63 bytes, and no control characters (a newline would end the SQL comment that
    names it, a NUL is not storable)."""
    if not value:
        raise ValueError("must not be empty")
    if len(value.encode("utf-8")) > _MAX_IDENTIFIER_BYTES:
        raise ValueError(
            f"{value[:20]!r}... is {len(value.encode())} bytes; PostgreSQL names are at most 63 bytes"
        )
    bad = sorted({repr(c) for c in value if ord(c) < 32 or ord(c) == 127})
    if bad:
        raise ValueError(
            f"{value!r} holds control character(s) {', '.join(bad)}, which no quoting makes safe in the "
            f"SQL scv writes; rename it"
        )
    return value


class DatabaseSpec(_Strict):
    host: str
    port: int = Field(default=5432, ge=1, le=65535)
    dbname: str
    user: str
    password_env: str | None = None
    password_file: Path | None = None

    @field_validator("dbname", "user")
    @classmethod
    def _quotable(cls, value: str) -> str:
        return _quotable_name(value)

    @model_validator(mode="after")
    def _one_password_source(self) -> DatabaseSpec:
        # The password itself is never accepted inline: a spec lives in git and in review tools.
        if (self.password_env is None) == (self.password_file is None):
            raise ValueError(
                "give exactly one of password_env (an environment variable name) or password_file "
                "(a path readable by scv); the password itself never goes in the spec"
            )
        return self

    def password(self) -> str:
        """The CDC user's password, read at the moment it is needed and never stored."""
        if self.password_env is not None:
            value = os.environ.get(self.password_env)
            if value is None:
                raise SpecError(
                    f"environment variable {self.password_env} (database.password_env) is not set; "
                    f"export it before running scv"
                )
            return value
        assert self.password_file is not None
        try:
            return self.password_file.read_text().strip()
        except OSError as exc:
            raise SpecError(
                f"cannot read database.password_file {self.password_file}: {exc.strerror}"
            ) from exc


class KeyColumn(_Strict):
    """``customer_key`` in its long form: the column, and the rule its values are compared by
    (scv/contracts/keys.py), e.g. ``{column: customer_id, normalize: [number]}``."""

    column: str
    normalize: list[NormalizeStep] = Field(default_factory=list)


class ViaKey(_Strict):
    """The customer is found through another table: ``column`` holds a value of ``via``'s primary key
    (``via: public.accounts``, same source), or of one of the lookup keys ``via`` declares under
    ``keys`` (``match``), possibly in another source (``via: crm.public.customers``). The row found
    there gives the customer; the rule its key declares normalises both sides."""

    via: str
    column: str
    match: str | None = None

    @field_validator("via")
    @classmethod
    def _qualified(cls, value: str) -> str:
        if not (_QUALIFIED.match(value) or _SOURCE_QUALIFIED.match(value)):
            raise ValueError(
                f"expected schema.table (this source) or source.schema.table (another source), e.g. "
                f"public.accounts or crm.public.customers, got {value!r}"
            )
        return value

    @model_validator(mode="after")
    def _other_source_needs_a_key(self) -> ViaKey:
        if self.source is not None and self.match is None:
            raise ValueError(
                f"a via into another source ({self.via}) matches one of its lookup keys: add "
                f"match: <key> (a key {self.source} declares under keys: for {self.table})"
            )
        return self

    @property
    def source(self) -> str | None:
        """The other source named by ``via``, or None for a table of this source."""
        return self.via.split(".", 1)[0] if _SOURCE_QUALIFIED.match(self.via) else None

    @property
    def table(self) -> str:
        return self.via.split(".", 1)[1] if self.source is not None else self.via


class ContactSpec(_Strict):
    """A contact-like kind (e-mail, phone, address): read back de-duplicated by the normalised
    ``value`` across sources, primary first (a boolean column), then most recently ``updated``."""

    value: str
    primary: str | None = None
    updated: str | None = None
    normalize: list[NormalizeStep] = Field(default_factory=list)


class TableSpec(_Strict):
    kind: str
    customer_key: str | KeyColumn | ViaKey
    # Columns whose values identify the entity inside the customer's partition; default: primary key.
    entity_id: list[str] | None = None
    include_columns: list[str] | None = None
    exclude_columns: list[str] = Field(default_factory=list)
    # PII handled at the source by Debezium, so clear values never reach Kafka.
    hash_columns: list[str] = Field(default_factory=list)
    mask_columns: list[str] = Field(default_factory=list)
    # What a NULL customer key means. Required when the column is nullable (validate checks it):
    # `dead_letter` parks the change for a human, `skip` declares such rows outside the view.
    null_customer_key: Literal["dead_letter", "skip"] | None = None
    # Lookup keys other tables may match (their `via` ... `match:`): column -> normalisation rule.
    keys: dict[str, list[NormalizeStep]] = Field(default_factory=dict)
    # A CRM merge: the column naming the customer this row's customer was merged into (NULL: none).
    merge_into: str | None = None
    # What a delete at the source does: remove the entity, or keep it marked as ended (history).
    # Unset: the source's on_delete.
    on_delete: Literal["remove", "keep"] | None = None
    contact: ContactSpec | None = None
    # Composed profile: attribute name -> this table's column (precedence: the source's priority).
    profile: dict[str, str] = Field(default_factory=dict)

    @field_validator("kind")
    @classmethod
    def _kind_name(cls, value: str) -> str:
        if not _KIND.match(value):
            raise ValueError(f"kind must be lower_snake_case (e.g. card), got {value!r}")
        return value

    @model_validator(mode="after")
    def _include_xor_exclude(self) -> TableSpec:
        if self.include_columns is not None and self.exclude_columns:
            raise ValueError("give include_columns or exclude_columns, not both")
        return self

    @model_validator(mode="after")
    def _merge_needs_a_direct_key(self) -> TableSpec:
        if self.merge_into is not None and self.via is not None:
            raise ValueError(
                "merge_into belongs on the table that defines customers (a direct customer_key), "
                "not on one reached through via"
            )
        return self

    @property
    def via(self) -> ViaKey | None:
        return self.customer_key if isinstance(self.customer_key, ViaKey) else None

    @property
    def key_column(self) -> str:
        """The column placing a row: the customer key, or the via column."""
        key = self.customer_key
        if isinstance(key, ViaKey):
            return key.column
        return key.column if isinstance(key, KeyColumn) else key

    @property
    def key_normalize(self) -> list[str]:
        return list(self.customer_key.normalize) if isinstance(self.customer_key, KeyColumn) else []


class SourceSpec(_Strict):
    name: str
    database: DatabaseSpec
    tables: dict[str, TableSpec]
    # Default of every table's on_delete.
    on_delete: Literal["remove", "keep"] = "remove"
    # Precedence in the composed profile when sources disagree: higher first, then most recent.
    priority: int = 0
    snapshot_mode: Literal["initial", "no_data", "when_needed", "initial_only", "always"] = "initial"
    heartbeat_interval_ms: int = Field(default=10_000, ge=1000)
    topic_partitions: int | None = Field(default=None, ge=1)
    signal_table: str = "public.scv_signal"
    # Written by Debezium's heartbeat.action.query so the slot advances on an idle database (the
    # table is in the publication but not in table.include.list: the change reaches Debezium, which
    # acknowledges its LSN, but never a topic). Created by `scv sources grant-sql`.
    heartbeat_table: str = "public.scv_heartbeat"
    # Who maintains the publication (rendered as Debezium's publication.autocreate.mode):
    # `disabled`: the DBA creates it (grant-sql) and Debezium only uses it: the least-privilege setup,
    #   since PostgreSQL lets only the owner of the publication AND of every table CREATE/ALTER it;
    # `filtered`: Debezium creates it and runs ALTER PUBLICATION ... SET TABLE on every start, which
    #   keeps it in step with the spec but needs a CDC user owning the tables (and CREATE on the db);
    # `auto` (default): `filtered` when validation sees the CDC user owns every captured table,
    #   otherwise `disabled`.
    publication_autocreate: Literal["auto", "disabled", "filtered"] = "auto"
    # Salt of column.mask.hash.SHA-256 (it becomes part of a config key, hence the charset). The same
    # salt in every source keeps a hashed value joinable across sources.
    hash_salt: str = Field(default="scv", pattern=r"^[A-Za-z0-9_-]{1,64}$")
    # Registry compatibility set on the source's <topic>-key/-value subjects by `scv sources add`.
    compatibility: Literal[
        "BACKWARD", "BACKWARD_TRANSITIVE", "FORWARD", "FORWARD_TRANSITIVE", "FULL", "FULL_TRANSITIVE", "NONE"
    ] = "BACKWARD"

    @field_validator("name")
    @classmethod
    def _logical_name(cls, value: str) -> str:
        if not SOURCE_NAME.match(value):
            raise ValueError(
                f"name must be lower_snake_case, start with a letter, at most 41 chars (it becomes the "
                f"topic prefix, slot and publication name), got {value!r}"
            )
        return value

    @field_validator("tables")
    @classmethod
    def _tables(cls, value: dict[str, TableSpec]) -> dict[str, TableSpec]:
        if not value:
            raise ValueError("list at least one table, e.g. public.customers: {kind: profile, ...}")
        for table in value:
            if not _QUALIFIED.match(table):
                raise ValueError(f"table keys are schema.table, e.g. public.customers, got {table!r}")
        return value

    @field_validator("signal_table", "heartbeat_table")
    @classmethod
    def _qualified_table(cls, value: str) -> str:
        if not _QUALIFIED.match(value):
            raise ValueError(f"expected schema.table, e.g. public.scv_signal, got {value!r}")
        return value

    @model_validator(mode="after")
    def _via_targets_exist(self) -> SourceSpec:
        for table, spec in self.tables.items():
            via = spec.via
            if via is None or via.source not in (None, self.name):
                continue  # another source's tables are checked against its registration by validate
            target = self.tables.get(via.table)
            if target is not None and via.match is not None and via.match not in target.keys:
                raise ValueError(
                    f"tables.{table}.customer_key.match: {via.table} declares no key {via.match!r}; add "
                    f"keys: {{{via.match}: [...]}} under tables.{via.table}"
                )
            if via.table not in self.tables:
                raise ValueError(
                    f"tables.{table}.customer_key.via names {via.via}, which is not a table of this "
                    f"source; add it under tables or use a direct customer_key column"
                )
            seen = {table}
            hop: str | None = via.table
            while hop is not None:
                if hop in seen:
                    raise ValueError(f"tables.{table}.customer_key.via forms a cycle through {hop}")
                seen.add(hop)
                next_via = self.tables[hop].via
                hop = next_via.table if next_via and next_via.source in (None, self.name) else None
        return self

    @property
    def names(self) -> SourceNames:
        """Connector, slot, publication, topics: every name derives from ``name``."""
        return SourceNames(self.name)


def _line_index(node: yaml.Node, path: tuple[str | int, ...] = ()) -> dict[tuple[str | int, ...], int]:
    """Map every key path of a YAML document to its 1-based line, for error messages."""
    lines: dict[tuple[str | int, ...], int] = {path: node.start_mark.line + 1}
    if isinstance(node, yaml.MappingNode):
        for key_node, value_node in node.value:
            key = str(key_node.value)
            lines.update(_line_index(value_node, (*path, key)))
            # After the children: an error about a nested mapping points at its key, not its first child.
            lines[(*path, key)] = key_node.start_mark.line + 1
    elif isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            lines.update(_line_index(item, (*path, index)))
    return lines


def _nearest_line(lines: dict[tuple[str | int, ...], int], loc: tuple[str | int, ...]) -> int:
    # Pydantic adds discriminator steps (e.g. 'str', 'ViaKey') to union locations; walk up until a
    # path the document really has.
    path = tuple(loc)
    while path and path not in lines:
        path = path[:-1]
    return lines.get(path, 1)


def _yaml_error(origin: str, what: str, exc: yaml.YAMLError) -> SpecError:
    mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
    line = mark.line + 1 if mark is not None else 1
    problem = getattr(exc, "problem", None) or str(exc)
    return SpecError(f"{origin}:{line}: {what}: {problem}")


def _refuse_duplicate_keys(node: yaml.Node, origin: str) -> None:
    """PyYAML keeps the last of two equal keys and drops the first without a word: refuse instead."""
    if isinstance(node, yaml.MappingNode):
        seen: dict[str, int] = {}
        for key_node, value_node in node.value:
            key = str(key_node.value)
            line = key_node.start_mark.line + 1
            if key in seen:
                raise SpecError(
                    f"{origin}:{line}: duplicate key {key!r} (first at line {seen[key]}); YAML would keep "
                    f"only one of them: merge them into one"
                )
            seen[key] = line
            _refuse_duplicate_keys(value_node, origin)
    elif isinstance(node, yaml.SequenceNode):
        for item in node.value:
            _refuse_duplicate_keys(item, origin)


def parse_spec(text: str, origin: str = "<spec>") -> SourceSpec:
    """Parse and validate a spec; every problem is reported as ``file:line: key: message``."""
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError as exc:
        raise _yaml_error(origin, "not valid YAML", exc) from exc
    if node is None:
        raise SpecError(f"{origin}:1: the file is empty; see connectors/sources/ for examples")
    if not isinstance(node, yaml.MappingNode):
        raise SpecError(
            f"{origin}:{node.start_mark.line + 1}: expected a mapping with name, database and tables"
        )
    _refuse_duplicate_keys(node, origin)
    try:
        # Safe construction only: a tag such as !!python/object is refused here, with its line.
        data: Any = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise _yaml_error(
            origin, "not a plain YAML value (only mappings, lists, strings, numbers)", exc
        ) from exc
    if not isinstance(data, dict):
        raise SpecError(f"{origin}:1: expected a mapping with name, database and tables")
    lines = _line_index(node)
    try:
        return SourceSpec.model_validate(data)
    except ValidationError as exc:
        problems = []
        for error in exc.errors():
            loc = tuple(error["loc"])
            key = (
                ".".join(str(part) for part in loc if part not in ("str", "KeyColumn", "ViaKey"))
                or "(top level)"
            )
            problems.append(f"{origin}:{_nearest_line(lines, loc)}: {key}: {error['msg']}")
        raise SpecError("invalid source spec:\n  " + "\n  ".join(problems)) from exc


def load_spec(path: Path) -> SourceSpec:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise SpecError(f"{path}: cannot read the source spec: {exc.strerror}") from exc
    except UnicodeDecodeError as exc:
        raise SpecError(f"{path}: not UTF-8 text (byte {exc.start}); save the spec as UTF-8") from exc
    return parse_spec(text, str(path))
