"""The HTTP read API (`scv serve`) on the real stack: a uvicorn process reading the real store (through
a loopback proxy that can cut it off, so the shared store keeps running for everyone else)."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import schemathesis
from cassandra.cluster import Session
from hypothesis import HealthCheck, given, settings
from schemathesis.specs.openapi.checks import positive_data_acceptance

from scv.config.settings import Settings
from tests.integration.conftest import REPO, wait_for
from tests.integration.faults import FaultyProxy
from tests.integration.views import delete_entity, new_customer, write_view

FULL = "full-token-for-tests"
LIMITED = "profile-and-account-only"
AUTH = {"Authorization": f"Bearer {FULL}"}
LIMITED_AUTH = {"Authorization": f"Bearer {LIMITED}"}


@dataclass
class Api:
    url: str
    proxy: FaultyProxy
    process: subprocess.Popen[bytes]
    log: Path

    def get(self, path: str, headers: dict[str, str] | None = None, **params: str) -> httpx.Response:
        return httpx.get(
            f"{self.url}{path}", headers=AUTH if headers is None else headers, params=params, timeout=10
        )


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@contextmanager
def serve_api(stack: Settings, tmp_dir: Path) -> Iterator[Api]:
    proxy = FaultyProxy(stack.store.port)
    proxy.start()
    port = _free_port()
    tokens = [
        {"name": "ops", "token": FULL},
        {"name": "web", "token": LIMITED, "sections": ["profile", "account"]},
    ]
    env = {
        **os.environ,
        "PYTHONPATH": str(REPO),
        "SCV_API__PORT": str(port),
        "SCV_API__TOKENS": json.dumps(tokens),
        "SCV_STORE__PORT": str(proxy.port),
        "SCV_READ__REQUEST_TIMEOUT_S": "1",
        "SCV_READ__CONNECT_TIMEOUT_S": "1",
        "SCV_READ__PAGE_TOKEN_KEY": "a-page-token-key-of-32-characters",
        "SCV_LOG_FORMAT": "json",
    }
    log = tmp_dir / f"api-{port}.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "scv", "serve"], cwd=REPO, env=env, stdout=out, stderr=subprocess.STDOUT
        )
    api = Api(f"http://127.0.0.1:{port}", proxy, process, log)

    def ready() -> bool:
        if process.poll() is not None:
            pytest.fail(f"scv serve exited with {process.returncode}:\n{log.read_text()}")
        try:
            return httpx.get(f"{api.url}/readyz", timeout=2).status_code == 200
        except httpx.HTTPError:
            return False

    try:
        wait_for(ready, timeout_s=60, what="scv serve ready")
        yield api
    finally:
        process.terminate()
        process.wait(30)
        proxy.cut()
        # uvicorn shuts down gracefully on SIGTERM, then re-raises it: the exit status says why it ended.
        assert process.returncode in (0, -signal.SIGTERM), log.read_text()


@pytest.fixture(scope="module")
def api(stack: Settings, store_session: Session, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Api]:
    with serve_api(stack, tmp_path_factory.mktemp("api")) as running:
        yield running


@pytest.fixture(scope="module")
def customer(stack: Settings, store_session: Session) -> str:
    customer_id = new_customer("api")
    write_view(store_session, stack.store.keyspace, customer_id, {"profile": 1, "account": 2, "consent": 2})
    return customer_id


def test_whole_view_is_the_read_contract_with_etag_and_age(api: Api, customer: str) -> None:
    response = api.get(f"/customers/{customer}")
    assert response.status_code == 200
    body = response.json()
    assert body["customer_id"] == customer
    assert sorted(body["sections"]) == ["account", "consent", "profile"]
    assert body["sections"]["profile"][0]["attributes"]["balance"] == "12345678901234.5678"
    assert response.headers["ETag"].startswith('"')
    assert float(response.headers["SCV-View-Age"]) >= 0
    assert "Last-Modified" in response.headers


def test_unchanged_view_answers_304_and_a_change_a_new_etag(
    api: Api, stack: Settings, store_session: Session
) -> None:
    customer_id = new_customer("etag")
    keys = write_view(store_session, stack.store.keyspace, customer_id, {"profile": 1, "email": 2})
    etag = api.get(f"/customers/{customer_id}").headers["ETag"]
    unchanged = api.get(f"/customers/{customer_id}", headers={**AUTH, "If-None-Match": etag})
    assert unchanged.status_code == 304
    assert unchanged.content == b""
    delete_entity(store_session, stack.store.keyspace, keys[-1])
    changed = api.get(f"/customers/{customer_id}", headers={**AUTH, "If-None-Match": etag})
    assert changed.status_code == 200
    assert changed.headers["ETag"] != etag
    assert len(changed.json()["sections"]["email"]) == 1


@pytest.mark.parametrize(
    "headers", [{}, {"Authorization": "Bearer not-a-token"}, {"Authorization": "Basic eDp5"}]
)
def test_missing_or_unknown_token_is_401(api: Api, customer: str, headers: dict[str, str]) -> None:
    response = api.get(f"/customers/{customer}", headers=headers)
    assert response.status_code == 401
    assert response.json()["error"] == "unauthorized"
    assert response.headers["WWW-Authenticate"] == "Bearer"


def test_section_limited_token_reads_only_its_sections(api: Api, customer: str) -> None:
    whole = api.get(f"/customers/{customer}", headers=LIMITED_AUTH)
    assert whole.status_code == 200
    assert sorted(whole.json()["sections"]) == ["account", "profile"]
    assert whole.headers["ETag"] != api.get(f"/customers/{customer}").headers["ETag"]
    forbidden = api.get(f"/customers/{customer}/consent", headers=LIMITED_AUTH)
    assert forbidden.status_code == 403
    assert "consent" in forbidden.json()["detail"]
    entity = api.get(f"/customers/{customer}/consent/crm/public.items/00000", headers=LIMITED_AUTH)
    assert entity.status_code == 403
    assert api.get(f"/customers/{customer}/account", headers=LIMITED_AUTH).status_code == 200


def test_unknown_customer_is_404(api: Api) -> None:
    response = api.get(f"/customers/{new_customer('nobody')}")
    assert response.status_code == 404
    assert response.json() == {
        "status": 404,
        "error": "not_found",
        "detail": response.json()["detail"],
    }


def test_section_pages_and_bad_tokens(api: Api, stack: Settings, store_session: Session) -> None:
    customer_id = new_customer("pages")
    write_view(store_session, stack.store.keyspace, customer_id, {"interaction": 25})
    ids: list[str] = []
    params = {"page_size": "10"}
    while True:
        page = api.get(f"/customers/{customer_id}/interaction", **params)
        assert page.status_code == 200, page.text
        ids += [entity["id"] for entity in page.json()["entities"]]
        token = page.json()["next_page_token"]
        if token is None:
            break
        params = {"page_size": "10", "page_token": token}
    assert ids == [f"{n:05d}" for n in range(25)]
    assert api.get(f"/customers/{customer_id}/interaction", page_token="forged").status_code == 400
    assert api.get(f"/customers/{customer_id}/interaction", page_size="0").json()["error"] == "bad_request"


def test_one_entity(api: Api, customer: str) -> None:
    response = api.get(f"/customers/{customer}/account/crm/public.items/00001")
    assert response.status_code == 200
    assert response.json()["attributes"]["name"] == "account 1"
    assert api.get(f"/customers/{customer}/account/crm/public.items/99999").status_code == 404


def test_bulk_read(api: Api, customer: str, stack: Settings, store_session: Session) -> None:
    other = new_customer("bulk")
    write_view(store_session, stack.store.keyspace, other, {"consent": 1})
    nobody = new_customer("nobody")
    body = {"ids": [customer, other, nobody]}
    full = httpx.post(f"{api.url}/bulk/customers", json=body, headers=AUTH, timeout=10).json()
    assert sorted(full["customers"]) == sorted([customer, other])
    assert full["missing"] == [nobody]
    limited = httpx.post(f"{api.url}/bulk/customers", json=body, headers=LIMITED_AUTH, timeout=10).json()
    assert list(limited["customers"]) == [customer]
    assert sorted(limited["customers"][customer]["sections"]) == ["account", "profile"]
    assert sorted(limited["missing"]) == sorted([other, nobody])
    too_many = httpx.post(f"{api.url}/bulk/customers", json={"ids": ["x"] * 101}, headers=AUTH, timeout=10)
    assert too_many.status_code == 400


def test_health_readiness_and_metrics(api: Api, customer: str) -> None:
    assert api.get("/healthz", headers={}).json() == {"status": "ok"}
    assert api.get("/readyz", headers={}).json() == {"status": "ready"}
    api.get(f"/customers/{customer}")
    metrics = api.get("/metrics", headers={}).text
    assert 'scv_api_requests_total{method="GET",route="/customers/{customer_id}",status="200"}' in metrics
    assert "scv_api_request_seconds_bucket" in metrics
    assert customer not in metrics  # bounded labels: never a customer id


def test_store_down_is_503_then_recovery(stack: Settings, store_session: Session, tmp_path: Path) -> None:
    customer_id = new_customer("outage")
    write_view(store_session, stack.store.keyspace, customer_id, {"profile": 1})
    with serve_api(stack, tmp_path) as own:
        assert own.get(f"/customers/{customer_id}").status_code == 200
        own.proxy.cut()
        down = wait_for(
            lambda: (r := own.get(f"/customers/{customer_id}")).status_code == 503 and r,
            what="503 while cut off",
        )
        assert down.json()["error"] in ("store_unavailable", "store_timeout")
        assert down.headers["Retry-After"] == "1"
        assert own.get("/readyz", headers={}).status_code == 503
        assert own.get("/healthz", headers={}).status_code == 200
        own.proxy.restore()
        wait_for(
            lambda: own.get(f"/customers/{customer_id}").status_code == 200, what="recovery after restore"
        )
        assert own.get("/readyz", headers={}).status_code == 200


def test_api_conforms_to_its_openapi_document(api: Api, customer: str) -> None:
    """Schemathesis generates requests from the OpenAPI document (valid and invalid ones) for every
    operation and checks each answer: no server error, documented status codes, content types and
    response schemas, authentication enforced. Driven through its library API: its pytest plugin
    does not load under pytest 9."""
    schema = schemathesis.openapi.from_url(f"{api.url}/openapi.json")
    operations = [result.ok() for result in schema.get_all_operations()]
    assert {op.path for op in operations} >= {"/customers/{customer_id}", "/bulk/customers", "/readyz"}
    for operation in operations:
        # A page token is valid only when this server issued it (an HMAC the document cannot
        # express): any other string is rightly a 400, which this check would count as a rejection
        # of valid input. Every other operation keeps it.
        paged = any(parameter.name == "page_token" for parameter in operation.query)
        _check_operation(operation, [positive_data_acceptance] if paged else [])


def _check_operation(operation: Any, excluded: list[Any]) -> None:
    @given(case=operation.as_strategy())
    @settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck), database=None)
    def conforms(case: schemathesis.Case) -> None:
        case.call_and_validate(headers=AUTH, excluded_checks=excluded)

    conforms()
