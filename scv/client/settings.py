"""The read client's own settings: where the store is and how to read it, nothing else.

    ClientSettings(contact_points=("10.0.0.5",), keyspace="scv", local_dc="dc1")
    ClientSettings.from_env()     # the service's variables: SCV_STORE__*, SCV_READ__*

Plain frozen dataclasses, so an app gets them without the service's settings stack (pydantic-settings
and friends cost ~0.2 s of import, more than a whole `scv view get`). ``from_env`` reads the same
variables as the service's settings model (scv/config/settings.py, sections ``store`` and ``read``);
tests/unit/test_client_settings.py keeps the two readings equal.
"""

from __future__ import annotations

import json
import os
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any, Literal

from scv.client.exceptions import ClientConfigurationError

__all__ = ["ClientSettings", "Reactor", "TlsSettings"]

Reactor = Literal["libev", "asyncio"]

_CONSISTENCY_LEVELS = frozenset(
    {"ANY", "ONE", "TWO", "THREE", "QUORUM", "ALL", "LOCAL_QUORUM", "EACH_QUORUM", "LOCAL_ONE"}
)


@dataclass(frozen=True)
class TlsSettings:
    """TLS to the store: the CA that signed the nodes' certificates, and a client certificate when
    the cluster requires one (``require_client_auth``)."""

    ca_file: Path | None = None
    cert_file: Path | None = None
    key_file: Path | None = None
    verify_hostname: bool = True


@dataclass(frozen=True)
class ClientSettings:
    contact_points: tuple[str, ...] = ("127.0.0.1",)
    port: int = 9042
    keyspace: str = "scv"
    local_dc: str = "datacenter1"
    username: str = ""
    password: str = field(default="", repr=False)
    tls: TlsSettings | None = None
    # The consistency a read asks for, and the one it may fall back to when the first cannot be met
    # (replicas down): the answer is then marked ``possibly_stale`` instead of failing the channel.
    # Empty: no fallback, the read fails with StoreUnavailable.
    consistency: str = "LOCAL_QUORUM"
    fallback_consistency: str = ""
    request_timeout_s: float = 2.0
    connect_timeout_s: float = 5.0
    # Retries of one read on another replica (timeouts, unavailable, connection errors); reads are
    # idempotent, so a retry can never apply anything twice.
    retry_budget: int = 2
    # Speculative execution: when a replica has not answered after this delay, ask the next one too
    # (at most ``speculative_attempts`` extra requests); 0 attempts turns it off.
    speculative_delay_s: float = 0.05
    speculative_attempts: int = 1
    # Rows per page of a section read; whole-view reads page through the partition with it too.
    page_size: int = 500
    # Concurrent partition reads of a many-customer read.
    concurrency: int = 32
    # Key of the page tokens' HMAC. Empty: a random key per client, so tokens are valid only for the
    # client that issued them; set one shared key when several processes serve one API.
    page_token_key: bytes = field(default=b"", repr=False)
    protocol_version: int = 4
    # The driver's I/O loop: libev (C, the fastest) for long-lived processes; asyncio for short-lived
    # ones, because libev's exit hook joins its loop thread with a 5 s timeout that is often hit
    # (scylladb/python-driver#524: `scv view get` then took 5.2 s instead of 0.2).
    reactor: Reactor = "libev"
    # Schema metadata lets the driver route each read to a replica of its partition (token-aware,
    # shard-aware on ScyllaDB); it costs a few round trips at connect, which a one-read process
    # (`scv view get`) saves by turning it off.
    token_aware: bool = True

    def __post_init__(self) -> None:
        for name in ("consistency", "fallback_consistency"):
            value = getattr(self, name)
            if value and value.upper() not in _CONSISTENCY_LEVELS:
                raise ClientConfigurationError(
                    f"{name}={value!r} is not a CQL consistency level; use one of "
                    f"{', '.join(sorted(_CONSISTENCY_LEVELS))}"
                )
        if not self.contact_points:
            raise ClientConfigurationError("contact_points is empty; name at least one node of the store")
        if self.reactor not in ("libev", "asyncio"):
            raise ClientConfigurationError(f"reactor={self.reactor!r}: use 'libev' or 'asyncio'")
        for name in ("page_size", "concurrency"):
            if getattr(self, name) < 1:
                raise ClientConfigurationError(f"{name} must be at least 1, got {getattr(self, name)}")
        if self.retry_budget < 0 or self.speculative_attempts < 0:
            raise ClientConfigurationError("retry_budget and speculative_attempts cannot be negative")

    def with_random_page_key(self) -> ClientSettings:
        """These settings with a page-token key, a random one when none was configured."""
        return self if self.page_token_key else replace(self, page_token_key=secrets.token_bytes(32))

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **overrides: Any) -> ClientSettings:
        """Read the service's variables: ``SCV_STORE__CONTACT_POINTS`` (JSON list), ``SCV_STORE__PORT``
        (0 or unset: ``SCV_STACK__CQL_PORT``, else 9042), ``SCV_STORE__KEYSPACE``, ``SCV_STORE__LOCAL_DC``,
        ``SCV_STORE__CONSISTENCY``, ``SCV_STORE__PROTOCOL_VERSION``, and ``SCV_READ__<FIELD>`` for every
        other field (``SCV_READ__PASSWORD_FILE``, ``SCV_READ__PAGE_TOKEN_KEY_FILE`` and
        ``SCV_READ__TLS_*`` included). ``overrides`` win over the environment."""
        env = os.environ if environ is None else environ
        values: dict[str, Any] = {}
        store = _section(env, "SCV_STORE__")
        read = _section(env, "SCV_READ__")
        if "contact_points" in store:
            values["contact_points"] = tuple(_json_list(store["contact_points"], "SCV_STORE__CONTACT_POINTS"))
        port = _int(store.get("port", "0"), "SCV_STORE__PORT")
        stack_port = env.get("SCV_STACK__CQL_PORT")
        values["port"] = port or (_int(stack_port, "SCV_STACK__CQL_PORT") if stack_port else 9042)
        for name in ("keyspace", "local_dc", "consistency"):
            if name in store:
                values[name] = store[name]
        if "protocol_version" in store:
            values["protocol_version"] = _int(store["protocol_version"], "SCV_STORE__PROTOCOL_VERSION")
        kinds = {f.name: f.type for f in fields(cls)}
        for name, raw in read.items():
            if name == "tls" or name.startswith("tls_") or name in ("password_file", "page_token_key_file"):
                continue
            if name not in kinds or name in ("tls", "contact_points", "port", "keyspace", "local_dc"):
                raise ClientConfigurationError(
                    f"SCV_READ__{name.upper()} is not a read setting; see ClientSettings for the names"
                )
            values[name] = _coerce(str(kinds[name]), raw, f"SCV_READ__{name.upper()}")
        if read.get("password_file"):
            values["password"] = _read_secret(Path(read["password_file"]), "SCV_READ__PASSWORD_FILE")
        if read.get("page_token_key_file"):
            values["page_token_key"] = _read_secret(
                Path(read["page_token_key_file"]), "SCV_READ__PAGE_TOKEN_KEY_FILE"
            ).encode()
        tls = {name[4:]: raw for name, raw in read.items() if name.startswith("tls_")}
        wanted = _bool(read.get("tls", "false"), "SCV_READ__TLS")
        if wanted or tls.get("ca_file") or tls.get("cert_file") or tls.get("key_file"):
            values["tls"] = TlsSettings(
                ca_file=Path(tls["ca_file"]) if tls.get("ca_file") else None,
                cert_file=Path(tls["cert_file"]) if tls.get("cert_file") else None,
                key_file=Path(tls["key_file"]) if tls.get("key_file") else None,
                verify_hostname=_bool(tls.get("verify_hostname", "true"), "SCV_READ__TLS_VERIFY_HOSTNAME"),
            )
        values.update(overrides)
        return cls(**values)


def _section(env: Mapping[str, str], prefix: str) -> dict[str, str]:
    return {key[len(prefix) :].lower(): value for key, value in env.items() if key.upper().startswith(prefix)}


def _json_list(raw: str, name: str) -> list[str]:
    try:
        value = json.loads(raw)
    except json.JSONDecodeError:
        value = None
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise ClientConfigurationError(f'{name}={raw!r}: expected a JSON list of hosts, e.g. ["10.0.0.5"]')
    return value


def _int(raw: str, name: str) -> int:
    try:
        return int(raw)
    except ValueError as exc:
        raise ClientConfigurationError(f"{name}={raw!r}: expected an integer") from exc


def _float(raw: str, name: str) -> float:
    try:
        return float(raw)
    except ValueError as exc:
        raise ClientConfigurationError(f"{name}={raw!r}: expected a number") from exc


def _bool(raw: str, name: str) -> bool:
    lowered = raw.strip().lower()
    if lowered in ("1", "true", "yes", "on"):
        return True
    if lowered in ("0", "false", "no", "off"):
        return False
    raise ClientConfigurationError(f"{name}={raw!r}: expected true or false")


def _coerce(kind: str, raw: str, name: str) -> Any:
    if kind == "int":
        return _int(raw, name)
    if kind == "float":
        return _float(raw, name)
    if kind == "bool":
        return _bool(raw, name)
    if kind == "bytes":
        return raw.encode()
    return raw


def _read_secret(path: Path, name: str) -> str:
    try:
        return path.read_text().strip()
    except OSError as exc:
        raise ClientConfigurationError(f"{name}: cannot read {path}: {exc.strerror}") from exc
