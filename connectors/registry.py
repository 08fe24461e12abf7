"""The schema registry through its Confluent-compatible API (Apicurio ``/apis/ccompat/v7``).

with RegistryClient(settings.registry.url) as registry:
    registry.set_compatibility("crm.public.customers-value", "BACKWARD")
    registry.is_compatible("crm.public.customers-value", schema_json)  # (True, [])
"""

from __future__ import annotations

import json
from typing import Any

from connectors.exceptions import RegistryError
from connectors.rest import RestClient

__all__ = ["RegistryClient"]


class RegistryClient(RestClient):
    service = "schema registry"
    url_setting = "SCV_REGISTRY__URL"
    error = RegistryError
    content_type = "application/vnd.schemaregistry.v1+json"

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
