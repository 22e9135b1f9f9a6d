"""Twitch application credentials from the environment or a `.env` file.

This is the one place that reads the Twitch settings (credentials and service URLs) from the
process environment (`read_env`); every other module takes the mapping it returns. (Spark's own
`SPARK_REMOTE` is read where the Spark session starts, in `build/engines.py`.)

`load_credentials()` reads TWITCH_CLIENT_ID and TWITCH_CLIENT_SECRET; the environment wins over
`.env`. The `.env` values are read with python-dotenv *without* being copied into `os.environ`,
so child processes and logs never see them unless the caller chooses to pass them on.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from dotenv import dotenv_values

from twitchgraph.errors import BadValue
from twitchgraph.twitch.errors import MissingCredentials

__all__ = [
    "CLIENT_ID_VAR",
    "CLIENT_SECRET_VAR",
    "GQL_CLIENT_ID_VAR",
    "Credentials",
    "load_credentials",
    "read_env",
]

CLIENT_ID_VAR = "TWITCH_CLIENT_ID"
CLIENT_SECRET_VAR = "TWITCH_CLIENT_SECRET"
GQL_CLIENT_ID_VAR = "TWITCH_GQL_CLIENT_ID"  # the web client's id, for the About panel (GQL)


@dataclass(frozen=True)
class Credentials:
    """A Twitch application's client id and secret. `repr` and `str` hide the secret."""

    client_id: str
    client_secret: str = field(repr=False)

    def __repr__(self) -> str:
        return f"Credentials(client_id={self.client_id!r}, client_secret='***')"

    __str__ = __repr__


def read_env(
    env: Mapping[str, str] | None = None, dotenv_path: str | Path | None = ".env"
) -> dict[str, str]:
    """`env` (default `os.environ`) layered over the values of `dotenv_path`, if it exists.

    Nothing is written to `os.environ`. Raises ValueError, naming the file, when it is not
    UTF-8 text.
    """
    merged: dict[str, str] = {}
    if dotenv_path is not None and Path(dotenv_path).is_file():
        try:
            values = dotenv_values(dotenv_path, encoding="utf-8")
        except UnicodeDecodeError as exc:
            raise BadValue(f"{dotenv_path} is not a text .env file ({exc.reason} at byte "
                             f"{exc.start}): pass a file of NAME=value lines") from None
        merged.update({k: v for k, v in values.items() if v is not None})
    merged.update(os.environ if env is None else env)
    return merged


def load_credentials(
    env: Mapping[str, str] | None = None, dotenv_path: str | Path | None = ".env"
) -> Credentials:
    """Credentials from `env` (default `os.environ`), falling back to `dotenv_path`.

    Raises:
        MissingCredentials: naming the variables to set, when either is missing or empty.
    """
    values = read_env(env, dotenv_path)
    client_id = values.get(CLIENT_ID_VAR, "").strip()
    secret = values.get(CLIENT_SECRET_VAR, "").strip()
    missing = [name for name, v in ((CLIENT_ID_VAR, client_id), (CLIENT_SECRET_VAR, secret))
               if not v]
    if missing:
        where = f" or in {dotenv_path}" if dotenv_path is not None else ""
        raise MissingCredentials(
            f"Twitch credentials missing: set {' and '.join(missing)} in the environment{where} "
            "(register an application at https://dev.twitch.tv/console/apps)"
        )
    return Credentials(client_id=client_id, client_secret=secret)
