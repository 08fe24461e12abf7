"""Bearer tokens of the read API: who may read, and which sections.

    tokens = TokenTable.from_settings(settings.api)
    principal = tokens.authenticate(presented)   # None: 401
    principal.may_read("consent")                 # False for a token limited to other sections: 403

Tokens come from the settings (``SCV_API__TOKENS`` as JSON) and/or a YAML/JSON file
(``SCV_API__TOKENS_FILE``) holding a list of ``{name, token | sha256, sections?}``; ``sha256`` (the
hex digest of the token) keeps usable secrets out of the file. Only digests are kept in memory, and a
presented token is compared with every entry in constant time (hmac.compare_digest), whichever
matches, so the time taken says nothing about how close a guess was, nor which entry it matched.
Consents and contacts are personal data: give channels that do not need them a token limited to
the sections they do.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from scv.config.settings import ApiSettings

__all__ = ["ANONYMOUS", "AuthConfigurationError", "Principal", "TokenTable"]


class AuthConfigurationError(ValueError):
    """The tokens file or setting is malformed; the message names the entry and the fix."""


@dataclass(frozen=True)
class Principal:
    name: str
    sections: frozenset[str] | None  # None: every section

    def may_read(self, section: str) -> bool:
        return self.sections is None or section in self.sections

    def visible(self, sections: Iterable[str]) -> list[str]:
        return [section for section in sections if self.may_read(section)]


ANONYMOUS = Principal("anonymous", None)


@dataclass(frozen=True)
class _Entry:
    digest: bytes
    principal: Principal


def _digest(token: str) -> bytes:
    return hashlib.sha256(token.encode()).digest()


class TokenTable:
    def __init__(self, entries: Sequence[_Entry], anonymous: bool = False) -> None:
        self._entries = list(entries)
        self._anonymous = anonymous

    @property
    def names(self) -> list[str]:
        return [entry.principal.name for entry in self._entries]

    @property
    def anonymous(self) -> bool:
        """True when no token is configured and anonymous reads were allowed explicitly."""
        return self._anonymous

    @classmethod
    def from_settings(cls, api: ApiSettings) -> TokenTable:
        entries = [
            _Entry(
                _digest(token.token.get_secret_value()),
                Principal(token.name, frozenset(token.sections) if token.sections is not None else None),
            )
            for token in api.tokens
        ]
        if api.tokens_file is not None:
            entries += _load_file(api.tokens_file)
        names = [entry.principal.name for entry in entries]
        duplicates = sorted({name for name in names if names.count(name) > 1})
        if duplicates:
            raise AuthConfigurationError(f"API token names must be unique; repeated: {', '.join(duplicates)}")
        if not entries and not api.allow_anonymous:
            raise AuthConfigurationError(
                "no API token is configured: set SCV_API__TOKENS_FILE to a YAML list of "
                "{name, token, sections} (or SCV_API__TOKENS as JSON); SCV_API__ALLOW_ANONYMOUS=true "
                "serves every section to anyone, for a local experiment only"
            )
        return cls(entries, anonymous=not entries)

    def authenticate(self, presented: str | None) -> Principal | None:
        """The principal of a presented bearer token, or None (ANONYMOUS when anonymous is allowed)."""
        if self._anonymous:
            return ANONYMOUS
        if not presented:
            return None
        digest = _digest(presented)
        found: Principal | None = None
        for entry in self._entries:  # no early exit: every entry costs the same
            if hmac.compare_digest(digest, entry.digest):
                found = entry.principal
        return found


def _load_file(path: Path) -> list[_Entry]:
    try:
        data: Any = yaml.safe_load(path.read_text())
    except OSError as exc:
        raise AuthConfigurationError(f"cannot read the API tokens file {path}: {exc.strerror}") from exc
    except yaml.YAMLError as exc:
        raise AuthConfigurationError(f"{path} is not valid YAML/JSON: {exc}") from exc
    if isinstance(data, dict) and "tokens" in data:
        data = data["tokens"]
    if not isinstance(data, list):
        raise AuthConfigurationError(f"{path}: expected a list of {{name, token | sha256, sections}}")
    entries = []
    for number, item in enumerate(data, start=1):
        where = f"{path}, entry {number}"
        if not isinstance(item, dict) or not isinstance(item.get("name"), str):
            raise AuthConfigurationError(f"{where}: expected a mapping with a 'name'")
        token, sha = item.get("token"), item.get("sha256")
        if (token is None) == (sha is None):
            raise AuthConfigurationError(f"{where} ({item['name']}): give exactly one of 'token' or 'sha256'")
        if token is not None:
            digest = _digest(str(token))
        else:
            try:
                digest = bytes.fromhex(str(sha))
            except ValueError as exc:
                raise AuthConfigurationError(f"{where}: 'sha256' is not a hex digest") from exc
            if len(digest) != 32:
                raise AuthConfigurationError(f"{where}: 'sha256' must be 64 hex digits")
        sections = item.get("sections")
        if sections is not None and (
            not isinstance(sections, list) or not all(isinstance(s, str) for s in sections)
        ):
            raise AuthConfigurationError(f"{where}: 'sections' must be a list of section names")
        entries.append(
            _Entry(digest, Principal(item["name"], frozenset(sections) if sections is not None else None))
        )
    return entries
