"""The CDC password as Kafka Connect reads it: a 0600 properties file the FileConfigProvider resolves.

    path = write_connect_secret(settings, spec)   # <data_dir>/secrets/connect/<name>.properties
    config["database.password"] = password_reference(path)

The value is read from the spec's password_env/password_file at the moment of `add` and written only
here; it is never logged, printed, rendered into a config or sent over the REST API.
"""

from __future__ import annotations

import os
from pathlib import Path

from connectors.spec import SourceSpec
from scv.settings import Settings

__all__ = ["remove_connect_secret", "secret_path", "write_connect_secret"]


def secret_path(settings: Settings, name: str) -> Path:
    return settings.stack.data_dir / "secrets" / "connect" / f"{name}.properties"


def _properties_escape(value: str) -> str:
    # java.util.Properties treats backslash, separators, comment markers and leading blanks specially;
    # escaping them keeps any password byte-exact through the FileConfigProvider.
    out = []
    for index, char in enumerate(value):
        if char in "\\:=#!" or (char == " " and index == 0):
            out.append("\\" + char)
        elif char == "\n":
            out.append("\\n")
        elif char == "\r":
            out.append("\\r")
        elif char == "\t":
            out.append("\\t")
        else:
            out.append(char)
    return "".join(out)


def write_connect_secret(settings: Settings, spec: SourceSpec) -> Path:
    """Write (or replace) the source's secret file atomically, 0600 from its first byte."""
    path = secret_path(settings, spec.name)
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    password = spec.database.password()
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        with os.fdopen(fd, "w") as handle:
            handle.write(f"password={_properties_escape(password)}\n")
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return path


def remove_connect_secret(settings: Settings, name: str) -> None:
    secret_path(settings, name).unlink(missing_ok=True)
