"""Base URLs of every Twitch (and game-metadata) service, overridable from the environment.

Tests and the demo point the same client code at the simulator by setting these variables:

=================  ==================  ================================
field              env var             default
=================  ==================  ================================
api_url            TWITCH_API_URL      https://api.twitch.tv/helix
auth_url           TWITCH_AUTH_URL     https://id.twitch.tv/oauth2
chat_host          TWITCH_CHAT_HOST    irc.chat.twitch.tv:6697
chat_tls           TWITCH_CHAT_TLS     1 (0 for plain TCP)
igdb_url           IGDB_API_URL        https://api.igdb.com/v4
steam_store_url    STEAM_STORE_URL     https://store.steampowered.com
steam_api_url      STEAM_API_URL       https://api.steampowered.com
gql_url            TWITCH_GQL_URL      https://gql.twitch.tv/gql
=================  ==================  ================================

Each collected snapshot records `Endpoints.collect_label` (Helix, its token and chat), so a
store can tell Twitch's snapshots from the simulator's.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from twitchgraph.errors import BadValue
from twitchgraph.twitch.credentials import read_env

__all__ = ["Endpoints", "is_twitch_label"]

_URL_VARS = {
    "api_url": "TWITCH_API_URL",
    "auth_url": "TWITCH_AUTH_URL",
    "igdb_url": "IGDB_API_URL",
    "steam_store_url": "STEAM_STORE_URL",
    "steam_api_url": "STEAM_API_URL",
    "gql_url": "TWITCH_GQL_URL",
}
_FALSE = {"0", "false", "no", "off", ""}


def is_twitch_label(label: str) -> bool:
    """True for the `Endpoints.collect_label` of Twitch's own endpoints."""
    return label == Endpoints().collect_label()


@dataclass(frozen=True)
class Endpoints:
    """Where each service lives. Build one with `Endpoints.from_env()`."""

    api_url: str = "https://api.twitch.tv/helix"
    auth_url: str = "https://id.twitch.tv/oauth2"
    chat_host: str = "irc.chat.twitch.tv:6697"
    chat_tls: bool = True
    igdb_url: str = "https://api.igdb.com/v4"
    steam_store_url: str = "https://store.steampowered.com"
    steam_api_url: str = "https://api.steampowered.com"
    gql_url: str = "https://gql.twitch.tv/gql"

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Endpoints:
        """Read overrides from `env` (default the environment, by `read_env`); unset or empty
        keeps the default.

        Raises `ValueError` when TWITCH_CHAT_HOST is not `host:port`.
        """
        env = read_env(dotenv_path=None) if env is None else env
        values: dict[str, object] = {}
        for field_name, var in _URL_VARS.items():
            if env.get(var, "").strip():
                values[field_name] = env[var].strip().rstrip("/")
        if env.get("TWITCH_CHAT_HOST", "").strip():
            values["chat_host"] = env["TWITCH_CHAT_HOST"].strip()
        if "TWITCH_CHAT_TLS" in env:
            values["chat_tls"] = env["TWITCH_CHAT_TLS"].strip().lower() not in _FALSE
        endpoints = cls(**values)  # type: ignore[arg-type]
        endpoints.chat_address()  # validate early
        return endpoints

    def collect_label(self) -> str:
        """The endpoints a snapshot is collected from, as one line (stored with it)."""
        scheme = "tls" if self.chat_tls else "tcp"
        return f"api={self.api_url} auth={self.auth_url} chat={scheme}://{self.chat_host}"

    @property
    def collects_from_twitch(self) -> bool:
        """True when Helix, its token and chat are Twitch's own (not the simulator's)."""
        default = Endpoints()
        return (self.api_url, self.auth_url, self.chat_host, self.chat_tls) == (
            default.api_url, default.auth_url, default.chat_host, default.chat_tls)

    def chat_address(self) -> tuple[str, int]:
        """`chat_host` split into (host, port)."""
        host, sep, port = self.chat_host.rpartition(":")
        if not sep or not host or not port.isdigit():
            raise BadValue(
                f"TWITCH_CHAT_HOST must be host:port (e.g. irc.chat.twitch.tv:6697), "
                f"got {self.chat_host!r}"
            )
        return host, int(port)
