"""A hand-made GRAPH_DIR: a planted-partition streamer graph with the build's exact columns.

Used by helper F's tests so they never wait for `twitchgraph build`. Each planted community has
its own language and its own games, so "dominant language" and "main game" have true answers.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from twitchgraph.graphio import FLOW_COLUMNS, RAID_COLUMNS, GraphData, write_graph_dir

LANGUAGES = ["it", "en", "es", "de", "fr", "pt", "ja", "ko"]
GENRES = ["Shooter", "Role-playing (RPG)", "Strategy", "Sport", "Adventure", "Racing",
          "Simulator", "Puzzle"]


def planted_graph(
    *,
    communities: int = 4,
    size: int = 30,
    p_in: float = 0.35,
    p_out: float = 0.01,
    seed: int = 0,
    evil_names: bool = False,
    loners: int = 0,
) -> dict[str, pd.DataFrame | dict]:
    """Tables of a GRAPH_DIR with `communities` planted groups of `size` streamers each.

    `loners` adds that many isolated streamers (no overlap with anyone, as a real build keeps
    them; planted community -1), named ``loner_000``...

    Returns a dict with streamers, edges, played, games, raids (DataFrames), build (dict) and
    truth (login -> planted community).
    """
    rng = np.random.default_rng(seed)
    n = communities * size + loners
    logins = [f"streamer_{c}_{i:03d}" for c in range(communities) for i in range(size)]
    truth = {login: i // size for i, login in enumerate(logins)}
    logins += [f"loner_{i:03d}" for i in range(loners)]
    truth.update({f"loner_{i:03d}": -1 for i in range(loners)})
    viewer_mean = np.round(rng.lognormal(4.0, 1.0, n) + 10, 2)
    games_per_comm = [[f"Game {c}-{g}" for g in range(3)] for c in range(communities)]
    labels = [login.replace("_", " ").title() for login in logins]
    if evil_names:
        labels[0] = '<script>window.__pwned=1</script><img src=x onerror="window.__pwned=2">'
        labels[1] = 'Quote " & </script> amp'
    streamers = pd.DataFrame({
        "Id": logins,
        "Label": labels,
        "login": logins,
        "language": [LANGUAGES[truth[x] % len(LANGUAGES)] for x in logins],
        "minutes_live": rng.integers(60, 5000, n),
        "viewer_mean": viewer_mean,
        "viewer_peak": np.round(viewer_mean * rng.uniform(1.2, 3.0, n)).astype(int),
        "chatter_mean": np.round(viewer_mean * rng.uniform(0.2, 0.6, n), 2),
        "chatters_total": rng.integers(50, 20000, n),
        "main_game": [games_per_comm[truth[x]][0] for x in logins],
        "broadcaster_type": rng.choice(["partner", "affiliate", ""], n),
        "social_links": [
            f"https://twitter.com/{x};https://instagram.com/{x}" if i % 3 else ""
            for i, x in enumerate(logins)
        ],
    })
    if evil_names:
        streamers.loc[0, "social_links"] = 'javascript:alert(1);https://ok.example/"><b>x</b>'
    rows = []
    for i in range(n):
        for j in range(i + 1, n):
            if truth[logins[i]] < 0 or truth[logins[j]] < 0:
                continue
            p = p_in if truth[logins[i]] == truth[logins[j]] else p_out
            if rng.random() < p:
                overlap = float(np.round(rng.uniform(10, 100), 2))
                shared = int(rng.integers(5, 500))
                # Direction as the build: from the streamer with the higher mean viewers.
                a, b = (i, j) if viewer_mean[i] >= viewer_mean[j] else (j, i)
                rows.append((logins[a], logins[b], overlap, shared, overlap,
                             round(overlap / 250.0, 4), "Directed"))
    edges = pd.DataFrame(rows, columns=["Source", "Target", "Weight", "shared", "overlap",
                                        "jaccard", "Type"])
    played_rows = []
    for login in logins:
        own = games_per_comm[truth[login]]
        played_rows.append((login, own[0], int(rng.integers(300, 3000))))
        if rng.random() < 0.6:
            played_rows.append((login, own[1 + int(rng.integers(0, 2))],
                                int(rng.integers(30, 300))))
    played = pd.DataFrame(played_rows, columns=["Source", "Target", "minutes_played"])
    played = played.groupby(["Source", "Target"], as_index=False)["minutes_played"].sum()
    game_names = [g for gs in games_per_comm for g in gs]
    games = pd.DataFrame({
        "Id": game_names,
        "Label": game_names,
        "game_id": [str(1000 + i) for i in range(len(game_names))],
        "igdb_id": [str(5000 + i) for i in range(len(game_names))],
        "genres": [f"{GENRES[i % len(GENRES)]};Adventure" if i % 2 else GENRES[i % len(GENRES)]
                   for i in range(len(game_names))],
        "themes": ["Action;Open World" if i % 3 == 0 else "Fantasy"
                   for i in range(len(game_names))],
        "release_date": [f"20{10 + i % 14:02d}-0{1 + i % 9}-15" for i in range(len(game_names))],
        "developers": [f"Studio {i % 5}" for i in range(len(game_names))],
        "publishers": [f"Publisher {i % 4}" for i in range(len(game_names))],
        "steam_appid": [str(200000 + i) if i % 2 == 0 else "" for i in range(len(game_names))],
        "steam_match": ["exact" if i % 2 == 0 else "" for i in range(len(game_names))],
        "steam_match_score": [100.0 if i % 2 == 0 else None for i in range(len(game_names))],
        "categories": ["Single-player;Multi-player"] * len(game_names),
        "tags": ["Open World;Action" if i % 3 == 0 else "Indie" for i in range(len(game_names))],
    })
    # Raids, drawn last so the tables above stay what they were: each planted streamer raids
    # one of its community once in three, and the first streamer raids the second twice.
    raid_rows = []
    for i, login in enumerate(logins):
        if truth[login] < 0 or rng.random() >= 1 / 3:
            continue
        peers = [x for x in logins if truth[x] == truth[login] and x != login]
        target = peers[int(rng.integers(0, len(peers)))]
        viewers = int(rng.integers(5, 500))
        raid_rows.append((login, target, 1, viewers, f"2026-05-0{1 + i % 7}T20:00:00Z",
                          f"2026-05-0{1 + i % 7}T20:00:00Z", "Directed"))
    raid_rows.append((logins[0], logins[1], 2, 321, "2026-05-01T18:00:00Z",
                      "2026-05-03T19:30:00Z", "Directed"))
    raids = pd.DataFrame(raid_rows, columns=RAID_COLUMNS)
    raids = raids.groupby(["Source", "Target"], as_index=False).agg(
        raids=("raids", "sum"), viewers_total=("viewers_total", "sum"),
        first_at=("first_at", "min"), last_at=("last_at", "max"), Type=("Type", "first"))
    flows = _flows(rng, logins, truth)
    # The stream-end figures agree with the flows: each streamer's chatters at its ends are
    # those that went somewhere, and as many again that went nowhere seen.
    out = flows.groupby("Source").agg(viewers=("viewers", "sum"), ends=("ends", "max"))
    sent = out["viewers"].reindex(logins).fillna(0).astype(int).to_numpy()
    streamers["ends"] = out["ends"].reindex(logins).fillna(0).astype(int).to_numpy() + 2
    streamers["end_chatters"] = 2 * sent
    streamers["end_retained"] = np.where(sent > 0, 0.5, 0.0)
    build = {"params": {"min_overlap": 10.0, "fixture": True, "seed": seed},
             "counts": {"streamers": n, "edges": len(edges)}}
    return {"streamers": streamers, "edges": edges, "played": played, "games": games,
            "raids": raids, "flows": flows, "build": build, "truth": truth}


def _flows(rng: np.random.Generator, logins: list[str], truth: dict) -> pd.DataFrame:
    """Flows, drawn after everything else: each planted streamer's audience goes to two of its
    community and now and then one outside; the first streamer's goes to the second most."""
    rows = []
    for i, login in enumerate(logins):
        if truth[login] < 0:
            continue
        peers = [x for x in logins if truth[x] == truth[login] and x != login]
        others = [x for x in logins if truth[x] != truth[login] and truth[x] >= 0]
        targets = [peers[int(k)] for k in rng.choice(len(peers), size=2, replace=False)]
        if others and rng.random() < 0.3:
            targets.append(others[int(rng.integers(0, len(others)))])
        for target in targets:
            if i == 0 and target == logins[1]:
                continue
            ends = int(rng.integers(1, 6))
            rows.append((login, target, int(rng.integers(1, 40)), ends,
                         f"2026-05-0{1 + i % 5}T2{ends % 4}:00:00Z", "2026-05-07T23:00:00Z",
                         "Directed"))
    rows.append((logins[0], logins[1], 250, 6, "2026-05-01T18:00:00Z", "2026-05-06T23:00:00Z",
                 "Directed"))
    flows = pd.DataFrame(rows, columns=FLOW_COLUMNS)
    return flows.sort_values(["viewers", "ends", "Source", "Target"],
                             ascending=[False, False, True, True]).reset_index(drop=True)


def write_planted_graph_dir(path: Path, **kwargs) -> dict[str, str | int]:
    """Write a planted GRAPH_DIR at `path`; returns the planted truth (login -> community)."""
    tables = planted_graph(**kwargs)
    # The build's own writer, so the readers are tested on what `twitchgraph build` writes.
    write_graph_dir(GraphData(streamers=tables["streamers"], edges=tables["edges"],
                              played=tables["played"], games=tables["games"],
                              build=tables["build"], raids=tables["raids"],
                              flows=tables["flows"]), path)
    return tables["truth"]
