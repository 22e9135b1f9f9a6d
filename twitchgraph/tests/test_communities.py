"""Leiden communities on a planted-partition GRAPH_DIR."""

from __future__ import annotations

import sys
from pathlib import Path

import networkx as nx
import pandas as pd
import pytest

sys.path.insert(0, str(Path(__file__).parent))
from _graph_fixtures import write_planted_graph_dir  # noqa: E402

from twitchgraph.graph.communities import communities_for_dir, find_communities  # noqa: E402
from twitchgraph.graphio import GraphData, read_graph_dir, to_networkx  # noqa: E402


@pytest.fixture()
def planted(tmp_path):
    truth = write_planted_graph_dir(tmp_path / "g", communities=5, size=30, seed=3)
    return read_graph_dir(tmp_path / "g"), truth


def test_recovers_planted_communities(planted):
    data, truth = planted
    result = find_communities(data, seed=0)
    found = [result.membership[x] for x in data.logins]
    planted_ids = [truth[x] for x in data.logins]
    from sklearn.metrics import normalized_mutual_info_score  # slow to import

    assert normalized_mutual_info_score(planted_ids, found) > 0.95
    assert len(result.table) == 5


def test_modularity_matches_networkx_and_contributions_add_up(planted):
    data, _ = planted
    result = find_communities(data, seed=1)
    graph = to_networkx(data)
    groups: dict[int, set[str]] = {}
    for login, c in result.membership.items():
        groups.setdefault(c, set()).add(login)
    q_nx = nx.community.modularity(graph, groups.values(), weight="weight")
    assert result.modularity == pytest.approx(q_nx, abs=1e-9)
    assert result.table["modularity_contribution"].sum() == pytest.approx(q_nx, abs=1e-4)


def test_same_seed_same_partition_and_ids_by_size(planted):
    data, _ = planted
    a = find_communities(data, seed=7, resolution=0.7)
    b = find_communities(data, seed=7, resolution=0.7)
    assert a.membership == b.membership
    sizes = a.table["size"].tolist()
    assert sizes == sorted(sizes, reverse=True)


def test_resolution_controls_granularity(planted):
    data, _ = planted
    coarse = find_communities(data, resolution=0.05, seed=0)
    fine = find_communities(data, resolution=5.0, seed=0)
    assert len(coarse.table) < 5 < len(fine.table)


def test_table_names_language_game_and_top_streamers(planted):
    data, truth = planted
    result = find_communities(data, seed=0)
    streamers = data.streamers.set_index("Id")
    for row in result.table.itertuples():
        members = [x for x, c in result.membership.items() if c == row.community]
        assert row.size == len(members)
        assert row.dominant_language == streamers.loc[members, "language"].mode()[0]
        assert row.main_game == streamers.loc[members, "main_game"].mode()[0]
        top = row.top_streamers.split(";")
        best = streamers.loc[members, "viewer_mean"].sort_values(ascending=False).index[0]
        assert top[0] == best and len(top) == 5


def test_isolated_streamers_get_their_own_community():
    streamers = pd.DataFrame({"Id": ["a", "b", "c", "lonely"], "viewer_mean": [1.0] * 4,
                              "language": ["it"] * 4, "main_game": ["x"] * 4})
    edges = pd.DataFrame({"Source": ["a", "b"], "Target": ["b", "c"], "Weight": [50.0, 40.0]})
    result = find_communities(GraphData(streamers=streamers, edges=edges))
    assert result.membership["lonely"] not in {result.membership[x] for x in "abc"}


def test_bad_resolution_is_refused(planted):
    with pytest.raises(ValueError, match="resolution"):
        find_communities(planted[0], resolution=0)


def test_communities_for_dir_writes_both_tables(tmp_path):
    write_planted_graph_dir(tmp_path, communities=3, size=20)
    result, written = communities_for_dir(tmp_path, seed=0)
    streamers = pd.read_csv(tmp_path / "streamers.csv")
    assert list(streamers.columns[:2]) == ["Id", "Label"] and "community" in streamers.columns
    assert streamers.set_index("Id")["community"].to_dict() == result.membership
    table = pd.read_csv(tmp_path / "communities.csv")
    assert table["size"].sum() == len(streamers)
    assert {p.name for p in written} == {"streamers.csv", "communities.csv"}


def _reference_table(data, membership, contribution_of, top=5):
    """community_table's per-community loop as first written: the reference."""
    from twitchgraph.graph.communities import _mode_and_share

    frame = data.streamers.copy()
    frame["community"] = frame["Id"].map(membership)
    frame["_viewers"] = pd.to_numeric(frame.get("viewer_mean"), errors="coerce").fillna(0.0)
    rows = []
    for community, members in frame.groupby("community", sort=True):
        ranked = members.sort_values(["_viewers", "Id"], ascending=[False, True])
        language, language_share = _mode_and_share(members.get("language", pd.Series([])))
        game, game_share = _mode_and_share(members.get("main_game", pd.Series([])))
        rows.append({
            "community": int(community), "size": len(members),
            "modularity_contribution": contribution_of[int(community)],
            "top_streamers": ";".join(ranked["Id"].head(top)),
            "dominant_language": language, "language_share": round(language_share, 3),
            "main_game": game, "main_game_share": round(game_share, 3),
            "viewer_mean_total": round(float(members["_viewers"].sum()), 2),
        })
    return pd.DataFrame(rows)


def test_community_table_equals_the_per_community_reference():
    import numpy as np

    from twitchgraph.graph.communities import community_table
    from twitchgraph.graphio import GraphData

    rng = np.random.default_rng(3)
    n = 300
    logins = [f"s{i:03d}" for i in range(n)]
    streamers = pd.DataFrame({
        "Id": logins,
        "viewer_mean": rng.choice([5.0, 10.0, 12.5, 40.0], n),  # ties in the ranking
        "language": rng.choice(["it", "en", "", "de"], n),
        "main_game": rng.choice(["Chess", "Art", "", "Music"], n),
    })
    edges = pd.DataFrame({"Source": logins[:100:2], "Target": logins[1:100:2],
                          "Weight": rng.uniform(10, 60, 50)})
    data = GraphData(streamers=streamers, edges=edges)
    # A few big communities, and many single streamers as on a sparse graph.
    membership = {login: (i % 7 if i < 140 else i) for i, login in enumerate(logins)}
    table = community_table(data, membership, top=3)
    expected = _reference_table(data, membership,
                                dict(zip(table["community"], table["modularity_contribution"],
                                         strict=True)), top=3)
    pd.testing.assert_frame_equal(table, expected, check_dtype=False)
