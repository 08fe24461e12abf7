"""Bearer tokens of the read API: from settings and a file, digests only, optional section limits."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
from pydantic import SecretStr

from scv.api.auth import ANONYMOUS, AuthConfigurationError, TokenTable
from scv.config.settings import ApiSettings, ApiToken


def api(tmp_path: Path, file_text: str | None = None, **kwargs: object) -> ApiSettings:
    tokens_file = None
    if file_text is not None:
        tokens_file = tmp_path / "tokens.yaml"
        tokens_file.write_text(file_text)
    return ApiSettings(tokens_file=tokens_file, **kwargs)  # type: ignore[arg-type]


def test_tokens_from_settings_and_file(tmp_path: Path) -> None:
    digest = hashlib.sha256(b"web-secret").hexdigest()
    settings = api(
        tmp_path,
        f"- {{name: web, sha256: {digest}, sections: [profile, account]}}\n"
        "- {name: batch, token: batch-secret}\n",
        tokens=[ApiToken(name="ops", token=SecretStr("ops-secret"))],
    )
    table = TokenTable.from_settings(settings)
    assert table.names == ["ops", "web", "batch"]
    web = table.authenticate("web-secret")
    assert web is not None
    assert web.name == "web"
    assert web.may_read("profile")
    assert not web.may_read("consent")
    assert web.visible(["consent", "profile", "email"]) == ["profile"]
    ops = table.authenticate("ops-secret")
    assert ops is not None
    assert ops.may_read("consent")
    assert table.authenticate("batch-secret") is not None


@pytest.mark.parametrize("presented", [None, "", "ops-secre", "ops-secret ", "OPS-SECRET"])
def test_anything_but_a_configured_token_is_refused(tmp_path: Path, presented: str | None) -> None:
    table = TokenTable.from_settings(
        api(tmp_path, tokens=[ApiToken(name="ops", token=SecretStr("ops-secret"))])
    )
    assert table.authenticate(presented) is None


def test_no_token_refuses_to_start_unless_anonymous_is_allowed(tmp_path: Path) -> None:
    with pytest.raises(AuthConfigurationError, match="SCV_API__TOKENS_FILE"):
        TokenTable.from_settings(api(tmp_path))
    anonymous = TokenTable.from_settings(api(tmp_path, allow_anonymous=True))
    assert anonymous.anonymous
    assert anonymous.authenticate(None) is ANONYMOUS


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("{name: x}", "expected a list"),
        ("- {token: t}", "entry 1: expected a mapping with a 'name'"),
        ("- {name: a, token: t, sha256: ab}", r"entry 1 \(a\): give exactly one"),
        ("- {name: a}", r"entry 1 \(a\): give exactly one"),
        ("- {name: a, sha256: nothex}", "not a hex digest"),
        ("- {name: a, sha256: abcd}", "64 hex digits"),
        ("- {name: a, token: t, sections: profile}", "'sections' must be a list"),
        ("- {name: a, token: t}\n- {name: a, token: u}", "unique; repeated: a"),
        ("- [unclosed", "not valid YAML"),
    ],
)
def test_bad_token_files_name_the_entry_and_the_fix(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(AuthConfigurationError, match=message):
        TokenTable.from_settings(api(tmp_path, text))


def test_missing_token_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(AuthConfigurationError, match="cannot read the API tokens file"):
        TokenTable.from_settings(ApiSettings(tokens_file=tmp_path / "absent.yaml"))
