"""`scv demo` refuses clearly when there is no PostgreSQL to seed or no store to migrate."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

import demo.cli
import scv.cli.walkthrough
from demo.exceptions import PostgresUnavailable
from demo.seed import seed_demo
from scv.config.settings import PostgresSettings, Settings, StackSettings
from store.exceptions import StoreError


def _closed_port() -> int:
    # Bind then release: nothing listens there for the rest of the test (the kernel does not hand
    # out a just-released ephemeral port again at once).
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


@pytest.fixture
def unreachable(tmp_path: Path) -> Settings:
    return Settings(
        stack=StackSettings(data_dir=tmp_path, postgres_port=_closed_port()),
        postgres=PostgresSettings(port=0),
    )


def test_seed_raises_postgres_unavailable_naming_stack_up(unreachable: Settings) -> None:
    with pytest.raises(PostgresUnavailable, match="scv stack up"):
        seed_demo(unreachable, customers=10)


@pytest.mark.parametrize(
    "args",
    [
        ["seed", "--customers", "10"],
        ["workload", "--rate", "10", "--changes", "5"],
        ["workload", "--pgbench", "--duration", "2"],
    ],
    ids=["seed", "workload", "pgbench-workload"],
)
def test_commands_exit_2_naming_stack_up_when_postgres_is_down(
    args: list[str], unreachable: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(demo.cli, "get_settings", lambda: unreachable)
    result = CliRunner().invoke(demo.cli.app, args)
    assert result.exit_code == 2
    assert "scv stack up" in result.output


def test_pgbench_workload_needs_a_duration(unreachable: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(demo.cli, "get_settings", lambda: unreachable)
    result = CliRunner().invoke(demo.cli.app, ["workload", "--pgbench", "--changes", "5"])
    assert result.exit_code == 2
    assert "--duration" in result.output


def test_demo_run_without_a_store_fails_with_a_message_not_a_traceback(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = Settings(
        stack=StackSettings(data_dir=tmp_path, postgres_port=_closed_port(), cql_port=_closed_port()),
        postgres=PostgresSettings(port=0),
    )
    monkeypatch.setattr(scv.cli.walkthrough, "get_settings", lambda: settings)
    app = typer.Typer()
    app.command()(scv.cli.walkthrough.run)
    result = CliRunner().invoke(app, [])
    assert result.exit_code == 1
    assert "error:" in result.output
    assert "rerun `scv demo run`" in result.output
    assert not isinstance(result.exception, StoreError)  # handled, not escaped as a traceback
