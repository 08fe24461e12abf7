"""The CDC password as Kafka Connect reads it: a 0600 properties file the FileConfigProvider resolves.

    path = write_connect_secret(settings.connect, spec)   # <secrets_dir>/<name>.properties
    config["database.password"]   # ${file:<worker_secrets_dir>/<name>.properties:password}

The value is read from the spec's password_env/password_file at the moment of `add` and written only
here; it is never logged, printed, rendered into a config or sent over the REST API. ``read_connect_secret``
reads it back for the day-2 commands that connect as the CDC user (status, resnapshot).
"""

from __future__ import annotations

import os
from pathlib import Path

from connectors.exceptions import SourceError
from connectors.spec import SourceSpec
from scv.config.settings import ConnectSettings
from scv.contracts.naming import SourceNames

__all__ = ["read_connect_secret", "remove_connect_secret", "write_connect_secret"]

_KEY = "password="
# java.util.Properties escapes: a backslash before these stands for the character itself.
_UNESCAPE = {"n": "\n", "r": "\r", "t": "\t"}


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


def _properties_unescape(raw: str) -> str:
    out: list[str] = []
    escaped = False
    for char in raw:
        if escaped:
            out.append(_UNESCAPE.get(char, char))
            escaped = False
        elif char == "\\":
            escaped = True
        else:
            out.append(char)
    return "".join(out)


def write_connect_secret(connect: ConnectSettings, spec: SourceSpec) -> Path:
    """Write (or replace) the source's secret file atomically, 0600 from its first byte."""
    path = connect.secret_file(spec.names.secret_file)
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    password = spec.database.password()
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        with os.fdopen(fd, "w") as handle:
            handle.write(f"{_KEY}{_properties_escape(password)}\n")
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return path


def read_connect_secret(connect: ConnectSettings, names: SourceNames) -> str:
    path = connect.secret_file(names.secret_file)
    try:
        for line in path.read_text().splitlines():
            if line.startswith(_KEY):
                return _properties_unescape(line[len(_KEY) :])
    except OSError as exc:
        raise SourceError(
            f"cannot read the Connect secret {path}: {exc.strerror}; re-run `scv sources add`"
        ) from exc
    raise SourceError(f"{path} has no {_KEY} line; re-run `scv sources add`")


def remove_connect_secret(connect: ConnectSettings, names: SourceNames) -> bool:
    """Delete the source's secret file; False when there was none."""
    path = connect.secret_file(names.secret_file)
    if not path.exists():
        return False
    path.unlink(missing_ok=True)
    return True
