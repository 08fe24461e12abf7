"""The one JSON-over-HTTP client both REST peers of onboarding share (Kafka Connect, the registry).

    class ConnectClient(RestClient):
        service, url_setting, error = "Kafka Connect", "SCV_CONNECT__URL", ConnectError

A peer that cannot be reached raises ``error`` naming the setting to fix and how to start the local
stack; a 4xx/5xx raises ``error`` with the peer's own message; a 404 may mean "absent" to callers
that ask (``ok_missing``), which then get None.
"""

from __future__ import annotations

import json
from types import TracebackType
from typing import Any, ClassVar, Self

import httpx

from connectors.exceptions import SourceError

__all__ = ["RestClient"]

_TIMEOUT = httpx.Timeout(30.0, connect=5.0)


class RestClient:
    service: ClassVar[str]
    url_setting: ClassVar[str]
    error: ClassVar[type[SourceError]]
    content_type: ClassVar[str] = "application/json"

    def __init__(self, url: str, timeout_s: float | None = None) -> None:
        self._url = url.rstrip("/")
        timeout = _TIMEOUT if timeout_s is None else httpx.Timeout(timeout_s)
        self._http = httpx.Client(
            base_url=self._url, timeout=timeout, headers={"Content-Type": self.content_type}
        )

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def close(self) -> None:
        self._http.close()

    def _request(self, method: str, path: str, *, body: Any = None, ok_missing: bool = False) -> Any:
        try:
            response = self._http.request(method, path, content=None if body is None else json.dumps(body))
        except httpx.HTTPError as exc:
            raise self.error(
                f"{self.service} at {self._url} is not reachable ({exc}); start the stack with "
                f"`scv stack up` or set {self.url_setting}"
            ) from exc
        if response.status_code == 404 and ok_missing:
            return None
        if response.status_code >= 400:
            raise self.error(
                f"{self.service} {method} {path} failed ({response.status_code}): {_message(response)}"
            )
        if response.status_code == 204 or not response.content:
            return {}
        return response.json()


def _message(response: httpx.Response) -> str:
    try:
        data = response.json()
    except ValueError:
        return response.text
    if isinstance(data, dict) and isinstance(data.get("message"), str):
        return str(data["message"])
    return response.text
