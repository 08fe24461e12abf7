"""The local stack is no open door: PostgreSQL's superuser proves a password over TCP, read by scv from a
password file only its user can read. Checked on a PostgreSQL of its own (a throwaway data directory
and port), prepared exactly as `scv stack up` prepares the shared one, so the shared stack is not
restarted by the test."""

from __future__ import annotations

import shutil
import socket
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from compose.native.paths import StackPaths
from compose.native.services import Context, service_by_name
from compose.native.supervisor import start, stop
from compose.versions import load_versions
from scv.config.settings import Settings, StackSettings


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture(scope="module")
def own_postgres(stack: Settings) -> Iterator[Settings]:
    # World-traversable, as the stack's data dir is: PostgreSQL runs as its own OS user under root.
    data_dir = Path(tempfile.mkdtemp(prefix="scv-pg-security-"))
    data_dir.chmod(0o755)
    settings = Settings(
        stack=StackSettings(data_dir=data_dir, cache_dir=stack.stack.cache_dir, postgres_port=_free_port())
    )
    paths = StackPaths.of(settings.stack)
    launch = service_by_name("postgres").prepare(Context(settings, paths, load_versions(), {}))
    start(paths, "postgres", launch)
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                with psycopg.connect(settings.postgres.dsn(), connect_timeout=2):
                    break
            except psycopg.OperationalError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.3)
        yield settings
    finally:
        stop(paths, "postgres")
        shutil.rmtree(data_dir, ignore_errors=True)


def test_the_superuser_is_not_trusted_over_tcp(own_postgres: Settings) -> None:
    pg = own_postgres.postgres
    with pytest.raises(psycopg.OperationalError, match="password"):
        psycopg.connect(f"host={pg.host} port={pg.port} dbname=postgres user=postgres passfile=/dev/null")


def test_the_superuser_connects_with_the_stacks_password_file(own_postgres: Settings) -> None:
    passfile = own_postgres.postgres.passfile
    assert passfile is not None
    assert passfile.stat().st_mode & 0o077 == 0, "libpq ignores a password file others can read"
    with psycopg.connect(own_postgres.postgres.dsn()) as conn:
        assert conn.execute("SELECT current_user").fetchone() == ("postgres",)
    assert "password" not in own_postgres.postgres.dsn()
