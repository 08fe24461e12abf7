"""`scv sources register`: the registration step of `add` alone, for connectors that Strimzi creates
from `scv sources render --k8s` (the Job it renders runs this command on the spec)."""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import httpx
from cassandra.cluster import Session
from typer.testing import CliRunner

from connectors.cli import app
from connectors.mapping import mapping_from_spec
from connectors.onboard import register_source
from connectors.spec import load_spec
from scv.config.settings import Settings
from store.registrations import RegistrationStore

SPEC = """
name: {name}
database: {{host: db.example, dbname: members, user: cdc_members, password_env: UNUSED_PW}}
tables:
  public.members: {{kind: member, customer_key: customer_id}}
"""


def test_register_writes_compatibility_and_mapping_before_any_schema_exists(
    stack: Settings, store_session: Session, tmp_path: Path
) -> None:
    name = f"reg_{uuid.uuid4().hex[:8]}"
    path = tmp_path / f"{name}.yaml"
    path.write_text(SPEC.format(name=name))
    registrations = RegistrationStore(store_session, stack.store.keyspace)
    subjects = [f"{name}.public.members-{role}" for role in ("key", "value")]
    try:
        result = CliRunner().invoke(app, ["register", str(path)])
        assert result.exit_code == 0, result.output
        # No connector has produced a record yet: Apicurio keeps a subject's compatibility before
        # its first schema, and the replicator subscribes by pattern, so neither waits for one.
        assert "compatibility BACKWARD on 2 subjects" in result.stdout
        for subject in subjects:
            config = httpx.get(f"{stack.registry.url}/config/{subject}", timeout=10).json()
            assert config["compatibilityLevel"] == "BACKWARD"
        (registered,) = [r for r in registrations.all() if r.name == name]
        assert json.loads(registered.mapping_json) == json.loads(mapping_from_spec(load_spec(path)).to_json())
        # Idempotent (the Job may run again): one registration, the same mapping.
        register_source(load_spec(path), stack)
        assert [r.mapping_json for r in registrations.all() if r.name == name] == [registered.mapping_json]
    finally:
        registrations.delete(name)
        for subject in subjects:
            httpx.delete(f"{stack.registry.url}/config/{subject}", timeout=10)
