"""The read client as an app installs it: the `scv-client` distribution (clients/python), built from
this repository, installed into a fresh venv, brings the CQL driver and nothing of the service, and
reads a real view."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import venv
from pathlib import Path

from cassandra.cluster import Session

from scv.client import CustomerViewClient
from scv.config.settings import Settings
from tests.integration.conftest import REPO
from tests.integration.views import new_customer, write_view

SERVICE_ONLY = {
    "confluent_kafka", "psycopg", "typer", "rich", "fastavro", "pydantic", "pydantic_settings", "structlog",
    "prometheus_client", "httpx", "fastapi", "uvicorn", "tenacity", "store", "consumer", "connectors",
}  # fmt: skip

PROBE = """
import json, sys
from scv.client import ClientSettings, CustomerViewClient
loaded = sorted({name.split(".")[0] for name in sys.modules})
settings = ClientSettings(port=int(sys.argv[1]), keyspace=sys.argv[2])
with CustomerViewClient(settings) as client:
    view = client.get_view(sys.argv[3])
print(json.dumps({"loaded": loaded, "view": view.to_json(), "file": __import__("scv.client").__file__}))
"""


def test_the_client_distribution_installs_alone_and_reads_a_view(
    stack: Settings, store_session: Session, reader: CustomerViewClient, tmp_path: Path
) -> None:
    wheels = tmp_path / "wheels"
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation", "-w", str(wheels),
         str(REPO / "clients" / "python")],
        check=True, timeout=300,
    )  # fmt: skip
    (wheel,) = wheels.glob("scv_client-*.whl")
    target = tmp_path / "app-venv"
    venv.EnvBuilder(with_pip=False).create(target)
    python = target / "bin" / "python"
    # The dev environment's pip installs into the fresh venv (from its cache when it can).
    subprocess.run(
        [sys.executable, "-m", "pip", "--python", str(python), "install", "-q", "--no-input", str(wheel)],
        check=True, timeout=600,
    )  # fmt: skip
    listed = subprocess.run(
        [sys.executable, "-m", "pip", "--python", str(python), "list", "--format", "json"],
        check=True, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    installed = {package["name"].lower() for package in json.loads(listed.stdout)}
    assert "scylla-driver" in installed
    assert (
        installed & {"confluent-kafka", "psycopg", "typer", "rich", "fastavro", "pydantic", "structlog"}
        == set()
    )

    customer = new_customer("dist")
    write_view(store_session, stack.store.keyspace, customer, {"profile": 1, "email": 2})
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    out = subprocess.run(
        [str(python), "-c", PROBE, str(stack.store.port), stack.store.keyspace, customer],
        cwd=tmp_path, env=env, check=True, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    result = json.loads(out.stdout)
    assert result["file"].startswith(str(target))  # the installed copy, not this checkout
    assert set(result["loaded"]) & SERVICE_ONLY == set()
    assert result["view"] == reader.get_view(customer).to_json()
