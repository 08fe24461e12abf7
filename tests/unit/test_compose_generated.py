"""One source of truth for both local shapes: the files the compose stack mounts are the native
renderers' output for the containers' view, committed, and kept equal to their rendering."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from compose import container_view as view
from compose.cli import app
from compose.generated import GENERATED_DIR, differences, render_files, write_files
from compose.native import configs
from compose.versions import COMPOSE_DIR
from scv.config.settings import Settings


def _props(text: str) -> dict[str, str]:
    return dict(line.split("=", 1) for line in text.splitlines() if line and not line.startswith("#"))


def test_committed_generated_files_match_their_rendering() -> None:
    assert differences() == [], "run `scv compose render` and commit compose/config/generated"


def test_a_stale_or_stray_generated_file_is_reported(tmp_path: Path) -> None:
    write_files(tmp_path)
    (tmp_path / "kafka" / "server.properties").write_text("num.partitions=1\n")
    (tmp_path / "old.json").write_text("{}")
    (tmp_path / "log4j2.xml").unlink()
    assert differences(tmp_path) == [
        "log4j2.xml: missing",
        "kafka/server.properties: differs from its rendering",
        "old.json: not rendered by anything",
    ]


def test_render_check_exits_1_naming_the_next_step(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("compose.generated.GENERATED_DIR", tmp_path)
    monkeypatch.setattr("compose.cli.differences", lambda: differences(tmp_path))
    result = CliRunner().invoke(app, ["render", "--check"])
    assert result.exit_code == 1
    assert "scv compose render" in result.stderr


def test_rendering_ignores_the_environment_of_whoever_renders(monkeypatch: pytest.MonkeyPatch) -> None:
    before = render_files()
    monkeypatch.setenv("SCV_KAFKA__BOOTSTRAP_SERVERS", "elsewhere:1")
    monkeypatch.setenv("SCV_STACK__KAFKA_PORT", "19092")
    assert render_files() == before


def test_compose_mounts_every_generated_config() -> None:
    compose = yaml.safe_load((COMPOSE_DIR / "docker-compose.yml").read_text())
    sources = [
        (COMPOSE_DIR / entry.split(":")[0]).resolve()
        for svc in compose["services"].values()
        for entry in svc.get("volumes", [])
        if entry.startswith("./")
    ]
    for name in render_files():
        if name == "README.md":
            continue
        path = (GENERATED_DIR / name).resolve()
        assert any(path == src or src in path.parents for src in sources), name


def test_connect_worker_loads_the_native_plugins_only() -> None:
    props = _props(render_files()["connect/connect-distributed.properties"])
    assert props["plugin.path"] == ",".join(str(p) for p in view.CONNECT_PLUGIN_PATH)
    # The REST API binds every interface of the container and is advertised by service name.
    assert props["listeners"] == "http://0.0.0.0:8083"
    assert props["rest.advertised.host.name"] == view.CONNECT


def test_compose_worker_differs_from_the_native_one_only_in_placement(tmp_path: Path) -> None:
    native = _props(configs.connect_properties(Settings.model_construct(), [tmp_path]))
    compose = _props(render_files()["connect/connect-distributed.properties"])
    # The secrets folder is where each worker sees it (a volume in the container).
    placement = {
        "bootstrap.servers",
        "listeners",
        "rest.advertised.host.name",
        "plugin.path",
        "config.providers.file.param.allowed.paths",
        "config.providers.dir.param.allowed.paths",
    }
    assert {k: v for k, v in native.items() if k not in placement} == {
        k: v for k, v in compose.items() if k not in placement
    }


def test_scylla_and_cassandra_are_told_the_same_store_node() -> None:
    args = configs.scylla_args(view.container_settings())
    scylla = dict(zip(args[::2], args[1::2], strict=True))
    cassandra = json.loads(configs.cassandra_yaml(view.container_settings(), Path("/state")))
    for key in (
        "cluster_name",
        "endpoint_snitch",
        "authenticator",
        "authorizer",
        "native_transport_port",
        "storage_port",
    ):
        assert scylla[f"--{key.replace('_', '-')}"] == str(cassandra[key]), key
    for kind in ("read", "write"):
        assert f"{scylla[f'--{kind}-request-timeout-in-ms']}ms" == cassandra[f"{kind}_request_timeout"]
    assert f"{scylla['--batch-size-warn-threshold-in-kb']}KiB" == cassandra["batch_size_warn_threshold"]


def test_compose_scylla_runs_with_the_rendered_options() -> None:
    compose = yaml.safe_load((COMPOSE_DIR / "docker-compose.yml").read_text())
    command = [str(arg) for arg in compose["services"]["scylla"]["command"]]
    resources = ["--smp", "1", "--memory", "1G", "--overprovisioned", "1", "--developer-mode", "1"]
    assert command == resources + configs.scylla_args(view.container_settings())


def test_prometheus_targets_name_compose_services() -> None:
    targets = json.loads(render_files()["prometheus/targets/replicator.json"])
    assert targets[0]["targets"] == [f"{view.REPLICATOR}:{p}" for p in range(9400, 9404)]
    assert targets[0]["labels"] == {"stack": "compose"}
