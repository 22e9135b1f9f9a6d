"""Credentials and endpoints come from the environment or .env, and secrets never leak."""

from __future__ import annotations

import os

import pytest

from twitchgraph.twitch.credentials import load_credentials
from twitchgraph.twitch.endpoints import Endpoints
from twitchgraph.twitch.errors import MissingCredentials, TwitchAPIError

from ._collect_fixtures import SECRET


def test_credentials_from_dotenv_without_touching_os_environ(tmp_path, monkeypatch) -> None:
    monkeypatch.delenv("TWITCH_CLIENT_ID", raising=False)
    monkeypatch.delenv("TWITCH_CLIENT_SECRET", raising=False)
    dotenv = tmp_path / ".env"
    dotenv.write_text(f"TWITCH_CLIENT_ID=from-file\nTWITCH_CLIENT_SECRET={SECRET}\n")
    creds = load_credentials(dotenv_path=dotenv)
    assert (creds.client_id, creds.client_secret) == ("from-file", SECRET)
    assert "TWITCH_CLIENT_SECRET" not in os.environ
    assert SECRET not in repr(creds)


def test_environment_wins_over_dotenv(tmp_path) -> None:
    dotenv = tmp_path / ".env"
    dotenv.write_text("TWITCH_CLIENT_ID=from-file\nTWITCH_CLIENT_SECRET=file-secret\n")
    creds = load_credentials({"TWITCH_CLIENT_ID": "from-env"}, dotenv_path=dotenv)
    assert (creds.client_id, creds.client_secret) == ("from-env", "file-secret")


def test_missing_credentials_name_the_variables(tmp_path) -> None:
    with pytest.raises(MissingCredentials) as info:
        load_credentials({"TWITCH_CLIENT_ID": "x"}, dotenv_path=tmp_path / "none.env")
    message = str(info.value)
    assert "TWITCH_CLIENT_SECRET" in message and "TWITCH_CLIENT_ID" not in message
    assert "none.env" in message


def test_endpoints_defaults_and_overrides() -> None:
    real = Endpoints.from_env({})
    assert real.api_url == "https://api.twitch.tv/helix"
    assert real.auth_url == "https://id.twitch.tv/oauth2"
    assert real.chat_address() == ("irc.chat.twitch.tv", 6697) and real.chat_tls
    sim = Endpoints.from_env({"TWITCH_API_URL": "http://127.0.0.1:8080/helix/",
                              "TWITCH_CHAT_HOST": "127.0.0.1:6667", "TWITCH_CHAT_TLS": "0",
                              "IGDB_API_URL": "http://127.0.0.1:8080/v4"})
    assert sim.api_url == "http://127.0.0.1:8080/helix"
    assert sim.chat_address() == ("127.0.0.1", 6667) and not sim.chat_tls
    assert sim.igdb_url == "http://127.0.0.1:8080/v4"
    with pytest.raises(ValueError, match="host:port"):
        Endpoints.from_env({"TWITCH_CHAT_HOST": "irc.chat.twitch.tv"})


def test_error_urls_redact_secret_parameters() -> None:
    error = TwitchAPIError(
        "token refused", status=400,
        url=f"https://id.twitch.tv/oauth2/token?client_id=abc&client_secret={SECRET}",
    )
    assert SECRET not in str(error) and "client_secret=***" in str(error)
    assert "client_id=abc" in str(error) and "HTTP 400" in str(error)
