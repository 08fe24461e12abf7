"""The service's settings model -> the read client's own settings.

    client = CustomerViewClient(client_settings(get_settings()))
    client = CustomerViewClient(configured_client_settings())   # without loading the model if it can

Imports the settings model only when it is used: `scv view get` reads its settings through
``configured_client_settings`` and must not pay for pydantic-settings when no config file exists.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

from scv.client.exceptions import ClientConfigurationError
from scv.client.settings import ClientSettings, TlsSettings

if TYPE_CHECKING:
    from scv.config.settings import Settings

__all__ = ["client_settings", "configured_client_settings"]


def configured_client_settings() -> ClientSettings:
    """The read settings of this process: from the environment (the service's SCV_STORE__ and
    SCV_READ__ variables, ClientSettings.from_env), or through the service's settings model when a
    config file exists (it may set them too)."""
    if Path(os.environ.get("SCV_CONFIG", "scv.yaml")).exists():
        from scv.config.settings import get_settings

        return client_settings(get_settings())
    return ClientSettings.from_env()


def _secret_file(path: Path, setting: str) -> str:
    try:
        return path.read_text().strip()
    except OSError as exc:
        raise ClientConfigurationError(f"{setting}: cannot read {path}: {exc.strerror}") from exc


def client_settings(settings: Settings) -> ClientSettings:
    store, read = settings.store, settings.read
    password = read.password.get_secret_value()
    if read.password_file:
        password = _secret_file(read.password_file, "read.password_file")
    key = read.page_token_key.get_secret_value()
    if read.page_token_key_file:
        key = _secret_file(read.page_token_key_file, "read.page_token_key_file")
    tls = None
    if read.tls or read.tls_ca_file or read.tls_cert_file or read.tls_key_file:
        tls = TlsSettings(read.tls_ca_file, read.tls_cert_file, read.tls_key_file, read.tls_verify_hostname)
    return ClientSettings(
        contact_points=tuple(store.contact_points),
        port=store.port,
        keyspace=store.keyspace,
        local_dc=store.local_dc,
        username=read.username,
        password=password,
        tls=tls,
        consistency=store.consistency,
        fallback_consistency=read.fallback_consistency,
        request_timeout_s=read.request_timeout_s,
        connect_timeout_s=read.connect_timeout_s,
        retry_budget=read.retry_budget,
        speculative_delay_s=read.speculative_delay_s,
        speculative_attempts=read.speculative_attempts,
        page_size=read.page_size,
        concurrency=read.concurrency,
        page_token_key=key.encode(),
        protocol_version=store.protocol_version,
        reactor=read.reactor,
        token_aware=read.token_aware,
    )
