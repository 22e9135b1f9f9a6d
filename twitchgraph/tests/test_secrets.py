"""Credentials and endpoints come from the environment or .env, and secrets never leak."""

from __future__ import annotations

import logging
import os

import pytest
from typer.testing import CliRunner

from twitchgraph.cli import app
from twitchgraph.sim import run_simulator
from twitchgraph.twitch.credentials import load_credentials
from twitchgraph.twitch.endpoints import Endpoints
from twitchgraph.twitch.errors import MissingCredentials, TwitchAPIError

from ._collect_fixtures import SECRET, empty_env_file

runner = CliRunner()


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


class _Capture(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(self.format(record))


@pytest.mark.slow
def test_no_secret_or_token_in_output_logs_or_database(tmp_path) -> None:
    """A faulty run (expired tokens, 5xx, bad JSON) logs at DEBUG; grep everything it left."""
    with run_simulator(channels=150, users=1500, seed=5, chat_joins_per_10s=1000,
                       faults="expire_tokens,server_error,malformed_json,missing_fields",
                       expire_tokens_after=3) as sim:
        issued: list[str] = []
        issue = sim._http.issue_token  # record every token the simulator hands out

        def recording(client_id: str) -> dict:
            reply = issue(client_id)
            issued.append(reply["access_token"])
            return reply

        sim._http.issue_token = recording
        capture = _Capture()
        loggers = [logging.getLogger(n) for n in ("", "twitchgraph", "httpx", "httpcore")]
        levels = [lg.level for lg in loggers]
        for lg in loggers:
            lg.addHandler(capture)
            lg.setLevel(logging.DEBUG)
        db = tmp_path / "tg.duckdb"
        try:
            result = CliRunner().invoke(app, [
                # Three slots, two of which must run: on a loaded machine the first, with its
                # retries, once outlasted a 2 s slot and the second was missed.
                "collect", "--every", "3s", "--for", "8s", "--window", "1s", "--db", str(db),
                "--joins-per-10s", "1000", "-v", "--env-file", str(empty_env_file(tmp_path))],
                env=sim.env())
        finally:
            for lg, level in zip(loggers, levels, strict=True):
                lg.removeHandler(capture)
                lg.setLevel(level)
        secret = sim.credentials.client_secret
    assert result.exit_code == 0, (result.output[-2000:], repr(result.exception))
    assert "snapshot 2 complete" in result.output
    assert len(issued) >= 2  # tokens expired and were replaced
    export = runner.invoke(app, ["export-parquet", str(tmp_path / "pq"), "--db", str(db)])
    assert export.exit_code == 0
    haystacks = {"output": result.output + export.output, "logs": "\n".join(capture.lines)}
    # every file the run left: the store, its spool, the collector's state, the Parquet
    for path in (p for p in tmp_path.rglob("*") if p.is_file()):
        haystacks[str(path)] = path.read_bytes().decode("latin-1")
    assert any("malformed" in line for line in capture.lines)  # the faults did happen
    assert any("401" in line or "new app token" in line for line in capture.lines)
    for where, text in haystacks.items():
        assert secret not in text, f"client secret found in {where}"
        for token in issued:
            assert token not in text, f"an access token found in {where}"
