"""The schema registry through its Confluent-compatible API (Apicurio ``/apis/ccompat/v7``).

with RegistryClient(settings.kafka.schema_registry_url) as registry:
    registry.set_compatibility("crm.public.customers-value", "BACKWARD")
    registry.is_compatible("crm.public.customers-value", schema_json)  # (True, [])
"""

from __future__ import annotations

import json
from types import TracebackType
from typing import Any

import httpx

from connectors.exceptions import RegistryError

__all__ = ["RegistryClient"]

_TIMEOUT = httpx.Timeout(30.0, connect=5.0)
_CONTENT_TYPE = "application/vnd.schemaregistry.v1+json"


class RegistryClient:
    def __init__(self, url: str) -> None:
        self._url = url.rstrip("/")
        self._http = httpx.Client(
            base_url=self._url, timeout=_TIMEOUT, headers={"Content-Type": _CONTENT_TYPE}
        )

    def __enter__(self) -> RegistryClient:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._http.close()

    def _request(self, method: str, path: str, *, body: Any = None, ok_missing: bool = False) -> Any:
        try:
            response = self._http.request(method, path, content=None if body is None else json.dumps(body))
        except httpx.HTTPError as exc:
            raise RegistryError(
                f"schema registry at {self._url} is not reachable ({exc}); start the stack with "
                f"`scv stack up` or set SCV_KAFKA__SCHEMA_REGISTRY_URL"
            ) from exc
        if response.status_code == 404 and ok_missing:
            return None
        if response.status_code >= 400:
            raise RegistryError(f"registry {method} {path} failed ({response.status_code}): {response.text}")
        return response.json() if response.content else {}

    def subjects(self) -> list[str]:
        result: list[str] = self._request("GET", "/subjects")
        return sorted(result)

    def latest_schema(self, subject: str) -> dict[str, Any] | None:
        """The latest registered Avro schema (parsed JSON) of ``subject``, or None if it has none."""
        data = self._request("GET", f"/subjects/{subject}/versions/latest", ok_missing=True)
        if data is None:
            return None
        schema: dict[str, Any] = json.loads(data["schema"])
        return schema

    def set_compatibility(self, subject: str, level: str) -> bool:
        """Set the subject's compatibility level; False if the subject does not exist yet."""
        return (
            self._request("PUT", f"/config/{subject}", body={"compatibility": level}, ok_missing=True)
            is not None
        )

    def get_compatibility(self, subject: str) -> str | None:
        data = self._request("GET", f"/config/{subject}", ok_missing=True)
        if data is None:
            return None
        level = data.get("compatibilityLevel") or data.get("compatibility")
        return str(level) if level else None

    def is_compatible(self, subject: str, schema: dict[str, Any]) -> tuple[bool, list[str]]:
        """Would ``schema`` be accepted as the next version of ``subject`` under its compatibility?"""
        data = self._request(
            "POST",
            f"/compatibility/subjects/{subject}/versions/latest?verbose=true",
            body={"schema": json.dumps(schema), "schemaType": "AVRO"},
        )
        messages = data.get("messages") or []
        return bool(data.get("is_compatible")), [str(m) for m in messages]

    def delete_subject(self, subject: str) -> None:
        self._request("DELETE", f"/subjects/{subject}", ok_missing=True)
