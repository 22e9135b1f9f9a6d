"""Bot accounts: a built-in list of service bots, imported bot lists, and a presence heuristic.

Three rules decide that a chatter is a bot, in this order of precedence:

1. ``builtin`` -- the well-known service bots in :data:`BUILTIN_BOTS`, always applied;
2. ``list`` -- logins imported from a published bot list with :func:`import_bot_csv`
   (kept in the store's ``bots`` table);
3. ``suspected`` -- accounts present in more than ``share`` of the live channels of one
   snapshot (:func:`suspected_bots_sql`); reported always, removed only when asked.

Everything that touches chatter rows is SQL run by DuckDB.
"""

from __future__ import annotations

import csv
import logging
import re
from pathlib import Path

import duckdb
import pandas as pd

from twitchgraph.errors import BadValue, TwitchgraphError
from twitchgraph.store.db import registered

__all__ = [
    "BUILTIN_BOTS",
    "BotListError",
    "ensure_bot_table",
    "import_bot_csv",
    "known_bots",
    "known_bots_frame",
    "suspected_bots",
    "suspected_bots_sql",
]

logger = logging.getLogger(__name__)

# Chat-service and alert bots that sit in a large share of channels. Kept short on purpose:
# the long tail (viewer bots, lurker bots) belongs in an imported list.
BUILTIN_BOTS: frozenset[str] = frozenset(
    {
        "nightbot",
        "streamelements",
        "moobot",
        "fossabot",
        "streamlabs",
        "wizebot",
        "soundalerts",
        "sery_bot",
        "commanderroot",
        "anotherttvviewer",
        "lurxx",
        "botrixoficial",
        "pokemoncommunitygame",
        "kofistreambot",
        "streamstickers",
        "tangiabot",
        "blerp",
        "own3d",
        "creatisbot",
        "frostytoolsdotcom",
        "streamholics",
        "restreambot",
        "deepbot",
        "phantombot",
        "coebot",
        "ankhbot",
        "vivbot",
        "songlistbot",
        "pretzelrocks",
        "playwithviewersbot",
        "botisimo",
        "ohbot",
        "scottybot",
        "stay_hydrated_bot",
        "buttsbot",
        "streamcaptainbot",
        "sockstream",
    }
)

_LOGIN_COLUMNS = ("login", "name", "username", "user_login", "user_name")
# Twitch logins are ASCII letters, digits and underscores; published lists use the same.
_LOGIN_RE = re.compile(r"^[A-Za-z0-9_]{1,25}$")


class BotListError(TwitchgraphError, ValueError):
    """A bot list file that cannot be read; the message names the file and line."""


def ensure_bot_table(con: duckdb.DuckDBPyConnection) -> None:
    """Create the ``bots`` table (login, source, imported_at) if it does not exist.

    This module owns the table: only importing a list creates it; readers never do.
    """
    con.execute(
        """
        CREATE TABLE IF NOT EXISTS bots (
            login VARCHAR PRIMARY KEY,
            source VARCHAR,
            imported_at TIMESTAMPTZ DEFAULT now()
        )
        """
    )


def _read_bot_csv(path: Path) -> list[str]:
    try:
        text = path.read_text(encoding="utf-8-sig")
    except FileNotFoundError as exc:
        raise BotListError(f"{path}: no such file") from exc
    except OSError as exc:  # a directory, no permission
        raise BotListError(f"{path}: cannot read it ({exc.strerror or exc})") from exc
    except UnicodeDecodeError as exc:
        raise BotListError(f"{path}: not UTF-8 text ({exc.reason})") from exc
    reader = csv.reader(text.splitlines(), strict=True)
    try:
        header = next(reader)
    except StopIteration as exc:
        raise BotListError(f"{path}: empty file, expected a header with a login column") from exc
    except csv.Error as exc:
        raise BotListError(f"{path}: line 1: {exc}") from exc
    lowered = [h.strip().lower() for h in header]
    column = next((lowered.index(c) for c in _LOGIN_COLUMNS if c in lowered), None)
    if column is None:
        raise BotListError(
            f"{path}: line 1: no login column in header {header!r}; "
            f"name one of {', '.join(_LOGIN_COLUMNS)}"
        )
    logins: list[str] = []
    while True:
        try:
            row = next(reader)
        except StopIteration:
            break
        except csv.Error as exc:
            raise BotListError(f"{path}: line {reader.line_num}: {exc}") from exc
        if not row or all(not cell.strip() for cell in row):
            continue
        if len(row) != len(header):
            raise BotListError(
                f"{path}: line {reader.line_num}: {len(row)} fields, header has {len(header)}"
            )
        login = row[column].strip()
        if not _LOGIN_RE.match(login):
            raise BotListError(
                f"{path}: line {reader.line_num}: {login!r} is not a Twitch login "
                "(letters, digits, underscore)"
            )
        logins.append(login.lower())
    return logins


def import_bot_csv(
    con: duckdb.DuckDBPyConnection, path: str | Path, *, source: str | None = None
) -> int:
    """Load a published bot list into the ``bots`` table.

    Parameters
    ----------
    con : an open store.
    path : any CSV whose header has a ``login``, ``name`` or ``username`` column (any case).
    source : label kept with each login; defaults to the file name.

    Returns
    -------
    The number of logins that were not in the table before.

    Raises
    ------
    BotListError naming the line of a malformed row, before anything is written.
    """
    path = Path(path)
    logins = _read_bot_csv(path)
    ensure_bot_table(con)
    frame = pd.DataFrame({"login": sorted(set(logins))})
    before = con.execute("SELECT count(*) FROM bots").fetchall()[0][0]
    with registered(con, "_tg_bot_import", frame):
        con.execute(
            "INSERT OR IGNORE INTO bots (login, source) SELECT login, ? FROM _tg_bot_import",
            [source or path.name],
        )
    added = con.execute("SELECT count(*) FROM bots").fetchall()[0][0] - before
    logger.info("imported %d bot logins from %s (%d new)", len(frame), path, added)
    return int(added)


def known_bots(con: duckdb.DuckDBPyConnection) -> pd.DataFrame:
    """All logins the built-in and imported lists name, with the rule (``builtin``/``list``).

    Reads only: a store without a ``bots`` table (no list imported yet) has no listed bots.
    """
    builtin = pd.DataFrame({"login": sorted(BUILTIN_BOTS)})
    imported = con.execute(
        "SELECT count(*) FROM information_schema.tables WHERE table_name = 'bots'"
    ).fetchall()[0][0]
    listed = (
        "UNION ALL SELECT lower(login), 'list' FROM bots "
        "WHERE lower(login) NOT IN (SELECT login FROM _tg_builtin_bots)" if imported else ""
    )
    with registered(con, "_tg_builtin_bots", builtin):
        return con.execute(
            f"SELECT login, 'builtin' AS rule FROM _tg_builtin_bots {listed}"
        ).df()


def known_bots_frame(listed: list[str]) -> pd.DataFrame:
    """(login, rule) for the built-in bots and the `listed` logins not built in, as
    `known_bots` gives them, from a bot list read by any engine."""
    builtin = sorted(BUILTIN_BOTS)
    extra = sorted({login.lower() for login in listed} - BUILTIN_BOTS)
    return pd.DataFrame({"login": builtin + extra,
                         "rule": ["builtin"] * len(builtin) + ["list"] * len(extra)})


def suspected_bots_sql(presence: str, live: str, *, share: float, min_channels: int) -> str:
    """SQL flagging accounts seen in more than ``share`` of a snapshot's live channels.

    ``presence`` names a relation with columns (snapshot_id, channel, login): one row per
    chatter seen in a live channel (unique rows: they are counted, not de-duplicated);
    ``live`` one with (snapshot_id, channel) per live channel.
    ``min_channels`` keeps tiny snapshots from flagging everyone (1 of 3 channels is 33 %).
    The result has login, snapshots_flagged, max_channels, max_share.
    """
    if not 0 < share <= 1:
        raise BadValue(f"bot channel share must be in (0, 1], got {share}")
    return f"""
        WITH live AS (
            SELECT snapshot_id, count(DISTINCT channel) AS n_live FROM {live} GROUP BY 1
        ),
        -- n_channels > share * n_live means n_channels >= floor(share * n_live) + 1: an
        -- account seen fewer times than that in the whole window cannot be flagged in any
        -- snapshot. Grouping per account first is far smaller than per (snapshot, account).
        need AS (
            SELECT greatest({int(min_channels)}, floor({float(share)} * min(n_live)) + 1) AS k
            FROM live
        ),
        candidates AS (
            SELECT login FROM {presence} GROUP BY login
            HAVING count(*) >= (SELECT k FROM need)
        ),
        seen AS (
            SELECT snapshot_id, login, count(*) AS n_channels
            FROM {presence} WHERE login IN (SELECT login FROM candidates) GROUP BY 1, 2
        )
        SELECT login,
               count(*) AS snapshots_flagged,
               max(n_channels) AS max_channels,
               max(n_channels / n_live) AS max_share
        FROM seen JOIN live USING (snapshot_id)
        WHERE n_channels > {float(share)} * n_live AND n_channels >= {int(min_channels)}
        GROUP BY login
    """


def suspected_bots(
    con: duckdb.DuckDBPyConnection,
    *,
    share: float = 0.10,
    min_channels: int = 3,
) -> pd.DataFrame:
    """Suspected bots over all complete snapshots of the store (for reports).

    A channel counts as live in a snapshot when it has a row in ``streams``; chatters of
    channels that were not live are ignored.
    """
    live = """
        (SELECT DISTINCT st.snapshot_id, lower(st.user_login) AS channel
         FROM streams st
         JOIN snapshots s ON s.snapshot_id = st.snapshot_id AND s.status = 'complete')
    """
    # The store keeps chatters lower case, one row per (snapshot, channel, user).
    presence = f"""
        (SELECT c.snapshot_id, c.channel_login AS channel, c.user_login AS login
         FROM chatters c
         JOIN {live} l ON l.snapshot_id = c.snapshot_id AND l.channel = c.channel_login)
    """
    sql = suspected_bots_sql(presence, live, share=share, min_channels=min_channels)
    return con.execute(sql + " ORDER BY snapshots_flagged DESC, login").df()
