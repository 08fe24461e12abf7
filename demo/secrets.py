"""The demo CDC roles' passwords: generated once, kept 0600 under the stack's data dir, never shown.

    path = ensure_password(settings, "cdc_crm")   # creates <data_dir>/secrets/cdc_crm.password
    export_demo_passwords()                        # SCV_CRM_DB_PASSWORD=... in os.environ, for onboarding

The connectors/sources/*.yaml specs name the environment variables, not the values, so `make demo`
and the tests can onboard the demo sources without any person or log seeing a password.
"""

from __future__ import annotations

import os
import secrets as _random_source
from pathlib import Path
from typing import Final

from demo.exceptions import SecretsMissing
from scv.config.settings import Settings, get_settings

__all__ = [
    "CDC_ROLES",
    "PASSWORD_ENV",
    "ensure_password",
    "export_demo_passwords",
    "password_path",
    "read_password",
]

# One least-privilege Debezium role per demo database.
CDC_ROLES: Final = {"crm": "cdc_crm", "core": "cdc_core", "care": "cdc_care"}
# The variables connectors/sources/<db>.yaml read through database.password_env.
PASSWORD_ENV: Final = {
    "cdc_crm": "SCV_CRM_DB_PASSWORD",
    "cdc_core": "SCV_CORE_DB_PASSWORD",
    "cdc_care": "SCV_CARE_DB_PASSWORD",
}


def password_path(settings: Settings, role: str) -> Path:
    return settings.stack.data_dir / "secrets" / f"{role}.password"


def read_password(settings: Settings, role: str) -> str:
    path = password_path(settings, role)
    try:
        return path.read_text().strip()
    except FileNotFoundError:
        raise SecretsMissing(
            f"{path} does not exist: the demo CDC role {role} has no password yet; run `scv demo seed`"
        ) from None


def ensure_password(settings: Settings, role: str) -> str:
    """The role's password, generating and storing it the first time.

    An existing file is kept: a running connector holds that password, and rotating it on every seed
    would break the connector at its next reconnect.
    """
    path = password_path(settings, role)
    if path.exists():
        return read_password(settings, role)
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    # URL-safe so it survives DSNs, env files and YAML without quoting; 192 bits of entropy.
    password = _random_source.token_urlsafe(24)
    # Written to a 0600 temporary file then renamed: the password is never readable by others, not
    # even for an instant, and a crash cannot leave a truncated file behind.
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "w") as handle:
            handle.write(password + "\n")
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return password


def export_demo_passwords(settings: Settings | None = None) -> list[str]:
    """Put each demo CDC role's password into its ``SCV_<DB>_DB_PASSWORD`` variable of this process.

    Returns the variable names set (never the values). Raises ``SecretsMissing`` before setting any
    variable if one password file is absent.
    """
    settings = settings or get_settings()
    values = {PASSWORD_ENV[role]: read_password(settings, role) for role in CDC_ROLES.values()}
    os.environ.update(values)
    return sorted(values)
