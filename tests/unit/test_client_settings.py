"""The read client's settings: ClientSettings.from_env (the `scv view get` fast path, no pydantic)
reads the service's variables exactly as the service's settings model does."""

from __future__ import annotations

from pathlib import Path

import pytest

from scv.api.config import client_settings
from scv.client.exceptions import ClientConfigurationError
from scv.client.settings import ClientSettings
from scv.config.settings import Settings

ENVIRONMENTS = [
    {},
    {"SCV_STACK__CQL_PORT": "19042"},
    {
        "SCV_STORE__CONTACT_POINTS": '["10.0.0.5", "10.0.0.6"]',
        "SCV_STORE__PORT": "9142",
        "SCV_STORE__KEYSPACE": "scv_prod",
        "SCV_STORE__LOCAL_DC": "eu-west",
        "SCV_STORE__CONSISTENCY": "QUORUM",
        "SCV_STORE__PROTOCOL_VERSION": "5",
        "SCV_READ__USERNAME": "reader",
        "SCV_READ__PASSWORD": "s3cret",
        "SCV_READ__FALLBACK_CONSISTENCY": "LOCAL_ONE",
        "SCV_READ__REQUEST_TIMEOUT_S": "0.5",
        "SCV_READ__CONNECT_TIMEOUT_S": "3",
        "SCV_READ__RETRY_BUDGET": "1",
        "SCV_READ__SPECULATIVE_DELAY_S": "0.02",
        "SCV_READ__SPECULATIVE_ATTEMPTS": "0",
        "SCV_READ__PAGE_SIZE": "100",
        "SCV_READ__CONCURRENCY": "8",
        "SCV_READ__PAGE_TOKEN_KEY": "k" * 32,
        "SCV_READ__REACTOR": "asyncio",
        "SCV_READ__TOKEN_AWARE": "false",
        "SCV_READ__TLS": "true",
        "SCV_READ__TLS_VERIFY_HOSTNAME": "false",
    },
    {"SCV_READ__TLS_CA_FILE": "/etc/scv/ca.pem", "SCV_READ__TLS_CERT_FILE": "/etc/scv/client.pem"},
]


@pytest.mark.parametrize("environment", ENVIRONMENTS, ids=range(len(ENVIRONMENTS)))
def test_from_env_reads_what_the_settings_model_reads(
    environment: dict[str, str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.chdir(tmp_path)  # no scv.yaml here
    for name in [n for n in __import__("os").environ if n.startswith("SCV_")]:
        monkeypatch.delenv(name)
    for name, value in environment.items():
        monkeypatch.setenv(name, value)
    assert ClientSettings.from_env(environment) == client_settings(Settings())


def test_secret_files_are_read(tmp_path: Path) -> None:
    (tmp_path / "password").write_text("from-file\n")
    (tmp_path / "key").write_text("k" * 40)
    settings = ClientSettings.from_env(
        {
            "SCV_READ__PASSWORD_FILE": str(tmp_path / "password"),
            "SCV_READ__PAGE_TOKEN_KEY_FILE": str(tmp_path / "key"),
        }
    )
    assert settings.password == "from-file"
    assert settings.page_token_key == b"k" * 40
    assert "from-file" not in repr(settings)


@pytest.mark.parametrize(
    ("environment", "named"),
    [
        ({"SCV_STORE__CONTACT_POINTS": "10.0.0.5"}, "SCV_STORE__CONTACT_POINTS"),
        ({"SCV_STORE__PORT": "x"}, "SCV_STORE__PORT"),
        ({"SCV_READ__PAGE_SIZE": "many"}, "SCV_READ__PAGE_SIZE"),
        ({"SCV_READ__TOKEN_AWARE": "maybe"}, "SCV_READ__TOKEN_AWARE"),
        ({"SCV_READ__PAGE_SIZ": "10"}, "SCV_READ__PAGE_SIZ"),
        ({"SCV_READ__FALLBACK_CONSISTENCY": "SOME"}, "fallback_consistency"),
        ({"SCV_READ__PASSWORD_FILE": "/nonexistent/pw"}, "SCV_READ__PASSWORD_FILE"),
    ],
)
def test_bad_values_name_the_variable(environment: dict[str, str], named: str) -> None:
    with pytest.raises(ClientConfigurationError, match=named):
        ClientSettings.from_env(environment)


def test_without_a_key_each_client_gets_a_random_one() -> None:
    first, second = ClientSettings().with_random_page_key(), ClientSettings().with_random_page_key()
    assert len(first.page_token_key) == 32
    assert first.page_token_key != second.page_token_key
    keyed = ClientSettings(page_token_key=b"k" * 32)
    assert keyed.with_random_page_key() is keyed
