"""Kafka Connect REST: the few calls onboarding needs, with errors that say what to do.

with ConnectClient(settings.connect.url) as connect:
    connect.put_config("scv-crm", config)      # create or update: idempotent
    connect.status("scv-crm").state            # 'RUNNING'
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from connectors.exceptions import ConnectError
from connectors.rest import RestClient

__all__ = ["ConnectClient", "ConnectorStatus", "TaskStatus"]


@dataclass(frozen=True)
class TaskStatus:
    id: int
    state: str
    worker_id: str
    trace: str | None


@dataclass(frozen=True)
class ConnectorStatus:
    name: str
    state: str
    worker_id: str
    tasks: tuple[TaskStatus, ...]

    @property
    def running(self) -> bool:
        """The connector and at least one task, and every task, are RUNNING."""
        return self.state == "RUNNING" and bool(self.tasks) and all(t.state == "RUNNING" for t in self.tasks)

    @property
    def failed_trace(self) -> str | None:
        for task in self.tasks:
            if task.state == "FAILED":
                return task.trace or f"task {task.id} FAILED without a trace"
        return None


class ConnectClient(RestClient):
    service = "Kafka Connect"
    url_setting = "SCV_CONNECT__URL"
    error = ConnectError

    def connectors(self) -> list[str]:
        result: list[str] = self._request("GET", "/connectors")
        return sorted(result)

    def overview(self) -> dict[str, tuple[dict[str, str], ConnectorStatus]]:
        """Every connector's config and status in one request (``?expand=info&expand=status``)."""
        data: dict[str, Any] = self._request("GET", "/connectors?expand=info&expand=status")
        return {
            name: (dict(entry.get("info", {}).get("config", {})), _status(name, entry.get("status", {})))
            for name, entry in sorted(data.items())
        }

    def get_config(self, name: str) -> dict[str, str] | None:
        result: dict[str, str] | None = self._request("GET", f"/connectors/{name}/config", ok_missing=True)
        return result

    def put_config(self, name: str, config: dict[str, str]) -> None:
        """Create the connector or replace its config (Connect restarts it only if the config changed)."""
        self._request("PUT", f"/connectors/{name}/config", body=config)

    def validate(self, config: dict[str, str]) -> list[str]:
        """Errors Connect's own validation reports for the config, as ``key: message`` lines."""
        plugin = config["connector.class"].rsplit(".", 1)[-1]
        result = self._request("PUT", f"/connector-plugins/{plugin}/config/validate", body=config)
        errors: list[str] = []
        for item in result.get("configs", []):
            value = item.get("value", {})
            for message in value.get("errors", []):
                errors.append(f"{value.get('name')}: {message}")
        return errors

    def status(self, name: str) -> ConnectorStatus | None:
        data = self._request("GET", f"/connectors/{name}/status", ok_missing=True)
        return None if data is None else _status(name, data)

    def pause(self, name: str) -> None:
        self._request("PUT", f"/connectors/{name}/pause")

    def resume(self, name: str) -> None:
        self._request("PUT", f"/connectors/{name}/resume")

    def restart(self, name: str) -> None:
        self._request("POST", f"/connectors/{name}/restart?includeTasks=true&onlyFailed=true")

    def stop(self, name: str) -> None:
        """Stop the connector (KIP-875): tasks shut down, which the offsets API requires."""
        self._request("PUT", f"/connectors/{name}/stop")
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            status = self.status(name)
            if status is None or status.state == "STOPPED":
                return
            time.sleep(0.5)
        raise ConnectError(f"connector {name} did not reach STOPPED within 60s; check the worker log")

    def offsets(self, name: str) -> list[dict[str, Any]]:
        data = self._request("GET", f"/connectors/{name}/offsets", ok_missing=True)
        return list(data.get("offsets", [])) if data else []

    def delete_offsets(self, name: str) -> None:
        self._request("DELETE", f"/connectors/{name}/offsets", ok_missing=True)

    def delete(self, name: str) -> bool:
        """Delete the connector; False if it did not exist."""
        return self._request("DELETE", f"/connectors/{name}", ok_missing=True) is not None


def _status(name: str, data: dict[str, Any]) -> ConnectorStatus:
    connector = data.get("connector", {})
    tasks = tuple(
        TaskStatus(
            id=int(task["id"]),
            state=task["state"],
            worker_id=task.get("worker_id", ""),
            trace=task.get("trace"),
        )
        for task in data.get("tasks", [])
    )
    return ConnectorStatus(
        name=name,
        state=connector.get("state", "UNKNOWN"),
        worker_id=connector.get("worker_id", ""),
        tasks=tasks,
    )
