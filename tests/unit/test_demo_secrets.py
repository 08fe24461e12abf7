"""Demo CDC passwords: generated once, private to the owner, exported by variable name only."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from demo.exceptions import SecretsMissing
from demo.secrets import CDC_ROLES, ensure_password, export_demo_passwords, password_path
from scv.config.settings import Settings, StackSettings


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(stack=StackSettings(data_dir=tmp_path / "data"))


def test_password_file_is_created_owner_only(settings: Settings) -> None:
    ensure_password(settings, "cdc_crm")
    path = password_path(settings, "cdc_crm")
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700


def test_password_is_kept_across_calls(settings: Settings) -> None:
    assert ensure_password(settings, "cdc_core") == ensure_password(settings, "cdc_core")


def test_passwords_differ_per_role_and_are_long(settings: Settings) -> None:
    passwords = {ensure_password(settings, role) for role in CDC_ROLES.values()}
    assert len(passwords) == 3
    assert all(len(p) >= 24 for p in passwords)


def test_export_sets_the_spec_variables(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("SCV_CRM_DB_PASSWORD", "SCV_CORE_DB_PASSWORD", "SCV_CARE_DB_PASSWORD"):
        monkeypatch.delenv(name, raising=False)
    expected = ensure_password(settings, "cdc_care")
    for role in CDC_ROLES.values():
        ensure_password(settings, role)
    names = export_demo_passwords(settings)
    assert names == ["SCV_CARE_DB_PASSWORD", "SCV_CORE_DB_PASSWORD", "SCV_CRM_DB_PASSWORD"]
    assert os.environ["SCV_CARE_DB_PASSWORD"] == expected


def test_export_without_seed_names_the_command(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SCV_CRM_DB_PASSWORD", raising=False)
    with pytest.raises(SecretsMissing, match="scv demo seed"):
        export_demo_passwords(settings)
    assert "SCV_CRM_DB_PASSWORD" not in os.environ
